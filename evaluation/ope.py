"""One-pass evaluation (OPE): success (AUC), precision and normalized precision with pysot's definitions.

Ports pysot's ``toolkit/utils/statistics.py`` (``overlap_ratio``, ``success_overlap``, ``success_error``) and
``toolkit/evaluation/ope_benchmark.py`` (``OPEBenchmark.eval_success`` / ``eval_precision`` / ``eval_norm_precision``
and the summary numbers of ``show_result``). For a video of N ground-truth frames (boxes ``x, y, w, h``):

* IoU: ``left = max(x1, x2)``, ``right = min(x1 + w1, x2 + w2)`` (no +1), likewise top/bottom; intersection
  ``max(0, right - left) * max(0, bottom - top)``, union ``w1 h1 + w2 h2 - intersection``, IoU clipped to [0, 1];
* success curve at the 21 thresholds ``np.arange(0, 1.05, 0.05)``: frames with IoU *strictly above* the threshold
  divided by N; frames whose ground truth has w <= 0 or h <= 0 (or NaN) get IoU -1, so they never count;
* centres ``x + (w - 1) / 2``, ``y + (h - 1) / 2`` (the -1 of pysot's ``convert_bb_to_center``); precision curve at
  ``np.arange(0, 51, 1)`` pixels: frames with centre distance *at most* the threshold divided by N; frames whose
  ground-truth centre has a coordinate <= 0 get distance -1, **so they count as hits at every threshold** (pysot's
  rule, kept for its numbers);
* normalized precision: both centres divided by the ground-truth ``(w, h) + 1e-16``, thresholds
  ``np.arange(0, 51, 1) / 100``, the same distance rule;
* LaSOT: frames whose json ``absent`` value is not 1 are removed before scoring while N stays the full length
  (they count as misses in success and precision);
* the first frame is scored like any other (pysot's test.py writes the init box there);
* a tracker's Success (AUC) = mean of all its videos' success curves over videos and thresholds; Precision = the
  mean precision curve at 20 px (index 20), Norm Precision = the mean normalized curve at 0.2 (index 20).
  Per attribute, the same means over that attribute's videos (pysot's ``draw_success_precision``).

Differences: pysot computes norm precision only for LaSOT in its eval.py; here it is computed for every dataset.
"""
from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from .ope_datasets import OPEDataset, load_ope_result

__all__ = ["SUCCESS_THRESHOLDS", "PRECISION_THRESHOLDS", "NORM_PRECISION_THRESHOLDS", "REPORT_INDEX",
           "overlap_ratio", "box_centers", "normalized_centers", "success_curve", "distance_curve",
           "OPEVideoScores", "evaluate_ope_video", "OPETrackerResult", "evaluate_ope_tracker", "evaluate_ope"]

#: IoU thresholds of the success plot (21 values, as pysot builds them: 0.15000000000000002 etc.).
SUCCESS_THRESHOLDS = np.arange(0, 1.05, 0.05)
#: Centre-distance thresholds of the precision plot, pixels.
PRECISION_THRESHOLDS = np.arange(0, 51, 1)
#: Normalized centre-distance thresholds.
NORM_PRECISION_THRESHOLDS = np.arange(0, 51, 1) / 100
#: Index of the reported precision (20 px) and normalized precision (0.2).
REPORT_INDEX = 20


