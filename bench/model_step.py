"""Benchmark: samples/s of a full SiamMask base training step (CPU, or CUDA with --device cuda).

One step = forward (``model(batch)``), :func:`models.compute_losses`, backward, gradient clipping (10, as the
original) and an SGD step (momentum 0.9, weight decay 1e-4, the model's param groups; ``foreach`` as the training
tool builds it), on a synthetic batch with realistic labels (:func:`datasets.fake_batch.synthetic_batch`, a few
positives per sample). Stages: ``frozen`` (epoch 0: adjust layer, rpn and mask head train) and ``unfrozen``
(epoch >= half: ResNet layer2 + layer3 train too). Precisions: ``fp32``, ``bf16`` autocast, and on CUDA ``fp16``
autocast with a GradScaler.

Besides this project's step, ``original-work`` (fp32, on by default; ``--no-original-work`` drops it) times the
original SiamMask's work for the same step on this project's modules: the full 3969-channel mask head over all 625
positions of each sample before picking the positive ones, the label mask unfolded into all 625 windows of 127x127
before picking, ``F.soft_margin_loss``, autograd's own backward of the depth-wise correlation, the eager trunk with
its BatchNorms unfolded, SGD and gradient clipping without ``foreach`` (the original's torch had none) and a
``.item()`` of every loss term and metric each step (its meters). It is the in-run stand-in for the original (the
same arithmetic as the original's step; the original's own code is not run here), and each configuration's
speed-up over it is the median of per-round ratios, so both figures of a ratio come from one run.

This project's configurations run as the training tool runs them (``--channels-last auto``): channels_last on the
CPU (fp32 and bf16) and for fp16 / bf16 on CUDA, in the frozen stage on the CPU the trunk as a compiled inference
graph, fp32 or bf16 (:mod:`training.frozen_trunk`: torch.compile, else TorchScript; ``--no-trunk-graph`` runs it
eagerly, ``--trunk-graph both`` times both), and in fp32 on the CPU the stride-1 3x3 convolutions by Winograd
F(4x4, 3x3) (:mod:`models.winograd`; ``--winograd off`` runs them directly, ``both`` times both; its matrix products
by oneDNN, ``--products bmm`` by torch.bmm; the FLOPs are still counted as direct convolutions, so the GFLOP/s can
pass the convolution peak). The original-work configurations stay NCHW, as the original ran.

Every configuration (stage x precision x layout) is built in this one process and timed in interleaved rounds
(round r times `--steps` steps of each configuration in turn), so that load from other processes falls on all of
them alike; the median and spread of the rounds are printed, never the best round. The header gives the machine,
threads and load; the matmul / conv peak and the step's FLOPs put the speed in context. The training process tunes
glibc malloc as the training tool does (:func:`datasets.siam_mask_dataset.tune_malloc`; fresh pages cost ~10 us
each on virtual machines). Examples::

    python bench/model_step.py                                  # fp32 and bf16, both stages, batch 8, 2 threads
    python bench/model_step.py --precision fp32 --channels-last both
    python bench/model_step.py --precision fp32 --winograd both   # what Winograd buys, same run
    python bench/model_step.py --stage frozen --trunk-graph both   # what the frozen trunk's graphs buy
    python bench/model_step.py --precision fp32 --products both    # Winograd's products: oneDNN vs torch.bmm
    python bench/model_step.py --device cuda --batch 64 --precision bf16 fp16 --channels-last on
"""
from __future__ import annotations

import argparse
import itertools
import math
import resource
import time
from typing import Any, Callable

import torch
from _common import format_summary, machine_info, print_header, summarize  # bench/ is the script's folder
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count

from siammask.models.winograd import WinogradConv2d

STAGE_EPOCH = {"frozen": 0, "unfrozen": 10}
EPOCHS = 20
LOSS_WEIGHTS = (1.0, 1.2, 36.0)  # the original base config
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
    parser.add_argument("--channels-last", choices=["auto", "off", "on", "both"], default="auto",
                        help="model and images in channels_last layout (default auto: as the training tool, on "
                        "on the CPU and for bf16 / fp16 on CUDA)")
    parser.add_argument("--trunk-graph", choices=["on", "off", "both"], default="on",
                        help="fp32 / bf16 on the CPU: the frozen trunk as a compiled inference graph, as the "
                        "training tool (training/frozen_trunk.py; only the frozen stage uses it); both: time each "
                        "frozen CPU configuration with and without it (default on)")
    parser.add_argument("--no-trunk-graph", dest="trunk_graph", action="store_const", const="off",
                        help="same as --trunk-graph off")
    parser.add_argument("--winograd", choices=["on", "off", "both"], default="on",
                        help="fp32 on the CPU: the stride-1 3x3 convolutions by Winograd F(4x4, 3x3), as the "
                        "training tool (models/winograd.py; needs the extension make.sh builds); both: time each "
                        "fp32 configuration with and without it (default on)")
    parser.add_argument("--products", choices=["onednn", "bmm", "both"], default="onednn",
                        help="Winograd's 36 matrix products by oneDNN (as the training tool, where torch has it) or "
                        "torch.bmm (MKL / OpenBLAS sgemm); both: time each Winograd configuration both ways")
    parser.add_argument("--no-original-work", action="store_true",
                        help="do not time the original's work (full mask head, no foreach, per-term .item())")
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


