"""Render a grid of training pairs to a PNG, to check the data pipeline by eye.

New (the original's `DataSets.__getitem__(debug=True)` wrote loose debug JPEGs). Each row: the template with its
target box (green), the search crop with the target box (green), the centres of positive anchors (red dots, the
largest-IoU anchor's box in red), negatives as small blue dots, and the mask label overlaid in green
(none on negative pairs and box-only datasets). The caption says pos/neg pair, grey, the sub-dataset.

Example::

    python tools/visualize_dataset.py --config experiments/siammask_synthetic/config.json \\
        --data-root data/synthetic --num 8 --out pairs.png
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

import cv2
import numpy as np

from siammask.datasets import SiamMaskDataset, build_train_dataset
from siammask.utils.config import load_config
from siammask.utils.errors import run_tool


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Render training pairs (template, search, anchors, mask label)")
    parser.add_argument("--config", default="experiments/siammask_synthetic/config.json", help="experiment config")
    parser.add_argument("--data-root", default="data/synthetic", help="root that dataset paths are relative to")
    parser.add_argument("--out", default="dataset_pairs.png", help="output PNG")
    parser.add_argument("--num", type=int, default=8, help="pairs to draw")
    parser.add_argument("--start", type=int, default=0, help="first sample index")
    parser.add_argument("--epoch", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    return parser


def _to_image(chw: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.clip(chw.transpose(1, 2, 0), 0, 255).astype(np.uint8))


def _box(image: np.ndarray, box: Sequence[float], color: tuple[int, int, int], thickness: int = 1) -> None:
    x1, y1, x2, y2 = (int(round(float(v))) for v in box)
    cv2.rectangle(image, (x1, y1), (x2, y2), color, thickness)


def render_pair(dataset: SiamMaskDataset, index: int, epoch: int) -> np.ndarray:
    """One row: template | search with labels. Returns (H, W, 3) uint8 BGR."""
    sample = dataset.sample(index, epoch, with_template_box=True)
    plan = dataset.plan(index, epoch)
    template = _to_image(sample["template"])
    search = _to_image(sample["search"])
    mask = sample["label_mask"][0] > 0
    if mask.any():
        overlay = search.copy()
        overlay[mask] = (0.5 * overlay[mask] + 0.5 * np.array([0, 255, 0])).astype(np.uint8)
        search = overlay
    _box(search, sample["bbox"], (0, 255, 0), 2)
    cls = sample["label_cls"]
    centres = dataset.anchor_target.centres
    for a, r, c in zip(*np.nonzero(cls == 0)):
        cv2.circle(search, (int(centres[0, a, r, c]), int(centres[1, a, r, c])), 1, (255, 0, 0), -1)
    pos = list(zip(*np.nonzero(cls == 1)))
    for a, r, c in pos:
        cv2.circle(search, (int(centres[0, a, r, c]), int(centres[1, a, r, c])), 3, (0, 0, 255), -1)
    if pos:
        iou = dataset.anchor_target.iou(sample["bbox"])
        a, r, c = max(pos, key=lambda p: iou[p])
        _box(search, dataset.anchor_target.corners[:, a, r, c], (0, 0, 255), 1)
    t = template.copy()
    _box(t, sample["template_bbox"], (0, 255, 0), 1)
    size = t.shape[0]
    height = search.shape[0]
    canvas = np.full((height + 18, size + search.shape[1] + 6, 3), 32, np.uint8)
    canvas[:size, :size] = t
    canvas[:height, size + 6:] = search
    name = dataset.subsets[plan.dataset].name
    caption = f"#{index} {'NEG' if plan.negative else 'pos'} {'gray ' if plan.gray else ''}{name} " \
              f"pos={int((cls == 1).sum())} neg={int((cls == 0).sum())}"
    cv2.putText(canvas, caption, (2, height + 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return canvas


def main(args: argparse.Namespace) -> Optional[str]:
    cfg = load_config(args.config)
    dataset = build_train_dataset(cfg, args.data_root, seed=args.seed)
    rows = [render_pair(dataset, (args.start + i) % len(dataset), args.epoch) for i in range(args.num)]
    cols = 2
    width = max(r.shape[1] for r in rows)
    padded = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))) for r in rows]
    while len(padded) % cols:
        padded.append(np.zeros_like(padded[0]))
    grid = np.vstack([np.hstack(padded[i:i + cols]) for i in range(0, len(padded), cols)])
    if not cv2.imwrite(args.out, grid):
        raise SystemExit(f"error: cannot write {args.out}")
    print(f"wrote {args.out} ({args.num} pairs)")
    return args.out


def cli() -> None:
    """Command-line entry: `main` behind the project's error boundary (one `error:` line, exit 2)."""
    sys.exit(run_tool(main, get_args_parser().parse_args()))


if __name__ == "__main__":
    cli()
