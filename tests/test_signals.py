"""Ctrl-C (SIGINT) and SIGTERM (what a cluster scheduler sends before it kills) during training, test.py, demo.py:
exit 130 / 143 with one line, no temporary or partial file left, the last complete checkpoint intact."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import pytest
import torch
from test_train import ROOT, builtin_root, tiny_config  # noqa: F401 - fixture and helper
from tracking_helpers import small_sharp_model

from siammask.training.checkpoint import find_resume_checkpoint

pytestmark = pytest.mark.slow
EXPECTED = {signal.SIGINT: 130, signal.SIGTERM: 143}


def _start(argv: list[str], tmp_path: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # a shell without job control starts background jobs with SIGINT ignored, and Python then installs no
    # KeyboardInterrupt handler: give the tool the default disposition, as a terminal would
    return subprocess.Popen([sys.executable, *argv], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _signal_when(proc: subprocess.Popen, ready: Callable[[], bool], sig: signal.Signals,
                 timeout: float = 240) -> tuple[int, str]:
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the run ended (rc {proc.returncode}) before the signal:\n{out[-2000:]}\n{err[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the run never got far enough to be interrupted")
        time.sleep(0.2)
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"{sig.name} did not stop the run")
    return proc.returncode, err


def _temporaries(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*") if p.is_file() and (p.name.endswith(".tmp") or "partial" in p.name)]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_training_interrupted(tmp_path: Path, builtin_root: Path, sig: signal.Signals) -> None:  # noqa: F811
    snap = tmp_path / "snap"
    proc = _start([str(ROOT / "tools" / "train_siammask.py"), "--config", str(tiny_config(tmp_path)),
                   "--data-root", str(builtin_root), "-j", "0", "-b", "2", "--epochs", "200", "--device", "cpu",
                   "--log-dir", "", "--backbone", "", "--log", "", "-s", str(snap)], tmp_path)
    rc, err = _signal_when(proc, lambda: (snap / "checkpoint_e1.pth").is_file(), sig)
    assert rc == EXPECTED[sig], err
    assert err.strip().splitlines()[-1].startswith("interrupted") and "Traceback" not in err
    assert not _temporaries(snap)
    for path in snap.glob("*.pth"):  # whatever is under a final name is complete
        torch.load(path, weights_only=True)
    latest = torch.load(find_resume_checkpoint(str(snap)), weights_only=True)  # what --resume auto picks
    assert latest["epoch"] >= 1 and all(torch.isfinite(v).all() for v in latest["state_dict"].values()
                                        if v.is_floating_point())


@pytest.fixture(scope="module")
def tracking_setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    from siammask.datasets.synthetic import write_vot_dataset

    root = tmp_path_factory.mktemp("signals")
    data = str(root / "data")
    write_vot_dataset(data, name="VOT2018", num_videos=6, num_frames=30, frame_size=(160, 120), seed=0)
    ckpt = str(root / "tiny.pth")
    torch.save(small_sharp_model().state_dict(), ckpt)
    folder = root / "frames"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(400):
        cv2.imwrite(str(folder / f"{i:05d}.jpg"), rng.integers(0, 256, (120, 160, 3), dtype=np.uint8))
    return {"root": str(root), "data": data, "ckpt": ckpt, "frames": str(folder)}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_test_py_interrupted(tmp_path: Path, tracking_setup: dict[str, str], sig: signal.Signals) -> None:
    results = tmp_path / "results"
    proc = _start([str(ROOT / "tools" / "test.py"), "--config",
                   str(ROOT / "experiments" / "siammask_sharp" / "config_vot.json"), "--resume",
                   tracking_setup["ckpt"], "--data-root", tracking_setup["data"], "--result-dir", str(results),
                   "--device", "cpu", "--mask", "--refine", "--tracker-name", "T"], tmp_path)
    baseline = results / "VOT2018" / "T" / "baseline"
    rc, err = _signal_when(proc, lambda: (baseline / "vot0000" / "vot0000_001.txt").is_file(), sig)
    assert rc == EXPECTED[sig], err
    assert err.strip().splitlines()[-1].startswith("interrupted") and "Traceback" not in err
    assert not _temporaries(results) and not (results / "VOT2018" / "T" / ".lock").exists()
    for path in baseline.rglob("*.txt"):  # every result file there is complete
        assert len(path.read_text().splitlines()) == 30


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_demo_interrupted(tmp_path: Path, tracking_setup: dict[str, str], sig: signal.Signals) -> None:
    out = tmp_path / "out"
    proc = _start([str(ROOT / "tools" / "demo.py"), "--config",
                   str(ROOT / "experiments" / "siammask_sharp" / "config_davis.json"), "--resume",
                   tracking_setup["ckpt"], "--input", tracking_setup["frames"], "--init", "40,40,30,30",
                   "--no-display", "--device", "cpu", "--output", str(out)], tmp_path)
    rc, err = _signal_when(proc, lambda: len(list((out / "masks").glob("*.png"))) >= 3, sig)
    assert rc == EXPECTED[sig], err
    assert err.strip().splitlines()[-1].startswith("interrupted") and "Traceback" not in err
    assert not _temporaries(out) and not (out / "overlay.mp4").exists() and not (out / "tracks.json").exists()
