"""One call that evaluates trackers' VOT results: accuracy, robustness, lost number and EAO (optionally per tag).

Replaces the ``Pool.imap_unordered`` loops of SiamMask's ``tools/eval.py`` (which pickled whole benchmark objects
and ran accuracy/robustness and EAO in two passes): each worker reads one tracker's files once and computes both.
"""
from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .ar import ARResult, eval_accuracy_robustness
from .eao import EAOResult, eval_eao
from .results import load_tracker_trajectories, mean_area_ratio
from .vot import VOTDataset

__all__ = ["TrackerEvaluation", "evaluate_tracker", "evaluate_trackers"]


@dataclass(frozen=True)
class TrackerEvaluation:
    """Everything reported for one tracker.

    Attributes:
        name: tracker folder name.
        ar: accuracy/robustness result (per-video values included).
        eao: EAO result (per tag, with the expected-overlap curves).
        repetitions: runs per video (1 or 15).
        area_ratio: mean predicted region area / mean ground-truth area over the tracked frames.
    """

    name: str
    ar: ARResult
    eao: EAOResult
    repetitions: int
    area_ratio: float = float("nan")

    @property
    def accuracy(self) -> float:
        return self.ar.accuracy

    @property
    def robustness(self) -> float:
        return self.ar.robustness

    @property
    def lost_number(self) -> float:
        return self.ar.lost_number

    @property
    def eao_all(self) -> float:
        """EAO over all frames (the table's EAO column)."""
        return self.eao.eao["all"]


def evaluate_tracker(dataset: VOTDataset, result_dir: str | Path, tracker: str,
                     tags: Sequence[str] = ("all",)) -> TrackerEvaluation:
    """Read one tracker's result files and compute accuracy, robustness and EAO.

    Raises:
        ResultError: missing, truncated or unreadable result files.
    """
    tags = tuple(tags) if "all" in tags else ("all",) + tuple(tags)
    trajectories = load_tracker_trajectories(result_dir, tracker, dataset)
    reps = len(next(iter(trajectories.values()))) if trajectories else 0
    return TrackerEvaluation(
        name=tracker,
        ar=eval_accuracy_robustness(dataset, trajectories),
        eao=eval_eao(dataset, trajectories, tags=tags),
        repetitions=reps,
        area_ratio=mean_area_ratio(dataset, trajectories),
    )


def _evaluate_star(args: tuple) -> TrackerEvaluation:
    return evaluate_tracker(*args)


def evaluate_trackers(dataset: VOTDataset, result_dir: str | Path, trackers: Sequence[str],
                      tags: Sequence[str] = ("all",), workers: int = 1) -> dict[str, TrackerEvaluation]:
    """Evaluate several trackers, in ``workers`` processes (capped at the number of trackers).

    Returns:
        tracker name -> evaluation, in the order of ``trackers``.

    Raises:
        ResultError: from any tracker (the first one met).
    """
    jobs = [(dataset, str(result_dir), name, tuple(tags)) for name in trackers]
    workers = max(1, min(workers, len(jobs)))
    if workers == 1:
        results = [_evaluate_star(job) for job in jobs]
    else:
        with multiprocessing.get_context("spawn").Pool(processes=workers) as pool:
            results = pool.map(_evaluate_star, jobs)
    return {r.name: r for r in results}
