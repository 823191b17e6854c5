"""Depth-wise correlation heads: ``DepthCorr`` and the RPN ``UP``.

Ports ``models/rpn.py`` (``DepthCorr``, the depth-wise correlation ``conv2d_dw_group``) and ``UP`` of
``experiments/siammask_sharp/custom.py`` in the original SiamMask (reference.md C.2, C.3).

Addition: :meth:`DepthCorr.head_at` evaluates the head's final 1x1 convolution only at selected response positions
(the expensive 3969-channel mask head). ``head.0`` and the BatchNorm ``head.1`` still run over all positions, so in
train mode the batch statistics and running-stat updates are those of the full computation. Speed: in training the
depth-wise correlation's backward is two grouped convolutions (:class:`_DepthwiseXCorr`, the same gradients).
"""
from __future__ import annotations

from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def _grouped_xcorr(search: Tensor, kernel: Tensor) -> Tensor:
    batch, channels = kernel.shape[:2]
    x = search.reshape(1, batch * channels, search.size(2), search.size(3))
    k = kernel.reshape(batch * channels, 1, kernel.size(2), kernel.size(3))
    out = F.conv2d(x, k, groups=batch * channels)
    return out.view(batch, channels, out.size(2), out.size(3))


class _DepthwiseXCorr(torch.autograd.Function):
    """The grouped-convolution correlation with its backward written as two more grouped convolutions.

    The gradients are the exact ones (float64: equal to autograd's to 1e-13): search gets the correlation of the
    zero-padded output gradient with the flipped kernel, the kernel the correlation of the search map with the
    output gradient. On the CPU autograd's own backward of a convolution with one group per channel takes ~40 ms for
    a training batch of 8 (256 channels, 29x29 (*) 5x5), these two ~3 ms: ~8 % of a frozen-stage training step.
    """

    @staticmethod
    def forward(ctx: Any, search: Tensor, kernel: Tensor) -> Tensor:
        ctx.save_for_backward(search, kernel)
        return _grouped_xcorr(search, kernel)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Optional[Tensor], Optional[Tensor]]:
        search, kernel = ctx.saved_tensors
        batch, channels, kh, kw = kernel.shape
        groups = batch * channels
        g = grad.reshape(1, groups, grad.size(2), grad.size(3))
        grad_search = grad_kernel = None
        if ctx.needs_input_grad[0]:  # autocast ran the forward in grad's dtype: so does the backward
            flipped = kernel.to(g.dtype).flip(2, 3).reshape(groups, 1, kh, kw)
            grad_search = F.conv2d(g, flipped, padding=(kh - 1, kw - 1), groups=groups)
            grad_search = grad_search.view(search.shape).to(search.dtype)
        if ctx.needs_input_grad[1]:
            x = search.to(g.dtype).reshape(1, groups, search.size(2), search.size(3))
            grad_kernel = F.conv2d(x, g.reshape(groups, 1, grad.size(2), grad.size(3)), groups=groups)
            grad_kernel = grad_kernel.view(kernel.shape).to(kernel.dtype)
        return grad_search, grad_kernel


def depthwise_xcorr(search: Tensor, kernel: Tensor) -> Tensor:
    """Depth-wise cross-correlation (valid padding) of each sample's search map with its own kernel.

    A grouped convolution with one group per (sample, channel), as the original ``conv2d_dw_group``. When autograd
    records (training), the same forward with a faster exact backward (:class:`_DepthwiseXCorr`).

    Args:
        search: (B, C, H, W) search features.
        kernel: (B, C, h, w) template features.

    Returns:
        (B, C, H - h + 1, W - w + 1), e.g. 29x29 (*) 5x5 -> 25x25.
    """
    if torch.is_grad_enabled() and (search.requires_grad or kernel.requires_grad):
        return _DepthwiseXCorr.apply(search, kernel)
    return _grouped_xcorr(search, kernel)


