"""Float32 sample arrays written into the rows of shared batch buffers with streaming stores.

A DataLoader worker writes each sample straight into its row of a reused shared-memory batch
(:mod:`datasets.shared_batches`): ~1.2 MB per search-255 sample, into buffers far larger than the cache. Ordinary
stores read every cache line before writing it; the optional C extension ``_stream`` (``bash make.sh``; plain C, no
library) writes whole lines without reading them, which makes these writes about 2.5x faster
(``datasets/_stream.c``). Without it, or with ``SIAMMASK_STREAM_WRITES=0``, numpy / OpenCV write the same values.
Only for destinations that are not read again soon (streaming stores bypass the cache): the callers use these
functions for the arrays they write into a given `out` row, not for scratch memory they go on working in.
"""
from __future__ import annotations

import os

import cv2
import numpy as np

try:
    from . import _stream
except ImportError:  # not built: numpy writes
    _stream = None

#: Whether the streaming-store writer is built and enabled.
STREAMING = _stream is not None and os.environ.get("SIAMMASK_STREAM_WRITES", "1") != "0"

#: uint8 warped mask -> float32 label: +1 above 127, else -1 (the original's ``(mask > 0.5) * 2 - 1`` on 0..255)
MASK_LABEL_LUT = np.where(np.arange(256) > 127, 1, -1).astype(np.float32)


def _streamable(src: np.ndarray, dst: np.ndarray) -> bool:
    return (STREAMING and src.dtype == np.uint8 and dst.dtype == np.float32 and src.shape == dst.shape
            and src.flags.c_contiguous and dst.flags.c_contiguous and dst.flags.writeable)


def subtract_into(src: np.ndarray, value: float, dst: np.ndarray, stream: bool = True) -> None:
    """``dst[...] = float32(src) - float32(value)`` for a uint8 `src` and a float32 `dst` of its shape (`stream`
    False: ordinary stores, for memory worked on further)."""
    if stream and _streamable(src, dst):
        _stream.subtract(src, dst, float(np.float32(value)))
    else:
        np.subtract(src, np.float32(value), out=dst, dtype=np.float32)


def mask_label_into(mask: np.ndarray, dst: np.ndarray, stream: bool = True) -> None:
    """``dst[...] = +1 where mask > 127 else -1`` for a uint8 (H, W) `mask` and a float32 (H, W) `dst` (`stream`
    False: ordinary stores, for scratch memory)."""
    if stream and _streamable(mask, dst):
        _stream.label(mask, dst)
        return
    got = cv2.LUT(mask, MASK_LABEL_LUT, dst=dst)
    if got.ctypes.data != dst.ctypes.data:  # OpenCV made its own array (it should not: same size and type)
        np.copyto(dst, got)


def fill_into(dst: np.ndarray, value: float, stream: bool = True) -> None:
    """``dst[...] = value`` for a float32 `dst` (`stream` False: ordinary stores)."""
    if stream and STREAMING and dst.dtype == np.float32 and dst.flags.c_contiguous and dst.flags.writeable:
        _stream.fill(dst, float(value))
    else:
        dst.fill(value)
