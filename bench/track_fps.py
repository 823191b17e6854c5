"""Frames per second of the sharp SiamMask tracker (mask + refine) on a 70-frame 854x480 sequence.

Usage::

    python bench/track_fps.py                      # every mode, 5 rounds, 2 threads, CPU
    python bench/track_fps.py --modes original-work,exact --frames 30 --rounds 3
    python bench/track_fps.py --device cuda        # CUDA (synchronised timing; fast = fp16)
    python bench/track_fps.py --eao                # also EAO of the modes on the built-in synthetic VOT set

The sequence is generated in memory (textured background, a moving, slowly rotating and scaling ellipse), like
the original's 854x480 `data/tennis` demo frames. Each mode's tracker is built and warmed up (graphs traced, one
frame tracked) before the timing; then every round tracks the whole sequence in every mode, the modes interleaved
(their order rotated each round) so that the load of a shared machine hits them alike. The first frame (init) is
not timed. Each frame's time is split into the network (`template` / `track` / `refine` calls) and the rest (crops,
decoding, paste-back, contours). The figures are the median over the rounds with the spread (min-max, IQR); the
ratios are medians of the per-round ratios (the same round's runs). Weights: `--weights FILE` (a state dict /
checkpoint), else the conformance vectors' calibrated random weights when present (realistic activations), else
a random initialisation (speed only).

Modes:
    original-work  the original's work: unfused fp32 model, the full 3969-channel mask head every frame (unused in
                   refine mode) and the template branches recomputed every frame; the reference the speed-ups are
                   measured against on the same machine, in the same run.
    exact-unfused  the unfused fp32 model as `--no-optimize` runs it: no mask head in refine mode, template
                   branches once per target.
    exact-torchscript  `--graphs torchscript` (what tools/vot_trax.py runs): the exact fp32 network as TorchScript
                   graphs frozen for inference (tracker/frozen.py), BatchNorm folded outside the stem and layer1.
    exact          the default exact fp32 tracker: the same network compiled by torch.compile (inductor, weights
                   frozen; it folds the stem and layer1 BatchNorms too); same results to float32 rounding
                   (tests/test_frozen.py). Its compile time (once per process) is spent in the warm-up and printed,
                   not timed.
    fast           `--fast`: BatchNorm folded, bf16 weights and autocast on the CPU (fp16 on CUDA), channels_last
                   (tracker.fast.make_fast_model), on the CPU compiled under autocast by torch.compile
                   (inductor). Left out of the default modes on a CPU without native bf16 (oneDNN then emulates it,
                   several times slower than fp32); `--modes ...,fast` forces it.
    onnxruntime    `--backend onnxruntime`: the graphs of tools/export_onnx.py (exported into a temporary folder
                   here), onnxruntime with `--threads` intra-op threads.
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
from _common import format_summary, machine_info, print_header, summarize

DEFAULT_CONFORMANCE_WEIGHTS = os.path.join("..", "shared", "conformance", "weights_sharp_seed1_fp16.pth")
CONFIG = "experiments/siammask_sharp/config_vot.json"
MODES = ("original-work", "exact-unfused", "exact-torchscript", "exact", "fast", "onnxruntime")


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="SiamMask sharp tracker FPS (mask + refine)", add_help=add_help)
    parser.add_argument("--frames", type=int, default=70, help="sequence length (default 70, the tennis demo)")
    parser.add_argument("--width", type=int, default=854)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads and onnxruntime intra-op "
                        "threads (default 2)")
    parser.add_argument("--modes", default="", help=f"comma list of {', '.join(MODES)} (default: all; fast only "
                        "where the device computes bf16/fp16 natively)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds; every round runs every mode "
                        "(default 5); the median and spread are reported")
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
    """Forwards the tracker's network calls to a model and accumulates the seconds spent in them.

    Args:
        model: a torch model, a tracker.frozen model or a NumPy backend (tracker.onnx_backend).
        device: where it runs (CUDA calls are synchronised before the clock is read).
        original_work: compute the full mask head in every `track` and hide `template_kernels` (so the template
            branches are recomputed every frame), as the original did.
    """

    def __init__(self, model: Any, device: torch.device, original_work: bool = False) -> None:
        self.model = model
        self.device = device
        self.force_mask_head = original_work
        self.numpy_io = bool(getattr(model, "numpy_io", False))
        self.seconds = 0.0
        if not original_work and callable(getattr(model, "template_kernels", None)):
            self.template_kernels = self._template_kernels

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _timed(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        self._sync()
        tic = time.perf_counter()
        out = fn(*args, **kwargs)
        self._sync()
        self.seconds += time.perf_counter() - tic
        return out

    def template(self, z: Any) -> Any:
        return self._timed(self.model.template, z)

    def _template_kernels(self, zf: torch.Tensor) -> Any:
        return self._timed(self.model.template_kernels, zf)

    def track(self, zf: Any, x: Any, mask_head: bool = True, **kwargs: Any) -> dict:
        return self._timed(self.model.track, zf, x, mask_head=mask_head or self.force_mask_head, **kwargs)

    def refine(self, out: dict, pos: Any) -> Any:
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

    model = build_model(CONFIG)
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
        model = build_model(CONFIG)
        origin = "random init (seed 0)"
    return model.eval().to(device), origin


def native_low_precision(device: torch.device) -> bool:
    """Whether the fast mode's dtype is computed natively: bf16 on this CPU (oneDNN), fp16 on CUDA."""
    from siammask.tracker.fast import cpu_has_native_bf16

    return device.type == "cuda" or cpu_has_native_bf16()


