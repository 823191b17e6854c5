"""Crop511 object masks read lazily: the PNG's bytes first, then only the rows down to the last one a crop reads.

A search crop reads the mask's rows down to about row 380 of 511 on average (the crop box is ~255 pixels around the
centre, shifted up to 64); a PNG's rows come in one zlib stream, so the rows above cannot be skipped but the rows
below can. :class:`EncodedMask` holds the file's bytes; :meth:`EncodedMask.decode` gives the 0/255 object mask
(``cv2.compare(decoded, 0, CMP_GT)``, as the training set made it from the whole file) with the optional C
extension ``_png_rows`` (libpng; Debian/Ubuntu libpng-dev) decoding rows ``[0, rows)`` into a per-thread buffer.
Rows below hold whatever the buffer held before and must not be read (the warp of the search crop does not).

Same pixels as ``cv2.imdecode(..., IMREAD_GRAYSCALE)`` in the decoded rows: on first use in a process the row
decoder is checked against it on small 1-, 4- and 8-bit greyscale test PNGs and not used when any pixel differs.
Anything else (a colour PNG, 16 bits, a transparency chunk, interlacing, a JPEG mask), any libpng error or warning,
and a chunk whose CRC does not match (checked for every chunk before decoding, since a decode that stops early never
reaches the checks at the end of the data) goes to the strict whole-file decode of
:func:`~datasets.jpeg.decode_bytes`, which names a damaged file.
``SIAMMASK_PNG_ROWS=0`` turns the row decoder off.
"""
from __future__ import annotations

import logging
import os
import zlib
from typing import Optional

import cv2
import numpy as np

from ..utils.images import PNG_SIGNATURE
from .jpeg import decode_bytes, read_bytes, thread_buffer

try:
    from . import _png_rows
except ImportError:  # not built (no C compiler or no png.h): whole-file decoding with OpenCV
    _png_rows = None

_checked: Optional[bool] = None  # None: not checked yet in this process
_check_pid = -1


def png_rows_ok() -> bool:
    """Whether the row decoder is built, enabled and gives cv2.imdecode's pixels (checked once per process)."""
    global _checked, _check_pid
    if _check_pid != os.getpid():
        _check_pid, _checked = os.getpid(), None
    if _checked is None:
        _checked = _png_rows is not None and os.environ.get("SIAMMASK_PNG_ROWS", "1") != "0" and _self_check()
    return _checked


def _self_check() -> bool:
    """Decode the top rows of three small grey PNGs (1-, 4- and 8-bit) both ways; True when every pixel agrees."""
    rng = np.random.default_rng(0)
    noisy = rng.integers(0, 256, (37, 29), dtype=np.uint8)
    cases = [(np.where(noisy > 128, 255, 0).astype(np.uint8), [cv2.IMWRITE_PNG_BILEVEL, 1]),
             ((noisy >> 4) * 17, []), (noisy, [cv2.IMWRITE_PNG_COMPRESSION, 9])]
    try:
        for image, params in cases:
            ok, encoded = cv2.imencode(".png", image, params)
            if not ok:
                return False
            full = cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE)
            for rows in (37, 20, 1):
                out = np.zeros_like(full)
                if not _png_rows.decode_rows(encoded, out, rows)[2] or not np.array_equal(out[:rows], full[:rows]):
                    logging.getLogger("global").warning(
                        "the libpng row decoder does not give cv2.imdecode's pixels here; decoding whole masks")
                    return False
    except (ValueError, cv2.error):
        return False
    return True


def _size(data: np.ndarray) -> Optional[tuple[int, int]]:
    """(height, width) from a PNG's IHDR chunk, or None when `data` is not a PNG."""
    if len(data) < 24 or bytes(data[:8]) != PNG_SIGNATURE or bytes(data[12:16]) != b"IHDR":
        return None
    width, height = int.from_bytes(bytes(data[16:20]), "big"), int.from_bytes(bytes(data[20:24]), "big")
    return (height, width) if width > 0 and height > 0 else None


def _crcs_ok(data: np.ndarray) -> bool:
    """Whether every chunk of a PNG, up to IEND, is whole and has the CRC-32 it carries."""
    view = memoryview(data)
    pos = 8
    while pos + 12 <= len(view):
        length = int.from_bytes(view[pos:pos + 4], "big")
        end = pos + 8 + length
        if end + 4 > len(view) or zlib.crc32(view[pos + 4:end]) != int.from_bytes(view[end:end + 4], "big"):
            return False
        if view[pos + 4:pos + 8] == b"IEND":
            return True
        pos = end + 4
    return False


class EncodedMask:
    """An object-mask file read into memory but not decoded.

    Args:
        path: the file (named in errors).
        data: its bytes (:func:`~datasets.jpeg.read_bytes`).
    """

    def __init__(self, path: str, data: np.ndarray) -> None:
        self.path, self.data = path, data

    @classmethod
    def read(cls, path: str) -> "EncodedMask":
        """The bytes of `path` (raises DataError on a missing, empty or truncated file)."""
        return cls(path, read_bytes(path))

    def full(self) -> np.ndarray:
        """The whole mask: (H, W) uint8, 255 where the decoded grey image is > 0, else 0 (decoded strictly)."""
        return cv2.compare(decode_bytes(self.path, self.data, cv2.IMREAD_GRAYSCALE), 0, cv2.CMP_GT)

    def decode(self, rows: int) -> np.ndarray:
        """An (H, W) uint8 0/255 mask whose rows [0, rows) are those of :meth:`full`.

        With the row decoder only those rows are decoded (into reused per-thread buffers: the rows below are stale,
        and the array is overwritten by the next decode in this thread); otherwise the whole file.

        Raises:
            DataError: the file does not decode.
        """
        size = _size(self.data) if png_rows_ok() else None
        if size is None or not _crcs_ok(self.data):
            return self.full()
        height, width = size
        rows = max(0, min(int(rows), height))
        grey = thread_buffer("mask decode", (height, width))
        try:
            if not _png_rows.decode_rows(self.data, grey, rows)[2]:
                return self.full()
        except ValueError:
            return self.full()  # not plain grey, or damaged: the strict full decode handles it (and names the file)
        mask = thread_buffer("mask", (height, width))
        if rows > 0:
            cv2.compare(grey[:rows], 0, cv2.CMP_GT, dst=mask[:rows])
        return mask
