"""Synthetic training batches in the layout of docs/ARCHITECTURE.md's batch table, for tests and benchmarks.

Not part of the original. Labels are shaped like the original ``AnchorTargetLayer`` output of a positive pair on a
mask dataset: a few positive anchors near the centre (loc weight 1 / n_pos), negatives elsewhere (up to 64 labelled
anchors in all), -1 for the rest, a +-1 elliptic target mask, and ``label_mask_weight`` = 1 where any anchor is
positive. Images are integer-valued BGR 0-255 floats.
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..utils.config import response_size

#: Anchors per position in the original configs.
ANCHOR_NUM = 5
#: Labelled anchors per sample (``rpn_batch``) and the cap on positives, as the original ``AnchorTargetLayer``.
RPN_BATCH, MAX_POSITIVE = 64, 16


def _map_size(search_size: int, template_size: int = 127, stride: int = 8) -> int:
    base = 8 if search_size == 255 else 0  # the original configs: base_size 8 for 255, 0 for 143
    return response_size(search_size, template_size, stride, base)


def synthetic_batch(batch_size: int, search_size: int = 255, num_pos: int = 6, with_mask: bool = True,
                    generator: torch.Generator | None = None) -> dict[str, Tensor]:
    """A random training batch with realistic labels.

    Args:
        batch_size: B.
        search_size: 255 (base, 25x25 map) or 143 (refine stage, 3x3 map).
        num_pos: positive anchors per sample (at most 16), spread over the central 3x3 positions.
        with_mask: mask dataset (``label_mask_weight`` set) or not (weight 0).
        generator: torch RNG for reproducible batches.

    Returns:
        dict with ``template`` (B, 3, 127, 127), ``search`` (B, 3, S, S), ``label_cls`` (B, 5, H, H) int64,
        ``label_loc`` (B, 4, 5, H, H), ``label_loc_weight`` (B, 5, H, H), ``label_mask`` (B, 1, S, S),
        ``label_mask_weight`` (B, 1, H, H) and ``bbox`` (B, 4) x1y1x2y2.
    """
    size = _map_size(search_size)
    num_pos = min(num_pos, MAX_POSITIVE)
    g = generator

    def rand(*shape: int) -> Tensor:
        return torch.rand(*shape, generator=g)

    label_cls = torch.full((batch_size, ANCHOR_NUM, size, size), -1, dtype=torch.long)
    label_loc_weight = torch.zeros(batch_size, ANCHOR_NUM, size, size)
    centre = size // 2
    lo, hi = max(centre - 1, 0), min(centre + 2, size)
    for b in range(batch_size):
        central = [(a, r, c) for a in range(ANCHOR_NUM) for r in range(lo, hi) for c in range(lo, hi)]
        chosen = torch.randperm(len(central), generator=g)[:num_pos]
        for i in chosen.tolist():
            a, r, c = central[i]
            label_cls[b, a, r, c] = 1
            label_loc_weight[b, a, r, c] = 1.0 / (num_pos + 1e-6)
        free = torch.nonzero(label_cls[b].reshape(-1) == -1).squeeze(1)
        negatives = free[torch.randperm(free.numel(), generator=g)[: RPN_BATCH - num_pos]]
        label_cls[b].view(-1)[negatives] = 0

    # target box around the crop centre, ellipse mask inscribed in it
    half_w = search_size * (0.12 + 0.1 * rand(batch_size))
    half_h = search_size * (0.12 + 0.1 * rand(batch_size))
    cx = search_size // 2 + 4 * (rand(batch_size) - 0.5)
    cy = search_size // 2 + 4 * (rand(batch_size) - 0.5)
    bbox = torch.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], dim=1)
    grid = torch.arange(search_size, dtype=torch.float32)
    inside = (((grid.view(1, -1, 1) - cy.view(-1, 1, 1)) / half_h.view(-1, 1, 1)) ** 2
              + ((grid.view(1, 1, -1) - cx.view(-1, 1, 1)) / half_w.view(-1, 1, 1)) ** 2) <= 1.0
    label_mask = (inside.float() * 2 - 1).unsqueeze(1)
    label_mask_weight = (label_cls.max(dim=1, keepdim=True).values == 1).float()
    if not with_mask:
        label_mask_weight.zero_()

    return {
        "template": torch.floor(rand(batch_size, 3, 127, 127) * 256),
        "search": torch.floor(rand(batch_size, 3, search_size, search_size) * 256),
        "label_cls": label_cls,
        "label_loc": 0.3 * torch.randn(batch_size, 4, ANCHOR_NUM, size, size, generator=g),
        "label_loc_weight": label_loc_weight,
        "label_mask": label_mask,
        "label_mask_weight": label_mask_weight,
        "bbox": bbox,
    }
