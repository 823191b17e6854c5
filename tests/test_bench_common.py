"""bench/_common.py: the median and spread every benchmark reports."""
import importlib.util
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location("bench_common", Path(__file__).parent.parent / "bench" / "_common.py")
common = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(common)


def test_summarize_reports_median_not_best():
    stats = common.summarize([10.0, 2.0, 7.0, 4.0, 100.0])
    assert stats["median"] == 7.0  # the best (100) or the worst (2) would be wrong
    assert (stats["min"], stats["max"], stats["rounds"]) == (2.0, 100.0, 5)
    # exclusive quartiles of 2,4,7,10,100: positions 1.5 and 4.5 -> 3.0 and 55.0
    assert stats["q1"] == pytest.approx(3.0) and stats["q3"] == pytest.approx(55.0)


def test_summarize_few_rounds_and_empty():
    assert common.summarize([3.0, 5.0])["median"] == 4.0
    assert common.summarize([3.0, 5.0])["q1"] == 4.0
    with pytest.raises(ValueError):
        common.summarize([])


def test_format_and_machine_line():
    text = common.format_summary(common.summarize([1.0, 2.0, 3.0, 4.0]), "FPS")
    assert text.startswith("2.5 FPS (median of 4 rounds, 1.0-4.0, IQR")
    info = common.machine_info(threads=2)
    line = common.machine_line(info)
    assert "2 threads" in line and f"torch {info['torch']}" in line and "device cpu" in line


def test_cpu_model_names_family_model_and_matrix_isa(tmp_path):
    """A bare 'AMD EPYC' of a virtual machine gets its family / model and ISA; the first processor's block is read."""
    block = "processor\t: {}\nvendor_id\t: {}\ncpu family\t: {}\nmodel\t\t: {}\nmodel name\t: {}\nflags\t\t: {}\n\n"
    cases = [(("AuthenticAMD", 26, 2, "AMD EPYC", "fpu avx2 avx512f avx512_bf16"), "AMD EPYC (family 26 model 2; "
              "AVX512-BF16, no AMX)"),
             (("GenuineIntel", 6, 143, "Intel Xeon", "avx2 avx512f avx512_bf16 amx_tile"), "Intel Xeon (family 6 model "
              "143; AMX)"),
             (("AuthenticAMD", 23, 49, "AMD EPYC 7B12", "avx2"), "AMD EPYC 7B12 (family 23 model 49; AVX2)")]
    for (vendor, family, model, name, flags), want in cases:
        path = tmp_path / "cpuinfo"
        path.write_text(block.format(0, vendor, family, model, name, flags)
                        + block.format(1, vendor, family + 1, model, "other", "sse2"))
        assert common.cpu_model(str(path)) == want
    assert common.cpu_model(str(tmp_path / "missing")) != ""  # platform's name instead


def test_data_pipeline_bench_times_the_original_work_beside_the_pipeline():
    """bench/data_pipeline.py runs end to end on a tiny built-in set and prints original-work, the in-process ratio
    to it (consistent with the two rates it prints) and, with --plain-writes, the ordinary-stores loader."""
    import re
    import subprocess
    import sys

    bench = Path(__file__).parent.parent / "bench" / "data_pipeline.py"
    run = subprocess.run([sys.executable, str(bench), "--flat", "--samples", "32", "--rounds", "2", "--workers", "1",
                          "--batch-size", "8", "--plain-writes"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    out = run.stdout
    rate = {name: float(re.search(rf"^{name}:\s+([\d.]+) samples/s", out, re.M).group(1))
            for name in ("in-process", "original-work")}
    ratio = float(re.search(r"^in-process / original-work: ([\d.]+) x", out, re.M).group(1))
    assert rate["original-work"] > 0 and ratio > 0
    # the median of the per-round ratios, close to the ratio of the two medians (not the same number)
    assert 0.67 < ratio / (rate["in-process"] / rate["original-work"]) < 1.5
    assert "with ordinary stores:" in out and "DataLoader 1 workers:" in out


def test_gpu_script_refuses_a_machine_without_cuda(tmp_path):
    """bench/gpu.sh (the prepared GPU check) stops before any work with one line and exit 2 where torch sees no
    CUDA device, and writes nothing."""
    import subprocess
    import sys

    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    script = Path(__file__).parent.parent / "bench" / "gpu.sh"
    run = subprocess.run(["bash", str(script), str(tmp_path / "out")], capture_output=True, text=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable})
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        f"error: bench/gpu.sh: {sys.executable}'s torch sees no CUDA device (run it on a GPU machine)"]
    assert not (tmp_path / "out").exists()
