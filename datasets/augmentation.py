"""Per-branch augmentation of a crop511 image into a network input (template 127, search 255 or 143).

Ports `Augmentation` of the original `datasets/siam_mask_dataset.py`, in the same order:

1. crop box: a ``size - 1`` square at the image centre; each side scaled by ``1 + U(-1, 1) * scale`` (clamped to
   the image), then shifted by ``U(-1, 1) * shift`` pixels per axis (clamped to keep the box inside the image);
2. one bilinear affine warp (border 0) of the image, and of the mask when given, to ``size x size``; the target box
   is mapped with the same transform;
3. grey (when the pair is grey): BGR -> grey -> 3 channels;
4. PCA colour jitter: ``image -= (rgbVar @ N(0, 1)^3)`` reversed to BGR order, every sample;
5. motion blur with probability `blur`: kernel side ``round(N(0, 1)) * 2 + 1`` (none when negative, none with
   probability 0.5, at most 45), a cross kernel weighted wx on the centre column and 1 - wx on the centre row;
6. resize (down then up by ``max(sqrt(U), 0.2)``) when enabled, horizontal flip with probability `flip`.

Differences that do not change the sampled distribution: the grey conversion runs on the warped patch instead of
the whole 511 image (it commutes with the warp up to uint8 rounding); the cross kernel is applied as a weighted sum
of a vertical and a horizontal box filter, which is the same filter; everything runs in float32 (the original went
through float64). Fixed: the crop centre is (W // 2, H // 2) (the original swapped the axes, equal for square
crops), and `flip` is a probability in [0, 1] (the original compared it with U(-1, 1)).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import cv2
import numpy as np

from siammask.utils.config import AugBranchConfig

from .jpeg import EncodedImage
from .row_writes import subtract_into

# The original's fixed PCA colour matrix (`rgbVar`), RGB order.
RGB_VAR = np.array([[-0.55919361, 0.98062831, -0.41940627],
                    [1.72091413, 0.19879334, -1.82968581],
                    [4.64467907, 4.73710203, 4.88324118]], dtype=np.float32)


#: Pixels beyond the crop box's corners that :func:`warp_source_rect` adds (bilinear reads floor(x) and floor(x) + 1).
WARP_MARGIN = 2


def warp_source_rect(x1: float, y1: float, x2: float, y2: float) -> tuple[int, int, int, int]:
    """The image pixels a bilinear warp of the crop box (x1, y1, x2, y2) to an output square can read.

    Output pixels 0 .. size - 1 sample the source at x1 .. x2 (and y1 .. y2); each reads its pixel and the next one.

    Returns:
        columns [c0, c1) and rows [r0, r1), with :data:`WARP_MARGIN` to spare on each side (not clamped).
    """
    return (math.floor(x1) - WARP_MARGIN, math.floor(y1) - WARP_MARGIN, math.floor(x2) + 1 + WARP_MARGIN,
            math.floor(y2) + 1 + WARP_MARGIN)


@dataclass(frozen=True)
class AugmentDraws:
    """The random choices of one branch (:meth:`Augmentation.draw`)."""

    crop: tuple[float, float, float, float]  # crop box x1, y1, x2, y2 in image pixels
    offset: np.ndarray  # (3,) float32 BGR colour offset subtracted from every pixel
    blur: Optional[tuple[int, float]]  # (kernel side, wx) of the cross-kernel blur, or None
    resize: Optional[float]  # down-up resize ratio, or None
    flip: bool  # horizontal flip


@dataclass
class AugmentedCrop:
    """One branch's output."""

    image: np.ndarray  # (3, size, size) float32 BGR, 0-255 minus the colour offset
    box: np.ndarray  # (4,) float64 x1, y1, x2, y2 of the target in the output
    mask: Optional[np.ndarray]  # (size, size) uint8 0/255 (bilinear then rounded), or None when no mask was given


