"""Mask head of the base model: ``MaskCorr``.

Ports ``MaskCorr`` of ``experiments/siammask_base/custom.py`` / ``experiments/siammask_sharp/custom.py`` in the
original SiamMask (reference.md C.4): one :class:`~models.rpn.DepthCorr` whose head outputs ``o_sz**2`` = 3969
channels, i.e. a 63x63 mask logit map (row-major) per response position.
"""
from __future__ import annotations

from torch import Tensor, nn

from .rpn import DepthCorr


class MaskCorr(nn.Module):
    """Depth-wise correlation mask head (key prefix ``mask``).

    Args:
        o_sz: side of the predicted mask (63).
    """

    def __init__(self, o_sz: int = 63) -> None:
        super().__init__()
        self.o_sz = o_sz
        self.mask = DepthCorr(256, 256, o_sz * o_sz)

    def forward(self, z: Tensor, x: Tensor) -> Tensor:
        """(B, 256, 7, 7), (B, 256, 31, 31) -> (B, 3969, 25, 25) mask logits."""
        return self.mask(z, x)
