"""VOT accuracy and robustness (reset-based "baseline" experiment).

Ports ``AccuracyRobustnessBenchmark`` of SiamMask's ``utils/pysot/evaluation/ar_benchmark.py`` with
``calculate_failures`` / ``calculate_accuracy`` of ``utils/pysot/utils/statistics.py`` (pysot-toolkit):

* failures are the frames whose line is ``2``;
* per-frame overlaps use the rasterised VOT overlap with bounds ``(width, height)``; the initialisation frame
  (line ``1``) and the ``burnin - 1`` frames after it count as unknown (NaN), as do the special lines themselves;
* a video's per-frame overlap is the NaN-mean over repetitions; accuracy is the NaN-mean over all frames of all
  videos; robustness is the mean over repetitions of ``total failures / total frames * 100``; the lost number is the
  mean over repetitions of the total failures.

Implemented independently; ``tests/test_eval.py`` checks it against a plain transcription of pysot's formulas.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from siammask.utils.region import vot_overlap_traj

from .vot import VOTDataset

__all__ = ["BURNIN", "failure_frames", "trajectory_overlaps", "ARResult", "eval_accuracy_robustness"]

BURNIN = 10  # frames ignored for accuracy from each (re-)initialisation on, the init frame included

Region = Sequence[float]


def _is_code(region: Region, code: int) -> bool:
    return len(region) == 1 and region[0] == code


def failure_frames(traj: Sequence[Region]) -> list[int]:
    """0-based indices of the failure lines (``[2]``) of a trajectory."""
    return [i for i, region in enumerate(traj) if _is_code(region, 2)]


def trajectory_overlaps(traj: Sequence[Region], gt: Sequence[Region] | np.ndarray, bounds: tuple[float, float],
                        burnin: int = 0) -> np.ndarray:
    """Per-frame VOT overlaps of a result trajectory with the ground truth.

    Args:
        traj: result regions, one per frame (``[1]``/``[2]``/``[0]`` or coordinates).
        gt: ground-truth regions (list or ``(N, K)`` array).
        bounds: ``(width, height)`` clipping bounds.
        burnin: frames from each initialisation on (the init frame included) that count as unknown.

    Returns:
        float64 ``(min(len(traj), len(gt)),)`` overlaps; NaN for unknown frames and special lines.
    """
    n = min(len(traj), len(gt))
    overlaps = vot_overlap_traj(traj[:n], gt[:n], bounds)
    if burnin > 0:
        for i in range(n):
            if _is_code(traj[i], 1):
                overlaps[i:i + burnin] = np.nan
    return overlaps


def _nanmean(values: np.ndarray, axis: int | None = None) -> np.ndarray | float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        return np.nanmean(values, axis=axis)


@dataclass(frozen=True)
class ARResult:
    """Accuracy/robustness of one tracker.

    Attributes:
        overlaps: video -> float64 ``(N,)`` per-frame overlap, NaN-mean over repetitions (NaN = unknown frame).
        failures: video -> number of failures of each repetition.
    """

    overlaps: dict[str, np.ndarray]
    failures: dict[str, list[int]]

    @property
    def num_frames(self) -> int:
        """Total number of frames over all videos."""
        return int(sum(len(v) for v in self.overlaps.values()))

    @property
    def accuracy(self) -> float:
        """NaN-mean overlap over all frames of all videos."""
        if not self.overlaps:
            return float("nan")
        return float(_nanmean(np.concatenate(list(self.overlaps.values()))))

    def _failures_per_repetition(self) -> np.ndarray:
        """``(R,)`` total failures of each repetition over all videos."""
        return np.sum(np.asarray(list(self.failures.values()), dtype=np.float64), axis=0)

    @property
    def robustness(self) -> float:
        """Mean over repetitions of ``failures / frames * 100`` (pysot's "Robustness" column)."""
        return float(np.mean(self._failures_per_repetition() / self.num_frames) * 100)

    @property
    def lost_number(self) -> float:
        """Mean over repetitions of the total number of failures (pysot's "Lost Number")."""
        return float(np.mean(self._failures_per_repetition()))

    def video_accuracy(self, video: str) -> float:
        """NaN-mean overlap of one video."""
        return float(_nanmean(self.overlaps[video]))

    def video_lost(self, video: str) -> float:
        """Mean number of failures of one video over repetitions."""
        return float(np.mean(self.failures[video]))


def eval_accuracy_robustness(dataset: VOTDataset, trajectories: dict[str, list[Sequence[Region]]],
                             burnin: int = BURNIN) -> ARResult:
    """Accuracy and robustness of one tracker on ``dataset``.

    Args:
        dataset: the VOT dataset (ground truth, image sizes).
        trajectories: video -> repetitions (``evaluation.results.load_tracker_trajectories``).
        burnin: frames ignored after each initialisation (10 in VOT and pysot).

    Returns:
        The per-video overlaps and failures; the summary numbers are properties of the result.
    """
    overlaps: dict[str, np.ndarray] = {}
    failures: dict[str, list[int]] = {}
    for video in dataset:
        reps = trajectories[video.name]
        bounds = (video.width, video.height)
        per_rep = [trajectory_overlaps(traj, video.gt, bounds, burnin) for traj in reps]
        overlaps[video.name] = np.asarray(_nanmean(np.stack(per_rep), axis=0), dtype=np.float64)
        failures[video.name] = [len(failure_frames(traj)) for traj in reps]
    return ARResult(overlaps=overlaps, failures=failures)
