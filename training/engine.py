"""One epoch of training: forward, named losses, backward, clipping and the SGD step, as torchvision's
``train_one_epoch``; the invalid-loss policy of :mod:`.invalid_loss` decides which steps are taken.

Ports the iteration body of `train()` in the original's tools/train_siammask.py. The loop takes what it uses
(model, optimizer, scaler, loader, runtime, progress, loss weights, clip settings, the invalid-step counter) and no
command-line namespace.
"""
from __future__ import annotations

import math
import time
from typing import Iterable, Mapping, Optional

import torch
from torch import nn

from ..models import compute_losses
from ..utils.config import ClipConfig
from ..utils.runtime import Runtime
from .errors import TrainingError
from .invalid_loss import MAX_VALID_LOSS, InvalidSteps
from .optim import clip_gradients_
from .progress import LOSS_LOGS, EpochPlan, EpochStats, ProgressLogger

#: The batch's network inputs (converted to channels_last when the runtime says so).
IMAGE_KEYS = ("template", "search")


def reduce_mean(values: torch.Tensor, runtime: Runtime) -> torch.Tensor:
    """Average a 1-D tensor over the processes (identity in one process)."""
    if runtime.distributed:
        values = values.clone()
        torch.distributed.all_reduce(values)
        values /= runtime.world_size
    return values


def first_non_finite(model: nn.Module) -> Optional[str]:
    """The name of the first parameter or buffer holding NaN or inf, else None."""
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            return name
    return None


def train_one_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
                    loader: Iterable[dict[str, torch.Tensor]], runtime: Runtime, progress: ProgressLogger,
                    plan: EpochPlan, loss_weights: Mapping[str, float] | object, clip: ClipConfig,
                    default_clip: float, invalid: InvalidSteps) -> EpochStats:
    """The iterations of `plan`: forward, named losses, backward, clip, SGD step (skipped, loudly, on a bad loss).

    Each step reads its figures back once (one host sync: the loss terms, the invalid-loss flag and the gradient
    norm in one tensor); a non-finite or too large loss is always seen, logged and counted.

    Args:
        loss_weights: the config's ``loss.weight`` (cls, loc, mask) for :func:`compute_losses`.
        clip, default_clip: the config's ``clip`` block and ``--clip`` for limits it leaves unset.
        invalid: the run's invalid-step counter (updated in place; consecutive skips carry over epochs).

    Raises:
        TrainingError: :data:`.invalid_loss.MAX_CONSECUTIVE_SKIPS` invalid steps in a row.
    """
    model.train()
    keys = list(LOSS_LOGS)
    skipped = iterations = 0
    t0 = time.perf_counter()
    for batch in progress.log_every(loader, plan):
        batch = {k: v.to(runtime.device, non_blocking=True) for k, v in batch.items() if torch.is_tensor(v)}
        if runtime.channels_last:
            for key in IMAGE_KEYS:
                if key in batch and batch[key].dim() == 4:
                    batch[key] = batch[key].contiguous(memory_format=torch.channels_last)
        with runtime.autocast():
            out = model(batch)
        losses = compute_losses(out, batch, loss_weights)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(losses["total"]).backward()
        scaler.unscale_(optimizer)
        norm = clip_gradients_(model, clip, default_clip)
        total = losses["total"].detach().float()
        bad = (~(torch.isfinite(total) & (total <= MAX_VALID_LOSS))).float()  # is_valid_loss, on the device
        values = torch.stack([losses[k].detach().float().reshape(()) for k in keys] + [bad.reshape(())])
        values = reduce_mean(values, runtime)
        # the step's one host sync: loss terms, the invalid flag (averaged over processes) and this rank's norm
        *values, grad_norm = torch.cat([values, norm.detach().float().reshape(1).to(values.device)]).tolist()
        valid = values[-1] == 0  # any process saw an invalid loss: all skip, so the replicas stay equal
        invalid.record(valid)
        if valid:
            scaler.step(optimizer)
        else:
            skipped += 1
            terms = ", ".join(f"{k}={v:.6g}" for k, v in zip(keys, values[:-1], strict=True))
            if runtime.is_main:
                progress.logger.warning(f"step {progress.step + 1} (epoch {plan.epoch + 1}, iteration "
                                        f"{plan.start + iterations + 1}): loss not finite or > 1e4 ({terms}); "
                                        f"optimizer step skipped ({skipped} this epoch, {invalid.consecutive} in "
                                        f"a row)")
            if invalid.diverged:
                raise TrainingError(f"{invalid.consecutive} consecutive steps with an invalid loss ({terms}); "
                                    f"stopping")
        scaler.update()
        iterations += 1
        named = {LOSS_LOGS[k].meter: v for k, v in zip(keys, values[:-1], strict=True)}
        progress.meters.update(grad_norm=grad_norm if math.isfinite(grad_norm) else float("nan"), **named)
    return progress.epoch_stats(iterations, skipped, time.perf_counter() - t0)