def overlap_ratio(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Row-wise IoU of ``x, y, w, h`` boxes (pysot's ``overlap_ratio``: right = x + w, clipped to [0, 1]).

    Args:
        boxes_a: (N, 4).
        boxes_b: (N, 4).

    Returns:
        (N,) float64.
    """
    a = np.asarray(boxes_a, dtype=np.float64)
    b = np.asarray(boxes_b, dtype=np.float64)
    left = np.maximum(a[:, 0], b[:, 0])
    right = np.minimum(a[:, 0] + a[:, 2], b[:, 0] + b[:, 2])
    top = np.maximum(a[:, 1], b[:, 1])
    bottom = np.minimum(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3])
    inter = np.maximum(0, right - left) * np.maximum(0, bottom - top)
    union = a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inter / union
    return np.maximum(np.minimum(1, iou), 0)


def box_centers(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) ``x, y, w, h`` -> (N, 2) centres ``x + (w - 1) / 2``, ``y + (h - 1) / 2`` (pysot's pixel centres)."""
    boxes = np.asarray(boxes, dtype=np.float64)
    return np.stack([boxes[:, 0] + (boxes[:, 2] - 1) / 2, boxes[:, 1] + (boxes[:, 3] - 1) / 2], axis=1)


def normalized_centers(boxes: np.ndarray, gt_wh: np.ndarray) -> np.ndarray:
    """(N, 2) centres of `boxes` divided by the ground-truth sizes ``gt_wh`` (N, 2) + 1e-16."""
    return box_centers(boxes) / (np.asarray(gt_wh, dtype=np.float64) + 1e-16)


def success_curve(gt: np.ndarray, pred: np.ndarray, num_frames: int,
                  thresholds: np.ndarray = SUCCESS_THRESHOLDS) -> np.ndarray:
    """Fraction of `num_frames` whose IoU is above each threshold; ground truth with w or h <= 0 never counts.

    Args:
        gt: (M, 4) ground truth (M <= num_frames after LaSOT's absent filter).
        pred: (M, 4) tracker boxes.
        num_frames: the denominator (the video's full length).

    Returns:
        (len(thresholds),) float64.
    """
    gt = np.asarray(gt, dtype=np.float64).reshape(-1, 4)
    pred = np.asarray(pred, dtype=np.float64).reshape(-1, 4)
    iou = np.full(len(gt), -1.0)
    valid = (gt[:, 2] > 0) & (gt[:, 3] > 0)
    iou[valid] = overlap_ratio(gt[valid], pred[valid])
    return np.array([np.sum(iou > t) / float(num_frames) for t in thresholds], dtype=np.float64)


def distance_curve(gt_centers: np.ndarray, pred_centers: np.ndarray, thresholds: np.ndarray,
                   num_frames: int) -> np.ndarray:
    """Fraction of `num_frames` whose centre distance is at most each threshold (pysot's ``success_error``).

    Frames whose ground-truth centre has a coordinate <= 0 (or NaN) get distance -1 and so count at every threshold.

    Args:
        gt_centers: (M, 2).
        pred_centers: (M, 2).

    Returns:
        (len(thresholds),) float64.
    """
    gt_centers = np.asarray(gt_centers, dtype=np.float64).reshape(-1, 2)
    pred_centers = np.asarray(pred_centers, dtype=np.float64).reshape(-1, 2)
    dist = np.full(len(gt_centers), -1.0)
    valid = (gt_centers[:, 0] > 0) & (gt_centers[:, 1] > 0)
    diff = gt_centers[valid] - pred_centers[valid]
    dist[valid] = np.sqrt(np.sum(np.power(diff, 2), axis=1))
    return np.array([np.sum(dist <= t) / float(num_frames) for t in thresholds], dtype=np.float64)


@dataclass(frozen=True)
class OPEVideoScores:
    """One video's curves.

    Attributes:
        success: (21,) success curve.
        precision: (51,) precision curve (0..50 px).
        norm_precision: (51,) normalized precision curve (0..0.5).
    """

    success: np.ndarray
    precision: np.ndarray
    norm_precision: np.ndarray

    @property
    def auc(self) -> float:
        """Mean of the success curve."""
        return float(np.mean(self.success))


def evaluate_ope_video(gt: np.ndarray, pred: np.ndarray, absent: Optional[np.ndarray] = None) -> OPEVideoScores:
    """Score one trajectory against its ground truth (module docstring for the rules).

    Args:
        gt: (N, 4) ground truth.
        pred: (N, 4) tracker boxes.
        absent: LaSOT's (N,) per-frame list: only frames where it is 1 are scored (N stays the denominator).
    """
    gt = np.asarray(gt, dtype=np.float64).reshape(-1, 4)
    pred = np.asarray(pred, dtype=np.float64).reshape(-1, 4)
    if len(gt) != len(pred):
        raise ValueError(f"{len(pred)} boxes for {len(gt)} ground-truth frames")
    n = len(gt)
    if absent is not None:
        keep = np.asarray(absent) == 1
        gt, pred = gt[keep], pred[keep]
    return OPEVideoScores(
        success=success_curve(gt, pred, n),
        precision=distance_curve(box_centers(gt), box_centers(pred), PRECISION_THRESHOLDS, n),
        norm_precision=distance_curve(normalized_centers(gt, gt[:, 2:4]), normalized_centers(pred, gt[:, 2:4]),
                                      NORM_PRECISION_THRESHOLDS, n),
    )


@dataclass(frozen=True)
class OPETrackerResult:
    """One tracker's OPE scores, per video, with pysot's summary numbers over any subset of videos."""

    name: str
    videos: dict[str, OPEVideoScores]

    def _pick(self, videos: Optional[Sequence[str]]) -> list[OPEVideoScores]:
        if videos is None:
            return list(self.videos.values())
        wanted = set(videos)
        return [s for v, s in self.videos.items() if v in wanted]

    def success_curve(self, videos: Optional[Sequence[str]] = None) -> np.ndarray:
        """(21,) mean success curve over `videos` (default all)."""
        return np.mean([s.success for s in self._pick(videos)], axis=0)

    def precision_curve(self, videos: Optional[Sequence[str]] = None) -> np.ndarray:
        """(51,) mean precision curve."""
        return np.mean([s.precision for s in self._pick(videos)], axis=0)

    def norm_precision_curve(self, videos: Optional[Sequence[str]] = None) -> np.ndarray:
        """(51,) mean normalized precision curve."""
        return np.mean([s.norm_precision for s in self._pick(videos)], axis=0)

    def auc(self, videos: Optional[Sequence[str]] = None) -> float:
        """Success (AUC): mean over the videos and the 21 thresholds (pysot's ``np.mean(list(values))``)."""
        return float(np.mean([s.success for s in self._pick(videos)]))

    def precision(self, videos: Optional[Sequence[str]] = None) -> float:
        """Precision at 20 px."""
        return float(self.precision_curve(videos)[REPORT_INDEX])

    def norm_precision(self, videos: Optional[Sequence[str]] = None) -> float:
        """Normalized precision at 0.2."""
        return float(self.norm_precision_curve(videos)[REPORT_INDEX])


def evaluate_ope_tracker(dataset: OPEDataset, result_root: str | Path, tracker: str) -> OPETrackerResult:
    """Read one tracker's result files (``<result_root>/<tracker>/...``) and score every video of `dataset`.

    Raises:
        ResultError: a missing, unreadable or wrongly sized result file (the message names it).
    """
    scores = {}
    for video in dataset:
        boxes = load_ope_result(result_root, tracker, video, dataset)
        scores[video.name] = evaluate_ope_video(video.gt, boxes, video.absent)
    return OPETrackerResult(name=tracker, videos=scores)


def _evaluate_star(job: tuple[OPEDataset, str, str]) -> OPETrackerResult:
    return evaluate_ope_tracker(*job)


def evaluate_ope(dataset: OPEDataset, result_root: str | Path, trackers: Sequence[str],
                 workers: int = 1) -> dict[str, OPETrackerResult]:
    """Evaluate several trackers, in `workers` processes (capped at the number of trackers).

    Returns:
        tracker name -> result, in the order of `trackers`.
    """
    jobs = [(dataset, str(result_root), name) for name in trackers]
    workers = max(1, min(workers, len(jobs)))
    if workers == 1:
        results = [_evaluate_star(job) for job in jobs]
    else:
        with multiprocessing.get_context("spawn").Pool(processes=workers) as pool:
            results = pool.map(_evaluate_star, jobs)
    return {r.name: r for r in results}
