"""The tracker's image crops: the original's `get_subwindow_tracking` and the crop -> network-input conversion."""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
import torch


def get_subwindow_tracking(im: np.ndarray, pos: Sequence[float], model_sz: int, original_sz: int,
                           avg_chans: np.ndarray) -> np.ndarray:
    """Square crop of side `original_sz` centred on `pos`, padded with the mean colour, resized to `model_sz`.

    The original's `get_subwindow_tracking`: c = (original_sz + 1) / 2, xmin = round(pos_x - c),
    xmax = xmin + original_sz - 1 (same for y); pixels outside the image take `avg_chans` cast to uint8
    (truncation); `cv2.resize` (bilinear) when the sizes differ. The border is made with `cv2.copyMakeBorder` on
    the part of the image inside the crop (the same pixels as the original's padding of the whole image).

    Args:
        im: (H, W, 3) BGR uint8 frame.
        pos: (cx, cy) centre in image pixels.
        model_sz: output side (127 template, 255 search).
        original_sz: crop side in image pixels (an int, already rounded by the caller).
        avg_chans: (3,) per-channel mean of the first frame.

    Returns:
        (model_sz, model_sz, 3) uint8 BGR crop.
    """
    sz = original_sz
    c = (original_sz + 1) / 2
    xmin = round(pos[0] - c)
    ymin = round(pos[1] - c)
    xmax = xmin + sz - 1
    ymax = ymin + sz - 1
    im_h, im_w = im.shape[:2]
    x0, y0 = max(xmin, 0), max(ymin, 0)
    x1, y1 = min(xmax + 1, im_w), min(ymax + 1, im_h)
    fill = [float(int(v)) for v in avg_chans]  # numpy's float -> uint8 assignment truncates
    if x1 <= x0 or y1 <= y0:  # the crop misses the image: all padding
        patch = np.empty((sz, sz, im.shape[2]), dtype=np.uint8)
        patch[:] = np.array(fill, dtype=np.uint8)
    elif x0 == xmin and y0 == ymin and x1 == xmax + 1 and y1 == ymax + 1:
        patch = im[y0:y1, x0:x1]
    else:
        patch = cv2.copyMakeBorder(im[y0:y1, x0:x1], y0 - ymin, ymax + 1 - y1, x0 - xmin, xmax + 1 - x1,
                                   cv2.BORDER_CONSTANT, value=fill)
    if model_sz != original_sz:
        patch = cv2.resize(patch, (model_sz, model_sz))
    return patch


def crops_to_tensor(crops: Sequence[np.ndarray], device: torch.device) -> torch.Tensor:
    """Stack (S, S, 3) uint8 crops into a (B, 3, S, S) float32 BGR 0-255 tensor on `device`.

    The HWC pixels are seen as CHW (the original's `im_to_torch`), so the result is channels_last-strided.
    """
    batch = torch.from_numpy(np.stack(crops)).to(device)
    return batch.permute(0, 3, 1, 2).float()
