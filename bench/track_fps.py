"""Frames per second of the sharp SiamMask tracker (mask + refine) on a 70-frame 854x480 sequence.

Usage::

    python bench/track_fps.py                 # exact fp32 and fast mode, 2 threads, CPU
    python bench/track_fps.py --modes exact --frames 30
    python bench/track_fps.py --eao           # also EAO of both modes on the built-in synthetic VOT set

The sequence is generated in memory (textured background, a moving, slowly rotating and scaling ellipse), like
the original's 854x480 `data/tennis` demo frames. The first frame (init) is excluded from the timing. Each frame's
time is split into the network (`model.track` + `model.refine`) and the rest (crops, decoding, paste-back,
contours). Weights: `--weights FILE` (a state dict / checkpoint), else the conformance vectors' calibrated random
weights when present (realistic activations), else a random initialisation (speed only).

Modes:
    original-work  fp32 and the full 3969-channel mask head computed as the original did (not used in refine mode);
                   the reference for the exact mode's speed-up on the same machine.
    exact          fp32, the original's arithmetic and kernels; the mask head is skipped in refine mode.
    fp32-fused     fp32 with BatchNorm folded into the convolutions and channels_last (same math, rounding differs
                   at ~1e-5 relative).
    fast           BatchNorm folded, bf16 weights and autocast (CPU; fp16 on CUDA), channels_last
                   (tracker.fast.make_fast_model).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from typing import Any

import cv2
import numpy as np
import torch

DEFAULT_CONFORMANCE_WEIGHTS = os.path.join("..", "shared", "conformance", "weights_sharp_seed1_fp16.pth")
MODES = ("original-work", "exact", "fp32-fused", "fast")


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="SiamMask sharp tracker FPS (mask + refine)", add_help=add_help)
    parser.add_argument("--frames", type=int, default=70, help="sequence length (default 70, the tennis demo)")
    parser.add_argument("--width", type=int, default=854)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads (default 2)")
    parser.add_argument("--modes", default="exact,fast", help=f"comma list of {', '.join(MODES)}")
    parser.add_argument("--repeats", type=int, default=1, help="runs per mode; the best run is reported")
    parser.add_argument("--weights", default="", help="state dict / checkpoint of a sharp model")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--flush-denormal", action=argparse.BooleanOptionalAction, default=True,
                        help="torch.set_flush_denormal (default on: denormal activations of padded / drifting "
                        "crops otherwise slow some frames down 10x on x86)")
    parser.add_argument("--eao", action="store_true", help="also compare EAO of the modes on the built-in "
                        "synthetic VOT set (datasets.synthetic)")
    parser.add_argument("--eao-data-root", default="", help="where the built-in set is (default: a temp dir)")
    parser.add_argument("--eao-size", default="quick", choices=("quick", "large"), help="built-in data size")
    parser.add_argument("--json", default="", help="write the figures to this JSON file")
    return parser


class TimedModel:
    """Forwards `template` / `track` / `refine` to a model and accumulates the seconds spent in them."""

    def __init__(self, model: torch.nn.Module, device: torch.device, force_mask_head: bool = False) -> None:
        self.model = model
        self.device = device
        self.force_mask_head = force_mask_head
        self.seconds = 0.0

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def _timed(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        self._sync()
        tic = time.perf_counter()
        out = fn(*args, **kwargs)
        self._sync()
        self.seconds += time.perf_counter() - tic
        return out

    def template(self, z: torch.Tensor) -> torch.Tensor:
        return self._timed(self.model.template, z)

    def track(self, zf: torch.Tensor, x: torch.Tensor, mask_head: bool = True) -> dict:
        return self._timed(self.model.track, zf, x, mask_head=mask_head or self.force_mask_head)

    def refine(self, out: dict, pos: Any) -> torch.Tensor:
        return self._timed(self.model.refine, out, pos)

    def to(self, *args: Any, **kwargs: Any) -> "TimedModel":
        self.model.to(*args, **kwargs)
        return self


def make_sequence(num: int, width: int, height: int, seed: int = 0) -> tuple[list[np.ndarray], tuple[float, ...]]:
    """A synthetic video: smooth texture background and a moving, rotating, scaling ellipse.

    Returns:
        frames (BGR uint8 HxWx3) and the first frame's target box (x, y, w, h).
    """
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (height // 16 + 1, width // 16 + 1, 3), dtype=np.uint8)
    background = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    background = cv2.add(background, rng.integers(0, 40, (height, width, 3), dtype=np.uint8))
    frames = []
    box = (0.0, 0.0, 0.0, 0.0)
    for i in range(num):
        t = i / max(num - 1, 1)
        cx = width * (0.3 + 0.4 * t)
        cy = height * (0.5 + 0.15 * np.sin(2 * np.pi * t))
        ax, ay = 60 * (1 + 0.3 * t), 35 * (1 + 0.2 * t)
        angle = 20 * np.sin(np.pi * t)
        im = background.copy()
        cv2.ellipse(im, (int(cx), int(cy)), (int(ax), int(ay)), angle, 0, 360, (40, 200, 240), -1)
        cv2.ellipse(im, (int(cx), int(cy)), (int(ax * 0.5), int(ay * 0.5)), angle, 0, 360, (20, 60, 200), -1)
        frames.append(im)
        if i == 0:
            box = (cx - ax, cy - ay, 2 * ax, 2 * ay)
    return frames, box


def load_sharp_model(weights: str, device: torch.device) -> tuple[torch.nn.Module, str]:
    """A sharp model with `weights`, else the conformance weights when present, else a seeded random init."""
    from siammask.models import build_model

    model = build_model("experiments/siammask_sharp/config_vot.json")
    path = weights or (DEFAULT_CONFORMANCE_WEIGHTS if os.path.isfile(DEFAULT_CONFORMANCE_WEIGHTS) else "")
    if path:
        from siammask.models.weights import load_pretrained

        if weights:
            load_pretrained(model, path)
            origin = path
        else:
            sd = torch.load(path, map_location="cpu", weights_only=True)
            model.load_state_dict({k: (v.float() if v.is_floating_point() else v) for k, v in sd.items()})
            origin = f"{path} (calibrated random weights)"
    else:
        torch.manual_seed(0)
        model = build_model("experiments/siammask_sharp/config_vot.json")
        origin = "random init (seed 0)"
    return model.eval().to(device), origin


def make_tracker(model: torch.nn.Module, mode: str, device: torch.device) -> tuple[Any, TimedModel]:
    """A mask + refine tracker in `mode` around a timing proxy of the network."""
    from siammask.tracker import SiamMaskTracker
    from siammask.tracker.fast import make_fast_model
    from siammask.utils.config import load_config

    cfg = load_config("experiments/siammask_sharp/config_vot.json")
    amp = None
    if mode == "fast":
        amp = torch.bfloat16 if device.type == "cpu" else torch.float16
        net = make_fast_model(model, amp, channels_last=True)
    elif mode == "fp32-fused":
        net = make_fast_model(model, torch.float32, channels_last=True)
    else:
        net = model
    timed = TimedModel(net, device, force_mask_head=(mode == "original-work"))
    tracker = SiamMaskTracker(timed, cfg.hp, device, anchors=cfg.anchors, mask=True, refine=True, amp_dtype=amp,
                              channels_last=mode in ("fast", "fp32-fused"))
    return tracker, timed


def time_mode(model: torch.nn.Module, mode: str, frames: list[np.ndarray], box: tuple[float, ...],
              device: torch.device) -> dict[str, Any]:
    """Track the sequence; per-frame total and network seconds (first frame excluded)."""
    tracker, timed = make_tracker(model, mode, device)
    state = tracker.init(frames[0], box)
    totals, nets, boxes, scores = [], [], [], []
    for im in frames[1:]:
        timed.seconds = 0.0
        tic = time.perf_counter()
        result = tracker.track(state, im)
        totals.append(time.perf_counter() - tic)
        nets.append(timed.seconds)
        boxes.append(result.box.copy())
        scores.append(result.score)
    total, net = float(np.sum(totals)), float(np.sum(nets))
    return {"mode": mode, "frames": len(totals), "fps": len(totals) / total, "ms_per_frame": 1000 * total / len(totals),
            "median_ms": 1000 * statistics.median(totals), "network_ms": 1000 * net / len(totals),
            "rest_ms": 1000 * (total - net) / len(totals), "rest_share": (total - net) / total,
            "mean_score": float(np.mean(scores)), "boxes": np.array(boxes)}


def eao_of_modes(model: torch.nn.Module, modes: list[str], device: torch.device, data_root: str,
                 size: str) -> dict[str, dict[str, float]]:
    """Accuracy, lost number and EAO of each mode on the built-in synthetic VOT set (reset protocol, mask polygons).

    EAO is NaN when every sequence is shorter than the EAO interval's start (100 frames for VOT2018).
    """
    from siammask.datasets.synthetic import make_builtin_data
    from siammask.evaluation import evaluate_trackers, load_vot_dataset
    from siammask.tracker import run_vot_sequence, vot_result_path, write_vot_result

    make_builtin_data(data_root, size=size)
    dataset = load_vot_dataset("VOT2018", data_root)
    with tempfile.TemporaryDirectory() as tmp:
        for mode in modes:
            tracker, _ = make_tracker(model, mode, device)
            for video in dataset:
                res = run_vot_sequence(tracker, video, use_polygon=True)
                write_vot_result(vot_result_path(tmp, mode, video.name), res.regions)
        evals = evaluate_trackers(dataset, tmp, modes)
    return {mode: {"accuracy": float(evals[mode].accuracy), "lost": float(evals[mode].lost_number),
                   "eao": float(evals[mode].eao_all)} for mode in modes}


def main(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    if args.flush_denormal:
        torch.set_flush_denormal(True)
    device = torch.device(args.device)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        print(f"error: unknown mode(s) {', '.join(unknown)}; choose from {', '.join(MODES)}", file=sys.stderr)
        return 2
    model, origin = load_sharp_model(args.weights, device)
    frames, box = make_sequence(args.frames, args.width, args.height)
    print(f"SiamMask sharp (mask + refine), {args.frames} frames {args.width}x{args.height}, first frame excluded; "
          f"torch {torch.__version__}, {args.threads} threads, device {device}; weights: {origin}")
    print(f"load average {os.getloadavg()[0]:.2f} (timings under load are pessimistic)")
    rows = []
    for mode in modes:
        runs = [time_mode(model, mode, frames, box, device) for _ in range(max(args.repeats, 1))]
        rows.append(max(runs, key=lambda r: r["fps"]))
    print(f"{'mode':<14} {'FPS':>6} {'ms/frame':>9} {'median':>7} {'network':>8} {'rest':>6} {'rest %':>7} "
          f"{'score':>6}")
    for r in rows:
        print(f"{r['mode']:<14} {r['fps']:6.2f} {r['ms_per_frame']:9.1f} {r['median_ms']:7.1f} "
              f"{r['network_ms']:8.1f} {r['rest_ms']:6.1f} {100 * r['rest_share']:6.1f}% {r['mean_score']:6.3f}")
    if any(r["mean_score"] < 0.05 for r in rows):
        print("note: near-zero scores: the untrained network's regression diverges and the box stays put; the speed "
              "figures are still those of the full path (crops, network, refine, paste-back, contours)")
    by_mode = {r["mode"]: r for r in rows}
    if "exact" in by_mode and "original-work" in by_mode:
        print(f"exact vs original-work: {by_mode['exact']['fps'] / by_mode['original-work']['fps']:.2f}x")
    if "exact" in by_mode and "fast" in by_mode:
        diff = np.abs(by_mode["fast"]["boxes"] - by_mode["exact"]["boxes"]).max()
        print(f"fast vs exact: {by_mode['fast']['fps'] / by_mode['exact']['fps']:.2f}x, max box difference over the "
              f"sequence {diff:.2f} px")
    report: dict[str, Any] = {"weights": origin, "threads": args.threads, "frames": args.frames,
                              "size": [args.width, args.height],
                              "modes": {r["mode"]: {k: v for k, v in r.items() if k != "boxes"} for r in rows}}
    if args.eao:
        root = args.eao_data_root or tempfile.mkdtemp(prefix="siammask_builtin_")
        scores = eao_of_modes(model, modes, device, root, args.eao_size)
        print(f"built-in VOT set ({args.eao_size}, {root}):")
        for mode, m in scores.items():
            print(f"  {mode:<14} accuracy {m['accuracy']:.4f}  lost {m['lost']:.0f}  EAO {m['eao']:.4f}")
        if "exact" in scores and "fast" in scores:
            print(f"  EAO difference fast - exact: {scores['fast']['eao'] - scores['exact']['eao']:+.4f}")
        report["eao"] = scores
    if args.json:
        from siammask.utils.io import atomic_write_json

        atomic_write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
