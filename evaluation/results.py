"""Reading VOT baseline result files: ``<result_dir>/<tracker>/baseline/<video>/<video>_001.txt``.

Ports the trajectory loading of SiamMask's ``utils/pysot/datasets/vot.py`` (``VOTVideo.load_tracker``) and the tracker
discovery of ``tools/eval.py``. One line per frame: ``1`` (initialisation), ``2`` (failure), ``0`` (skipped) or
comma-separated floats (4 values ``x, y, w, h`` or 8+ polygon values). When a video folder holds exactly 15
repetitions ``<video>_001.txt`` ... ``<video>_015.txt`` all are used, otherwise only ``<video>_001.txt``.

Differences from pysot: repetitions are matched by name (``<video>_NNN.txt``) and sorted, instead of taking the
first file of an unordered ``glob('*0*.txt')``; a missing, truncated (fewer lines than frames), over-long or
unparsable file raises ``ResultError`` naming the file, instead of being evaluated on the shorter length or failing
with a bare ``ValueError``; all videos of a tracker must have the same number of repetitions (pysot's robustness
formula needs it and would otherwise fail on a ragged array).
"""
from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import numpy as np

from .errors import ResultError
from .vot import VOTDataset

__all__ = ["REPETITIONS", "list_trackers", "trajectory_files", "load_trajectory", "load_tracker_trajectories",
           "result_videos", "compare_videos", "subset_dataset", "mean_area_ratio"]

REPETITIONS = 15  # the VOT toolkit's number of runs of a stochastic tracker

Trajectory = list[list[float]]


def list_trackers(result_dir: str | Path, prefix: str = "") -> list[str]:
    """Tracker folders in ``result_dir`` whose name starts with ``prefix`` ('' = all), sorted.

    Raises:
        ResultError: ``result_dir`` is not a folder or holds no matching tracker folder.
    """
    root = Path(result_dir)
    if not root.is_dir():
        raise ResultError(f"{root}: result folder not found (pass the folder holding <tracker>/baseline/...)")
    names = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name.startswith(prefix))
    if not names:
        what = f"starting with '{prefix}'" if prefix else "at all"
        raise ResultError(f"{root}: no tracker folders {what} (expected <tracker>/baseline/<video>/<video>_001.txt)")
    return names


def trajectory_files(result_dir: str | Path, tracker: str, video: str) -> list[Path]:
    """The result files of one video: all 15 repetitions when exactly 15 exist, else ``<video>_001.txt``.

    Raises:
        ResultError: ``<video>_001.txt`` is missing (and there are not 15 repetitions).
    """
    folder = Path(result_dir) / tracker / "baseline" / video
    pattern = re.compile(rf"^{re.escape(video)}_(\d{{3}})\.txt$")
    reps = sorted(p for p in folder.glob(f"{video}_*.txt") if pattern.match(p.name)) if folder.is_dir() else []
    if len(reps) == REPETITIONS:
        return reps
    first = folder / f"{video}_001.txt"
    if not first.is_file():
        raise ResultError(f"{first}: missing (tracker '{tracker}' has no result for video '{video}')")
    return [first]


def _parse_line(line: str, path: Path, lineno: int) -> list[float]:
    try:
        values = [float(v) for v in line.split(",")]
    except ValueError:
        raise ResultError(f"{path}:{lineno}: cannot read {line.strip()[:40]!r} as comma-separated numbers") from None
    if not all(math.isfinite(v) for v in values):
        raise ResultError(f"{path}:{lineno}: non-finite value in {line.strip()[:60]!r} (NaN or inf: the tracker "
                          f"diverged; a region must be finite numbers)")
    n = len(values)
    if not (n == 1 or n == 4 or (n >= 6 and n % 2 == 0)):
        raise ResultError(f"{path}:{lineno}: {n} values; expected 1 (code 0/1/2), 4 (x,y,w,h) or an even number >= 6")
    return values


