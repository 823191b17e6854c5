"""Anchor boxes of the SiamMask RPN, in the training and the tracking layouts.

Ports `utils/anchors.py` (`Anchors.generate_anchors`, `Anchors.generate_all_anchors`) and `generate_anchor` of the
original `tools/test.py`. Five anchors per position (ratios 0.33/0.5/1/2/3, scale 8, stride 8) with (w, h) =
(104, 32), (88, 40), (64, 64), (40, 80), (32, 96). Widths are `x2 - x1` (no +1).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .config import AnchorsConfig


def base_anchors(cfg: AnchorsConfig) -> np.ndarray:
    """Anchor corners centred on 0.

    Returns:
        (A, 4) float32 x1, y1, x2, y2, ratio-major then scale (A = len(ratios) * len(scales)).
    """
    size = cfg.stride * cfg.stride
    out = np.zeros((cfg.anchor_num, 4), dtype=np.float32)
    i = 0
    for r in cfg.ratios:
        if cfg.round_dight > 0:
            ws = round(math.sqrt(size / r), cfg.round_dight)
            hs = round(ws * r, cfg.round_dight)
        else:
            ws = int(math.sqrt(size / r))
            hs = int(ws * r)
        for s in cfg.scales:
            w, h = ws * s, hs * s
            out[i] = (-w * 0.5, -h * 0.5, w * 0.5, h * 0.5)
            i += 1
    return out


def training_anchors(cfg: AnchorsConfig, search_size: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """All anchors of the training response map, in absolute search-crop pixels.

    The first centre is `search_size // 2 - (size // 2) * stride` (31 for 255/25, 63 for 143/3), then every `stride`.

    Returns:
        corners (4, A, size, size) float32 x1, y1, x2, y2 and centres (4, A, size, size) float32 cx, cy, w, h,
        indexed [coord, anchor, row, col].
    """
    zero = base_anchors(cfg) + np.float32(search_size // 2 - (size // 2) * cfg.stride)
    x1, y1, x2, y2 = (zero[:, k].reshape(-1, 1, 1) for k in range(4))
    cx, cy, w, h = (x1 + x2) * 0.5, (y1 + y2) * 0.5, x2 - x1, y2 - y1
    shift = (np.arange(size, dtype=np.float32) * cfg.stride)
    grid = np.zeros((cfg.anchor_num, size, size), dtype=np.float32)
    cx = cx + shift.reshape(1, 1, -1) + grid
    cy = cy + shift.reshape(1, -1, 1) + grid
    w, h = w + grid, h + grid
    corners = np.stack([cx - w * 0.5, cy - h * 0.5, cx + w * 0.5, cy + h * 0.5]).astype(np.float32)
    centres = np.stack([cx, cy, w, h]).astype(np.float32)
    return corners, centres


def tracker_anchors(cfg: AnchorsConfig, score_size: int) -> np.ndarray:
    """Anchors of the tracking response map, relative to the search-crop centre.

    Returns:
        (A * S * S, 4) float32 cx, cy, w, h; row `a*S*S + row*S + col`, centres at -(S//2)*stride + stride*k.
    """
    base = base_anchors(cfg)
    wh = np.stack([base[:, 2] - base[:, 0], base[:, 3] - base[:, 1]], 1)
    offsets = (np.arange(score_size, dtype=np.float32) - score_size // 2) * cfg.stride
    yy, xx = np.meshgrid(offsets, offsets, indexing="ij")
    n = score_size * score_size
    out = np.empty((cfg.anchor_num * n, 4), dtype=np.float32)
    out[:, 0] = np.tile(xx.ravel(), cfg.anchor_num)
    out[:, 1] = np.tile(yy.ravel(), cfg.anchor_num)
    out[:, 2:] = np.repeat(wh, n, axis=0)
    return out


def cosine_window(score_size: int, anchor_num: int, windowing: str = "cosine") -> np.ndarray:
    """The tracker's score window: outer(hanning(S), hanning(S)) tiled per anchor, or ones for 'uniform'.

    Returns:
        (A * S * S,) float64.
    """
    if windowing == "cosine":
        window = np.outer(np.hanning(score_size), np.hanning(score_size))
    elif windowing == "uniform":
        window = np.ones((score_size, score_size))
    else:
        raise ValueError(f"windowing must be 'cosine' or 'uniform', got {windowing!r}")
    return np.tile(window.flatten(), anchor_num)


def box_iou_x1y1x2y2(anchors: np.ndarray, box: Sequence[float]) -> np.ndarray:
    """IoU of anchor corners (4, ...) with one box x1, y1, x2, y2, areas as (x2 - x1) * (y2 - y1) (no +1)."""
    x1, y1, x2, y2 = anchors[0], anchors[1], anchors[2], anchors[3]
    bx1, by1, bx2, by2 = box
    iw = np.clip(np.minimum(x2, bx2) - np.maximum(x1, bx1), 0, None)
    ih = np.clip(np.minimum(y2, by2) - np.maximum(y1, by1), 0, None)
    inter = iw * ih
    area = (x2 - x1) * (y2 - y1)
    barea = (bx2 - bx1) * (by2 - by1)
    return inter / (area + barea - inter)
