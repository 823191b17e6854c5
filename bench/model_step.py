"""Benchmark: samples/s of a full SiamMask base training step (CPU, or CUDA with --device cuda).

One step = forward (``model(batch)``), :func:`models.compute_losses`, backward, gradient clipping (10, as the
original) and an SGD step (momentum 0.9, weight decay 1e-4, the model's param groups; ``foreach`` as the training
tool builds it), on a synthetic batch with realistic labels (:func:`datasets.fake_batch.synthetic_batch`, a few
positives per sample). Stages: ``frozen`` (epoch 0: adjust layer, rpn and mask head train) and ``unfrozen``
(epoch >= half: ResNet layer2 + layer3 train too). Precisions: ``fp32``, ``bf16`` autocast, and on CUDA ``fp16``
autocast with a GradScaler.

Every configuration (stage x precision x layout) is built in this one process and timed in interleaved rounds
(round r times `--steps` steps of each configuration in turn), so that load from other processes falls on all of
them alike; the median and spread of the rounds are printed, never the best round. The header gives the machine,
threads and load; the matmul / conv peak and the step's FLOPs put the speed in context. The training process tunes
glibc malloc as the training tool does (:func:`datasets.siam_mask_dataset.tune_malloc`; fresh pages cost ~10 us
each on virtual machines). Examples::

    python bench/model_step.py                                  # fp32 and bf16, both stages, batch 8, 2 threads
    python bench/model_step.py --precision fp32 --channels-last both
    python bench/model_step.py --device cuda --batch 64 --precision bf16 fp16 --channels-last on
"""
from __future__ import annotations

import argparse
import itertools
import resource
import time
from typing import Any, Callable

import torch
from _common import format_summary, machine_info, print_header, summarize  # bench/ is the script's folder
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count

STAGE_EPOCH = {"frozen": 0, "unfrozen": 10}
EPOCHS = 20
LOSS_WEIGHTS = (1.0, 1.2, 36.0)  # the original base config
#: The original SiamMask's training step on this machine type (2 cores, 2 threads, batch 8, fp32), measured side by
#: side with this project on 2026-11-30 (project issue 13); quoted, not measured by this script.
ORIGINAL = {"frozen": 3.63, "unfrozen": 1.85}
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    """Command-line flags of the benchmark."""
    parser = argparse.ArgumentParser(description="SiamMask base training-step benchmark", add_help=add_help)
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    parser.add_argument("--batch", type=int, default=8, help="samples per step (default 8)")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    parser.add_argument("--steps", type=int, default=2, help="timed steps per configuration and round (default 2)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5; the median is shown)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps of each configuration first")
    parser.add_argument("--stage", nargs="+", choices=sorted(STAGE_EPOCH), default=["frozen", "unfrozen"],
                        help="training stages to time (default both)")
    parser.add_argument("--precision", nargs="+", choices=["fp32", *AMP_DTYPES], default=["fp32", "bf16"],
                        help="fp32 and/or autocast bf16 / fp16 (fp16 on CUDA only; default fp32 bf16)")
    parser.add_argument("--amp", action="store_true", help="same as --precision bf16")
    parser.add_argument("--channels-last", choices=["off", "on", "both"], default="off",
                        help="model and images in channels_last layout (default off)")
    parser.add_argument("--no-flops", action="store_true", help="skip the FLOP count and the peak measurements")
    parser.add_argument("--seed", type=int, default=0, help="seed of weights and batch (default 0)")
    return parser


def _conv_backward_flops(grad_out_shape: list[int], x_shape: list[int], w_shape: list[int], _bias: Any,
                         _stride: Any, _padding: Any, _dilation: Any, transposed: bool, _output_padding: Any,
                         _groups: int, output_mask: list[bool], out_shape: Any = None) -> int:
    """FLOPs of ``aten.convolution_backward``, correct for grouped convolutions.

    Each requested gradient (input, weight) costs as much as the forward convolution. torch's own formula for the
    weight gradient ignores ``groups`` and overcounts the depth-wise correlation (groups = B * 256) ~1000x.
    """
    if transposed:
        forward = conv_flop_count(grad_out_shape, w_shape, x_shape, transposed=True)
    else:
        forward = conv_flop_count(x_shape, w_shape, grad_out_shape)
    return forward * (int(output_mask[0]) + int(output_mask[1]))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _best_seconds(fn: Callable[[], Any], device: torch.device, repeats: int = 5) -> float:
    fn()
    _sync(device)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def matmul_peak_gflops(dtype: torch.dtype, device: torch.device, size: int = 2048) -> float:
    """GFLOP/s of a timed ``torch.mm`` of two ``size`` x ``size`` matrices (best of 5: a peak, not a figure)."""
    a, b = torch.randn(size, size, device=device).to(dtype), torch.randn(size, size, device=device).to(dtype)
    return 2 * size ** 3 / _best_seconds(lambda: torch.mm(a, b), device) / 1e9


def conv_peak_gflops(dtype: torch.dtype, device: torch.device) -> float:
    """GFLOP/s of a 3x3 conv 256 -> 256 on (8, 256, 31, 31), the shape of the model's busiest convolutions."""
    x, w = torch.randn(8, 256, 31, 31, device=device).to(dtype), torch.randn(256, 256, 3, 3, device=device).to(dtype)
    seconds = _best_seconds(lambda: torch.nn.functional.conv2d(x, w), device)
    return conv_flop_count(list(x.shape), list(w.shape), [8, 256, 29, 29]) / seconds / 1e9


