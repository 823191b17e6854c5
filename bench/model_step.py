"""Benchmark: samples/s of a full SiamMask base training step on the CPU.

One step = forward (``model(batch)``), :func:`models.compute_losses`, backward, gradient clipping (10, as the
original) and an SGD step (momentum 0.9, weight decay 1e-4), on a synthetic batch with realistic labels
(:func:`models.synthetic.synthetic_batch`, a few positives per sample). Stages: ``frozen`` (epoch 0: adjust layer, rpn
and mask head train) and ``unfrozen`` (epoch >= half: ResNet layer2 + layer3 train too). Precision: fp32, or bf16
autocast with ``--amp``.

Each configuration runs in a fresh process, so its peak RSS (``resource.getrusage``) is its own. The machine's matmul
peak (a timed large ``torch.mm``) and the step's FLOPs (``torch.utils.flop_counter.FlopCounterMode``) put the speed in
context. Example::

    python bench/model_step.py                 # fp32, both stages, batch 8, 2 threads
    python bench/model_step.py --amp           # bf16 autocast
"""
from __future__ import annotations

import argparse
import multiprocessing
import resource
import time
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count

#: Issue targets in samples/s for batch 8 on 2 threads: (precision, stage) -> samples/s.
TARGETS = {("fp32", "frozen"): 2.9, ("fp32", "unfrozen"): 1.35, ("amp", "frozen"): 4.1, ("amp", "unfrozen"): 1.9}
STAGE_EPOCH = {"frozen": 0, "unfrozen": 10}
EPOCHS = 20
LOSS_WEIGHTS = (1.0, 1.2, 36.0)  # the original base config


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    """Command-line flags of the benchmark."""
    parser = argparse.ArgumentParser(description="SiamMask base training-step benchmark (CPU)", add_help=add_help)
    parser.add_argument("--batch", type=int, default=8, help="samples per step (default 8)")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per configuration (default 5)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (default 2)")
    parser.add_argument("--stage", nargs="+", choices=sorted(STAGE_EPOCH), default=["frozen", "unfrozen"],
                        help="training stages to time (default both)")
    parser.add_argument("--amp", action="store_true", help="bf16 autocast instead of fp32")
    parser.add_argument("--channels-last", action="store_true", help="model and images in channels_last layout")
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


def matmul_peak_gflops(dtype: torch.dtype, size: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of a timed ``torch.mm`` of two ``size`` x ``size`` matrices (best of ``repeats``)."""
    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size ** 3 / best / 1e9


def conv_peak_gflops(dtype: torch.dtype, repeats: int = 5) -> float:
    """GFLOP/s of a timed 3x3 conv 256 -> 256 on (8, 256, 31, 31), the shape of the model's busiest convolutions."""
    x, w = torch.randn(8, 256, 31, 31).to(dtype), torch.randn(256, 256, 3, 3).to(dtype)
    torch.nn.functional.conv2d(x, w)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.nn.functional.conv2d(x, w)
        best = min(best, time.perf_counter() - start)
    return conv_flop_count(list(x.shape), list(w.shape), [8, 256, 29, 29]) / best / 1e9


def run_configuration(args: argparse.Namespace, stage: str) -> dict[str, Any]:
    """Build the model, time ``args.steps`` training steps of ``stage``; returns the figures."""
    from siammask.datasets.fake_batch import synthetic_batch
    from siammask.models import SiamMaskBase, compute_losses

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = SiamMaskBase()
    model.set_epoch(STAGE_EPOCH[stage], EPOCHS)
    model.train()
    batch = synthetic_batch(args.batch, 255, generator=torch.Generator().manual_seed(args.seed))
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
        for key in ("template", "search"):
            batch[key] = batch[key].contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.param_groups(0.001), momentum=0.9, weight_decay=1e-4)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.amp):
            out = model(batch)
        losses = compute_losses(out, batch, LOSS_WEIGHTS)
        optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()

    for _ in range(args.warmup):
        step()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(args.steps):
        step()
    wall, cpu = (time.perf_counter() - wall) / args.steps, (time.process_time() - cpu) / args.steps
    counter = FlopCounterMode(display=False,
                              custom_mapping={torch.ops.aten.convolution_backward: _conv_backward_flops})
    with counter:
        step()
    return {"stage": stage, "seconds": wall, "cpu_seconds": cpu, "flops": counter.get_total_flops(),
            "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20}


def _child(args: argparse.Namespace, stage: str, queue: Any) -> None:
    queue.put(run_configuration(args, stage))


def main(args: argparse.Namespace) -> None:
    """Print the machine line, then one line per configuration (each timed in its own process)."""
    torch.set_num_threads(args.threads)
    peak32 = matmul_peak_gflops(torch.float32)
    peak16 = matmul_peak_gflops(torch.bfloat16)
    conv32, conv16 = conv_peak_gflops(torch.float32), conv_peak_gflops(torch.bfloat16)
    print(f"machine: {args.threads} threads, torch.mm 2048^2 peak fp32 {peak32:.1f} GFLOP/s, "
          f"bf16 {peak16:.1f} GFLOP/s; "
          f"3x3 conv 256->256 fp32 {conv32:.1f} GFLOP/s, bf16 {conv16:.1f} GFLOP/s")
    precision = "amp" if args.amp else "fp32"
    peak = peak16 if args.amp else peak32
    context = multiprocessing.get_context("spawn")
    for stage in args.stage:
        queue = context.Queue()
        child = context.Process(target=_child, args=(args, stage, queue))
        child.start()
        result = queue.get()
        child.join()
        rate = args.batch / result["seconds"]
        achieved = result["flops"] / result["seconds"] / 1e9
        layout = ", channels_last" if args.channels_last else ""
        print(f"{stage:8s} {precision:4s} batch {args.batch}{layout}: {rate:.2f} samples/s "
              f"(target {TARGETS[(precision, stage)]:.2f}), {result['seconds']:.3f} s/step "
              f"(cpu {result['cpu_seconds']:.3f} s), {result['flops'] / 1e9:.1f} GFLOP/step = {achieved:.1f} GFLOP/s "
              f"({100 * achieved / peak:.0f}% of mm peak), peak RSS {result['peak_rss_gib']:.2f} GiB")


if __name__ == "__main__":
    main(get_args_parser().parse_args())
