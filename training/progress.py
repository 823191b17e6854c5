"""Progress of a training run: the stable log lines, tensorboard scalars, the tqdm bar and the epoch throughput.

One table, :data:`LOSS_LOGS`, maps each loss term of ``compute_losses`` to its meter (log) name and tensorboard tag.
The per-iteration lines are the original's (``Epoch: [e][i/n] lr: ...`` with ``name: val (avg)`` meters and
``Progress: i / n [p%], Speed: s s/iter, ETA d:hh:mm (D:H:M)``).
"""
from __future__ import annotations

import contextlib
import logging
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Optional

import torch
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from ..utils.runtime import Runtime
from .average_meter import AverageMeter


@dataclass(frozen=True)
class LossLog:
    """Where one loss term of ``compute_losses`` goes: its meter name in the log lines and its tensorboard tag."""

    meter: str
    tag: str


#: compute_losses key -> meter name and tensorboard tag, in the original's order.
LOSS_LOGS = {
    "cls": LossLog("rpn_cls_loss", "loss/cls"),
    "loc": LossLog("rpn_loc_loss", "loss/loc"),
    "mask": LossLog("rpn_mask_loss", "loss/mask"),
    "total": LossLog("siammask_loss", "loss/total"),
    "iou_mean": LossLog("mask_iou_mean", "mask/mIoU"),
    "iou_at_5": LossLog("mask_iou_at_5", "mask/AP@.5"),
    "iou_at_7": LossLog("mask_iou_at_7", "mask/AP@.7"),
}
#: Meters of the per-iteration line, in the original's order.
METER_NAMES = ("batch_time", "data_time") + tuple(log.meter for log in LOSS_LOGS.values())


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
        tags = [(log.tag, log.meter) for log in LOSS_LOGS.values()] + [("grad_norm", "grad_norm")]
        for tag, name in tags:
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