def _conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=kernel_size, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class DepthCorr(nn.Module):
    """Adjust both branches with a 3x3 conv + BN + ReLU, correlate depth-wise, then a 1x1 head.

    Keys: ``conv_kernel.{0,1}``, ``conv_search.{0,1}``, ``head.{0,1,3}`` (1x1 conv, BN, ReLU, 1x1 conv with bias).

    Args:
        in_channels: channels of the adjusted features (256).
        hidden: channels of the correlation map (256).
        out_channels: head outputs (10 cls, 20 loc, 3969 mask).
        kernel_size: size of the branch convolutions (3).
    """

    def __init__(self, in_channels: int, hidden: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv_kernel = _conv_bn_relu(in_channels, hidden, kernel_size)
        self.conv_search = _conv_bn_relu(in_channels, hidden, kernel_size)
        self.head = nn.Sequential(
            nn.Conv2d(hidden, hidden, kernel_size=1, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, out_channels, kernel_size=1),
        )

    def adjust_kernel(self, kernel: Tensor) -> Tensor:
        """The template branch: ``conv_kernel`` (3x3 conv + BN + ReLU) of the template features.

        It depends only on the template, so a tracker computes it once per target and passes it to
        :meth:`correlate` every frame (the original recomputed it in every ``track``).

        Args:
            kernel: (B, 256, 7, 7) template features.

        Returns:
            (B, hidden, 5, 5).
        """
        if self.training or kernel.size(0) == 1:
            return self.conv_kernel(kernel)
        # Several targets at once: the template conv per target, because oneDNN picks another conv algorithm for
        # B > 1 on a 7x7 input and the results would differ (by rounding) from tracking each alone.
        conv, bn, relu = self.conv_kernel
        return relu(bn(torch.cat([conv(k) for k in kernel.split(1)])))

    def correlate(self, adjusted_kernel: Tensor, search: Tensor) -> Tensor:
        """Correlation map of the search branch ``conv_search(search)`` with an :meth:`adjust_kernel` output.

        Args:
            adjusted_kernel: (B, hidden, 5, 5) from :meth:`adjust_kernel`.
            search: (B, 256, W, W) search features.

        Returns:
            (B, hidden, W - 6, W - 6).
        """
        return depthwise_xcorr(self.conv_search(search), adjusted_kernel)

    def forward_corr(self, kernel: Tensor, search: Tensor) -> Tensor:
        """Correlation map before the head.

        Args:
            kernel: (B, 256, 7, 7) template features.
            search: (B, 256, W, W) search features (W = 31 for a 255 crop, 9 for 143).

        Returns:
            (B, hidden, W - 6, W - 6): 25x25 for a 255 crop, 3x3 for 143.
        """
        return self.correlate(self.adjust_kernel(kernel), search)

    def forward(self, kernel: Tensor, search: Tensor) -> Tensor:
        """Head output over the whole map: (B, out_channels, W - 6, W - 6)."""
        return self.head(self.forward_corr(kernel, search))

    def head_at(self, feature: Tensor, index: Tensor) -> Tensor:
        """Head output at selected positions only, equal to ``head(feature)`` gathered there.

        ``head.0`` and the BatchNorm ``head.1`` run over every position (batch statistics in train mode), then the
        ReLU and the final 1x1 conv ``head.3`` only at the rows in ``index``.

        Args:
            feature: (B, hidden, H, W) correlation map.
            index: (P,) int64 flat positions ``b*H*W + r*W + c``.

        Returns:
            (P, out_channels); row p is the head output at position ``index[p]``.
        """
        hidden = self.head[1](self.head[0](feature))
        rows = hidden.permute(0, 2, 3, 1).reshape(-1, hidden.size(1)).index_select(0, index)
        last: nn.Conv2d = self.head[3]
        return F.linear(torch.relu(rows), last.weight.flatten(1), last.bias)


class UP(nn.Module):
    """RPN of SiamMask: one :class:`DepthCorr` for classification, one for box regression.

    Output layouts: cls (B, 2A, H, W), channels [0, A) background and [A, 2A) foreground logits of anchors 0..A-1;
    loc (B, 4A, H, W), channels [0, A) dx, then dy, dw, dh.

    Args:
        anchor_num: anchors per position (5).
        feature_in: input channels (256).
        feature_out: correlation channels (256).
    """

    def __init__(self, anchor_num: int = 5, feature_in: int = 256, feature_out: int = 256) -> None:
        super().__init__()
        self.anchor_num = anchor_num
        self.cls = DepthCorr(feature_in, feature_out, 2 * anchor_num)
        self.loc = DepthCorr(feature_in, feature_out, 4 * anchor_num)

    def forward(self, z_f: Tensor, x_f: Tensor) -> tuple[Tensor, Tensor]:
        """(B, 256, 7, 7), (B, 256, W, W) -> cls (B, 2A, W-6, W-6), loc (B, 4A, W-6, W-6)."""
        return self.cls(z_f, x_f), self.loc(z_f, x_f)

    def forward_adjusted(self, cls_kernel: Tensor, loc_kernel: Tensor, x_f: Tensor) -> tuple[Tensor, Tensor]:
        """:meth:`forward` from the template branches already applied (``cls.adjust_kernel``, ``loc.adjust_kernel``).

        Args:
            cls_kernel, loc_kernel: (B, 256, 5, 5) adjusted template kernels.
            x_f: (B, 256, W, W) search features.
        """
        return self.cls.head(self.cls.correlate(cls_kernel, x_f)), self.loc.head(self.loc.correlate(loc_kernel, x_f))