class Configuration:
    """One model + optimizer + batch of a (stage, precision, layout) and its training step."""

    def __init__(self, args: argparse.Namespace, stage: str, precision: str, channels_last: bool,
                 device: torch.device) -> None:
        from siammask.datasets.fake_batch import synthetic_batch
        from siammask.models import SiamMaskBase

        self.stage, self.precision, self.channels_last, self.device = stage, precision, channels_last, device
        torch.manual_seed(args.seed)
        model = SiamMaskBase()
        model.set_epoch(STAGE_EPOCH[stage], EPOCHS)
        model.train()
        model.to(device)
        batch = synthetic_batch(args.batch, 255, generator=torch.Generator().manual_seed(args.seed))
        batch = {k: v.to(device) for k, v in batch.items()}
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
            for key in ("template", "search"):
                batch[key] = batch[key].contiguous(memory_format=torch.channels_last)
        self.model, self.batch = model, batch
        self.optimizer = torch.optim.SGD(model.param_groups(0.001), lr=0.001, momentum=0.9, weight_decay=1e-4,
                                         foreach=True)
        self.amp = AMP_DTYPES.get(precision)
        self.scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
        self.rates: list[float] = []

    @property
    def name(self) -> str:
        return f"{self.stage:8s} {self.precision:4s}{' channels_last' if self.channels_last else ''}"

    def step(self) -> None:
        from siammask.models import compute_losses

        with torch.autocast(self.device.type, dtype=self.amp or torch.float32, enabled=self.amp is not None):
            out = self.model(self.batch)
        losses = compute_losses(out, self.batch, LOSS_WEIGHTS)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(losses["total"]).backward()
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 10.0)
        self.scaler.step(self.optimizer)
        self.scaler.update()

    def timed(self, steps: int, batch: int) -> float:
        """Samples/s over `steps` steps (synchronised on CUDA)."""
        _sync(self.device)
        start = time.perf_counter()
        for _ in range(steps):
            self.step()
        _sync(self.device)
        rate = steps * batch / (time.perf_counter() - start)
        self.rates.append(rate)
        return rate

    def flops(self) -> int:
        counter = FlopCounterMode(display=False,
                                  custom_mapping={torch.ops.aten.convolution_backward: _conv_backward_flops})
        with counter:
            self.step()
        return counter.get_total_flops()


def main(args: argparse.Namespace) -> list[Configuration]:
    """Print the header, run the interleaved rounds, print one line per configuration."""
    from siammask.datasets.siam_mask_dataset import tune_malloc

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda: this torch has no CUDA device")
    precisions = ["bf16"] if args.amp else list(dict.fromkeys(args.precision))
    if "fp16" in precisions and device.type != "cuda":
        raise SystemExit("error: --precision fp16 needs --device cuda (CPU autocast uses bf16)")
    torch.set_num_threads(args.threads)
    tune_malloc(32 << 20, 1 << 30, heap_only=True)  # as tools/train_siammask.py
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    layouts = {"off": [False], "on": [True], "both": [False, True]}[args.channels_last]
    print_header("training step: samples/s of forward + losses + backward + clip + SGD (SiamMask base, search 255)",
                 f"synthetic batch of {args.batch} (datasets.fake_batch), {args.rounds} interleaved rounds of "
                 f"{args.steps} steps per configuration after {args.warmup} warm-up steps", machine_info(
                     threads=args.threads, device=str(device)))
    if not args.no_flops:
        peaks = {p: (matmul_peak_gflops(AMP_DTYPES.get(p, torch.float32), device),
                     conv_peak_gflops(AMP_DTYPES.get(p, torch.float32), device)) for p in precisions}
        print("peaks: " + "; ".join(f"{p} torch.mm 2048^2 {mm:.1f} GFLOP/s, 3x3 conv 256->256 {conv:.1f} GFLOP/s"
                                    for p, (mm, conv) in peaks.items()))
    configs = [Configuration(args, stage, precision, layout, device)
               for stage, precision, layout in itertools.product(args.stage, precisions, layouts)]
    for config in configs:
        for _ in range(args.warmup):
            config.step()
    for r in range(args.rounds):
        rates = [config.timed(args.steps, args.batch) for config in configs]
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{c.name.strip()} {v:.2f}" for c, v in zip(configs, rates)),
              flush=True)
    for config in configs:
        stats = summarize(config.rates)
        unit = "pairs/s" if device.type == "cuda" else "samples/s"
        line = f"{config.name:24s} batch {args.batch}: {format_summary(stats, unit, 2)}"
        if not args.no_flops:
            flops = config.flops()
            achieved = flops * stats["median"] / args.batch / 1e9
            line += (f", {flops / 1e9:.1f} GFLOP/step = {achieved:.1f} GFLOP/s "
                     f"({100 * achieved / peaks[config.precision][0]:.0f}% of mm peak)")
        if device.type == "cpu" and args.batch == 8 and args.threads == 2:
            line += f"; original {ORIGINAL[config.stage]:.2f} (fp32) -> {stats['median'] / ORIGINAL[config.stage]:.2f}x"
        print(line)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
    print(f"peak RSS of the process (all configurations): {peak:.2f} GiB"
          + (f", CUDA peak {torch.cuda.max_memory_allocated(device) / 2 ** 30:.2f} GiB" if device.type == "cuda"
             else ""))
    if device.type == "cpu" and args.batch == 8 and args.threads == 2:
        print("original SiamMask (quoted, not measured here): frozen 3.63, unfrozen 1.85 samples/s fp32 (batch 8, "
              "2 threads, same machine type, 2026-11-30)")
    return configs


if __name__ == "__main__":
    main(get_args_parser().parse_args())
