"""Box helpers; every name carries its formats.

Ports `utils/bbox_helper.py` of the original SiamMask (`cxy_wh_2_rect`, `get_axis_aligned_bbox`) and the small box
conversions inlined in `tools/test.py` (`track_vot`: rectangle -> polygon for the overlap, `track_vos`: box of a mask
via `cv2.boundingRect`) and `utils/benchmark_helper.load_dataset` (4-value VOT ground truth -> 8-value polygon).

Formats (0-based pixels):

* ``xywh``: top-left x, y, width, height;
* ``cxcywh``: centre x, y, width, height;
* ``x1y1x2y2``: corners with ``w = x2 - x1`` (no +1, as the original);
* ``polygon8``: flat 8 values x1, y1, ..., x4, y4; ``corners4x2``: the same as a (4, 2) array.
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np


def xywh_to_cxcywh(box: Sequence[float]) -> np.ndarray:
    """(x, y, w, h) -> (cx, cy, w, h) float64, centre = x + w / 2 (the original's `track_vos` / demo rule)."""
    x, y, w, h = (float(v) for v in box)
    return np.array([x + w / 2, y + h / 2, w, h], dtype=np.float64)


def cxcywh_to_xywh(pos: Sequence[float], sz: Sequence[float]) -> np.ndarray:
    """Centre `pos` (cx, cy) and size `sz` (w, h) -> (x, y, w, h) float64; the original's `cxy_wh_2_rect`."""
    return np.array([pos[0] - sz[0] / 2, pos[1] - sz[1] / 2, sz[0], sz[1]], dtype=np.float64)


def xywh_to_corners4x2(box: Sequence[float]) -> np.ndarray:
    """(x, y, w, h) -> (4, 2) float64 corners (x, y), (x+w, y), (x+w, y+h), (x, y+h).

    This is the order `siamese_track` uses for the empty-mask polygon and `track_vot` for the box overlap.
    """
    x, y, w, h = (float(v) for v in box)
    return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], dtype=np.float64)


def xywh_to_polygon8(box: Sequence[float]) -> list[float]:
    """(x, y, w, h) -> flat 8-value polygon in the order of :func:`xywh_to_corners4x2`."""
    return [float(v) for v in xywh_to_corners4x2(box).ravel()]


def vot_rect_to_polygon8(rect: Sequence[float]) -> np.ndarray:
    """A 4-value VOT ground-truth rectangle -> 8-value polygon, as `benchmark_helper.load_dataset` converts it.

    The corners are (x, y), (x, y+h-1), (x+w-1, y+h-1), (x+w-1, y): inclusive pixel ends (note the -1), counter-
    clockwise from the top-left.
    """
    x, y, w, h = (float(v) for v in rect)
    return np.array([x, y, x, y + h - 1, x + w - 1, y + h - 1, x + w - 1, y], dtype=np.float64)


def get_axis_aligned_bbox(region: Sequence[float]) -> tuple[float, float, float, float]:
    """Initial (cx, cy, w, h) of a VOT region, the original's `get_axis_aligned_bbox`.

    For an 8-value polygon: centre = mean of the vertices; w, h = the axis-aligned extent scaled by
    sqrt(A1 / A2) (A1 = |p1 - p2| * |p2 - p3|, the rotated rectangle's area; A2 = the extent's area), plus 1.
    For a 4-value (x, y, w, h) rectangle: its centre and size.
    """
    region = np.asarray(region, dtype=np.float64).ravel()
    if region.size == 8:
        xs, ys = region[0::2], region[1::2]
        cx, cy = float(np.mean(xs)), float(np.mean(ys))
        x1, x2, y1, y2 = min(xs), max(xs), min(ys), max(ys)
        a1 = np.linalg.norm(region[0:2] - region[2:4]) * np.linalg.norm(region[2:4] - region[4:6])
        a2 = (x2 - x1) * (y2 - y1)
        s = np.sqrt(a1 / a2)
        return cx, cy, float(s * (x2 - x1) + 1), float(s * (y2 - y1) + 1)
    if region.size == 4:
        x, y, w, h = (float(v) for v in region)
        return x + w / 2, y + h / 2, w, h
    raise ValueError(f"a VOT region has 4 or 8 values, got {region.size}")


def mask_to_xywh(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Box (x, y, w, h) of the non-zero pixels of an HxW mask: `cv2.boundingRect`, as the original VOS init.

    Returns (0, 0, 0, 0) for an empty mask.
    """
    return tuple(int(v) for v in cv2.boundingRect((np.asarray(mask) > 0).astype(np.uint8)))  # type: ignore[return-value]
