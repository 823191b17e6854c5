"""One crop511 sub-dataset (ytb_vos, vid, coco, det, ...): its annotation index and pair sampling.

Ports `SubDataSet` of the original `datasets/siam_mask_dataset.py`:

* the json ``{video: {track: {frame: [x1, y1, x2, y2] or [w, h]}}}`` is loaded, boxes with zero width or height are
  dropped (`filter_zero`), each track gets its sorted integer frame list (keys that are not integers are ignored),
  tracks without frames and videos without tracks are dropped;
* images are ``<root>/<video>/<frame:06d>.<track>.x.jpg`` (`path_format`), masks ``<frame:06d>.<track>.m.png``;
* `has_mask` is true for the datasets named coco and ytb_vos unless the config says otherwise;
* a positive pair takes a random track, a template frame uniform over the track's frames and a search frame uniform
  over the frames at most `frame_range` positions away in that list (positions, not frame numbers).

Unlike the original, the index is stored in a few flat numpy arrays (no dict per frame), so a DataLoader worker
holds a few bytes per annotated frame; malformed entries raise :class:`DataError` naming the file and the entry
(or, with `skip_bad`, are dropped with a warning); boxes with negative width or height are dropped like zero ones.
"""
from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from siammask.utils.config import SubDatasetConfig

from .errors import DataError

MASK_DATASETS = ("coco", "ytb_vos")


@dataclass(frozen=True)
class ImageAnno:
    """One annotated object in one crop511 image."""

    image_path: str
    size_wh: tuple[float, float]  # target width and height in the original image (from the json)
    mask_path: str


def resolve_path(path: str, data_root: str) -> str:
    """`path` if absolute, else joined to the data root."""
    return path if os.path.isabs(path) else os.path.join(data_root, path)


def _as_frame_number(key: str) -> Optional[int]:
    try:
        return int(key)
    except (TypeError, ValueError):
        return None


