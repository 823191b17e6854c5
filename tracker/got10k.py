"""A ``got10k.trackers.Tracker`` adapter, so the got10k toolkit's experiments run SiamMask.

::

    from got10k.experiments import ExperimentGOT10k
    from siammask.tracker import build_tracker
    from siammask.tracker.got10k import make_got10k_tracker

    tracker, cfg, runtime = build_tracker("experiments/siammask_sharp/config_vot.json", "SiamMask_VOT.pth", "cpu")
    ExperimentGOT10k("data/GOT-10k", subset="val", result_dir="results", report_dir="reports").run(
        make_got10k_tracker(tracker, "SiamMask"))

got10k calls ``init(image, box)`` on the first frame and ``update(image) -> box`` on every later one, with PIL RGB
images (or file paths when an experiment is built with ``read_image=False``) and ``[x, y, w, h]`` boxes; the adapter
turns the image into the BGR uint8 array the tracker takes, initialises from ``box`` (centre ``x + w / 2``) and
returns the tracker's box. It declares itself deterministic (the tracker is), so ``ExperimentGOT10k`` runs one
repetition instead of three. Needs ``pip install got10k`` (``pip install siammask[got10k]``); the import is deferred,
so this module imports without it.

Known got10k 0.1.3 limits on NumPy >= 2 (not patched here): ``ExperimentVOT`` uses ``np.NaN`` (removed in NumPy 2;
``np.NaN = np.nan`` before running it works around it) and its ``report`` fails on ragged arrays (NumPy >= 1.24);
``ExperimentOTB`` always builds its dataset with ``download=True``. ``ExperimentGOT10k`` ``run`` and ``report`` work.
"""
from __future__ import annotations

import functools
from typing import Any, Sequence

import numpy as np

from ..utils.errors import SiamMaskError
from ..utils.io import read_image

__all__ = ["Got10kMissingError", "got10k_tracker_class", "make_got10k_tracker", "to_bgr"]


class Got10kMissingError(SiamMaskError):
    """The got10k toolkit is not installed."""


def to_bgr(image: Any) -> np.ndarray:
    """What got10k passes (PIL image, RGB array, grey array, or a file path) -> contiguous BGR uint8 (H, W, 3)."""
    if isinstance(image, str):
        return read_image(image)
    if hasattr(image, "mode") and hasattr(image, "convert"):  # PIL.Image
        image = image.convert("RGB") if image.mode != "RGB" else image
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected an RGB image, got an array of shape {arr.shape}")
    return np.ascontiguousarray(arr[:, :, ::-1].astype(np.uint8, copy=False))


@functools.lru_cache(maxsize=None)
def got10k_tracker_class() -> type:
    """The adapter class (a subclass of ``got10k.trackers.Tracker``, created on first use).

    Raises:
        Got10kMissingError: got10k is not installed (one line saying what to install).
    """
    try:
        from got10k.trackers import Tracker
    except ImportError:
        raise Got10kMissingError("the got10k adapter needs the got10k toolkit: pip install got10k "
                                 "(or pip install siammask[got10k])") from None

    class SiamMaskGOT10k(Tracker):
        """got10k ``Tracker`` around a :class:`~siammask.tracker.SiamMaskTracker` (one target)."""

        def __init__(self, tracker: Any, name: str = "SiamMask") -> None:
            super().__init__(name=name, is_deterministic=True)
            self.tracker = tracker
            self.state: Any = None

        def init(self, image: Any, box: Sequence[float]) -> None:
            """Start on `image` from ``[x, y, w, h]``."""
            self.state = self.tracker.init(to_bgr(image), [float(v) for v in np.asarray(box).ravel()])

        def update(self, image: Any) -> np.ndarray:
            """Track into `image`; returns (4,) float64 ``x, y, w, h``."""
            if self.state is None:
                raise RuntimeError("update() called before init()")
            result = self.tracker.track(self.state, to_bgr(image))
            return np.asarray(result.box, dtype=np.float64).ravel()

    return SiamMaskGOT10k


def make_got10k_tracker(tracker: Any, name: str = "SiamMask") -> Any:
    """Wrap a SiamMaskTracker (anything with ``init(frame, box_xywh)`` / ``track(state, frame).box``) for got10k.

    Args:
        tracker: the tracker, e.g. ``build_tracker(config, checkpoint, device)[0]``.
        name: the result folder name got10k uses (``<result_dir>/GOT-10k/<name>/``).

    Raises:
        Got10kMissingError: got10k is not installed.
    """
    return got10k_tracker_class()(tracker, name)