class Augmentation:
    """Augments one branch (template or search) to `size` x `size` pixels."""

    def __init__(self, cfg: AugBranchConfig, size: int) -> None:
        self.cfg = cfg
        self.size = size

    def crop_box(self, shape: Sequence[int], rng: np.random.Generator) -> tuple[float, float, float, float]:
        """The randomly scaled and shifted crop box (x1, y1, x2, y2) in image pixels for an image of `shape`."""
        imh, imw = shape[0], shape[1]
        shift = self.cfg.shift
        scale = self.cfg.scale
        tx = ty = 0.0
        if shift:
            tx = (rng.random() * 2 - 1) * shift
            ty = (rng.random() * 2 - 1) * shift
        w = h = float(self.size - 1)
        if scale:
            sx = 1.0 + (rng.random() * 2 - 1) * scale
            sy = 1.0 + (rng.random() * 2 - 1) * scale
            w *= min(sx, imw / w)
            h *= min(sy, imh / h)
        cx, cy = imw // 2, imh // 2
        x1, y1, x2, y2 = cx - w * 0.5, cy - h * 0.5, cx + w * 0.5, cy + h * 0.5
        if shift:
            tx = max(-x1, min(imw - 1 - x2, tx))
            ty = max(-y1, min(imh - 1 - y2, ty))
            x1, y1, x2, y2 = x1 + tx, y1 + ty, x2 + tx, y2 + ty
        return x1, y1, x2, y2

    def draw(self, shape: Sequence[int], rng: np.random.Generator) -> AugmentDraws:
        """Every random choice of one branch for an image of `shape`, in the original's draw order (shift, scale,
        colour, blur, resize, flip). None of them depends on pixels, so a sample can draw both branches (and its
        anchor labels) before it decodes any image."""
        crop = self.crop_box(shape, rng)
        offset = (RGB_VAR @ rng.standard_normal(3).astype(np.float32))[::-1]  # RGB -> BGR
        blur = None
        if self.cfg.blur and self.cfg.blur > rng.random():
            blur = _draw_blur(rng)
        ratio = max(math.sqrt(rng.random()), 0.2) if self.cfg.resize else None
        flip = bool(self.cfg.flip and self.cfg.flip > rng.random())
        return AugmentDraws(crop, offset, blur, ratio, flip)

    def __call__(self, image: Union[np.ndarray, EncodedImage], box_x1y1x2y2: Sequence[float],
                 rng: np.random.Generator, gray: bool = False, mask: Optional[np.ndarray] = None) -> AugmentedCrop:
        """Augment one image: :meth:`draw` then :meth:`apply`.

        Args:
            image: (H, W, 3) BGR uint8 crop511 image, or an :class:`~datasets.jpeg.EncodedImage` of which only the
                rows and columns the warp reads are decoded (same result).
            box_x1y1x2y2: target box in `image` pixels.
            rng: the sample's random generator (draw order: shift, scale, colour, blur, resize, flip).
            gray: convert to grey (decided once per pair).
            mask: optional (H, W) uint8 object mask (0 / 255), warped with the image.
        """
        return self.apply(image, box_x1y1x2y2, self.draw(image.shape, rng), gray=gray, mask=mask)

    def target_box(self, box_x1y1x2y2: Sequence[float], draws: AugmentDraws) -> np.ndarray:
        """(4,) float64 x1, y1, x2, y2 of the target in the output (what :meth:`apply` returns as ``box``)."""
        size = self.size
        x1, y1, x2, y2 = draws.crop
        a = (size - 1) / (x2 - x1)
        b = (size - 1) / (y2 - y1)
        bx1, by1, bx2, by2 = (float(v) for v in box_x1y1x2y2)
        box = np.array([(bx1 - x1) * a, (by1 - y1) * b, (bx2 - x1) * a, (by2 - y1) * b], dtype=np.float64)
        if draws.flip:
            box = np.array([size - 1 - box[2], box[1], size - 1 - box[0], box[3]], dtype=np.float64)
        return box

    def apply(self, image: Union[np.ndarray, EncodedImage], box_x1y1x2y2: Sequence[float], draws: AugmentDraws,
              gray: bool = False, mask: Optional[np.ndarray] = None,
              out: Optional[np.ndarray] = None) -> AugmentedCrop:
        """The pixel work of one branch with the choices `draws` (see :meth:`__call__` for the other arguments).

        `out`: where to write the image, e.g. a row of a shared batch buffer; used when it is a writeable C-contiguous
        float32 ``(3, size, size)`` array (then the returned ``image`` is `out`), else ignored. The values are the
        same either way.
        """
        size = self.size
        dest = out if fits_output(out, (3, size, size)) else None
        x1, y1, x2, y2 = draws.crop
        if not isinstance(image, np.ndarray):
            image = image.decode(*warp_source_rect(x1, y1, x2, y2))
        a = (size - 1) / (x2 - x1)
        b = (size - 1) / (y2 - y1)
        mapping = np.array([[a, 0.0, -a * x1], [0.0, b, -b * y1]], dtype=np.float64)
        warped = cv2.warpAffine(image, mapping, (size, size), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        if mask is not None:
            mask = cv2.warpAffine(mask, mapping, (size, size), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        if gray:
            planes: Sequence[np.ndarray] = (cv2.cvtColor(warped, cv2.COLOR_BGR2GRAY),) * 3
        else:
            planes = cv2.split(warped)
        offset = draws.offset
        # a flipped crop is made in scratch memory and written mirrored to its destination (one copy, as before)
        pixels = dest if dest is not None and not draws.flip else np.empty((3, size, size), dtype=np.float32)
        # final values into the caller's row: streaming stores; scratch, or worked on further (blur, resize):
        # ordinary stores keep it in the cache
        final = pixels is dest and draws.blur is None and draws.resize is None
        for c in range(3):
            subtract_into(planes[c], offset[c], pixels[c], stream=final)
        if draws.blur is not None:
            _apply_blur(pixels, *draws.blur)
        if draws.resize is not None:
            small = (int(round(draws.resize * size)), int(round(draws.resize * size)))
            for c in range(3):
                pixels[c] = cv2.resize(cv2.resize(pixels[c], small), (size, size))
        if draws.flip:
            if dest is None:
                pixels = np.ascontiguousarray(pixels[:, :, ::-1])
            else:
                np.copyto(dest, pixels[:, :, ::-1])
                pixels = dest
            if mask is not None:
                mask = np.ascontiguousarray(mask[:, ::-1])
        return AugmentedCrop(pixels, self.target_box(box_x1y1x2y2, draws), mask)


def fits_output(array: Optional[np.ndarray], shape: tuple[int, ...]) -> bool:
    """Whether `array` can take a float32 result of `shape` in place (writeable, C-contiguous, that shape)."""
    return (isinstance(array, np.ndarray) and array.shape == shape and array.dtype == np.float32
            and array.flags.c_contiguous and array.flags.writeable)


def _draw_blur(rng: np.random.Generator) -> Optional[tuple[int, float]]:
    """The blur's draws: (kernel side, wx), or None when it draws no kernel or the 1x1 identity."""
    side = int(np.round(rng.standard_normal())) * 2 + 1
    if side < 0 or rng.random() < 0.5:
        return None
    side = min(side, 45)
    wx = rng.random()
    if side == 1:  # the 1x1 kernel wx + (1 - wx) = 1 is the identity
        return None
    return side, wx


def _apply_blur(planes: np.ndarray, side: int, wx: float) -> None:
    """The cross kernel (wx on the centre column, 1 - wx on the centre row) in place on (C, H, W) float32 planes."""
    for c in range(planes.shape[0]):
        vertical = cv2.blur(planes[c], (1, side), borderType=cv2.BORDER_REFLECT_101)
        horizontal = cv2.blur(planes[c], (side, 1), borderType=cv2.BORDER_REFLECT_101)
        cv2.addWeighted(vertical, wx, horizontal, 1.0 - wx, 0.0, dst=planes[c])


def _motion_blur(planes: np.ndarray, rng: np.random.Generator) -> None:
    """The original's random cross-kernel blur, in place on (C, H, W) float32 planes (may draw no kernel)."""
    blur = _draw_blur(rng)
    if blur is not None:
        _apply_blur(planes, *blur)
