"""Crop geometry shared by the data-preparation scripts and the training set.

Ports `crop_hwc`, `pos_s_2_bbox` and `crop_like_SiamFCx` of the original's `data/{coco,det,vid,ytb_vos}/par_crop.py`
(one copy per dataset there, one here) and `toBBox` of `datasets/siam_mask_dataset.py`.

A "crop511" image is a search-style patch centred on the target: with context ``p = context_amount * (w + h)`` the
context side is ``s_z = sqrt((w + p) * (h + p))``; it maps to ``exemplar_size`` (127) pixels, and the crop covers
``s_x = s_z * instance_size / exemplar_size`` image pixels around the target centre. Images are BGR uint8 HWC.
"""
from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import cv2
import numpy as np

Border = Union[float, Sequence[float]]


def crop_hwc(image: np.ndarray, box_x1y1x2y2: Sequence[float], out_size: int, border: Border = 0,
             interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """Warp the region `box_x1y1x2y2` of `image` to an `out_size` square (the original's `crop_hwc`).

    The box corners map to pixel centres 0 and out_size - 1: scale ``(out_size - 1) / (x2 - x1)``, one affine warp,
    constant border.

    Args:
        image: (H, W) or (H, W, C) array (uint8 or float32).
        box_x1y1x2y2: region in image pixels.
        out_size: side of the output.
        border: border value (per channel, or one number).
        interpolation: cv2 interpolation flag (bilinear by default, as the original).

    Returns:
        (out_size, out_size[, C]) array of the input's dtype.
    """
    x1, y1, x2, y2 = (float(v) for v in box_x1y1x2y2)
    a = (out_size - 1) / (x2 - x1)
    b = (out_size - 1) / (y2 - y1)
    mapping = np.array([[a, 0.0, -a * x1], [0.0, b, -b * y1]], dtype=np.float64)
    if not isinstance(border, (int, float)):
        border = tuple(float(v) for v in border)
    return cv2.warpAffine(image, mapping, (out_size, out_size), flags=interpolation,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=border)


def context_side(w: float, h: float, context_amount: float = 0.5) -> float:
    """Side of the context square of a (w, h) target: ``sqrt((w + p) * (h + p))`` with ``p = context * (w + h)``."""
    p = context_amount * (w + h)
    return math.sqrt((w + p) * (h + p))


def search_region_x1y1x2y2(center_xy: Sequence[float], size_wh: Sequence[float], exemplar_size: int = 127,
                           instance_size: int = 511, context_amount: float = 0.5) -> tuple[float, float, float, float]:
    """Image region cropped into an `instance_size` search patch for a target of centre/size (original formula).

    Returns:
        x1, y1, x2, y2 of the square of side ``s_x = s_z + 2 * ((instance - exemplar) / 2) / (exemplar / s_z)``.
    """
    s_z = context_side(size_wh[0], size_wh[1], context_amount)
    scale_z = exemplar_size / s_z
    pad = (instance_size - exemplar_size) / 2 / scale_z
    s_x = s_z + 2 * pad
    cx, cy = float(center_xy[0]), float(center_xy[1])
    return cx - s_x / 2, cy - s_x / 2, cx + s_x / 2, cy + s_x / 2


def mean_color(image: np.ndarray) -> tuple[float, ...]:
    """Per-channel mean of an image (the original's ``np.mean(im, axis=(0, 1))``), the border of image crops."""
    channels = 1 if image.ndim == 2 else image.shape[2]
    return tuple(cv2.mean(image)[:channels])


def crop_like_siamfc(image: np.ndarray, center_xy: Sequence[float], size_wh: Sequence[float],
                     instance_size: int = 511, exemplar_size: int = 127, context_amount: float = 0.5,
                     border: Optional[Border] = None) -> np.ndarray:
    """The original's `crop_like_SiamFCx`: the search-style crop of a target, target centred.

    Args:
        image: BGR uint8 HWC frame (or an (H, W) float mask).
        center_xy: target centre in image pixels.
        size_wh: target width and height (the per-dataset convention decides whether that is x2 - x1 or + 1).
        instance_size: output side (511 for the crop511 sets).
        border: border value; None = the image's mean colour (as the original's `avg_chans`).

    Returns:
        (instance_size, instance_size[, C]) crop of the input's dtype.
    """
    if border is None:
        border = mean_color(image)
    box = search_region_x1y1x2y2(center_xy, size_wh, exemplar_size, instance_size, context_amount)
    return crop_hwc(image, box, instance_size, border)


def crop_mask_like_siamfc(mask: np.ndarray, center_xy: Sequence[float], size_wh: Sequence[float], threshold: float,
                          instance_size: int = 511, exemplar_size: int = 127,
                          context_amount: float = 0.5) -> np.ndarray:
    """Crop a binary object mask like its image and binarise it (COCO threshold 0.5, YouTube-VOS 0.2).

    Args:
        mask: (H, W) array, object pixels > 0 (bool, 0/1 or 0/255).

    Returns:
        (instance_size, instance_size) uint8, 255 where the bilinearly warped 0/1 mask exceeds `threshold`, else 0.
    """
    m = (np.asarray(mask) > 0).astype(np.float32)
    warped = crop_like_siamfc(m, center_xy, size_wh, instance_size, exemplar_size, context_amount, border=0.0)
    return ((warped > threshold) * 255).astype(np.uint8)


def target_box_in_crop(size_wh: Sequence[float], crop_shape: Sequence[int], exemplar_size: int = 127,
                       context_amount: float = 0.5) -> tuple[float, float, float, float]:
    """Where an annotated target lies in its crop511 image (the original's `toBBox`).

    The target's (w, h) is scaled by ``exemplar_size / s_z`` and centred at ``(W // 2, H // 2)`` of the crop.

    Args:
        size_wh: target width and height in original-image pixels (from the annotation json).
        crop_shape: (H, W[, C]) of the crop image.

    Returns:
        x1, y1, x2, y2 in crop pixels.
    """
    w, h = float(size_wh[0]), float(size_wh[1])
    scale_z = exemplar_size / context_side(w, h, context_amount)
    w, h = w * scale_z, h * scale_z
    cx, cy = crop_shape[1] // 2, crop_shape[0] // 2
    return cx - w * 0.5, cy - h * 0.5, cx + w * 0.5, cy + h * 0.5
