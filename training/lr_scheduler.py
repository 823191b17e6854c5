"""Per-epoch learning-rate schedules of the original SiamMask (`utils/lr_helper.py`).

The original subclassed torch's private ``_LRScheduler`` and called ``step(epoch)``; both are deprecated. Here the
schedule is a plain table of per-epoch values (``lr_spaces``) computed once, and :class:`EpochLRScheduler` writes
``lr_spaces[epoch] * group['initial_lr'] / start_lr`` into every optimizer group, exactly the original's rule: a
group built at ``0.1 * start_lr`` (the ResNet layers) stays at 0.1x of the schedule.

Schedule types (name -> builder in :data:`SCHEDULES`), with the original's defaults:

* ``log``: ``np.logspace(log10(start_lr), log10(end_lr), epochs)``, end_lr 5e-4;
* ``step``: ``start_lr * mult ** (epoch // step)``, mult 0.1; with ``end_lr`` the multiplier is derived so that the
  last step reaches it (the warm-up form);
* ``multi-step``: multiply by ``mult`` (0.5) at each epoch in ``steps`` (float32 values, as the original);
* ``linear``: ``np.linspace(start_lr, end_lr, epochs)``, end_lr 0.005;
* ``cos``: ``end + (start - end) * (1 + cos(pi * e / epochs)) / 2`` in float32, end_lr 0.005;
* a ``warmup`` block: its own schedule over ``warmup.epoch`` epochs, then the main schedule over the remaining
  epochs; the scheduler's ``start_lr`` is then the main schedule's first value (the original's WarmUPScheduler).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch

from ..utils.config import ConfigError, LrConfig, WarmupConfig


@dataclass(frozen=True)
class LrSpaces:
    """A schedule: the lr of every epoch and the reference lr that group lrs are relative to."""

    values: np.ndarray  # (epochs,) learning rate of each epoch
    start_lr: float  # a group built with lr == start_lr follows `values` exactly


def _log(start_lr: float, end_lr: Optional[float], epochs: int, **_: Any) -> LrSpaces:
    end = 5e-4 if end_lr is None else end_lr
    return LrSpaces(np.logspace(math.log10(start_lr), math.log10(end), epochs), start_lr)


def _step(start_lr: float, end_lr: Optional[float], epochs: int, step: int = 10, mult: Optional[float] = None,
          **_: Any) -> LrSpaces:
    mult = 0.1 if mult is None else mult
    if end_lr is not None:
        if epochs // step == 0:
            raise ConfigError(f"step schedule: {epochs} epoch(s) hold no full step of {step} epochs; cannot "
                              f"reach end_lr {end_lr}")
        mult = math.pow(end_lr / start_lr, 1.0 / (epochs // step))
    return LrSpaces(start_lr * (mult ** (np.arange(epochs) // step)), start_lr)


def _multi_step(start_lr: float, end_lr: Optional[float], epochs: int, steps: Sequence[int] = (10, 20, 30, 40),
                mult: Optional[float] = None, **_: Any) -> LrSpaces:
    mult = 0.5 if mult is None else mult
    if end_lr is not None:
        mult = math.pow(end_lr / start_lr, 1.0 / len(steps))
    values = [start_lr] * epochs
    for i in range(1, epochs):
        values[i] = values[i - 1] * (mult if i in steps else 1.0)
    return LrSpaces(np.array(values, dtype=np.float32), start_lr)


def _linear(start_lr: float, end_lr: Optional[float], epochs: int, **_: Any) -> LrSpaces:
    end = 0.005 if end_lr is None else end_lr
    return LrSpaces(np.linspace(start_lr, end, epochs), start_lr)


def _cos(start_lr: float, end_lr: Optional[float], epochs: int, **_: Any) -> LrSpaces:
    end = 0.005 if end_lr is None else end_lr
    index = np.arange(epochs).astype(np.float32)
    values = end + (start_lr - end) * (1.0 + np.cos(index * np.pi / epochs)) * 0.5
    return LrSpaces(values.astype(np.float32), start_lr)


SCHEDULES: dict[str, Callable[..., LrSpaces]] = {
    "log": _log,
    "step": _step,
    "multi-step": _multi_step,
    "linear": _linear,
    "cos": _cos,
}


def _single(cfg: LrConfig | WarmupConfig, epochs: int, key: str) -> LrSpaces:
    if cfg.type not in SCHEDULES:
        raise ConfigError(f"key '{key}': unknown lr schedule type {cfg.type!r}; valid types: {', '.join(SCHEDULES)}")
    kwargs: dict[str, Any] = {"start_lr": cfg.start_lr, "end_lr": cfg.end_lr, "epochs": epochs,
                              "step": cfg.step, "mult": cfg.mult}
    if isinstance(cfg, LrConfig):
        kwargs["steps"] = cfg.steps
    return SCHEDULES[cfg.type](**kwargs)


def lr_spaces(cfg: LrConfig, epochs: int) -> LrSpaces:
    """The per-epoch schedule of an lr config over `epochs` epochs (warm-up concatenated when configured).

    Raises:
        ConfigError: an unknown schedule type (naming the key), or a schedule that does not fit `epochs`.
    """
    if epochs < 1:
        raise ConfigError(f"the lr schedule needs at least one epoch, got --epochs {epochs}")
    if cfg.warmup is None:
        return _single(cfg, epochs, "lr.type")
    warm_epochs = cfg.warmup.epoch
    if not 0 <= warm_epochs < epochs:
        raise ConfigError(f"key 'lr.warmup.epoch': warm-up of {warm_epochs} epochs does not fit in --epochs {epochs}")
    warm = _single(cfg.warmup, warm_epochs, "lr.warmup.type") if warm_epochs else LrSpaces(np.zeros(0), cfg.start_lr)
    main = _single(cfg, epochs - warm_epochs, "lr.type")
    return LrSpaces(np.concatenate([warm.values, main.values]), float(main.values[0]))


class EpochLRScheduler:
    """Sets every param group's lr to ``lr_spaces[epoch] * initial_lr / start_lr`` at each ``step(epoch)``.

    ``initial_lr`` is the group's lr when the scheduler is made (the param groups' own multipliers). Construction
    applies epoch 0, as torch schedulers do; the training loop then calls ``step(epoch)`` at every epoch start.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, spaces: LrSpaces) -> None:
        self.optimizer = optimizer
        self.lr_spaces = [float(v) for v in spaces.values]
        self.start_lr = float(spaces.start_lr)
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.last_epoch = -1
        self.step(0)

    def step(self, epoch: Optional[int] = None) -> None:
        """Apply the lr of `epoch` (default: the next epoch)."""
        epoch = self.last_epoch + 1 if epoch is None else epoch
        if not 0 <= epoch < len(self.lr_spaces):
            raise ValueError(f"epoch {epoch} is outside the lr schedule of {len(self.lr_spaces)} epochs")
        self.last_epoch = epoch
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_spaces[epoch] * group["initial_lr"] / self.start_lr

    def get_cur_lr(self) -> float:
        """The schedule's value at the current epoch (what the original printed as `lr:`)."""
        return self.lr_spaces[max(self.last_epoch, 0)]

    def get_last_lr(self) -> list[float]:
        """The lr of every param group, in optimizer order."""
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        """Plain data: last epoch, start lr and the whole table."""
        return {"last_epoch": self.last_epoch, "start_lr": self.start_lr, "lr_spaces": list(self.lr_spaces)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the table and epoch, and re-apply that epoch's lr."""
        self.lr_spaces = [float(v) for v in state["lr_spaces"]]
        self.start_lr = float(state["start_lr"])
        if state["last_epoch"] >= 0:
            self.step(int(state["last_epoch"]))

    def __repr__(self) -> str:
        values = ", ".join(f"{v:.6g}" for v in self.lr_spaces)
        return f"EpochLRScheduler(start_lr={self.start_lr:.6g}) lr spaces: [{values}]"


def build_lr_scheduler(optimizer: torch.optim.Optimizer, cfg: LrConfig, epochs: int) -> EpochLRScheduler:
    """The config's schedule over `epochs` epochs, bound to `optimizer` (whose group lrs are the multipliers)."""
    return EpochLRScheduler(optimizer, lr_spaces(cfg, epochs))
