"""Mask post-processing of the tracker: paste-back into the image, rotated polygon, label maps.

Ports the mask part of `siamese_track` in the original `tools/test.py` (the nested `crop_back`, the `sub_box` /
`back_box` arithmetic, the contour -> `minAreaRect` polygon) and the label-map rule of `track_vos` (`--save_mask`).

Deviation: the original picked the `cv2.findContours` return signature with `cv2.__version__[-5] == '4'`, which
breaks on OpenCV 4.10+ and 5.x; here `cv2.findContours(...)[-2]` works on every version.
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from ..utils.bbox import cxcywh_to_xywh, xywh_to_corners4x2

MIN_CONTOUR_AREA = 100.0  # the original's hard-coded threshold: smaller largest contours fall back to the box


def crop_back(image: np.ndarray, bbox: Sequence[float], out_sz: tuple[int, int], padding: float = -1) -> np.ndarray:
    """Warp `image` so that it covers `bbox` of an `out_sz` canvas; the original's `crop_back`.

    The affine map is x' = a x + c, y' = b y + d with a = (out_w - 1) / bbox_w, b = (out_h - 1) / bbox_h,
    c = -a bbox_x, d = -b bbox_y (float64), bilinear, constant border `padding`.

    Args:
        image: (h, w) float32 map (e.g. mask probabilities).
        bbox: (x, y, w, h) of the *output* canvas as seen from `image` scaled coordinates (the original's `back_box`).
        out_sz: (width, height) of the output.

    Returns:
        (out_h, out_w) float32.
    """
    a = (out_sz[0] - 1) / bbox[2]
    b = (out_sz[1] - 1) / bbox[3]
    c = -a * bbox[0]
    d = -b * bbox[1]
    mapping = np.array([[a, 0, c], [0, b, d]], dtype=np.float64)
    return cv2.warpAffine(image, mapping, (int(out_sz[0]), int(out_sz[1])), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=padding)


def mask_window_in_image(crop_box: Sequence[float], row: int, col: int, instance_size: int, exemplar_size: int,
                         base_size: int, stride: int) -> list[float]:
    """Image-space (x, y, w, h) of the exemplar-sized window of response cell (row, col); the original's `sub_box`.

    Args:
        crop_box: (x, y, side, side) of the search crop in the image (the *previous* target position's crop).
    """
    s = crop_box[2] / instance_size
    return [crop_box[0] + (col - base_size / 2) * stride * s,
            crop_box[1] + (row - base_size / 2) * stride * s,
            s * exemplar_size, s * exemplar_size]


def paste_mask(mask: np.ndarray, sub_box: Sequence[float], im_w: int, im_h: int) -> np.ndarray:
    """Paste an out_size x out_size mask that covers `sub_box` into a full image; outside gets -1.

    Args:
        mask: (out, out) float32 probabilities (63 base head, 127 refine).
        sub_box: (x, y, w, h) image window the mask covers (:func:`mask_window_in_image`).

    Returns:
        (im_h, im_w) float32 probability map (-1 where the warp samples outside the mask).
    """
    s = mask.shape[1] / sub_box[2]
    back_box = [-sub_box[0] * s, -sub_box[1] * s, im_w * s, im_h * s]
    return crop_back(mask, back_box, (im_w, im_h))


def polygon_from_mask(mask_in_img: np.ndarray, seg_thr: float, fallback_pos: Sequence[float],
                      fallback_sz: Sequence[float]) -> np.ndarray:
    """Rotated rectangle of the largest external contour of `mask_in_img > seg_thr`.

    When there is no contour or the largest one has area <= 100, the axis-aligned box of (fallback_pos,
    fallback_sz) (centre, size) as 4 corners, exactly as the original.

    Returns:
        (4, 2) float32 (minAreaRect's boxPoints) or float64 (fallback) corners.
    """
    binary = (mask_in_img > seg_thr).astype(np.uint8)
    contours = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)[-2]
    if len(contours) != 0:
        areas = [cv2.contourArea(cnt) for cnt in contours]
        best = int(np.argmax(areas))
        if areas[best] > MIN_CONTOUR_AREA:
            return cv2.boxPoints(cv2.minAreaRect(contours[best].reshape(-1, 2)))
    return xywh_to_corners4x2(cxcywh_to_xywh(fallback_pos, fallback_sz))


def label_map(prob_maps: Sequence[np.ndarray | None], seg_thr: float, shape: tuple[int, int]) -> np.ndarray:
    """uint8 label map of several objects: argmax over objects + 1 where the max probability > seg_thr, else 0.

    The original's `--save_mask` rule. Objects with no map this frame (None) never win.

    Args:
        prob_maps: per object an (H, W) float map or None.
        shape: (H, W).
    """
    out = np.zeros(shape, dtype=np.uint8)
    best = np.full(shape, -np.inf, dtype=np.float32)
    for k, prob in enumerate(prob_maps):
        if prob is None:
            continue
        better = prob > best
        best[better] = prob[better]
        out[better] = k + 1
    out[best <= seg_thr] = 0
    return out
