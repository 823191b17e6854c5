"""Training faults: output folders checked before any step, NaN weights never checkpointed, the invalid-step count
across epochs, stale temporaries, `--resume auto`, resume with another seed, DataLoader worker errors in one line."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from test_train import ROOT, builtin_root, tiny_config, train  # noqa: F401 - fixtures and helpers

from siammask.models.weights import CheckpointError
from siammask.training.errors import TrainingError
from siammask.training.invalid_loss import MAX_CONSECUTIVE_SKIPS, InvalidSteps

TOOL = ROOT / "tools" / "train_siammask.py"


def _cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), "--device", "cpu", "--log-dir", "", "--backbone", "", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_invalid_steps_count_across_epochs() -> None:
    counter = InvalidSteps()
    for _ in range(MAX_CONSECUTIVE_SKIPS - 1):
        counter.record(False)
    restored = InvalidSteps()
    restored.load_state_dict(counter.state_dict())  # an epoch boundary / resume keeps the count
    assert restored.consecutive == MAX_CONSECUTIVE_SKIPS - 1 and not restored.diverged
    restored.record(False)
    assert restored.diverged and restored.total == MAX_CONSECUTIVE_SKIPS
    restored.record(True)
    assert restored.consecutive == 0 and restored.total == MAX_CONSECUTIVE_SKIPS


def test_save_dir_under_a_regular_file_fails_before_any_work(tmp_path: Path, builtin_root: Path) -> None:  # noqa: F811
    blocker = tmp_path / "file"
    blocker.write_text("x")
    start = time.perf_counter()
    proc = _cli("--config", str(tiny_config(tmp_path)), "--data-root", str(builtin_root), "-j", "0", "--log", "",
                "-s", str(blocker / "snap"))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: --save_dir {blocker / 'snap'}: a parent of it is a "
                                                f"regular file"]
    assert "Epoch:" not in proc.stdout and time.perf_counter() - start < 60


def test_nan_weights_stop_the_run_and_are_never_saved(tmp_path: Path, builtin_root: Path) -> None:  # noqa: F811
    config = tiny_config(tmp_path)
    snap = tmp_path / "snap"
    train(tmp_path, config, builtin_root, "-b", "2", "--epochs", "2", "--num-steps", "1")
    good = next(snap.glob("checkpoint_step*.pth"))
    state = torch.load(good, weights_only=True)
    name = next(k for k, v in state["state_dict"].items() if v.is_floating_point())
    state["state_dict"][name] = torch.full_like(state["state_dict"][name], float("nan"))
    poisoned = tmp_path / "poisoned.pth"
    torch.save({"state_dict": state["state_dict"]}, poisoned)
    with pytest.raises(CheckpointError, match=f"{poisoned}: tensor '{name}' holds NaN"):
        train(tmp_path, config, builtin_root, "-b", "2", "--pretrained", str(poisoned))
    torch.save(state, poisoned)
    with pytest.raises(CheckpointError, match="holds NaN"):
        train(tmp_path, config, builtin_root, "-b", "2", "--resume", str(poisoned))


def test_non_finite_weights_after_an_epoch_are_not_checkpointed(tmp_path: Path, builtin_root: Path,  # noqa: F811
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import siammask.training.engine as engine

    real = engine.train_one_epoch

    def poisoning(model, *args, **kwargs):  # an epoch after which a weight went NaN (a step that blew up)
        stats = real(model, *args, **kwargs)
        with torch.no_grad():
            next(iter(model.parameters())).fill_(float("nan"))
        return stats

    import siammask.tools.train_siammask as tool

    monkeypatch.setattr(tool, "train_one_epoch", poisoning)
    with pytest.raises(TrainingError, match="not finite after step .*no checkpoint saved"):
        train(tmp_path, tiny_config(tmp_path), builtin_root, "-b", "4", "--epochs", "2")
    assert not list((tmp_path / "snap").glob("checkpoint_*.pth"))


def test_stale_temporaries_removed_and_resume_auto(tmp_path: Path, builtin_root: Path) -> None:  # noqa: F811
    config = tiny_config(tmp_path)
    snap = tmp_path / "snap"
    snap.mkdir()
    stale = snap / ".checkpoint_e1.pth.0a1b2c3d.tmp"
    stale.write_bytes(b"half a checkpoint")
    other = snap / ".notes.txt.0a1b2c3d.tmp"
    other.write_bytes(b"someone else's")
    train(tmp_path, config, builtin_root, "-b", "2", "--epochs", "3")
    assert not stale.exists() and other.exists()
    (snap / "checkpoint_latest.pth").unlink()  # the copy may be missing after a kill; the epoch files are enough
    (snap / "checkpoint_e3.pth").write_bytes(b"cut short by a kill")
    from siammask.training.checkpoint import find_resume_checkpoint

    assert find_resume_checkpoint(str(snap)) == str(snap / "checkpoint_e2.pth")
    losses = train(tmp_path, config, builtin_root, "-b", "2", "--epochs", "3", "--resume", "auto")
    assert losses, "resumed at epoch 3 and trained it"


def test_resume_with_another_seed_is_refused(tmp_path: Path, builtin_root: Path) -> None:  # noqa: F811
    config = tiny_config(tmp_path)
    train(tmp_path, config, builtin_root, "-b", "2", "--epochs", "2", "--num-steps", "1", "--seed", "3")
    ckpt = next((tmp_path / "snap").glob("checkpoint_step*.pth"))
    with pytest.raises(TrainingError, match="--seed 3, not 4"):
        train(tmp_path, config, builtin_root, "-b", "2", "--epochs", "2", "--resume", str(ckpt), "--seed", "4")
    train(tmp_path, config, builtin_root, "-b", "2", "--epochs", "2", "--resume", str(ckpt), "--seed", "4",
          "--override-seed")
    other = tiny_config(tmp_path, "other.json", num=6)
    with pytest.raises(TrainingError, match="train_datasets.num"):
        train(tmp_path, other, builtin_root, "-b", "2", "--epochs", "2", "--resume", str(ckpt), "--seed", "3")


@pytest.mark.slow
def test_worker_errors_read_as_with_zero_workers(tmp_path: Path, builtin_root: Path) -> None:  # noqa: F811
    import shutil

    data = tmp_path / "data"
    shutil.copytree(builtin_root, data)
    crops = sorted((data / "ytb_vos" / "crop511").rglob("*.x.jpg"))
    for crop in crops:
        crop.write_bytes(crop.read_bytes()[:200])  # every search crop truncated
    lines = {}
    for workers in ("0", "2"):
        proc = _cli("--config", str(tiny_config(tmp_path)), "--data-root", str(data), "-j", workers, "--log", "",
                    "-s", str(tmp_path / f"snap{workers}"), "-b", "2")
        assert proc.returncode == 2, proc.stderr[-2000:]
        lines[workers] = proc.stderr.strip().splitlines()
        assert len(lines[workers]) == 1 and lines[workers][0].startswith("error: ")
        assert ".jpg" in lines[workers][0]
    assert lines["0"][0].split(":")[0] == lines["2"][0].split(":")[0] == "error"


@pytest.mark.parametrize("flags, message", [
    (["-b", "0"], "-b/--batch must be >= 1, got 0"),
    (["-j", "-1"], "-j/--workers must be >= 0, got -1"),
    (["--lr", "nan"], "--lr must be a positive number, got nan"),
    (["--clip", "-3"], "--clip must be a positive number, got -3.0"),
    (["--num-steps", "0"], "--num-steps must be -1 (all) or >= 1, got 0"),
    (["-p", "0"], "-p/--print-freq must be >= 1, got 0"),
    (["--momentum", "1.5"], "--momentum must be in [0, 1), got 1.5"),
    (["--epochs", "3", "--start-epoch", "3"], "--start-epoch 3 leaves nothing to train with --epochs 3"),
    (["--loss-scale", "0"], "--loss-scale must be a positive number, got 0.0"),
])
def test_bad_numeric_flags_are_one_line_before_any_output(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                          flags: list[str], message: str) -> None:
    from siammask.tools.train_siammask import get_args_parser, main

    snap = tmp_path / "snap"
    args = get_args_parser().parse_args(["--config", str(tmp_path / "never_read.json"), "-s", str(snap), "--log", "",
                                         "--log-dir", "", *flags])
    assert main(args) == 2
    assert capsys.readouterr().err.strip() == f"error: {message}"
    assert not snap.exists()
