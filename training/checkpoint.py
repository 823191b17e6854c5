"""Training checkpoints: plain data (weights, optimizer, scaler, lr schedule, epoch, step, seed, config) written
atomically, loaded with ``torch.load(weights_only=True)``; resume picks up model, optimizer, schedule and data order.
"""
from __future__ import annotations

import os
import re
import shutil
from typing import Any, Optional

import torch
from torch import nn

from ..models.weights import CheckpointError, load_checkpoint
from ..utils.config import Config
from ..utils.io import atomic_path, atomic_torch_save
from ..utils.runtime import unwrap
from .lr_scheduler import EpochLRScheduler

CHECKPOINT_FORMAT = 1


def checkpoint_state(model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: EpochLRScheduler,
                     scaler: torch.amp.GradScaler, cfg: Config, epoch: int, iteration: int, step: int,
                     seed: int, global_batch: int, invalid_steps: Optional[dict[str, int]] = None) -> dict[str, Any]:
    """Everything a resume needs, as plain data (tensors, numbers, strings, lists, dicts).

    Args:
        epoch: completed epochs (``checkpoint_e{epoch}.pth``, as the original).
        iteration: iterations already done in epoch ``epoch`` (0 at an epoch boundary).
        step: optimizer iterations of the whole run so far.
        global_batch: batch x processes (a resume in the middle of an epoch needs the same).
        invalid_steps: the run's :class:`InvalidSteps` state (consecutive skips carry over a resume).
    """
    net = unwrap(model)
    return {
        "format": CHECKPOINT_FORMAT,
        "arch": net.arch,
        "epoch": epoch,
        "iteration": iteration,
        "step": step,
        "seed": seed,
        "global_batch": global_batch,
        "state_dict": net.state_dict(),
        "optimizer": optimizer.state_dict(),
        "lr_scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(),
        "config": cfg.to_dict(),
        "anchors": cfg.to_dict()["anchors"],
        "invalid_steps": dict(invalid_steps or {"consecutive": 0, "total": 0}),
    }


def save_checkpoint(state: dict[str, Any], save_dir: str, name: str) -> str:
    """Write `state` to ``save_dir/name`` atomically and copy it to ``checkpoint_latest.pth``; returns the path."""
    path = os.path.join(save_dir, name)
    atomic_torch_save(state, path)
    with atomic_path(os.path.join(save_dir, "checkpoint_latest.pth")) as tmp:
        shutil.copyfile(path, tmp)
    return path


def load_resume_checkpoint(path: str, arch: str) -> dict[str, Any]:
    """Read a training checkpoint for `--resume` (``weights_only=True``).

    Raises:
        CheckpointError: missing or unreadable file, not a training checkpoint of this project, or a checkpoint of
            another architecture (one line).
    """
    state = load_checkpoint(path)
    keys = ("state_dict", "optimizer", "lr_scheduler", "scaler", "epoch", "iteration", "step", "arch", "global_batch")
    if not isinstance(state, dict) or any(k not in state for k in keys):
        raise CheckpointError(f"{path}: not a training checkpoint of this project (weights only? pass it with "
                              f"--pretrained)")
    if state["arch"] != arch:
        raise CheckpointError(f"{path}: checkpoint of {state['arch']!r}, but the config builds {arch!r}")
    return state


_CHECKPOINT_NAME = re.compile(r"^checkpoint_(e\d+|step\d+|latest)\.pth$")


def find_resume_checkpoint(folder: str) -> str:
    """The newest complete training checkpoint in `folder` (``--resume auto`` / a directory).

    Newest = most optimizer steps inside the file (not the file time); a file that does not load is skipped, so a
    checkpoint cut short by a kill never wins. Ties prefer the epoch file over ``checkpoint_latest.pth``.

    Raises:
        CheckpointError: `folder` holds no loadable training checkpoint.
    """
    best: Optional[tuple[int, int, str]] = None
    names = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    for name in names:
        if not _CHECKPOINT_NAME.match(name):
            continue
        path = os.path.join(folder, name)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except Exception:  # noqa: BLE001 - any unreadable file is "not complete" here
            continue
        if not isinstance(state, dict) or "step" not in state:
            continue
        key = (int(state["step"]), 0 if name == "checkpoint_latest.pth" else 1, path)
        best = key if best is None or key > best else best
    if best is None:
        raise CheckpointError(f"{folder}: no complete training checkpoint (checkpoint_e<N>.pth, "
                              f"checkpoint_step<N>.pth, checkpoint_latest.pth) to resume from")
    return best[2]