def _unfolded_conv_bn(conv: torch.nn.Module, bn: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``bn(conv(x))`` always (the original's arithmetic; this project folds eval-mode BNs while training)."""
    return bn(conv(x))


class Configuration:
    """One model + optimizer + batch of a (stage, precision, layout) and its training step."""

    def __init__(self, args: argparse.Namespace, stage: str, precision: str, channels_last: bool,
                 device: torch.device, original_work: bool = False, winograd: bool = True,
                 trunk_graph: bool = True, products: str = "onednn") -> None:
        from siammask.datasets.fake_batch import synthetic_batch
        from siammask.models import SiamMaskBase
        from siammask.models.winograd import use_winograd
        from siammask.training.frozen_trunk import FrozenTrunkRunner

        self.stage, self.precision, self.channels_last, self.device = stage, precision, channels_last, device
        self.original_work = original_work
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
        self.trunk_graph = (trunk_graph and not original_work and precision in ("fp32", "bf16")
                            and device.type == "cpu" and stage == "frozen")
        if self.trunk_graph:
            model.features.trunk_runner = FrozenTrunkRunner(winograd=winograd)
        self.winograd = (winograd and not original_work and precision == "fp32" and device.type == "cpu"
                         and use_winograd(model) > 0)  # the frozen trunk graph's too (FrozenTrunkRunner)
        self.optimizer = torch.optim.SGD(model.param_groups(0.001), lr=0.001, momentum=0.9, weight_decay=1e-4,
                                         foreach=not original_work)
        self.products = products
        self.amp = AMP_DTYPES.get(precision)
        self.scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
        self.rates: list[float] = []

    @property
    def name(self) -> str:
        if self.original_work:
            return f"{self.stage:8s} original-work"
        return (f"{self.stage:8s} {self.precision:4s}{' channels_last' if self.channels_last else ''}"
                f"{' trunk-graph' if self.trunk_graph else ''}{' winograd' if self.winograd else ''}"
                f"{' bmm' if self.winograd and self.products == 'bmm' else ''}")

    def step(self) -> None:
        from siammask.models import compute_losses, winograd

        winograd.ONEDNN_PRODUCTS = self.products == "onednn"
        if self.original_work:
            self.original_step()
            return
        with torch.autocast(self.device.type, dtype=self.amp or torch.float32, enabled=self.amp is not None):
            out = self.model(self.batch)
        losses = compute_losses(out, self.batch, LOSS_WEIGHTS)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(losses["total"]).backward()
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 10.0)
        self.scaler.step(self.optimizer)
        self.scaler.update()

    def original_step(self) -> None:
        """The original's step (module docstring): same values as :meth:`step` in fp32, the original's work."""
        from siammask.models import resnet, rpn
        from siammask.models.losses import (
            iou_measure,
            log_softmax_cls,
            mask_label_padding,
            select_cross_entropy_loss,
            select_mask_positions,
            upsample_mask_logits,
            weight_l1_loss,
        )

        model, batch = self.model, self.batch
        xcorr, conv_bn = rpn.depthwise_xcorr, resnet.conv_bn
        # autograd's backward of the grouped-conv correlation and unfolded BatchNorms, as the original
        rpn.depthwise_xcorr, resnet.conv_bn = rpn._grouped_xcorr, _unfolded_conv_bn
        try:
            zf, xf = model.features(batch["template"]), model.features(batch["search"])
            cls, loc = model.rpn_model(zf, xf)
            full_mask = model.mask_model(zf, xf)  # (B, 3969, 25, 25): every position, as the original
        finally:
            rpn.depthwise_xcorr, resnet.conv_bn = xcorr, conv_bn
        index = select_mask_positions(batch["label_mask_weight"])
        mask = full_mask.permute(0, 2, 3, 1).reshape(-1, full_mask.size(1)).index_select(0, index)
        logits = upsample_mask_logits(mask)
        label = batch["label_mask"]
        windows = torch.nn.functional.unfold(label, 127, padding=mask_label_padding(cls.size(2), label.size(2)),
                                             stride=8)  # (B, 16129, 625): all windows, as the original
        labels = windows.transpose(1, 2).reshape(-1, windows.size(1)).index_select(0, index)
        cls_loss = select_cross_entropy_loss(log_softmax_cls(cls), batch["label_cls"])
        loc_loss = weight_l1_loss(loc, batch["label_loc"], batch["label_loc_weight"])
        mask_loss = torch.nn.functional.soft_margin_loss(logits, labels)
        iou_mean, iou_5, iou_7, _ = iou_measure(logits.detach(), labels)
        total = cls_loss * LOSS_WEIGHTS[0] + loc_loss * LOSS_WEIGHTS[1] + mask_loss * LOSS_WEIGHTS[2]
        self.optimizer.zero_grad()
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0, foreach=False)
        if math.isfinite(total.item()):
            self.optimizer.step()
        for term in (total, cls_loss, loc_loss, mask_loss, iou_mean, iou_5, iou_7):  # the original's meters
            term.item()

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
        runner, self.model.features.trunk_runner = self.model.features.trunk_runner, None  # graphs hide their ops
        # the step's work is counted as direct convolutions (Winograd's products are fewer: the point of it)
        winograd = [m for m in self.model.modules() if isinstance(m, WinogradConv2d)]
        for module in winograd:
            module.__class__ = torch.nn.Conv2d
        try:
            with counter:
                self.step()
        finally:
            self.model.features.trunk_runner = runner
            for module in winograd:
                module.__class__ = WinogradConv2d
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
    layouts = {"off": [False], "on": [True], "both": [False, True], "auto": [None]}[args.channels_last]
    print_header("training step: samples/s of forward + losses + backward + clip + SGD (SiamMask base, search 255)",
                 f"synthetic batch of {args.batch} (datasets.fake_batch), {args.rounds} interleaved rounds of "
                 f"{args.steps} steps per configuration after {args.warmup} warm-up steps", machine_info(
                     threads=args.threads, device=str(device)))
    if not args.no_flops:
        peaks = {p: (matmul_peak_gflops(AMP_DTYPES.get(p, torch.float32), device),
                     conv_peak_gflops(AMP_DTYPES.get(p, torch.float32), device))
                 for p in dict.fromkeys(precisions + ([] if args.no_original_work else ["fp32"]))}
        print("peaks: " + "; ".join(f"{p} torch.mm 2048^2 {mm:.1f} GFLOP/s, 3x3 conv 256->256 {conv:.1f} GFLOP/s"
                                    for p, (mm, conv) in peaks.items()))
    auto_layout = {p: device.type == "cpu" or p != "fp32" for p in precisions}  # as utils.runtime.init_runtime
    choices = {"on": [True], "off": [False], "both": [False, True]}
    winograd, graphs = choices[args.winograd], choices[args.trunk_graph]
    products = ["bmm", "onednn"] if args.products == "both" else [args.products]
    configs = [Configuration(args, stage, precision, auto_layout[precision] if layout is None else layout, device,
                             winograd=wino, trunk_graph=graph, products=prod)
               for stage, precision, layout, wino, graph, prod in itertools.product(
                   args.stage, precisions, layouts, winograd, graphs, products)
               if (wino == winograd[-1] or (precision == "fp32" and device.type == "cpu"))
               and (graph == graphs[-1] or (stage == "frozen" and device.type == "cpu"))
               and (prod == products[-1] or (wino and precision == "fp32" and device.type == "cpu"))]
    if not args.no_original_work:
        configs = [Configuration(args, stage, "fp32", False, device, original_work=True)
                   for stage in args.stage] + configs
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
        line = f"{config.name:36s} batch {args.batch}: {format_summary(stats, unit, 2)}"
        if not args.no_flops:
            flops = config.flops()
            achieved = flops * stats["median"] / args.batch / 1e9
            line += (f", {flops / 1e9:.1f} GFLOP/step{' (as direct convolutions)' if config.winograd else ''} = "
                     f"{achieved:.1f} GFLOP/s ({100 * achieved / peaks[config.precision][0]:.0f}% of mm peak)")
        base = next((c for c in configs if c.original_work and c.stage == config.stage), None)
        if base is not None and base is not config:
            ratios = summarize([a / b for a, b in zip(config.rates, base.rates)])
            line += f"; vs original-work {format_summary(ratios, 'x', 2)}"
        print(line)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
    print(f"peak RSS of the process (all configurations): {peak:.2f} GiB"
          + (f", CUDA peak {torch.cuda.max_memory_allocated(device) / 2 ** 30:.2f} GiB" if device.type == "cuda"
             else ""))
    if not args.no_original_work:
        print("vs original-work: the median of per-round ratios to the original's work of the same stage, timed in "
              "this run (module docstring); the original's own code is not run here")
    return configs


if __name__ == "__main__":
    main(get_args_parser().parse_args())
