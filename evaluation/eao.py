"""VOT expected average overlap (EAO), reset-based, without the GMM interval estimation.

Ports ``EAOBenchmark`` of SiamMask's ``utils/pysot/evaluation/eao_benchmark.py`` and ``calculate_expected_overlap``
of ``utils/pysot/utils/statistics.py`` (pysot-toolkit):

* per-frame overlaps use bounds ``(width - 1, height - 1)`` and no burn-in; special lines give NaN;
* each failure ``f`` (line ``2``) starts a new fragment at ``f + skipping`` (``skipping = 5``, when that frame is in
  the sequence); every fragment but the last of a run is padded with zeros to the longest sequence (the tracker
  counts as failed from then on), the last one ends with the sequence; NaNs inside fragments of a run with failures
  become 0 (a run without failure keeps them);
* fragment weights = ``(1 / repetitions) * (fraction of the fragment's frames carrying the tag)``;
* the expected-overlap curve ``E[l]`` (float32, ``E[0] = 1``) is the weighted mean, over the fragments still alive
  at length ``l``, of the fragment's mean overlap over frames ``1..l``; EAO is the mean of ``E`` over
  ``[low, high]`` (1-based lengths): VOT2016/2017/2018 ``[100, 356]``, VOT2019 ``[46, 291]``.

VOT2016 uses ``[100, 356]`` as in the SiamMask release (upstream pysot later switched to ``[108, 371]``). Where every
fragment alive at some length has zero weight (a tag absent from the dataset) pysot's numba code raises
``ZeroDivisionError``; here that length's ``E`` is NaN and the tag's EAO is NaN when no length of the interval is
defined. The curve is computed with running sums over fragment chunks instead of pysot's quadratic loop; results
agree to ~1e-7 (``tests/test_eval.py`` checks it against a plain transcription).
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .ar import failure_frames, trajectory_overlaps
from .vot import VOTDataset

__all__ = ["EAO_INTERVALS", "SKIPPING", "eao_interval", "expected_overlap_curve", "EAOResult", "eval_eao"]

EAO_INTERVALS = {"VOT2016": (100, 356), "VOT2017": (100, 356), "VOT2018": (100, 356), "VOT2019": (46, 291)}
SKIPPING = 5  # frames between a failure and the re-initialisation, as in the VOT reset protocol


def eao_interval(dataset_name: str) -> tuple[int, int]:
    """The ``[low, high]`` sequence-length interval of a VOT dataset.

    Raises:
        ValueError: no interval is known for that dataset.
    """
    try:
        return EAO_INTERVALS[dataset_name]
    except KeyError:
        raise ValueError(f"no EAO interval for dataset '{dataset_name}'; known: {', '.join(EAO_INTERVALS)}") from None


def expected_overlap_curve(fragments: np.ndarray, weights: np.ndarray, chunk: int = 512) -> np.ndarray:
    """Expected overlap as a function of sequence length.

    Args:
        fragments: float64 ``(F, L)`` per-frame overlaps of each fragment, NaN after a fragment ends.
        weights: float64 ``(F,)`` fragment weights.
        chunk: fragments processed at once (bounds the memory to ``chunk * L`` floats).

    Returns:
        float32 ``(L,)``: ``E[0] = 1``; ``E[l]`` = weighted mean over the fragments whose frame ``l`` is not NaN of
        their mean over frames ``1..l`` (0 where no fragment is alive, NaN where their weights sum to 0).
    """
    count, length = fragments.shape
    curve = np.zeros(length, np.float32)
    if length == 0:
        return curve
    curve[0] = 1
    if length == 1 or count == 0:
        return curve
    num = np.zeros(length - 1)
    den = np.zeros(length - 1)
    alive_any = np.zeros(length - 1, bool)
    lengths = np.arange(1, length, dtype=np.float64)
    for start in range(0, count, chunk):
        part = fragments[start:start + chunk, 1:]
        w = weights[start:start + chunk, None]
        alive = ~np.isnan(part)
        means = np.cumsum(part, axis=1) / lengths
        with np.errstate(invalid="ignore"):
            num += np.where(alive, means * w, 0.0).sum(axis=0)
            den += np.where(alive, w, 0.0).sum(axis=0)
        alive_any |= alive.any(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        curve[1:][alive_any] = num[alive_any] / den[alive_any]
    return curve


@dataclass(frozen=True)
class _Fragment:
    """Frames ``[start, stop)`` of run ``run``.

    ``padded``: zero-filled to the full length; ``nan_to_zero``: NaN overlaps count as 0; the fragment's weight is
    the tag sum over frames ``[start, tag_stop)`` divided by ``denom``.
    """

    run: int
    start: int
    stop: int
    padded: bool
    nan_to_zero: bool
    tag_stop: int
    denom: float


def _split(overlaps: np.ndarray, failures: list[int], traj_len: int, max_len: int, skipping: int,
           run: int) -> list[_Fragment]:
    """Fragments of one run (see the module docstring)."""
    n = len(overlaps)
    if not failures:
        stop = min(n, max_len)
        return [_Fragment(run, 0, stop, False, False, stop, float(stop))]
    points = [0] + [f + skipping for f in failures if f + skipping <= n]
    out = []
    for i, start in enumerate(points):
        if i < len(points) - 1:
            end = points[i + 1]
            out.append(_Fragment(run, start, min(end + 1, n), True, True, end + 1, float(end - start + 1)))
        else:
            out.append(_Fragment(run, start, n, False, True, n, traj_len - start + 1e-16))
    return out


@dataclass(frozen=True)
class EAOResult:
    """EAO of one tracker.

    Attributes:
        eao: tag -> expected average overlap (NaN when undefined for that tag).
        curves: tag -> float32 expected-overlap curve indexed by sequence length.
        interval: the ``(low, high)`` lengths averaged.
    """

    eao: dict[str, float]
    curves: dict[str, np.ndarray]
    interval: tuple[int, int]


def eval_eao(dataset: VOTDataset, trajectories: dict[str, list[Sequence[Sequence[float]]]],
             tags: Sequence[str] = ("all",), skipping: int = SKIPPING,
             interval: tuple[int, int] | None = None) -> EAOResult:
    """Expected average overlap of one tracker on ``dataset``, per tag.

    Args:
        dataset: the VOT dataset.
        trajectories: video -> repetitions (``evaluation.results.load_tracker_trajectories``).
        tags: tags to evaluate (``all``, the five VOT attributes, ``empty``).
        skipping: frames from a failure to the re-initialisation.
        interval: ``(low, high)``; default from the dataset name (``eao_interval``).

    Returns:
        EAO and expected-overlap curve per tag.
    """
    low, high = interval if interval is not None else eao_interval(dataset.name)
    run_tags: list[dict[str, np.ndarray]] = []  # the tags of each run's video
    fragments_meta: list[_Fragment] = []
    overlaps_all: list[np.ndarray] = []
    failures_all: list[list[int]] = []
    lengths: list[int] = []
    reps = 1
    for video in dataset:
        video_reps = trajectories[video.name]
        reps = len(video_reps)  # pysot weighs by the repetitions of the last video; all are equal here
        for traj in video_reps:
            overlaps_all.append(trajectory_overlaps(traj, video.gt, (video.width - 1, video.height - 1)))
            failures_all.append(failure_frames(traj))
            lengths.append(len(video))
            run_tags.append(video.tags)
    if not overlaps_all:
        raise ValueError("no trajectories to evaluate")
    max_len = max(len(o) for o in overlaps_all)
    for run, (overlaps, failures, traj_len) in enumerate(zip(overlaps_all, failures_all, lengths)):
        fragments_meta.extend(_split(overlaps, failures, traj_len, max_len, skipping, run))

    fragments = np.full((len(fragments_meta), max_len), np.nan)
    for row, frag in enumerate(fragments_meta):
        values = overlaps_all[frag.run][frag.start:frag.stop]
        if frag.nan_to_zero:
            values = np.where(np.isnan(values), 0.0, values)
        if frag.padded:
            fragments[row] = 0.0
        fragments[row, :len(values)] = values

    seq_weight = 1 / reps
    weight_window = np.zeros(max_len)
    weight_window[low - 1:high] = 1
    eao: dict[str, float] = {}
    curves: dict[str, np.ndarray] = {}
    for tag in tags:
        weights = np.empty(len(fragments_meta))
        for row, frag in enumerate(fragments_meta):
            tag_values = run_tags[frag.run][tag]
            with np.errstate(invalid="ignore", divide="ignore"):
                weights[row] = seq_weight * (np.float64(np.sum(tag_values[frag.start:frag.tag_stop])) / frag.denom)
        curve = expected_overlap_curve(fragments, weights)
        valid = ~np.isnan(curve)
        with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
            warnings.simplefilter("ignore", category=RuntimeWarning)
            value = np.sum(curve[valid] * weight_window[valid]) / np.sum(weight_window[valid])
        eao[tag] = float(value)
        curves[tag] = curve
    return EAOResult(eao=eao, curves=curves, interval=(low, high))
