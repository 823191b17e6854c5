"""Crop511 images read lazily: the file's bytes first, then only the pixels an augmentation crop reads.

An augmentation crop of a 511 crop image reads about a quarter of it (search: a ~255-pixel square; template: ~127
pixels from the centre), and JPEG decoding is most of a training sample's cost. :class:`EncodedImage` holds the
encoded bytes and its size; :meth:`EncodedImage.decode` decodes the rows and columns of a rectangle with the optional
C extension ``_jpeg_region`` (libjpeg-turbo's ``jpeg_skip_scanlines`` / ``jpeg_crop_scanline``; rows after the
rectangle are not decoded at all) into a full-size per-thread buffer, at their places, so that a warp of the
rectangle gives exactly what the warp of the whole decoded image gives. Pixels outside the rectangle hold whatever
the buffer held before and must not be read.

Same pixels as ``cv2.imdecode``: a column crop differs from a full decode in its edge columns (chroma upsampling),
so :data:`COLUMN_MARGIN` more columns are decoded on each side; on first use in a process the region decoder is
checked against ``cv2.imdecode`` on a small test image (4:2:0 colour, 4:4:4 and grey) and not used when any pixel
differs. Without the extension (or for anything it cannot decode, e.g. PNG or CMYK JPEG), the whole image is decoded
by OpenCV. ``SIAMMASK_JPEG_REGION=0`` turns the region decoder off.
"""
from __future__ import annotations

import logging
import os
import threading
from typing import Optional

import cv2
import numpy as np

from ..utils.images import ImageDecodeError, check_structure, decode_image, is_jpeg
from .errors import DataError

try:
    from . import _jpeg_region
except ImportError:  # not built (no C compiler or no jpeglib.h): whole-image decoding with OpenCV
    _jpeg_region = None

#: Extra columns decoded on each side of a requested rectangle (the edge columns of a column crop are inexact).
COLUMN_MARGIN = 8

_local = threading.local()
_checked: Optional[bool] = None  # None: not checked yet in this process
_check_pid = -1


def read_bytes(path: str) -> np.ndarray:
    """The file's bytes (a read-only uint8 array), failing loudly.

    Raises:
        DataError: the file is missing, unreadable or empty, or is a JPEG / PNG cut short (no end marker).
    """
    try:
        with open(path, "rb") as f:
            data = np.frombuffer(f.read(), dtype=np.uint8)
    except FileNotFoundError:
        raise DataError(f"{path}: image listed in the annotation json is missing") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read image ({e.strerror})") from None
    try:
        check_structure(data)
    except ImageDecodeError as e:
        raise DataError(f"{path}: {e}") from None
    return data


def decode_bytes(path: str, data: np.ndarray, flags: int = cv2.IMREAD_COLOR) -> np.ndarray:
    """A file's bytes decoded strictly (:func:`siammask.utils.images.decode_image`: ``cv2.imdecode``'s pixels, a
    damaged file refused); DataError naming `path` when it is damaged or does not decode."""
    try:
        return decode_image(data, flags, strict=True)
    except ImageDecodeError as e:
        raise DataError(f"{path}: {e}") from None


def region_decoder_ok() -> bool:
    """Whether the region decoder is built, enabled and gives cv2.imdecode's pixels (checked once per process)."""
    global _checked, _check_pid
    if _check_pid != os.getpid():
        _check_pid = os.getpid()
        _checked = None
    if _checked is None:
        _checked = (_jpeg_region is not None and os.environ.get("SIAMMASK_JPEG_REGION", "1") != "0"
                    and _self_check())
    return _checked


