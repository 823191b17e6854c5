"""The DAVIS / YouTube-VOS / PASCAL VOC colour palette and the palette-PNG reader and writer.

VOS annotations and results are 8-bit palette PNGs: the pixel value is the object id (0 background), the palette gives
it its DAVIS colour. OpenCV expands palettes to BGR on reading, so these use Pillow.
"""
from __future__ import annotations

import os
from functools import lru_cache
from typing import Union

import numpy as np

from .errors import SiamMaskError
from .io import atomic_path

__all__ = ["davis_palette", "write_palette_png", "read_index_png"]


@lru_cache(maxsize=1)
def _palette_tuple() -> tuple[int, ...]:
    out = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):  # bit j of each colour channel comes from bits 3j, 3j+1, 3j+2 of the index
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        out += [r, g, b]
    return tuple(out)


def davis_palette() -> list[int]:
    """The 256-entry palette as a flat [r0, g0, b0, r1, ...] list (index 1 = (128, 0, 0), 2 = (0, 128, 0), ...)."""
    return list(_palette_tuple())


def write_palette_png(path: Union[str, "os.PathLike[str]"], label: np.ndarray) -> None:
    """Write an (H, W) uint8 index map as a palette PNG with the DAVIS colours, atomically."""
    from PIL import Image

    label = np.ascontiguousarray(label, dtype=np.uint8)
    if label.ndim != 2:
        raise ValueError(f"a label map is (H, W), got shape {label.shape}")
    image = Image.frombytes("P", (label.shape[1], label.shape[0]), label.tobytes())
    image.putpalette(davis_palette())
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


def read_index_png(path: Union[str, "os.PathLike[str]"],
                   error: type[SiamMaskError] = SiamMaskError) -> np.ndarray:
    """The (H, W) index map of a palette (or grey) PNG; `error` naming the file when missing or undecodable.

    An RGB image is not an index map and is refused.
    """
    from PIL import Image, UnidentifiedImageError

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise error(f"{path}: mask PNG not found")
    try:
        with Image.open(path) as image:
            if image.mode not in ("P", "L", "1", "I", "I;16"):
                raise error(f"{path}: not an index PNG (mode {image.mode}; expected a palette or grey PNG)")
            array = np.array(image)
    except (OSError, UnidentifiedImageError, SyntaxError) as e:
        raise error(f"{path}: cannot decode mask PNG ({e})") from None
    if array.ndim != 2:
        raise error(f"{path}: not a single-channel index PNG")
    return array
