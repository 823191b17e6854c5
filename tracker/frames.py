"""Reading a sequence's frames for tracking: strict decoding, and optionally skipping damaged frames.

Frames are BGR uint8 as ``cv2.imread`` gives them; a damaged file (a JPEG cut short or with corrupt data, see
:mod:`siammask.utils.images`) raises :class:`FrameError` naming it. With ``skip_bad=True`` a :class:`FrameReader`
instead hands the tracker the last good frame again (the target stays where it was, as on a repeated frame), records
the file in :attr:`FrameReader.bad`, and the tool reports them; a damaged first frame is still an error (there is no
earlier frame to repeat).
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Optional

import numpy as np

from ..utils.errors import SiamMaskError
from ..utils.io import read_image


class FrameError(SiamMaskError):
    """A frame file is missing, unreadable or damaged (one line naming the file)."""


def read_frame(path: str) -> np.ndarray:
    """The frame at `path` (BGR uint8 HxWx3), decoded strictly.

    Raises:
        FrameError: the file is missing, unreadable or damaged.
    """
    return read_image(path, error=FrameError)


def check_frames_exist(paths: Sequence[str], what: str) -> None:
    """Raise :class:`FrameError` naming the first missing frame (or its missing folder) of `what`, before any work."""
    checked: dict[str, bool] = {}
    for path in paths:
        folder = os.path.dirname(path) or "."
        if folder not in checked:
            checked[folder] = os.path.isdir(folder)
        if not checked[folder]:
            raise FrameError(f"{what}: frame folder {folder} does not exist")
        if not os.path.isfile(path):
            raise FrameError(f"{what}: frame {path} does not exist")


class FrameReader:
    """A callable `path -> frame` for the protocols' `image_reader`, strict, optionally skipping damaged frames.

    Args:
        skip_bad: repeat the last good frame for a damaged one instead of raising (the first frame read must be
            good).

    Attributes:
        bad: the damaged files met so far, with the reason (`"<path>: <reason>"`).
    """

    def __init__(self, skip_bad: bool = False) -> None:
        self.skip_bad = skip_bad
        self.bad: list[str] = []
        self._last: Optional[np.ndarray] = None

    def __call__(self, path: str) -> np.ndarray:
        try:
            frame = read_frame(path)
        except FrameError as e:
            if not self.skip_bad or self._last is None or not os.path.isfile(path):
                raise
            self.bad.append(str(e))
            return self._last
        self._last = frame
        return frame

    def report(self) -> None:
        """Print the damaged frames met (nothing when there were none)."""
        if self.bad:
            print(f"Skipped {len(self.bad)} damaged frame{'s' if len(self.bad) > 1 else ''} (the last good frame "
                  f"was tracked again):")
            for line in self.bad:
                print(f"  {line}")

    def reset(self) -> None:
        """Forget the last good frame (call between sequences: a sequence never repeats another's frame)."""
        self._last = None
