"""SiamMask training losses and mask IoU metrics, computed in one place.

Ports ``select_cross_entropy_loss``, ``weight_l1_loss``, ``select_mask_logistic_loss`` and ``iou_measure`` of
``models/siammask.py`` / ``models/siammask_sharp.py`` in the original SiamMask (reference.md D.1), and the weighted
sum of ``tools/train_siammask.py``.

* cls: 0.5 * NLL over positive anchors + 0.5 * NLL over negative anchors of the log-softmax over (bg, fg) pairs
  (an empty set contributes 0);
* loc: plain L1 (not smooth L1) summed over dx, dy, dw, dh, weighted per anchor, summed, divided by the batch size;
* mask: soft-margin loss over the P x 16129 pixels of the positions where ``label_mask_weight == 1``. Base: the
  63x63 head output is upsampled to 127x127 (bilinear, align_corners=True) and the label is the 127x127 window at
  stride 8 of the search mask zero-padded by 32; sharp: the refined 127x127 logits against the windows of the
  unpadded 143-px mask. The padding is derived from the map size (:func:`mask_label_padding`).

Deviations: the soft-margin loss is computed as ``softplus(-y * x)``, which equals torch's ``soft_margin_loss``
``log(1 + exp(-y * x))`` wherever that is finite but does not overflow to inf for ``-y * x > ~88.7`` (fp32). The IoU
metrics are the *intended* ones (the original adds two bool tensors, which is a logical OR under
current PyTorch, so it always reports 0): per selected position intersection / union of ``logit >= 0`` and
``label == 1``, then the mean and the fractions above 0.5 and 0.7 (strict). A position with an empty union gives
NaN, as the original's division would. Labels are gathered only at the selected positions instead of unfolding the
whole mask (same values).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .refine import REFINE_SIZE, gather_windows

#: Stride of the response map in search-crop pixels.
MASK_LABEL_STRIDE = 8


def select_mask_positions(label_mask_weight: Tensor) -> Tensor:
    """Positions that get a mask loss.

    Args:
        label_mask_weight: (B, 1, H, W), 1 where a positive anchor sits on a mask dataset's positive pair.

    Returns:
        (P,) int64 flat indices ``b*H*W + r*W + c`` where the weight equals 1, ascending.
    """
    return torch.nonzero(label_mask_weight.reshape(-1) == 1).squeeze(1)


def log_softmax_cls(cls: Tensor) -> Tensor:
    """Log-probabilities of the classification logits (the original ``softmax``).

    Args:
        cls: (B, 2A, H, W) logits; channels [0, A) background, [A, 2A) foreground.

    Returns:
        (B, A, H, W, 2) log-softmax over the last axis [bg, fg].
    """
    b, a2, h, w = cls.shape
    return F.log_softmax(cls.view(b, 2, a2 // 2, h, w).permute(0, 2, 3, 4, 1), dim=4)


def _nll_over(pred: Tensor, label: Tensor, select: Tensor) -> Tensor:
    if select.numel() == 0:
        return pred.sum() * 0.0
    return F.nll_loss(pred.index_select(0, select), label.index_select(0, select))


def select_cross_entropy_loss(pred: Tensor, label: Tensor) -> Tensor:
    """Balanced classification loss.

    Args:
        pred: (B, A, H, W, 2) log-probabilities (:func:`log_softmax_cls`).
        label: (B, A, H, W) int64: 1 positive, 0 negative, -1 ignored.

    Returns:
        scalar ``0.5 * mean NLL(positives) + 0.5 * mean NLL(negatives)``.
    """
    pred = pred.reshape(-1, 2)
    label = label.reshape(-1)
    pos = torch.nonzero(label == 1).squeeze(1)
    neg = torch.nonzero(label == 0).squeeze(1)
    return _nll_over(pred, label, pos) * 0.5 + _nll_over(pred, label, neg) * 0.5


def weight_l1_loss(pred_loc: Tensor, label_loc: Tensor, loss_weight: Tensor) -> Tensor:
    """Weighted L1 box loss.

    Args:
        pred_loc: (B, 4A, H, W) predicted offsets, channels dx of anchors 0..A-1, then dy, dw, dh.
        label_loc: (B, 4, A, H, W) targets.
        loss_weight: (B, A, H, W) per-anchor weight (1 / n_pos on kept positives, else 0).

    Returns:
        scalar ``sum(weight * |pred - target| summed over the 4 coordinates) / B``.
    """
    b, _, h, w = pred_loc.shape
    diff = (pred_loc.view(b, 4, -1, h, w) - label_loc).abs().sum(dim=1).view(b, -1, h, w)
    return (diff * loss_weight).sum().div(b)


def mask_label_padding(map_size: int, search_size: int, window: int = REFINE_SIZE,
                       stride: int = MASK_LABEL_STRIDE) -> int:
    """Zero padding of the search mask so that its ``map_size`` windows at ``stride`` are centred on the anchors.

    ``((map_size - 1) * stride + window - search_size) / 2``: 32 for a 255 search and a 25x25 map (window (r, c)
    centred at pixel 31 + 8c), 0 for a 143 search and a 3x3 map (centres 63, 71, 79).

    Raises:
        ValueError: the sizes leave no symmetric, non-negative padding.
    """
    total = (map_size - 1) * stride + window - search_size
    if total < 0 or total % 2:
        raise ValueError(f"a {search_size}-px mask has no symmetric padding for {map_size} windows of {window} px "
                         f"at stride {stride}")
    return total // 2


def mask_label_windows(label_mask: Tensor, index: Tensor, map_size: tuple[int, int]) -> Tensor:
    """127x127 label windows at selected response positions, as ``F.unfold(label, 127, padding, stride=8)``.

    Args:
        label_mask: (B, 1, S, S) search-crop mask, +1 target / -1 background.
        index: (P,) flat positions ``b*H*W + r*W + c``.
        map_size: (H, W) of the response map.

    Returns:
        (P, 16129) labels; pixels from the zero padding are 0.
    """
    height, width = map_size
    padding = mask_label_padding(height, label_mask.size(2))
    batch = torch.div(index, height * width, rounding_mode="floor")
    rest = index - batch * height * width
    rows = torch.div(rest, width, rounding_mode="floor")
    windows = gather_windows(label_mask, REFINE_SIZE, MASK_LABEL_STRIDE, padding, batch, rows, rest - rows * width)
    return windows.reshape(-1, REFINE_SIZE * REFINE_SIZE)


def upsample_mask_logits(mask: Tensor) -> Tensor:
    """Mask logits at the label resolution.

    Args:
        mask: (P, o*o) logits; o = 63 (base head) is upsampled bilinearly with align_corners=True (the original
            ``nn.UpsamplingBilinear2d``), o = 127 (refine output) is returned as is.

    Returns:
        (P, 16129).
    """
    side = int(round(mask.size(1) ** 0.5))
    if side == REFINE_SIZE:
        return mask
    grid = mask.view(-1, 1, side, side)
    up = F.interpolate(grid, size=(REFINE_SIZE, REFINE_SIZE), mode="bilinear", align_corners=True)
    return up.view(-1, REFINE_SIZE * REFINE_SIZE)


def soft_margin_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean of ``log(1 + exp(-y * x))`` over all pixels (the original ``F.soft_margin_loss``, overflow-free).

    Args:
        logits: (P, N) mask logits x.
        labels: (P, N) labels y in {-1, 0, +1}; 0 (padding) contributes log 2 whatever the logit.

    Returns:
        scalar loss.
    """
    return F.softplus(-labels * logits).mean()


