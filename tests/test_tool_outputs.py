"""The tools check their output folders before any work: an output path under a regular file is one line naming the
flag and the path, exit 2, within seconds, with nothing tracked or written. And tune_vot's single-value ranges."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from test_test_tool import CONFIG, vot_setup  # noqa: F401 - fixture

ROOT = Path(__file__).resolve().parents[1]


def _tool(name: str, *args: str) -> tuple[subprocess.CompletedProcess, float]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / f"{name}.py"), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    return proc, time.perf_counter() - start


@pytest.fixture()
def blocker(tmp_path: Path) -> Path:
    path = tmp_path / "a_file"
    path.write_text("not a folder\n")
    return path


def test_test_py_result_dir_under_a_file(vot_setup: dict[str, str], blocker: Path) -> None:  # noqa: F811
    proc, _ = _tool("test", "--config", CONFIG, "--resume", vot_setup["ckpt"], "--data-root", vot_setup["data"],
                    "--result-dir", str(blocker / "results"), "--device", "cpu", "--mask")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines() == [f"error: --result-dir {blocker / 'results' / 'VOT2018'}: a parent "
                                                f"of it is a regular file"]
    assert "Video:" not in proc.stdout  # no video was tracked


def test_demo_output_under_a_file(vot_setup: dict[str, str], blocker: Path) -> None:  # noqa: F811
    frames = os.path.join(vot_setup["data"], "VOT2018", "vot0000", "color")
    proc, _ = _tool("demo", "--config", CONFIG, "--resume", vot_setup["ckpt"], "--input", frames, "--init",
                    "40,30,30,30", "--output", str(blocker / "out"), "--no-display", "--device", "cpu")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines() == [f"error: --output {blocker / 'out' / 'masks'}: a parent of it is a "
                                                f"regular file"]


def test_eval_json_under_a_file_fails_before_evaluating(vot_setup: dict[str, str], blocker: Path) -> None:  # noqa: F811
    proc, seconds = _tool("eval", "--data-root", vot_setup["data"], "--result_dir", str(blocker.parent / "none"),
                          "--json", str(blocker / "eao.json"))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: --json (folder) {blocker}: exists and is not a folder"]


def test_tune_vot_single_values_are_kept() -> None:
    from siammask.tools.tune_vot import parse_range, parse_range_int

    np.testing.assert_allclose(parse_range("0.38"), [0.38])
    np.testing.assert_allclose(parse_range("0.39"), [0.39])
    np.testing.assert_array_equal(parse_range_int("255"), [255])
    np.testing.assert_allclose(parse_range("0.1,0.3,0.1"), [0.1, 0.2])  # start,stop,step: np.arange as the original


@pytest.mark.parametrize("box", ["1000,1000,10,10", "nan,10,10,10"])
def test_demo_init_outside_the_frame_or_not_finite(vot_setup: dict[str, str], tmp_path: Path,  # noqa: F811
                                                   box: str) -> None:
    frames = os.path.join(vot_setup["data"], "VOT2018", "vot0000", "color")
    proc, _ = _tool("demo", "--config", CONFIG, "--resume", vot_setup["ckpt"], "--input", frames, "--init", box,
                    "--output", str(tmp_path / "out"), "--no-display", "--device", "cpu")
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --init ")
    assert not (tmp_path / "out" / "tracks.json").exists()
