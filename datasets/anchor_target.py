"""RPN training targets for one search crop: anchor labels, box regression targets and their weights.

Ports `AnchorTargetLayer` of the original `datasets/siam_mask_dataset.py` (thr_high 0.6, thr_low 0.3, positive 16,
negative 16, rpn_batch 64):

* positive pair: anchors with IoU > thr_high are positive candidates, IoU < thr_low negative ones (both strict);
  at most `positive` positives are kept at random, then at most ``rpn_batch - kept positives`` negatives; kept
  positives get the loc weight ``1 / (n_pos + 1e-6)``; the regression targets are filled for every anchor;
* negative pair: only the anchors of the central 7x7 cells are candidates and `negative` of them become label 0.

The random subsampling draws from the numpy Generator passed in (the original used numpy's global legacy RNG, which
made its picks depend on the worker); conformance compares candidates exactly and picks as subsets with counts.
Deviation: for a response map smaller than 7x7 the central window is clamped to the map (the original's negative
slice start wrapped around for the 3x3 refine map; that configuration has neg = 0).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..utils.anchors import box_iou_x1y1x2y2, training_anchors
from ..utils.config import AnchorsConfig, AnchorTargetConfig, response_size


@dataclass(frozen=True)
class AnchorTargets:
    """Labels for one sample (A anchors per cell, S x S cells)."""

    label_cls: np.ndarray  # (A, S, S) int64: -1 ignore, 0 negative, 1 positive
    label_loc: np.ndarray  # (4, A, S, S) float32: dx, dy, dw, dh
    label_loc_weight: np.ndarray  # (A, S, S) float32: 1 / (n_pos + 1e-6) on kept positives


class AnchorTarget:
    """Computes :class:`AnchorTargets` for target boxes in a `search_size` crop with a `size` x `size` map."""

    def __init__(self, cfg: AnchorTargetConfig, anchors_cfg: AnchorsConfig, search_size: int, size: int) -> None:
        self.cfg = cfg
        self.size = size
        corners, centres = training_anchors(anchors_cfg, search_size, size)
        self.corners = corners  # (4, A, S, S) float32 x1, y1, x2, y2
        self.centres = centres  # (4, A, S, S) float32 cx, cy, w, h
        self.anchor_num = corners.shape[1]
        lo = max(size // 2 - 3, 0)
        hi = min(size // 2 + 3 + 1, size)
        window = np.zeros((self.anchor_num, size, size), dtype=bool)
        window[:, lo:hi, lo:hi] = True
        self._neg_pair_candidates = np.flatnonzero(window)  # flat indices into (A, S, S)

    @classmethod
    def for_crops(cls, cfg: AnchorTargetConfig, anchors_cfg: AnchorsConfig, search_size: int, template_size: int,
                  base_size: int) -> "AnchorTarget":
        """The anchor target of a `search_size` / `template_size` pair: map side from :func:`response_size`."""
        return cls(cfg, anchors_cfg, search_size,
                   response_size(search_size, template_size, anchors_cfg.stride, base_size))

    @property
    def shape(self) -> tuple[int, int, int]:
        """(A, S, S)."""
        return self.anchor_num, self.size, self.size

    def iou(self, box_x1y1x2y2: Sequence[float]) -> np.ndarray:
        """IoU of every anchor with the box: (A, S, S) float32 (no +1 in areas, as the original)."""
        return box_iou_x1y1x2y2(self.corners, tuple(float(v) for v in box_x1y1x2y2))

    def delta(self, box_x1y1x2y2: Sequence[float]) -> np.ndarray:
        """Regression targets of every anchor: (4, A, S, S) float32 dx = (tcx - cx) / w, dy, dw = ln(tw / w), dh."""
        x1, y1, x2, y2 = (float(v) for v in box_x1y1x2y2)
        tcx, tcy, tw, th = (x1 + x2) * 0.5, (y1 + y2) * 0.5, x2 - x1, y2 - y1
        cx, cy, w, h = self.centres
        out = np.empty((4,) + self.shape, dtype=np.float32)
        np.divide(tcx - cx, w, out=out[0])
        np.divide(tcy - cy, h, out=out[1])
        with np.errstate(divide="ignore"):
            np.log(tw / w, out=out[2])
            np.log(th / h, out=out[3])
        return out

    def candidates(self, box_x1y1x2y2: Sequence[float]) -> np.ndarray:
        """Labels before subsampling for a positive pair: 1 where IoU > thr_high, 0 where IoU < thr_low, else -1.

        Returns:
            (A, S, S) int64.
        """
        iou = self.iou(box_x1y1x2y2)
        out = np.full(self.shape, -1, dtype=np.int64)
        out[iou < self.cfg.thr_low] = 0
        out[iou > self.cfg.thr_high] = 1
        return out

    def __call__(self, box_x1y1x2y2: Sequence[float], negative_pair: bool, rng: np.random.Generator) -> AnchorTargets:
        """Sampled targets for a positive pair (box = target in the search crop) or a negative pair.

        Args:
            box_x1y1x2y2: target box in search-crop pixels (ignored for a negative pair).
            negative_pair: template and search show different objects.
            rng: source of the random subsampling.
        """
        cls = np.full(self.anchor_num * self.size * self.size, -1, dtype=np.int64)
        weight = np.zeros(cls.shape, dtype=np.float32)
        if negative_pair:
            keep = _subsample(self._neg_pair_candidates, self.cfg.negative, rng)
            cls[keep] = 0
            delta = np.zeros((4,) + self.shape, dtype=np.float32)
            return AnchorTargets(cls.reshape(self.shape), delta, weight.reshape(self.shape))
        iou = self.iou(box_x1y1x2y2).ravel()
        pos = _subsample(np.flatnonzero(iou > self.cfg.thr_high), self.cfg.positive, rng)
        neg = _subsample(np.flatnonzero(iou < self.cfg.thr_low), self.cfg.rpn_batch - len(pos), rng)
        cls[pos] = 1
        cls[neg] = 0
        weight[pos] = 1.0 / (len(pos) + 1e-6)
        return AnchorTargets(cls.reshape(self.shape), self.delta(box_x1y1x2y2), weight.reshape(self.shape))


def _subsample(candidates: np.ndarray, keep: int, rng: np.random.Generator) -> np.ndarray:
    """All candidates when there are no more than `keep`, else `keep` of them uniformly without replacement."""
    if len(candidates) <= keep:
        return candidates
    return candidates[rng.choice(len(candidates), size=max(keep, 0), replace=False)]