class SubDataset:
    """The annotation index of one sub-dataset and its sampling rules.

    Args:
        name: the dataset key in the config (decides has_mask when the config leaves it unset).
        cfg: its config entry.
        data_root: folder that relative `root` / `anno` paths are joined to.
        skip_bad: drop malformed json entries with a warning instead of raising.
        logger: where to log (default: logger 'global').
    """

    def __init__(self, name: str, cfg: SubDatasetConfig, data_root: str, skip_bad: bool = False,
                 logger: Optional[logging.Logger] = None) -> None:
        self.name = name
        self.logger = logger or logging.getLogger("global")
        self.root = resolve_path(cfg.root, data_root)
        self.anno = resolve_path(cfg.anno, data_root)
        self.frame_range = cfg.frame_range
        self.path_format = cfg.path_format
        self.mask_format = cfg.mask_format
        self.has_mask = cfg.has_mask if cfg.has_mask is not None else name in MASK_DATASETS
        self._root_prefix = os.path.join(self.root, "")
        if not os.path.isdir(self.root):
            raise DataError(f"{self.root}: crop folder of dataset '{name}' not found")
        self._load(skip_bad)
        self.num = len(self.videos)
        if self.num == 0:
            raise DataError(f"{self.anno}: dataset '{name}' has no video with a valid annotated frame")
        self.num_use = self.num if cfg.num_use < 0 else cfg.num_use
        if self.num_use == 0:
            raise DataError(f"{self.anno}: dataset '{name}' has num_use 0")

    # ------------------------------------------------------------------ loading
    def _load(self, skip_bad: bool) -> None:
        path = self.anno
        self.logger.info("loading %s", path)
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            raise DataError(f"{path}: annotation json of dataset '{self.name}' not found") from None
        except json.JSONDecodeError as e:
            raise DataError(f"{path}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
        except (OSError, UnicodeDecodeError) as e:
            raise DataError(f"{path}: cannot read annotation json ({e})") from None
        if not isinstance(data, dict):
            raise DataError(f"{path}: the top level must be an object {{video: {{track: {{frame: box}}}}}}")

        videos: list[str] = []
        track_start = [0]
        track_keys: list[str] = []
        frame_start = [0]
        frames: list[int] = []
        sizes: list[tuple[float, float]] = []
        dropped_zero = 0
        malformed = 0

        def bad(where: str, why: str) -> None:
            nonlocal malformed
            message = f"{path}: {where}: {why}"
            if not skip_bad:
                raise DataError(message)
            malformed += 1
            self.logger.warning("skipping malformed annotation: %s", message)

        for video, tracks in data.items():
            if not isinstance(tracks, dict):
                bad(f"video '{video}'", f"must map track ids to frames, got {type(tracks).__name__}")
                continue
            n_tracks = 0
            for track, boxes in tracks.items():
                if not isinstance(boxes, dict):
                    bad(f"video '{video}' track '{track}'", f"must map frames to boxes, got {type(boxes).__name__}")
                    continue
                entries: list[tuple[int, float, float]] = []
                for frame, box in boxes.items():
                    number = _as_frame_number(frame)
                    if number is None:  # the original ignores non-integer keys ('frames', 'hard', ...)
                        continue
                    wh = _box_size(box)
                    if wh is None:
                        bad(f"video '{video}' track '{track}' frame '{frame}'",
                            f"box must be [x1, y1, x2, y2] or [w, h] numbers, got {box!r}")
                        continue
                    if not (wh[0] > 0 and wh[1] > 0):
                        dropped_zero += 1
                        continue
                    entries.append((number, wh[0], wh[1]))
                if not entries:
                    continue
                entries.sort()
                for number, w, h in entries:
                    frames.append(number)
                    sizes.append((w, h))
                frame_start.append(len(frames))
                track_keys.append(str(track))
                n_tracks += 1
            if n_tracks:
                videos.append(str(video))
                track_start.append(len(track_keys))

        self.videos = videos
        self.track_start = np.asarray(track_start, dtype=np.int64)
        self.track_keys = track_keys
        self.frame_start = np.asarray(frame_start, dtype=np.int64)
        self.frames = np.asarray(frames, dtype=np.int32)
        self.sizes = np.asarray(sizes, dtype=np.float32).reshape(-1, 2)
        self.malformed = malformed
        if dropped_zero:
            self.logger.info("%s: dropped %d boxes with zero or negative width/height", path, dropped_zero)
        self.logger.info("%s loaded: %d videos, %d tracks, %d frames", path, len(videos), len(track_keys),
                         len(frames))

    # ------------------------------------------------------------------ access
    def log(self, start: int) -> None:
        """The original's one-line summary."""
        self.logger.info("SubDataSet %s start-index %d select [%d/%d] path %s", self.name, start, self.num_use,
                         self.num, self.path_format)

    def image_anno(self, video: int, track: int, position: int) -> ImageAnno:
        """Paths and target size of frame `position` (index into the track's sorted frames) of track `track`
        (a global track index, belonging to `video`)."""
        t0 = int(self.frame_start[track])
        number = int(self.frames[t0 + position])
        w, h = self.sizes[t0 + position]
        frame = f"{number:06d}"
        key = self.track_keys[track]
        folder = self._root_prefix + self.videos[video] + os.sep
        return ImageAnno(folder + self.path_format.format(frame, key, "x"), (float(w), float(h)),
                         folder + self.mask_format.format(frame, key))

    def _random_track(self, video: int, rng: np.random.Generator) -> tuple[int, int]:
        """(track index, number of frames) of a uniformly chosen track of `video`."""
        lo, hi = int(self.track_start[video]), int(self.track_start[video + 1])
        track = lo + int(rng.integers(hi - lo)) if hi - lo > 1 else lo
        return track, int(self.frame_start[track + 1] - self.frame_start[track])

    def positive_pair(self, video: int, rng: np.random.Generator) -> tuple[ImageAnno, ImageAnno]:
        """Template and search of one track of `video`, at most `frame_range` list positions apart."""
        track, n = self._random_track(video, rng)
        t = int(rng.integers(n))
        left = max(t - self.frame_range, 0)
        right = min(t + self.frame_range, n - 1) + 1
        s = left + int(rng.integers(right - left))
        return self.image_anno(video, track, t), self.image_anno(video, track, s)

    def random_target(self, video: int, rng: np.random.Generator) -> ImageAnno:
        """A random frame of a random track of `video`; a random video when `video` is -1."""
        if video < 0:
            video = int(rng.integers(self.num))
        track, n = self._random_track(video, rng)
        return self.image_anno(video, track, int(rng.integers(n)))


def _box_size(box: Any) -> Optional[tuple[float, float]]:
    """(w, h) of a json box [x1, y1, x2, y2] (w = x2 - x1) or [w, h]; None when malformed."""
    if not isinstance(box, (list, tuple)) or len(box) not in (2, 4):
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box):
        return None
    if len(box) == 4:
        w, h = box[2] - box[0], box[3] - box[1]
    else:
        w, h = box[0], box[1]
    if not (math.isfinite(w) and math.isfinite(h)):
        return None
    return float(w), float(h)