def load_trajectory(path: str | Path, num_frames: int | None = None) -> Trajectory:
    """Read one result file into a list of regions (``[1]``, ``[2]``, ``[0]`` or coordinates).

    Args:
        path: the ``<video>_NNN.txt`` file.
        num_frames: when given, the file must have exactly this many lines (blank trailing lines are ignored).

    Raises:
        ResultError: unreadable file, bad line, or a line count different from ``num_frames``.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultError(f"{path}: cannot read ({exc.__class__.__name__}: {exc})") from None
    lines = text.rstrip().splitlines() if text.strip() else []
    traj = [_parse_line(line, path, i + 1) for i, line in enumerate(lines)]
    if num_frames is not None and len(traj) != num_frames:
        state = "truncated" if len(traj) < num_frames else "too long"
        raise ResultError(f"{path}: {state}: {len(traj)} lines for {num_frames} frames")
    return traj


def load_tracker_trajectories(result_dir: str | Path, tracker: str, dataset: VOTDataset) -> dict[str, list[Trajectory]]:
    """All repetitions of one tracker for every video of ``dataset``.

    Returns:
        video name -> list of trajectories (1 or 15), each with one region per frame.

    Raises:
        ResultError: missing/truncated/unreadable files, or videos with different numbers of repetitions.
    """
    out: dict[str, list[Trajectory]] = {}
    for video in dataset:
        out[video.name] = [load_trajectory(p, len(video)) for p in trajectory_files(result_dir, tracker, video.name)]
    counts = {name: len(trajs) for name, trajs in out.items()}
    if len(set(counts.values())) > 1:
        ranked = sorted(counts.items(), key=lambda kv: kv[1])
        (a, na), (b, nb) = ranked[0], ranked[-1]
        raise ResultError(f"{Path(result_dir) / tracker}: video '{b}' has {nb} repetitions but '{a}' has {na}; "
                          "every video needs the same number (1 or 15)")
    return out


def result_videos(result_dir: str | Path, tracker: str) -> set[str]:
    """Names of the video folders under ``<result_dir>/<tracker>/baseline/`` (results present or not)."""
    folder = Path(result_dir) / tracker / "baseline"
    return {p.name for p in folder.iterdir() if p.is_dir()} if folder.is_dir() else set()


def compare_videos(result_dir: str | Path, tracker: str, dataset: VOTDataset) -> tuple[list[str], list[str]]:
    """(missing, extra): dataset videos without a result file, and result folders of videos not in the dataset."""
    present = result_videos(result_dir, tracker)
    missing = []
    for video in dataset:
        try:
            trajectory_files(result_dir, tracker, video.name)
        except ResultError:
            missing.append(video.name)
    extra = sorted(present - set(dataset.videos))
    return missing, extra


def subset_dataset(dataset: VOTDataset, names: set[str]) -> VOTDataset:
    """The dataset restricted to the videos in ``names`` (json order kept)."""
    return dataclasses.replace(dataset, videos={k: v for k, v in dataset.videos.items() if k in names})


def _region_area(region: list[float]) -> float:
    """Area of a 4-value ``x, y, w, h`` rectangle or a polygon (shoelace); 0 for the 1-value codes."""
    if len(region) == 4:
        return max(region[2], 0.0) * max(region[3], 0.0)
    if len(region) < 6:
        return 0.0
    xs, ys = np.asarray(region[0::2]), np.asarray(region[1::2])
    return float(abs(np.dot(xs, np.roll(ys, -1)) - np.dot(ys, np.roll(xs, -1))) / 2)


def mean_area_ratio(dataset: VOTDataset, trajectories: dict[str, list[Trajectory]]) -> float:
    """Mean predicted region area over the mean ground-truth area of the same frames (tracked frames only).

    A model whose regions cover most of the frame overlaps the ground truth everywhere and is never "lost"
    (robustness 0): a ratio far above 1 flags it. NaN when no frame was tracked.
    """
    pred, truth = [], []
    for name, trajs in trajectories.items():
        gt = dataset[name].gt_traj()
        for traj in trajs:
            for region, g in zip(traj, gt):
                if len(region) > 1:
                    pred.append(_region_area(region))
                    truth.append(_region_area(list(g)))
    if not pred or sum(truth) <= 0:
        return float("nan")
    return float(np.mean(pred) / np.mean(truth))