def make_tracker(model: torch.nn.Module, mode: str, device: torch.device, threads: int,
                 onnx_dir: str = "") -> tuple[Any, TimedModel]:
    """A mask + refine tracker in `mode` around a timing proxy of the network."""
    from siammask.tracker import SiamMaskTracker
    from siammask.tracker.fast import make_fast_model
    from siammask.tracker.frozen import freeze_model
    from siammask.utils.config import load_config

    cfg = load_config(CONFIG)
    amp = None
    channels_last = False
    if mode == "fast":
        amp = torch.bfloat16 if device.type == "cpu" else torch.float16
        net: Any = make_fast_model(model, amp, channels_last=True)
        if device.type == "cpu":
            net = freeze_model(net, net=net)
        channels_last = True
    elif mode in ("exact", "exact-torchscript"):
        backends = ("torchscript",) if mode == "exact-torchscript" else None
        net = freeze_model(model, backends=backends) if device.type == "cpu" else model
    elif mode == "onnxruntime":
        from siammask.tracker.onnx_backend import load_onnx_backend

        net = load_onnx_backend(onnx_dir, device.type, threads)
    else:
        net = model
    timed = TimedModel(net, device, original_work=(mode == "original-work"))
    tracker = SiamMaskTracker(timed, cfg.hp, "cpu" if mode == "onnxruntime" else device, anchors=cfg.anchors,
                              mask=True, refine=True, amp_dtype=amp, channels_last=channels_last)
    return tracker, timed


def track_sequence(tracker: Any, timed: TimedModel, frames: list[np.ndarray],
                   box: tuple[float, ...]) -> dict[str, Any]:
    """Track the sequence once: per-frame total and network seconds (first frame, the init, not timed)."""
    state = tracker.init(frames[0], box)
    totals, nets, pos, size, scores = [], [], [], [], []
    for im in frames[1:]:
        timed.seconds = 0.0
        tic = time.perf_counter()
        result = tracker.track(state, im)
        totals.append(time.perf_counter() - tic)
        nets.append(timed.seconds)
        pos.append(result.target_pos.copy())
        size.append(result.target_sz.copy())
        scores.append(result.score)
    total, net = float(np.sum(totals)), float(np.sum(nets))
    return {"fps": len(totals) / total, "ms_per_frame": 1000 * total / len(totals),
            "median_frame_ms": 1000 * statistics.median(totals), "network_ms": 1000 * net / len(totals),
            "rest_ms": 1000 * (total - net) / len(totals), "mean_score": float(np.mean(scores)),
            "pos": np.array(pos), "size": np.array(size)}


