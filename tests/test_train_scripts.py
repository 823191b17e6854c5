"""The Ascend-style shell scripts: they train (1 process, 2 gloo processes), evaluate, and write a summary whose
fields are exactly the Ascend ones, in order, each with a number where the Ascend consumers expect one.

Outputs, checkpoints and the built-in data go to pytest's temporary folders (SIAMMASK_OUTPUT_ROOT, SIAMMASK_SAVE_ROOT,
SIAMMASK_BUILTIN_DATA), never into the working tree. Runs are fp32 and a handful of iterations.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NUMBER = re.compile(r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$")
PERF_FIELDS = ["Network", "RankSize", "BatchSize", "DeviceType", "CaseName", "ActualFPS", "TrainingTime",
               "ActualLoss", "E2ETrainingTime"]
FULL_FIELDS = ["Network", "RankSize", "BatchSize", "DeviceType", "CaseName", "ActualFPS", "TrainingTime",
               "TrainAccuracy", "ActualLoss", "E2ETrainingTime", "BestEAO", "BestEpoch"]
NUMERIC = {"RankSize", "BatchSize", "ActualFPS", "TrainingTime", "TrainAccuracy", "ActualLoss", "E2ETrainingTime",
           "BestEAO", "BestEpoch"}


@pytest.fixture(scope="session")
def builtin_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from siammask.datasets.synthetic import make_builtin_data

    return Path(make_builtin_data(str(tmp_path_factory.mktemp("builtin_scripts")), "quick", seed=0))


def run_script(name: str, tmp_path: Path, builtin: Path, *args: str, cwd: Path = ROOT,
               timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "SIAMMASK_OUTPUT_ROOT": str(tmp_path / "out"), "SIAMMASK_SAVE_ROOT": str(tmp_path / "save"),
           "SIAMMASK_BUILTIN_DATA": str(builtin), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    env.pop("ASCEND_DEVICE_ID", None)
    return subprocess.run(["bash", str(ROOT / "test" / name), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def summary(tmp_path: Path, case: str) -> dict[str, str]:
    lines = (tmp_path / "out" / "0" / f"{case}.log").read_text().splitlines()
    fields = [line.split(" = ", 1) for line in lines]
    assert all(len(f) == 2 for f in fields), lines
    return dict(fields) | {"_order": [k for k, _ in fields]}  # type: ignore[dict-item]


def check_fields(values: dict, expected: list[str]) -> None:
    assert values["_order"] == expected
    for key in expected:
        if key in NUMERIC:
            assert NUMBER.match(values[key]), (key, values[key])
    assert values["Network"] == "SiamMask_for_Pytorch" and values["DeviceType"]


@pytest.mark.slow
def test_perf_1p_trains_on_builtin_data_and_writes_the_summary(builtin_data: Path, tmp_path: Path) -> None:
    proc = run_script("train_performance_1p.sh", tmp_path, builtin_data, f"--data_path={tmp_path / 'no_data'}",
                      "--device=cpu", "--batch_size=2", "--num_steps=3")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "training on the BUILT-IN SYNTHETIC data" in proc.stdout
    values = summary(tmp_path, "SiamMask_for_Pytorch_bs2_1p_perf")
    check_fields(values, PERF_FIELDS)
    assert (values["RankSize"], values["BatchSize"]) == ("1", "2") and float(values["ActualFPS"]) > 0
    losses = (tmp_path / "out/0/train_SiamMask_for_Pytorch_bs2_1p_perf_loss.txt").read_text().split()
    assert len(losses) == 3 and losses[-1] == values["ActualLoss"]
    (folder,) = (tmp_path / "save").iterdir()
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint_latest.pth", "checkpoint_step3.pth"]


@pytest.mark.slow
def test_perf_8p_runs_two_gloo_processes(builtin_data: Path, tmp_path: Path) -> None:
    proc = run_script("train_performance_8p.sh", tmp_path, builtin_data, f"--data_path={tmp_path / 'no_data'}",
                      "--device=cpu", "--nproc=2", "--batch_size=1", "--num_steps=2")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    values = summary(tmp_path, "SiamMask_for_Pytorch_bs1_2p_perf")
    check_fields(values, PERF_FIELDS)
    assert values["RankSize"] == "2"
    log = (tmp_path / "out/0/train_0_2p_perf.log").read_text()
    assert "gloo rank 0/2" in log and "x 2 process(es)" in log


@pytest.mark.slow
def test_full_run_evaluates_each_epoch_and_reports_the_best_eao(builtin_data: Path, tmp_path: Path) -> None:
    """--data_path holding the config's datasets and a VOT2018 set: no fallback; one short epoch, then test + eval.

    The VOT set is one 100-frame video: the built-in quick videos (40 frames) are shorter than VOT2018's EAO interval
    [100, 356], which would make the EAO undefined."""
    from siammask.datasets.synthetic import write_vot_dataset

    data = tmp_path / "data"
    data.mkdir()
    for name in ("ytb_vos", "det"):
        (data / name).symlink_to(builtin_data / name)
    write_vot_dataset(str(data), "VOT2018", num_videos=1, num_frames=100, seed=3)
    cfg = json.loads((ROOT / "experiments/siammask_synthetic/config.json").read_text())
    cfg["lr"].pop("warmup")
    cfg["train_datasets"].update(search_size=143, size=3, base_size=0, num=4)
    config = tmp_path / "tiny.json"
    config.write_text(json.dumps(cfg))
    proc = run_script("train_full_8p.sh", tmp_path, builtin_data, f"--data_path={data}", f"--config={config}",
                      "--device=cpu", "--nproc=1", "--epochs=1", "--batch_size=2")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "BUILT-IN" not in proc.stdout
    values = summary(tmp_path, "SiamMask_for_Pytorch_bs2_1p_acc")
    check_fields(values, FULL_FIELDS)
    assert values["BestEpoch"] == "1" and 0.0 <= float(values["BestEAO"]) <= 1.0
    assert (tmp_path / "out/0/eval_VOT2018.json").is_file()


def test_scripts_refuse_unknown_options_and_run_from_test_dir(builtin_data: Path, tmp_path: Path) -> None:
    proc = run_script("train_performance_1p.sh", tmp_path, builtin_data, "--batchsize=2")
    assert proc.returncode != 0 and "unknown option '--batchsize=2'" in proc.stderr
    proc = run_script("train_full_8p.sh", tmp_path, builtin_data, "--epochs=two")
    assert proc.returncode != 0 and "not a whole number" in proc.stderr
    proc = run_script("train_performance_8p.sh", tmp_path, builtin_data, "--help", cwd=ROOT / "test")
    assert proc.returncode == 0 and proc.stdout.startswith("usage: bash test/train_performance_8p.sh")
