"""Training helpers shared by `tools/train_siammask.py` and `tools/train_siammask_refine.py`.

What the original's training scripts did inline, in small pieces the scripts compose (torchvision-reference style):

* :func:`build_optimizer`: SGD over the model's param groups + the config's per-epoch lr schedule (`build_opt_lr`);
* :func:`start_epoch`: the epoch-boundary logic of `train()` (unfreeze, optimizer rebuild, `lr_scheduler.step`);
* :func:`clip_gradients`: whole-model or split gradient-norm clipping (the split branch works here; the original
  read a never-defaulted `clip.mask`);
* :func:`build_train_loader`: a DistributedSampler (also for one process, so 1 and N processes take the same order)
  whose `set_epoch` is called every epoch, per-rank batch, dropped last batch;
* :class:`ProgressLogger`: the stable log lines (`Epoch: [e][i/n] lr: ...` with `name: val (avg)` meters and
  `Progress: i / n [p%], Speed: s s/iter, ETA d:hh:mm (D:H:M)`), tensorboard scalars, the tqdm bar, epoch FPS;
* checkpoints: plain data written atomically, loadable with `torch.load(weights_only=True)`
  (:func:`checkpoint_state`, :func:`save_checkpoint`, :func:`load_resume_checkpoint`).
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Optional

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from .average_meter import AverageMeter
from .checkpoint import CheckpointError, load_checkpoint
from .config import ClipConfig, Config
from .errors import SiamMaskError
from .io import atomic_path, atomic_torch_save
from .lr_scheduler import EpochLRScheduler, build_lr_scheduler
from .runtime import Runtime, unwrap, worker_init_fn

#: Meters of the per-iteration line, in the original's order.
METER_NAMES = ("batch_time", "data_time", "rpn_cls_loss", "rpn_loc_loss", "rpn_mask_loss", "siammask_loss",
               "mask_iou_mean", "mask_iou_at_5", "mask_iou_at_7")
#: compute_losses key -> meter name.
LOSS_METERS = {"cls": "rpn_cls_loss", "loc": "rpn_loc_loss", "mask": "rpn_mask_loss", "total": "siammask_loss",
               "iou_mean": "mask_iou_mean", "iou_at_5": "mask_iou_at_5", "iou_at_7": "mask_iou_at_7"}
#: The original skipped the optimizer step when the loss was not finite or above this value.
MAX_VALID_LOSS = 1e4
#: Consecutive skipped steps after which training stops with an error (the run has diverged).
MAX_CONSECUTIVE_SKIPS = 20
CHECKPOINT_FORMAT = 1


class TrainingError(SiamMaskError):
    """A training run cannot start or go on (one-line message for the command line)."""


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
    optimizer = torch.optim.SGD(groups, settings.lr, momentum=settings.momentum, weight_decay=settings.weight_decay)
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
    model = unwrap(model)
    feature = default if clip.feature is None else clip.feature
    rpn = default if clip.rpn is None else clip.rpn
    mask = default if clip.mask is None else clip.mask
    if not (clip.split or feature != rpn):
        return float(torch.nn.utils.clip_grad_norm_(model.parameters(), feature))
    parts = [("features", feature), ("rpn_model", rpn), ("mask_model", mask), ("refine_model", mask)]
    norms = [torch.nn.utils.clip_grad_norm_(getattr(model, name).parameters(), limit)
             for name, limit in parts if hasattr(model, name)]
    return float(torch.linalg.vector_norm(torch.stack([n.float() for n in norms])))


class _SkipSampler(Sampler[int]):
    """Yields a base sampler's indices after dropping the first `skip` (resuming in the middle of an epoch)."""

    def __init__(self, base: DistributedSampler, skip: int) -> None:
        self.base, self.skip = base, skip

    def __iter__(self) -> Iterator[int]:
        for i, index in enumerate(self.base):
            if i >= self.skip:
                yield index

    def __len__(self) -> int:
        return max(len(self.base) - self.skip, 0)


