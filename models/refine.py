"""Refinement module of SiamMask sharp: ``Refine``.

Ports ``Refine`` of ``experiments/siammask_sharp/custom.py`` in the original SiamMask (reference.md C.5). It merges
the correlation vector of one response position with 61x61 / 31x31 / 15x15 windows of the backbone features p0 / p1 /
p2 and decodes a 127x127 mask logit map.

The two window rules of the original are kept:

* test path (``track_refine``, :meth:`Refine.forward_test`): p0 / p1 / p2 zero-padded by 16 / 8 / 4, window of
  position (r, c) at (4r, 4c) / (2r, 2c) / (r, c);
* training path (``run``, :meth:`Refine.forward_train`): the same windows of the *unpadded* maps (``F.unfold``
  without padding at strides 4 / 2 / 1), paired with correlation position (r, c). For the 143-px search this is the
  3x3 grid of the 3x3 correlation map.

The three upsamplings are ``F.upsample(size=...)`` of the original, i.e. legacy nearest (``src = floor(dst*in/out)``).

Deviations: windows are taken only at the requested positions (the original unfolds every position and then
selects, with the same values), and a batch may carry a different position per sample.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: Side of the refined mask.
REFINE_SIZE = 127
#: (window side, stride on the response grid, test-path zero padding) for p0, p1, p2.
WINDOWS: tuple[tuple[int, int, int], ...] = ((61, 4, 16), (31, 2, 8), (15, 1, 4))

Position = tuple[int, int] | Tensor


def _conv_relu_pair(in_channels: int, mid_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, mid_channels, 3, padding=1), nn.ReLU(),
        nn.Conv2d(mid_channels, out_channels, 3, padding=1), nn.ReLU(),
    )


def position_indices(pos: Position, batch: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """Rows and columns of one response position per sample.

    Args:
        pos: (row, col) for every sample, or a (B, 2) int64 tensor of per-sample (row, col).
        batch: B.
        device: where the indices go.

    Returns:
        rows (B,), cols (B,) int64.
    """
    if isinstance(pos, Tensor):
        rc = pos.to(device=device, dtype=torch.long).reshape(batch, 2)
        return rc[:, 0], rc[:, 1]
    rows = torch.full((batch,), int(pos[0]), dtype=torch.long, device=device)
    cols = torch.full((batch,), int(pos[1]), dtype=torch.long, device=device)
    return rows, cols


def gather_windows(x: Tensor, size: int, stride: int, padding: int, batch: Tensor, rows: Tensor,
                   cols: Tensor) -> Tensor:
    """Square windows of a feature map at grid positions, as ``F.unfold`` followed by a row selection.

    Window (r, c) of the map zero-padded by ``padding`` starts at (stride*r, stride*c).

    Args:
        x: (B, C, H, W) feature map.
        size: window side.
        stride: step between neighbouring windows.
        padding: zero padding added on every side first.
        batch: (P,) int64 sample of each window.
        rows: (P,) int64 grid row of each window.
        cols: (P,) int64 grid column of each window.

    Returns:
        (P, C, size, size) windows.
    """
    if padding:
        x = F.pad(x, [padding] * 4)
    grid = x.unfold(2, size, stride).unfold(3, size, stride)  # (B, C, Lh, Lw, size, size), a view
    return grid[batch, :, rows, cols]


class Refine(nn.Module):
    """Top-down mask refinement (keys ``v0..v2``, ``h0..h2`` with sub-indices 0 and 2, ``deconv``, ``post0..2``).

    Initialisation as the original: default PyTorch init, then ``kaiming_uniform_(a=1)`` on every ``Conv2d`` weight
    (``deconv`` is a transposed convolution and keeps its default init).
    """

    def __init__(self) -> None:
        super().__init__()
        self.v0 = _conv_relu_pair(64, 16, 4)
        self.v1 = _conv_relu_pair(256, 64, 16)
        self.v2 = _conv_relu_pair(512, 128, 32)
        self.h2 = _conv_relu_pair(32, 32, 32)
        self.h1 = _conv_relu_pair(16, 16, 16)
        self.h0 = _conv_relu_pair(4, 4, 4)
        self.deconv = nn.ConvTranspose2d(256, 32, 15, 15)
        self.post0 = nn.Conv2d(32, 16, 3, padding=1)
        self.post1 = nn.Conv2d(16, 4, 3, padding=1)
        self.post2 = nn.Conv2d(4, 1, 3, padding=1)
        for module in (self.v0, self.v1, self.v2, self.h2, self.h1, self.h0, self.deconv, self.post0, self.post1,
                       self.post2):
            for layer in module.modules():
                if isinstance(layer, nn.Conv2d):
                    nn.init.kaiming_uniform_(layer.weight, a=1)

    def decode(self, p0: Tensor, p1: Tensor, p2: Tensor, p3: Tensor) -> Tensor:
        """Decode windows into mask logits.

        Args:
            p0: (N, 64, 61, 61) window of backbone p0.
            p1: (N, 256, 31, 31) window of p1.
            p2: (N, 512, 15, 15) window of p2.
            p3: (N, 256, 1, 1) correlation vector.

        Returns:
            (N, 16129) logits of the 127x127 mask, row-major.
        """
        out = self.deconv(p3)
        out = self.post0(F.interpolate(self.h2(out) + self.v2(p2), size=(31, 31), mode="nearest"))
        out = self.post1(F.interpolate(self.h1(out) + self.v1(p1), size=(61, 61), mode="nearest"))
        out = self.post2(F.interpolate(self.h0(out) + self.v0(p0), size=(REFINE_SIZE, REFINE_SIZE), mode="nearest"))
        return out.view(-1, REFINE_SIZE * REFINE_SIZE)

    def _refine(self, features: tuple[Tensor, ...], corr_feature: Tensor, batch: Tensor, rows: Tensor,
                cols: Tensor, padded: bool) -> Tensor:
        windows = [gather_windows(f, size, stride, pad if padded else 0, batch, rows, cols)
                   for f, (size, stride, pad) in zip(features[:3], WINDOWS, strict=True)]
        p3 = corr_feature[batch, :, rows, cols].view(-1, corr_feature.size(1), 1, 1)
        return self.decode(*windows, p3)

    def forward_test(self, features: tuple[Tensor, ...], corr_feature: Tensor, pos: Position) -> Tensor:
        """Tracking-time refinement (the original ``track_refine``) at one response position per sample.

        Args:
            features: backbone outputs (p0, p1, p2, ...) of a 255-px search, (B, 64, 125, 125), (B, 256, 63, 63),
                (B, 512, 31, 31).
            corr_feature: (B, 256, 25, 25) mask correlation map.
            pos: (row, col) for every sample, or a (B, 2) int64 tensor of per-sample (row, col).

        Returns:
            (B, 16129) mask logits.
        """
        num, device = corr_feature.size(0), corr_feature.device
        rows, cols = position_indices(pos, num, device)
        return self._refine(features, corr_feature, torch.arange(num, device=device), rows, cols, padded=True)

    def forward_train(self, features: tuple[Tensor, ...], corr_feature: Tensor, index: Tensor) -> Tensor:
        """Training-path refinement (the original ``run``) at selected positions of the correlation map.

        Args:
            features: backbone outputs (p0, p1, p2, ...) whose unpadded window grids match the correlation map
                (143-px search: (B, 64, 69, 69), (B, 256, 35, 35), (B, 512, 17, 17) for a 3x3 map).
            corr_feature: (B, 256, H, W) mask correlation map.
            index: (P,) int64 flat positions ``b*H*W + r*W + c``.

        Returns:
            (P, 16129) mask logits; row p belongs to position ``index[p]``.
        """
        height, width = corr_feature.shape[2:]
        for f, (size, stride, _) in zip(features[:3], WINDOWS, strict=True):
            grid = ((f.size(2) - size) // stride + 1, (f.size(3) - size) // stride + 1)
            if grid != (height, width):
                raise ValueError(f"training-path refine needs a {height}x{width} window grid to match the "
                                 f"correlation map, got {grid[0]}x{grid[1]} for a {f.size(2)}x{f.size(3)} map "
                                 f"(use the 143-px search)")
        batch = torch.div(index, height * width, rounding_mode="floor")
        rest = index - batch * height * width
        rows = torch.div(rest, width, rounding_mode="floor")
        return self._refine(features, corr_feature, batch, rows, rest - rows * width, padded=False)
