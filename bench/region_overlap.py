"""Throughput of the VOT region overlap (utils.region) for both backends, in overlap pairs per second.

Typical VOT pairs: a rotated ground-truth rectangle of 30-250 px and a prediction a few pixels and degrees off,
bounds 1280x720. Measures ``vot_overlap`` called once per pair and ``vot_overlap_traj`` over whole trajectories.
Each backend runs in its own process (``SIAMMASK_REGION_BACKEND``), as the backend is fixed at import; each figure is
the median of `--repeat` rounds with the spread. The original's Cython ``vot_overlap`` did about 41,700 pairs/s on
the machine of issue 13 (quoted, not measured here); the target is >= 40,000.

    python bench/region_overlap.py [--pairs 20000] [--repeat 5]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np
from _common import format_summary, machine_info, machine_line, summarize  # bench/ is the script's folder

TARGET = 40_000


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Region overlap throughput (pairs/s) of both backends")
    parser.add_argument("--pairs", type=int, default=20_000, help="pairs per measurement (default 20000)")
    parser.add_argument("--repeat", type=int, default=5, help="rounds per mode (default 5); the median is reported")
    parser.add_argument("--backend", choices=["cython", "numba"], default=None,
                        help="measure only this backend, in this process (default: both, one process each)")
    return parser


def typical_pairs(count: int, seed: int = 0) -> tuple[list[list[float]], list[list[float]]]:
    """``count`` (ground truth, prediction) polygon pairs as the VOT2018 evaluation sees them."""
    rng = np.random.default_rng(seed)
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=np.float64) / 2

    def polygon(center: np.ndarray, size: np.ndarray, angle: float) -> list[float]:
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        return [float(v) for v in ((corners * size) @ rot.T + center).ravel()]

    gts, preds = [], []
    for _ in range(count):
        center = rng.uniform((100, 80), (1180, 640))
        size = rng.uniform(30, 250, 2)
        angle = rng.uniform(0, np.pi)
        gts.append(polygon(center, size, angle))
        preds.append(polygon(center + rng.normal(0, 8, 2), size * rng.uniform(0.8, 1.2, 2),
                             angle + rng.normal(0, 0.1)))
    return gts, preds


def measure(pairs: int, repeat: int) -> None:
    """Measure the backend selected at import of ``utils.region`` and print one line per mode."""
    from siammask.utils.region import BACKEND, vot_overlap, vot_overlap_traj

    gts, preds = typical_pairs(pairs)
    bounds = (1280, 720)
    vot_overlap(gts[0], preds[0], bounds)  # compile / warm up
    vot_overlap_traj(gts[:8], preds[:8], bounds)
    per_pair, per_traj = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        for gt, pred in zip(gts, preds):
            vot_overlap(gt, pred, bounds)
        per_pair.append(pairs / (time.perf_counter() - start))
        start = time.perf_counter()
        vot_overlap_traj(gts, preds, bounds)
        per_traj.append(pairs / (time.perf_counter() - start))
    for mode, rates in (("vot_overlap (per pair)", per_pair), ("vot_overlap_traj", per_traj)):
        stats = summarize(rates)
        verdict = "ok" if stats["median"] >= TARGET else f"below the {TARGET:,} target"
        print(f"{BACKEND:>6}  {mode:<24} {format_summary(stats, 'pairs/s', 0)}  ({verdict})")


def main(args: argparse.Namespace) -> int:
    if args.backend is not None:
        measure(args.pairs, args.repeat)
        return 0
    print(f"region overlap, {args.pairs:,} typical VOT pairs at 1280x720 bounds, median of {args.repeat} rounds")
    print(machine_line(machine_info(threads=1)))
    status = 0
    for backend in ("cython", "numba"):
        env = dict(os.environ, SIAMMASK_REGION_BACKEND=backend)
        cmd = [sys.executable, __file__, "--backend", backend, "--pairs", str(args.pairs), "--repeat", str(args.repeat)]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["failed"])[-1]
            print(f"{backend:>6}  unavailable: {last}")
            status = status or (1 if backend == "numba" else 0)
        else:
            print(proc.stdout.rstrip())
    return status


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