def steps_per_epoch(dataset_len: int, batch: int, world_size: int) -> int:
    """Iterations per epoch and rank: ``len // (batch * world)`` (the Ascend port's ``num_per_epoch``)."""
    return (dataset_len // world_size) // batch


def build_train_loader(dataset: Dataset, batch: int, workers: int, runtime: Runtime, epoch: int, seed: int,
                       skip_batches: int = 0) -> DataLoader:
    """The loader of one epoch: rank `r` of `w` takes samples r, r+w, r+2w, ... of the epoch, in batches of `batch`.

    The dataset is deterministic per (seed, epoch, index) and its ``set_epoch`` is called here, so the sample order is
    already random and the sampler does not shuffle again; its ``set_epoch`` is still called every epoch. With
    `skip_batches` the first batches of this rank are left out (resume in the middle of an epoch).
    """
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(epoch)
    sampler: Sampler[int] = DistributedSampler(dataset, num_replicas=runtime.world_size, rank=runtime.rank,
                                               shuffle=False, seed=seed, drop_last=True)
    sampler.set_epoch(epoch)
    if skip_batches:
        sampler = _SkipSampler(sampler, skip_batches * batch)
    generator = torch.Generator()
    generator.manual_seed(seed * 1000 + epoch * 100 + runtime.rank)
    return DataLoader(dataset, batch_size=batch, sampler=sampler, num_workers=workers, drop_last=True,
                      pin_memory=runtime.device.type == "cuda", worker_init_fn=worker_init_fn if workers else None,
                      generator=generator)


def reduce_mean(values: torch.Tensor, runtime: Runtime) -> torch.Tensor:
    """Average a 1-D tensor over the processes (identity in one process)."""
    if runtime.distributed:
        values = values.clone()
        torch.distributed.all_reduce(values)
        values /= runtime.world_size
    return values


def format_eta(seconds: float) -> str:
    """``d:hh:mm`` as the original's ``print_speed``."""
    minutes = int(max(seconds, 0.0) // 60)
    return f"{minutes // 1440}:{minutes // 60 % 24:02d}:{minutes % 60:02d}"


@dataclass(frozen=True)
class EpochPlan:
    """What one call of the epoch loop runs."""

    epoch: int  # 0-based (printed 1-based)
    iterations: int  # iterations per epoch (printed as `[i/n]`)
    lr: float  # the schedule's lr of this epoch (printed)
    start: int = 0  # iterations of this epoch already done (resume)
    max_iters: Optional[int] = None  # stop after this many iterations (--num-steps)

    @property
    def planned(self) -> int:
        """Iterations this call runs."""
        rest = self.iterations - self.start
        return rest if self.max_iters is None else min(rest, self.max_iters)


@dataclass
class EpochStats:
    """What one epoch reports back: mean of each meter, iterations run, skipped steps, throughput."""

    means: dict[str, float] = field(default_factory=dict)
    iterations: int = 0
    skipped: int = 0
    fps: float = 0.0
    seconds: float = 0.0


class ProgressLogger:
    """Times the loader, prints the stable per-iteration lines, writes tensorboard scalars, shows a tqdm bar.

    Args:
        logger: the 'global' logger (only rank 0 logs INFO).
        runtime: for the global batch (per-rank batch x world size) and the main-process check.
        print_freq: print every N iterations.
        total: iterations planned for the whole run (the `Progress: i / n` denominator).
        done: iterations already done before this run (resume).
        tb_writer: tensorboardX SummaryWriter on rank 0, else None.
    """

    def __init__(self, logger: logging.Logger, runtime: Runtime, batch: int, print_freq: int, total: int,
                 done: int = 0, tb_writer: Any = None) -> None:
        self.logger, self.runtime = logger, runtime
        self.global_batch = batch * runtime.world_size
        self.print_freq, self.total, self.step = max(print_freq, 1), total, done
        self.tb = tb_writer
        self.meters = AverageMeter()

    def log_every(self, loader: Iterable, plan: EpochPlan) -> Iterator[Any]:
        """Yield the batches of `loader` (``plan.planned`` of them); time them and log after each loop body.

        Iterations of the first 10 % of the planned ones (at most 100, at least 1) are kept out of the speed averages,
        as the Ascend port kept its first 100 out.
        """
        self.meters.reset()
        planned = plan.planned
        warmup = min(100, max(1, planned // 10))
        show_bar = self.runtime.is_main and sys.stdout.isatty()
        with contextlib.ExitStack() as stack:
            bar = None
            if show_bar:  # console log lines go through tqdm.write so the bar stays below them
                stack.enter_context(logging_redirect_tqdm(loggers=[self.logger]))
                bar = stack.enter_context(tqdm(total=planned, desc=f"epoch {plan.epoch + 1}", leave=False,
                                               dynamic_ncols=True))
            end = time.perf_counter()
            for i, batch in enumerate(loader):
                if i >= planned:
                    break
                data_time = time.perf_counter() - end
                yield batch
                self.step += 1
                self.meters.update(accumulate=i >= warmup or planned <= 1,
                                   batch_time=time.perf_counter() - end, data_time=data_time)
                if bar is not None:
                    bar.update(1)
                if self.tb is not None:
                    self._tensorboard()
                if (plan.start + i + 1) % self.print_freq == 0 or i + 1 == planned:  # and the run's last
                    self._print(plan, plan.start + i + 1)
                end = time.perf_counter()

    def _print(self, plan: EpochPlan, i: int) -> None:
        speed = self.meters.avg("batch_time")
        pct = 100.0 * self.step / max(self.total, 1)
        self.logger.info(f"Epoch: [{plan.epoch + 1}][{i}/{plan.iterations}] lr: {plan.lr:.6f}\t"
                         f"{self.meters.format(METER_NAMES)}")
        self.logger.info(f"Progress: {self.step} / {self.total} [{pct:.0f}%], Speed: {speed:.3f} s/iter, "
                         f"ETA {format_eta((self.total - self.step) * speed)} (D:H:M)")

    def _tensorboard(self) -> None:
        tags = {"loss/cls": "rpn_cls_loss", "loss/loc": "rpn_loc_loss", "loss/mask": "rpn_mask_loss",
                "loss/total": "siammask_loss", "mask/mIoU": "mask_iou_mean", "mask/AP@.5": "mask_iou_at_5",
                "mask/AP@.7": "mask_iou_at_7", "grad_norm": "grad_norm"}
        for tag, name in tags.items():
            if name in self.meters:
                self.tb.add_scalar(tag, self.meters.val[name], self.step)
        self.tb.add_scalar("speed/s_per_iter", self.meters.val["batch_time"], self.step)

    def epoch_stats(self, iterations: int, skipped: int, seconds: float) -> EpochStats:
        """Means of this epoch's meters and the throughput (global images / s over the timed iterations)."""
        means = {name: self.meters.avg(name) for name in self.meters.val}
        speed = means.get("batch_time", 0.0)
        fps = self.global_batch / speed if speed > 0 else 0.0
        return EpochStats(means, iterations, skipped, fps, seconds)

    def log_epoch(self, epoch: int, stats: EpochStats, optimizer: torch.optim.Optimizer) -> None:
        """The epoch-end lines (`FPS:` and the mean loss) and lr/FPS scalars."""
        loss = stats.means.get("siammask_loss", float("nan"))
        self.logger.info(f"Epoch: [{epoch + 1}] done\titerations: {stats.iterations}\tsiammask_loss (mean): "
                         f"{loss:.6f}\tskipped steps: {stats.skipped}\ttime: {stats.seconds:.1f}s\t"
                         f"FPS: {stats.fps:.2f}")
        if self.tb is not None:
            for i, group in enumerate(optimizer.param_groups):
                self.tb.add_scalar(f"lr/{group.get('name', f'group{i + 1}')}", group["lr"], self.step)
            self.tb.add_scalar("speed/fps", stats.fps, self.step)
            self.tb.add_scalar("loss/epoch_mean", loss, self.step)
            self.tb.flush()


# ---------------------------------------------------------------------------------------------------- checkpoints
def checkpoint_state(model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: EpochLRScheduler,
                     scaler: torch.amp.GradScaler, cfg: Config, epoch: int, iteration: int, step: int,
                     seed: int, global_batch: int) -> dict[str, Any]:
    """Everything a resume needs, as plain data (tensors, numbers, strings, lists, dicts).

    Args:
        epoch: completed epochs (``checkpoint_e{epoch}.pth``, as the original).
        iteration: iterations already done in epoch ``epoch`` (0 at an epoch boundary).
        step: optimizer iterations of the whole run so far.
        global_batch: batch x processes (a resume in the middle of an epoch needs the same).
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


def is_valid_loss(value: float) -> bool:
    """The original's rule for taking an optimizer step: finite and at most 1e4."""
    return math.isfinite(value) and value <= MAX_VALID_LOSS