def eao_of_modes(model: torch.nn.Module, modes: list[str], device: torch.device, threads: int, onnx_dir: str,
                 data_root: str, size: str) -> dict[str, dict[str, float]]:
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
            tracker, _ = make_tracker(model, mode, device, threads, onnx_dir)
            for video in dataset:
                res = run_vot_sequence(tracker, video, use_polygon=True)
                write_vot_result(vot_result_path(tmp, mode, video.name), res.regions)
        evals = evaluate_trackers(dataset, tmp, modes)
    return {mode: {"accuracy": float(evals[mode].accuracy), "lost": float(evals[mode].lost_number),
                   "eao": float(evals[mode].eao_all)} for mode in modes}


def choose_modes(text: str, device: torch.device) -> tuple[list[str], list[str]]:
    """The modes to run and notes on the ones left out by default."""
    notes = []
    if text:
        modes = [m.strip() for m in text.split(",") if m.strip()]
        unknown = [m for m in modes if m not in MODES]
        if unknown:
            raise SystemExit(f"error: unknown mode(s) {', '.join(unknown)}; choose from {', '.join(MODES)}")
        return modes, notes
    modes = list(MODES)
    if not native_low_precision(device):
        modes.remove("fast")
        notes.append("fast left out: this CPU has no native bf16 (oneDNN emulates it, several times slower than "
                     "fp32); --modes ...,fast runs it anyway")
    try:
        import onnx  # noqa: F401
        import onnxruntime
    except ImportError:
        modes.remove("onnxruntime")
        notes.append("onnxruntime left out: pip install onnx onnxruntime")
        return modes, notes
    if device.type == "cuda" and "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        modes.remove("onnxruntime")
        notes.append("onnxruntime left out: this onnxruntime has no CUDA provider (pip install onnxruntime-gpu)")
    return modes, notes


