"""The VOT reset (baseline) protocol as a function, and the VOT result-file writer.

Ports `track_vot` of the original `tools/test.py` (reference.md E.4, E.5) without drawing or file IO in the loop:

* frame f == start frame: initialise from `get_axis_aligned_bbox(gt[f])`, record ``1``;
* f > start frame: track; the prediction is the rotated polygon (mask mode) or the axis-aligned box, its overlap with
  the ground-truth polygon is `vot_overlap(gt, pred, bounds=(W, H))`; overlap > 0 records the location, overlap 0
  records ``2``, counts a failure and re-initialises `skip` (5) frames later;
* frames before the next start frame record ``0``.

4-value ground-truth rectangles are turned into polygons exactly as the original loader did
(:func:`utils.bbox.vot_rect_to_polygon8`). Timing follows the original: the clock runs from after the image is read
to after the overlap; speed = last frame index / total time.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Protocol, Sequence, Union

import numpy as np

from ..utils.bbox import get_axis_aligned_bbox, vot_rect_to_polygon8, xywh_to_polygon8
from ..utils.io import atomic_write_text
from ..utils.region import vot_float2str, vot_overlap
from .frames import read_frame

#: Frames skipped after a failure before re-initialising (the original's hard-coded 5).
VOT_SKIP_FRAMES = 5
INIT, FAILURE, SKIPPED = 1, 2, 0

Region = Union[int, list[float]]


class VOTTracker(Protocol):
    """What the protocol needs from a tracker (SiamMaskTracker satisfies it)."""

    def init_cxcywh(self, frame: np.ndarray, box_cxcywh: Sequence[float]) -> Any:
        """Initialise on `frame` from (cx, cy, w, h); returns the target's state."""

    def track(self, state: Any, frame: np.ndarray) -> Any:
        """Track into `frame`; the result has `polygon` ((4, 2)) and `box` ((4,) x, y, w, h)."""


class VOTVideo(Protocol):
    """A VOT sequence: `name`, `img_paths` (frame files), `gt` (N x 8 polygons or N x 4 rectangles)."""

    name: str
    img_paths: Sequence[str]
    gt: Any


@dataclass
class VOTSequenceResult:
    """Outcome of one sequence.

    Attributes:
        regions: per frame ``1`` (init), ``2`` (failure), ``0`` (skipped) or the predicted location (8 polygon
            values in polygon mode, else 4 values x, y, w, h).
        lost: number of failures.
        time_s: tracking time (image reading excluded).
        fps: last frame index / time_s, as the original.
        scores: per frame the tracker's score (NaN on init/skipped frames).
    """

    regions: list[Region]
    lost: int
    time_s: float
    fps: float
    scores: list[float] = field(default_factory=list)


def gt_polygon8(region: Sequence[float]) -> list[float]:
    """A ground-truth row as an 8-value polygon (4-value rectangles converted as the original loader did)."""
    values = np.asarray(region, dtype=np.float64).ravel()
    if values.size == 4:
        values = vot_rect_to_polygon8(values)
    if values.size != 8:
        raise ValueError(f"a VOT ground-truth region has 4 or 8 values, got {values.size}")
    return [float(v) for v in values]


def run_vot_sequence(tracker: VOTTracker, video: VOTVideo, *, use_polygon: bool, skip: int = VOT_SKIP_FRAMES,
                     image_reader: Callable[[str], np.ndarray] = read_frame,
                     on_frame: Optional[Callable[[int, np.ndarray, Region, Any], None]] = None,
                     clock: Callable[[], float] = time.perf_counter) -> VOTSequenceResult:
    """Run the VOT reset protocol on one sequence.

    Args:
        tracker: anything with `init_cxcywh(frame, (cx, cy, w, h)) -> state` and `track(state, frame) -> result`.
        video: `name`, `img_paths`, `gt`.
        use_polygon: report `result.polygon` (8 values; the original's `--mask`) instead of `result.box`.
        skip: frames skipped after a failure.
        image_reader: path -> BGR uint8 frame (default strict: a damaged frame raises FrameError).
        on_frame: called after each frame with (index, frame, recorded region, tracker result or None), e.g. to
            draw or save masks; its time is not counted.
        clock: seconds counter.
    """
    gt = [gt_polygon8(row) for row in video.gt]
    paths = list(video.img_paths)
    if len(gt) < len(paths):
        raise ValueError(f"video {video.name}: {len(paths)} frames but {len(gt)} ground-truth lines")
    regions: list[Region] = []
    scores: list[float] = []
    start_frame, lost, toc = 0, 0, 0.0
    state: Any = None
    f = 0
    for f, path in enumerate(paths):
        im = image_reader(path)
        tic = clock()
        result = None
        if f == start_frame:
            cx, cy, w, h = get_axis_aligned_bbox(gt[f])
            state = tracker.init_cxcywh(im, (cx, cy, w, h))
            regions.append(INIT)
            scores.append(float("nan"))
        elif f > start_frame:
            result = tracker.track(state, im)
            if use_polygon:
                location = [float(v) for v in np.asarray(result.polygon).ravel()]
                pred = location
            else:
                location = [float(v) for v in np.asarray(result.box).ravel()]
                pred = xywh_to_polygon8(location)
            overlap = vot_overlap(gt[f], pred, bounds=(im.shape[1], im.shape[0]))
            scores.append(float(result.score))
            if overlap:  # the original's truthiness (NaN counts as overlapping)
                regions.append(location)
            else:
                regions.append(FAILURE)
                lost += 1
                start_frame = f + skip
        else:
            regions.append(SKIPPED)
            scores.append(float("nan"))
        toc += clock() - tic
        if on_frame is not None:
            on_frame(f, im, regions[-1], result)
    fps = f / toc if toc > 0 else float("inf")
    return VOTSequenceResult(regions=regions, lost=lost, time_s=toc, fps=fps, scores=scores)


def format_vot_regions(regions: Sequence[Region]) -> str:
    """Result-file text: one line per frame, ``1``/``2``/``0`` or a comma list of ``%.4f`` values."""
    lines = []
    for region in regions:
        if isinstance(region, (int, np.integer)):
            lines.append(f"{int(region):d}")
        else:
            lines.append(",".join(vot_float2str("%.4f", float(v)) for v in region))
    return "\n".join(lines) + "\n"


def vot_result_path(result_dir: str, tracker_name: str, video_name: str) -> str:
    """`<result_dir>/<tracker_name>/baseline/<video>/<video>_001.txt` (result_dir already includes the dataset)."""
    return os.path.join(result_dir, tracker_name, "baseline", video_name, f"{video_name}_001.txt")


def write_vot_result(path: str, regions: Sequence[Region]) -> None:
    """Write a VOT baseline result file atomically."""
    atomic_write_text(path, format_vot_regions(regions))