def iou_measure(logits: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Intended mask IoU per position (prediction ``logit >= 0``, ground truth ``label == 1``).

    Args:
        logits: (P, N) mask logits.
        labels: (P, N) labels (+1 / -1, 0 for padding = background).

    Returns:
        mean IoU, fraction of positions with IoU > 0.5, fraction > 0.7 (scalars) and the (P,) per-position IoU.
    """
    votes = logits.ge(0).int() + labels.eq(1).int()
    iou = (votes == 2).sum(dim=1).float() / (votes > 0).sum(dim=1).float()
    count = iou.numel()
    return iou.mean(), (iou > 0.5).sum().float() / count, (iou > 0.7).sum().float() / count, iou


def compute_losses(out: Mapping[str, Tensor], batch: Mapping[str, Tensor],
                   weights: Sequence[float]) -> dict[str, Tensor]:
    """All loss terms and mask metrics of one training batch.

    Args:
        out: ``model(batch)``: ``cls`` (B, 2A, H, W), ``loc`` (B, 4A, H, W), ``mask`` (P, 3969) or (P, 16129),
            ``mask_index`` (P,).
        batch: training batch with ``label_cls`` (B, A, H, W), ``label_loc`` (B, 4, A, H, W), ``label_loc_weight``
            (B, A, H, W), ``label_mask`` (B, 1, S, S).
        weights: (cls, loc, mask) loss weights, the config's ``loss.weight``.

    Returns:
        dict of scalars: ``cls``, ``loc``, ``mask``, ``total`` = w0*cls + w1*loc + w2*mask (with gradient), and the
        detached metrics ``iou_mean``, ``iou_at_5``, ``iou_at_7``. Without selected positions the mask loss and
        metrics are 0 and the mask branch stays in the graph with zero gradient.
    """
    cls, loc, mask, index = out["cls"].float(), out["loc"].float(), out["mask"].float(), out["mask_index"]
    cls_loss = select_cross_entropy_loss(log_softmax_cls(cls), batch["label_cls"])
    loc_loss = weight_l1_loss(loc, batch["label_loc"], batch["label_loc_weight"])
    if index.numel() == 0:
        mask_loss = mask.sum() * 0.0
        zero = mask_loss.detach()
        iou_mean = iou_5 = iou_7 = zero
    else:
        logits = upsample_mask_logits(mask)
        labels = mask_label_windows(batch["label_mask"].to(logits.dtype), index, (cls.size(2), cls.size(3)))
        mask_loss = soft_margin_loss(logits, labels)
        with torch.no_grad():
            iou_mean, iou_5, iou_7, _ = iou_measure(logits, labels)
    w_cls, w_loc, w_mask = (float(w) for w in weights)
    total = cls_loss * w_cls + loc_loss * w_loc + mask_loss * w_mask
    return {"cls": cls_loss, "loc": loc_loss, "mask": mask_loss, "total": total,
            "iou_mean": iou_mean, "iou_at_5": iou_5, "iou_at_7": iou_7}