def main(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    if args.flush_denormal:
        torch.set_flush_denormal(True)
    device = torch.device(args.device)
    modes, notes = choose_modes(args.modes, device)
    model, origin = load_sharp_model(args.weights, device)
    frames, box = make_sequence(args.frames, args.width, args.height)
    info = machine_info(args.threads, str(device))
    info["omp_num_threads"] = os.environ.get("OMP_NUM_THREADS", "unset")
    info["native_bf16"] = native_low_precision(torch.device("cpu"))
    print_header("SiamMask sharp tracker (mask + refine): frames per second",
                 f"synthetic {args.width}x{args.height} sequence, {args.frames} frames (the first, the init, not "
                 f"timed), {args.rounds} rounds, modes interleaved; weights: {origin}", info)
    print(f"OMP_NUM_THREADS {info['omp_num_threads']}, native bf16 {info['native_bf16']}, "
          f"flush denormal {args.flush_denormal}, {time.strftime('%Y-%m-%d %H:%M %Z')}")
    for note in notes:
        print(f"note: {note}")
    onnx_tmp = tempfile.TemporaryDirectory(prefix="siammask_onnx_") if "onnxruntime" in modes else None
    onnx_dir = onnx_tmp.name if onnx_tmp else ""
    trackers: dict[str, tuple[Any, TimedModel]] = {}
    setup: dict[str, float] = {}
    for mode in modes:
        tic = time.perf_counter()
        if mode == "onnxruntime":
            from siammask.tools.export_onnx import export_model
            from siammask.utils.config import load_config

            hp = load_config(CONFIG).hp
            export_model(model.cpu(), onnx_dir, hp.exemplar_size, hp.instance_size, log=None)
            model.to(device)
        trackers[mode] = make_tracker(model, mode, device, args.threads, onnx_dir)
        tracker, timed = trackers[mode]
        tracker.track(tracker.init(frames[0], box), frames[1])  # warm-up: graphs traced, kernels chosen
        setup[mode] = time.perf_counter() - tic
        graphs = getattr(timed.model, "_graphs", None)
        if graphs:
            kinds = sorted({type(g).__name__ for g in graphs.values()})
            print(f"{mode}: graphs {', '.join(kinds)}, built in {setup[mode]:.1f} s"
                  + (f" (fallback: {timed.model.fallback_reason})" if timed.model.fallback_reason else ""))
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in modes}
    for r in range(max(args.rounds, 1)):
        order = modes[r % len(modes):] + modes[:r % len(modes)]
        for mode in order:
            runs[mode].append(track_sequence(*trackers[mode], frames, box))
    loads = os.getloadavg()
    print(f"load average after the runs {loads[0]:.2f} / {loads[1]:.2f} / {loads[2]:.2f} (1 / 5 / 15 min)")
    print(f"{'mode':<18} {'FPS (median of rounds, min-max)':<34} {'ms/frame':>9} {'network':>8} {'rest':>6} "
          f"{'setup s':>8}")
    report_modes: dict[str, Any] = {}
    for mode in modes:
        fps = summarize([x["fps"] for x in runs[mode]])
        ms = statistics.median(x["ms_per_frame"] for x in runs[mode])
        net = statistics.median(x["network_ms"] for x in runs[mode])
        rest = statistics.median(x["rest_ms"] for x in runs[mode])
        print(f"{mode:<18} {format_summary(fps, 'FPS', 2):<34} {ms:9.1f} {net:8.1f} {rest:6.1f} "
              f"{setup[mode]:8.1f}")
        report_modes[mode] = {"fps": fps, "ms_per_frame": ms, "network_ms": net, "rest_ms": rest,
                              "setup_s": setup[mode], "mean_score": runs[mode][0]["mean_score"]}
    if any(runs[m][0]["mean_score"] < 0.05 for m in modes):
        print("note: near-zero scores: the untrained network's regression diverges and the box stays put; the speed "
              "figures are still those of the full path (crops, network, refine, paste-back, contours)")
    ratios: dict[str, Any] = {}
    base = "original-work" if "original-work" in modes else None
    if base:
        for mode in modes:
            if mode == base:
                continue
            per_round = [a["fps"] / b["fps"] for a, b in zip(runs[mode], runs[base])]
            ratios[mode] = summarize(per_round)
            print(f"{mode} vs original-work: {format_summary(ratios[mode], 'x', 2)}")
    ref = "exact-unfused" if "exact-unfused" in modes else base
    if ref:
        for mode in modes:
            if mode == ref:
                continue
            dpos = float(np.abs(runs[mode][0]["pos"] - runs[ref][0]["pos"]).max())
            dsize = float(np.abs(runs[mode][0]["size"] - runs[ref][0]["size"]).max())
            print(f"{mode} vs {ref}: max position difference over the sequence {dpos:.4f} px, size {dsize:.4f} px")
    report: dict[str, Any] = {"machine": info, "weights": origin, "frames": args.frames, "rounds": args.rounds,
                              "size": [args.width, args.height], "load_after": list(loads), "modes": report_modes,
                              "ratio_vs_original_work": ratios}
    if args.eao:
        root = args.eao_data_root or tempfile.mkdtemp(prefix="siammask_builtin_")
        scores = eao_of_modes(model, modes, device, args.threads, onnx_dir, root, args.eao_size)
        print(f"built-in VOT set ({args.eao_size}, {root}):")
        for mode, m in scores.items():
            print(f"  {mode:<18} accuracy {m['accuracy']:.4f}  lost {m['lost']:.0f}  EAO {m['eao']:.4f}")
        for mode in ("fast", "exact", "onnxruntime"):
            if mode in scores and "exact-unfused" in scores and mode != "exact-unfused":
                print(f"  EAO difference {mode} - exact-unfused: "
                      f"{scores[mode]['eao'] - scores['exact-unfused']['eao']:+.4f}")
        report["eao"] = scores
    if onnx_tmp is not None:
        onnx_tmp.cleanup()
    if args.json:
        from siammask.utils.io import atomic_write_json

        atomic_write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
