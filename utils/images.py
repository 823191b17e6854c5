"""Decoding image files, strictly: a damaged frame is an error naming the file, never a silently grey frame.

OpenCV's ``cv2.imread`` decodes a JPEG cut in half or with corrupt entropy data and only prints libjpeg's warning
(without the file name) to stderr. :func:`decode_image` finds both:

* JPEG through `simplejpeg <https://gitlab.com/jfolz/simplejpeg>`_ (libjpeg-turbo) with ``strict=True``, which
  turns libjpeg's warnings ("Corrupt JPEG data: ...", "Premature end of JPEG file") into errors. Its pixels equal
  ``cv2.imread``'s (both libjpeg-turbo with the accurate integer IDCT and fancy upsampling; tests/test_images.py
  checks 4:2:0, 4:2:2, 4:4:4, progressive and grayscale files). CMYK / YCCK JPEGs, which simplejpeg cannot
  convert, and JPEGs with an EXIF orientation other than 1, which OpenCV applies (simplejpeg does not), are checked
  by simplejpeg and decoded by OpenCV.
* Without simplejpeg, and for other formats, OpenCV after a structure check: a JPEG must end with its end-of-image
  marker, a PNG with its ``IEND`` chunk (a file cut short fails). Corrupt entropy data with an intact end marker is
  then not detected; installing simplejpeg (a requirement of the project) detects it.
"""
from __future__ import annotations

from typing import Optional

import cv2
import numpy as np

try:  # a requirement (requirements.txt); optional here so that a server with its own packages still reads frames
    import simplejpeg
except ImportError:  # pragma: no cover - exercised by the fallback test through monkeypatching
    simplejpeg = None

JPEG_SOI = b"\xff\xd8"
JPEG_EOI = b"\xff\xd9"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_IEND = b"IEND\xaeB`\x82"
_TAIL = 64  # bytes searched for the end marker (encoders may pad after it)
_SIMPLEJPEG_COLORSPACES = {cv2.IMREAD_COLOR: "BGR", cv2.IMREAD_GRAYSCALE: "GRAY"}


class ImageDecodeError(ValueError):
    """The bytes are not a complete, undamaged image; the message says why (without the file name)."""


def is_jpeg(data: bytes | np.ndarray) -> bool:
    """True when the bytes start with the JPEG start-of-image marker."""
    return bytes(data[:2]) == JPEG_SOI


def check_structure(data: bytes | np.ndarray) -> None:
    """Raise :class:`ImageDecodeError` for an empty file, or a JPEG / PNG without its end marker (cut short)."""
    if len(data) == 0:
        raise ImageDecodeError("empty image file")
    tail = bytes(data[-_TAIL:])
    if is_jpeg(data) and JPEG_EOI not in tail:
        raise ImageDecodeError("damaged JPEG: cut short (no end-of-image marker)")
    if bytes(data[:8]) == PNG_SIGNATURE and PNG_IEND not in tail:
        raise ImageDecodeError("damaged PNG: cut short (no IEND chunk)")


def decode_image(data: bytes | np.ndarray, flags: int = cv2.IMREAD_COLOR, strict: bool = True) -> np.ndarray:
    """Decode an image file's bytes as ``cv2.imdecode(data, flags)`` does.

    Args:
        data: the file's bytes (``bytes`` or a uint8 array).
        flags: ``cv2.IMREAD_COLOR`` (BGR uint8 HxWx3), ``cv2.IMREAD_GRAYSCALE`` (HxW) or another imread flag.
        strict: refuse damaged files (see the module docstring); False decodes whatever OpenCV decodes.

    Raises:
        ImageDecodeError: the file is empty, damaged, or not an image OpenCV reads.
    """
    buffer = np.frombuffer(data, dtype=np.uint8) if isinstance(data, (bytes, bytearray, memoryview)) else data
    if strict:
        check_structure(buffer)
        if simplejpeg is not None and is_jpeg(buffer):
            image = _decode_jpeg_strict(buffer, flags)
            if image is not None:
                return image
    try:
        image = cv2.imdecode(buffer, flags)
    except cv2.error:
        image = None
    if image is None:
        raise ImageDecodeError("not an image OpenCV can decode" if len(buffer) else "empty image file")
    return image


def exif_orientation(data: bytes | np.ndarray) -> int:
    """The EXIF orientation tag (1-8) of a JPEG, 1 when there is none (or it cannot be read).

    Reads the APP1 ``Exif`` segments before the first scan: the TIFF header (byte order), IFD0, tag 0x0112.
    """
    data = bytes(data[:1 << 17]) if not isinstance(data, bytes) else data[:1 << 17]
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xDA:  # start of scan: no metadata after it
            break
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        segment = data[pos + 4:pos + 2 + length]
        if marker == 0xE1 and segment[:6] == b"Exif\x00\x00":
            tiff = segment[6:]
            order = {b"II": "little", b"MM": "big"}.get(tiff[:2])
            if order is None or len(tiff) < 8:
                return 1
            ifd = int.from_bytes(tiff[4:8], order)
            if ifd + 2 > len(tiff):
                return 1
            for k in range(int.from_bytes(tiff[ifd:ifd + 2], order)):
                entry = tiff[ifd + 2 + 12 * k:ifd + 14 + 12 * k]
                if len(entry) == 12 and int.from_bytes(entry[:2], order) == 0x0112:
                    value = int.from_bytes(entry[8:10], order)
                    return value if 1 <= value <= 8 else 1
            return 1
        pos += 2 + length
    return 1


def _decode_jpeg_strict(buffer: np.ndarray, flags: int) -> Optional[np.ndarray]:
    """simplejpeg's strict decode, or None where OpenCV has to decode (CMYK, other flags; checked strictly here)."""
    try:
        header = simplejpeg.decode_jpeg_header(buffer)
    except ValueError as e:
        raise ImageDecodeError(f"damaged JPEG: {_reason(e)}") from None
    colorspace = header[2] if len(header) > 2 else ""
    target = _SIMPLEJPEG_COLORSPACES.get(flags)
    if str(colorspace).upper() in ("CMYK", "YCCK") or exif_orientation(buffer) != 1:
        target = None
    try:
        if target is None:  # validate only; OpenCV converts
            simplejpeg.decode_jpeg(buffer, colorspace="GRAY" if colorspace == "Gray" else "RGB", strict=True)
            return None
        image = simplejpeg.decode_jpeg(buffer, colorspace=target, strict=True)
    except ValueError as e:
        if target is None and str(colorspace).upper() in ("CMYK", "YCCK"):
            return None  # simplejpeg cannot convert these at all; the structure check above still applied
        raise ImageDecodeError(f"damaged JPEG: {_reason(e)}") from None
    return image[..., 0] if target == "GRAY" else image


def _reason(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0].rstrip(".") if text else type(error).__name__
