"""The optimizer side of training: SGD over the model's param groups, the epoch/stage boundary, gradient clipping.

Ports `build_opt_lr` and the epoch-boundary part of `train()` of the original's tools/train_siammask.py: the
ResNet layers unfreeze at half the epochs (the model's ``set_epoch``), the optimizer is rebuilt when the stage
changes (momentum lost, as the original), and ``lr_scheduler.step(epoch)`` runs every epoch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from ..utils.config import ClipConfig, Config
from ..utils.runtime import unwrap
from .errors import TrainingError
from .lr_scheduler import EpochLRScheduler, build_lr_scheduler


@dataclass
class OptimizerSettings:
    """SGD hyper-parameters of the command line (the param groups bring their own lrs)."""

    lr: float = 0.001  # SGD default lr; every group sets its own
    momentum: float = 0.9
    weight_decay: float = 1e-4


def build_optimizer(model: nn.Module, cfg: Config, settings: OptimizerSettings,
                    epochs: int) -> tuple[torch.optim.SGD, EpochLRScheduler]:
    """SGD over the model's current param groups (start lr x multipliers) and the config's schedule.

    Weight decay applies to every parameter, BatchNorm and biases included, as in the original.
    """
    groups = unwrap(model).param_groups(cfg.lr.start_lr, cfg.lr)
    if not groups:
        raise TrainingError("the model has no trainable parameters at this stage")
    # foreach: one multi-tensor kernel per group instead of a loop over the parameters (the same arithmetic)
    optimizer = torch.optim.SGD(groups, settings.lr, momentum=settings.momentum, weight_decay=settings.weight_decay,
                                foreach=True)
    return optimizer, build_lr_scheduler(optimizer, cfg.lr, epochs)


def start_epoch(model: nn.Module, epoch: int, epochs: int, cfg: Config, settings: OptimizerSettings,
                optimizer: Optional[torch.optim.SGD] = None, scheduler: Optional[EpochLRScheduler] = None,
                keep_optimizer: bool = False) -> tuple[torch.optim.SGD, EpochLRScheduler, bool]:
    """The original's epoch boundary: apply the stage of `epoch`, rebuild the optimizer if it changed, step the lr.

    Args:
        model: the (possibly DDP-wrapped) model; ``set_epoch`` sets its trainable parameters.
        optimizer, scheduler: the current ones (None at the start of a run).
        keep_optimizer: keep the given optimizer even if the stage asks for a rebuild (mid-epoch resume).

    Returns:
        (optimizer, scheduler, rebuilt). A rebuild loses the momentum buffers, as in the original.
    """
    changed = unwrap(model).set_epoch(epoch, epochs)
    rebuilt = optimizer is None or scheduler is None or (changed and not keep_optimizer)
    if rebuilt:
        optimizer, scheduler = build_optimizer(model, cfg, settings, epochs)
    assert optimizer is not None and scheduler is not None
    scheduler.step(epoch)
    return optimizer, scheduler, rebuilt


def clip_gradients(model: nn.Module, clip: ClipConfig, default: float) -> float:
    """Clip gradient norms; returns the total norm before clipping (over the clipped parameters).

    Without split, all parameters are clipped together to ``clip.feature`` (or `default`, ``--clip``). With split
    (``clip.split``, or feature and rpn limits that differ, as the original's loader forced), ``features``,
    ``rpn_model``, ``mask_model`` and ``refine_model`` (if present) are clipped separately to ``feature``, ``rpn``,
    ``mask`` and ``mask``; a limit left unset is `default`.
    """
    return float(clip_gradients_(model, clip, default))


def clip_gradients_(model: nn.Module, clip: ClipConfig, default: float) -> torch.Tensor:
    """:func:`clip_gradients` without the host sync: the total norm as a 0-d tensor on the gradients' device."""
    model = unwrap(model)
    feature = default if clip.feature is None else clip.feature
    rpn = default if clip.rpn is None else clip.rpn
    mask = default if clip.mask is None else clip.mask
    if not (clip.split or feature != rpn):
        return torch.nn.utils.clip_grad_norm_(model.parameters(), feature)
    parts = [("features", feature), ("rpn_model", rpn), ("mask_model", mask), ("refine_model", mask)]
    norms = [torch.nn.utils.clip_grad_norm_(getattr(model, name).parameters(), limit)
             for name, limit in parts if hasattr(model, name)]
    return torch.linalg.vector_norm(torch.stack([n.float() for n in norms]))
