"""The one-pass (OPE) protocol as a function, and the OPE result-file writers.

Ports the OPE branch of pysot's ``tools/test.py``: initialise on frame 0 from the ground-truth box, track every
other frame without resets, record the tracker's axis-aligned box (``outputs['bbox']``; in mask mode too) per frame,
and write

* ``<result_root>/<tracker>/<video>.txt`` (OTB100, UAV123, LaSOT, SyntheticOPE): one ``x,y,w,h`` line per frame,
  the values joined by ``,`` as ``str`` of each float (full precision, as pysot's ``','.join([str(i) ...])``);
* GOT-10k: ``<result_root>/<tracker>/<video>/<video>_001.txt`` (the same lines) and ``<video>_time.txt`` (seconds
  per frame, ``%.6f``).

Deviation: frame 0 records the ground-truth box itself. pysot records ``[cx - (w - 1) / 2, cy - (h - 1) / 2, w, h]``
of ``get_axis_aligned_bbox``'s centre ``cx = x + w / 2``, i.e. the box shifted by +0.5 px (its IoU with the ground
truth is a little below 1); the tracker is initialised from the same centre ``x + w / 2`` and size in both.
Timing: the clock runs from after the frame is read to after the tracker returns (pysot includes the image read).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Protocol, Sequence

import numpy as np

from ..evaluation.ope_datasets import ope_result_file, ope_time_file
from ..utils.io import atomic_write_text
from .frames import read_frame

__all__ = ["OPESequenceResult", "run_ope_sequence", "format_ope_boxes", "write_ope_result"]


class OPETracker(Protocol):
    """What the protocol needs (SiamMaskTracker satisfies it)."""

    def init(self, frame: np.ndarray, box_xywh: Sequence[float]) -> Any:
        """Initialise on `frame` from (x, y, w, h); returns the target's state."""

    def track(self, state: Any, frame: np.ndarray) -> Any:
        """Track into `frame`; the result has `box` ((4,) x, y, w, h) and `score`."""


class OPEVideoLike(Protocol):
    """An OPE sequence: `name`, `img_paths`, `gt` ((N, 4) x, y, w, h; only row 0 is used)."""

    name: str
    img_paths: Sequence[str]
    gt: Any


@dataclass
class OPESequenceResult:
    """Outcome of one sequence.

    Attributes:
        boxes: (N, 4) float64 x, y, w, h per frame (frame 0 = the init box).
        times: (N,) seconds per frame (init included).
        scores: (N,) tracker scores (NaN on frame 0).
        fps: (N - 1) / total time, as pysot's ``idx / toc``.
    """

    boxes: np.ndarray
    times: np.ndarray
    scores: np.ndarray

    @property
    def time_s(self) -> float:
        """Total tracking time."""
        return float(np.sum(self.times))

    @property
    def fps(self) -> float:
        total = self.time_s
        return (len(self.times) - 1) / total if total > 0 else float("inf")


def run_ope_sequence(tracker: OPETracker, video: OPEVideoLike, *,
                     image_reader: Callable[[str], np.ndarray] = read_frame,
                     on_frame: Optional[Callable[[int, np.ndarray, np.ndarray], None]] = None,
                     clock: Callable[[], float] = time.perf_counter) -> OPESequenceResult:
    """Run one pass over a sequence: init on frame 0 with ``video.gt[0]``, then track every later frame.

    Args:
        tracker: anything with `init(frame, box_xywh) -> state` and `track(state, frame) -> result`.
        video: `name`, `img_paths`, `gt`.
        image_reader: path -> BGR uint8 frame.
        on_frame: called after each frame with (index, frame, recorded box); its time is not counted.
        clock: seconds counter.

    Raises:
        ValueError: the first frame's ground truth has no positive width and height.
    """
    init_box = np.asarray(video.gt[0], dtype=np.float64).ravel()
    if init_box.size != 4 or not (init_box[2] > 0 and init_box[3] > 0):
        raise ValueError(f"video {video.name}: the first frame's ground truth {init_box.tolist()} is not a box with "
                         "positive width and height")
    paths = list(video.img_paths)
    boxes = np.zeros((len(paths), 4), np.float64)
    times = np.zeros(len(paths), np.float64)
    scores = np.full(len(paths), np.nan)
    state: Any = None
    for f, path in enumerate(paths):
        im = image_reader(path)
        tic = clock()
        if f == 0:
            state = tracker.init(im, init_box)
            boxes[0] = init_box
        else:
            result = tracker.track(state, im)
            boxes[f] = np.asarray(result.box, dtype=np.float64).ravel()
            scores[f] = float(result.score)
        times[f] = clock() - tic
        if on_frame is not None:
            on_frame(f, im, boxes[f])
    return OPESequenceResult(boxes=boxes, times=times, scores=scores)


def format_ope_boxes(boxes: np.ndarray) -> str:
    """Result-file text: per frame ``x,y,w,h`` as ``str`` of each float (pysot's join; exact round trip)."""
    return "".join(",".join(str(float(v)) for v in row) + "\n" for row in np.asarray(boxes, np.float64))


def write_ope_result(result_root: str | Path, tracker_name: str, video_name: str, result: OPESequenceResult,
                     layout: str) -> Path:
    """Write one video's boxes (and, for GOT-10k, its times) atomically; returns the box file.

    Args:
        result_root: ``<result_dir>/<dataset>``.
        layout: ``"pysot"`` or ``"got10k"`` (see the module docstring).
    """
    path = ope_result_file(result_root, tracker_name, video_name, layout)
    atomic_write_text(path, format_ope_boxes(result.boxes))
    if layout == "got10k":
        atomic_write_text(ope_time_file(result_root, tracker_name, video_name),
                          "".join(f"{t:.6f}\n" for t in result.times))
    return path
