"""DAVIS J&F evaluation time on a DAVIS-2017-val-sized set (30 sequences, 1999 frames, 61 objects, 854x480).

Generates ground-truth and result palette PNGs of that size (moving ellipses; the result is the ground truth
shifted and reshaped a little) into a temporary folder, then times ``evaluate_davis`` with 1 and with --workers
processes. The target is under a minute on 2 cores.

Usage::

    python bench/davis_eval.py [--workers 2] [--keep DIR]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import cv2
import numpy as np

from siammask.evaluation.davis import evaluate_davis, load_davis
from siammask.utils.palette import write_palette_png

FRAMES = [67] * 19 + [66] * 11  # 30 sequences, 1999 frames
SIZE = (854, 480)


def objects_of(i: int) -> int:
    """1-4 objects per sequence, 61 in all (DAVIS-2017 val has 61)."""
    return 1 + (i % 3 == 0) + (i % 2 == 0) + (i % 5 == 0)


def generate(root: str, seed: int = 0) -> tuple[str, str]:
    rng = np.random.default_rng(seed)
    data, res = os.path.join(root, "data"), os.path.join(root, "res", "bench")
    names = []
    for i, n in enumerate(FRAMES):
        name = f"seq{i:02d}"
        names.append(name)
        os.makedirs(os.path.join(data, "DAVIS", "JPEGImages", "480p", name), exist_ok=True)
        for t in range(n):
            open(os.path.join(data, "DAVIS", "JPEGImages", "480p", name, f"{t:05d}.jpg"), "wb").close()
            gt = np.zeros(SIZE[::-1], np.uint8)
            out = np.zeros_like(gt)
            for o in range(objects_of(i)):
                c = (150 + 150 * o + 2 * t, int(240 + 50 * np.sin(t / 10 + o)))
                cv2.ellipse(gt, c, (60 + 10 * o, 40), t, 0, 360, o + 1, -1)
                shift = (c[0] + int(rng.integers(-6, 7)), c[1] + int(rng.integers(-6, 7)))
                cv2.ellipse(out, shift, (58 + 10 * o, 42), t + 3, 0, 360, o + 1, -1)
            write_palette_png(os.path.join(data, "DAVIS", "Annotations", "480p", name, f"{t:05d}.png"), gt)
            write_palette_png(os.path.join(res, name, f"{t:05d}.png"), out)
    os.makedirs(os.path.join(data, "DAVIS", "ImageSets", "2017"), exist_ok=True)
    with open(os.path.join(data, "DAVIS", "ImageSets", "2017", "val.txt"), "w", encoding="utf-8") as f:
        f.write("\n".join(names) + "\n")
    return data, res


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", default="", help="generate into this folder (and reuse it next time)")
    args = parser.parse_args()
    root = args.keep or tempfile.mkdtemp(prefix="davis_bench_")
    if not os.path.isdir(os.path.join(root, "res")):
        tic = time.perf_counter()
        generate(root)
        print(f"generated in {time.perf_counter() - tic:.1f}s: {root}")
    data, res = os.path.join(root, "data"), os.path.join(root, "res", "bench")
    sequences = load_davis(data, "2017")
    print(f"{len(sequences)} sequences, {sum(len(s.frames) for s in sequences)} frames, "
          f"{sum(len(s.objects) for s in sequences)} objects")
    for workers in sorted({1, args.workers}):
        tic = time.perf_counter()
        ev = evaluate_davis(sequences, res, "bench", workers=workers)
        print(f"workers {workers}: {time.perf_counter() - tic:.1f}s  J&F-Mean {ev.summary()['J&F-Mean']:.4f}")


if __name__ == "__main__":
    main()