def _self_check() -> bool:
    """Decode rectangles of three small test JPEGs both ways; True when every pixel agrees."""
    rng = np.random.default_rng(0)
    base = cv2.resize(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8), (70, 61), interpolation=cv2.INTER_CUBIC)
    noisy = np.clip(base.astype(np.int16) + rng.integers(-40, 41, base.shape), 0, 255).astype(np.uint8)
    cases = [(noisy, [cv2.IMWRITE_JPEG_QUALITY, 90]),
             (noisy, [cv2.IMWRITE_JPEG_QUALITY, 90, cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
                      cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]),
             (cv2.cvtColor(noisy, cv2.COLOR_BGR2GRAY), [cv2.IMWRITE_JPEG_QUALITY, 90])]
    try:
        for image, params in cases:
            ok, encoded = cv2.imencode(".jpg", image, params)
            if not ok:
                return False
            full = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
            out = np.zeros_like(full)
            for x0, y0, x1, y1 in ((0, 0, 70, 61), (17, 9, 41, 50), (33, 20, 70, 61)):
                _decode_into(encoded, out, x0, y0, x1, y1)
                if not np.array_equal(out[y0:y1, x0:x1], full[y0:y1, x0:x1]):
                    logging.getLogger("global").warning(
                        "the libjpeg region decoder does not give cv2.imdecode's pixels here; decoding whole images")
                    return False
    except (ValueError, cv2.error):
        return False
    return True


def _decode_into(data: np.ndarray, out: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> None:
    width, height, decoded = _jpeg_region.decode_region(data, out, x0 - COLUMN_MARGIN, y0, x1 + COLUMN_MARGIN, y1)
    if not decoded:
        raise ValueError(f"buffer {out.shape} too small for a {width}x{height} JPEG")


def thread_buffer(slot: str, shape: tuple[int, ...]) -> np.ndarray:
    """This thread's reusable uint8 buffer of `shape` for `slot` (contents left from earlier use; a new one when the
    slot's last buffer had another shape). Decoders write into it what a crop reads, instead of into new memory."""
    buffers = getattr(_local, "buffers", None)
    if buffers is None:
        buffers = _local.buffers = {}
    buf = buffers.get(slot)
    if buf is None or buf.shape != shape:
        buf = buffers[slot] = np.empty(shape, dtype=np.uint8)
    return buf


class EncodedImage:
    """A colour image file read into memory but not decoded; decodes the whole image or a rectangle of it.

    Args:
        path: the file (named in errors).
        data: its bytes (:func:`read_bytes`).
        slot: which per-thread buffer region decodes write to (images decoded at the same time need different slots).
    """

    def __init__(self, path: str, data: np.ndarray, slot: str = "image") -> None:
        self.path, self.data, self.slot = path, data, slot
        self._image: Optional[np.ndarray] = None
        self._size: Optional[tuple[int, int]] = None
        if region_decoder_ok() and is_jpeg(data):
            try:
                width, height, components = _jpeg_region.header(data)
            except ValueError:
                width = height = components = 0
            if width > 0 and height > 0 and components in (1, 3):
                self._size = (height, width)

    @classmethod
    def read(cls, path: str, slot: str = "image") -> "EncodedImage":
        """:func:`read_bytes` of `path` (raises DataError on a missing, empty or truncated file)."""
        return cls(path, read_bytes(path), slot)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(height, width, 3) of the decoded image (decodes it when the region decoder does not apply)."""
        if self._size is None:
            return self.full().shape  # type: ignore[return-value]
        return self._size[0], self._size[1], 3

    def full(self) -> np.ndarray:
        """The whole image, (H, W, 3) BGR uint8 (``cv2.imdecode``'s pixels, decoded strictly)."""
        if self._image is None:
            self._image = decode_bytes(self.path, self.data)
            self._size = self._image.shape[:2]
        return self._image

    def decode(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        """An (H, W, 3) BGR uint8 image whose columns [x0, x1) and rows [y0, y1) (clamped) are the file's pixels.

        With the region decoder only that rectangle is decoded (into a reused buffer: other pixels are stale, and
        the array is overwritten by the next decode of the same slot in this thread); otherwise the whole image.

        Raises:
            DataError: the file does not decode.
        """
        if self._image is not None or self._size is None:
            return self.full()
        height, width = self._size
        out = thread_buffer(self.slot, (height, width, 3))
        try:
            _decode_into(self.data, out, x0, y0, x1, y1)
        except ValueError:
            return self.full()  # corrupt data: the strict full decode names the file
        return out
