"""Backbone with adjust layer (``features``) and the original's freeze schedule.

Ports ``ResDownS`` and ``ResDown`` of ``experiments/siammask_sharp/custom.py`` and ``MultiStageFeature`` of
``models/features.py`` in the original SiamMask (reference.md C.1, C.7).

* :class:`ResDownS` is the adjust layer (1x1 conv 1024 -> 256 + BatchNorm); maps narrower than 20 are centre-cropped by
  :func:`crop_adjusted_center`, as the original's ``if x.size(3) < 20: x = x[:, :, 4:-4, 4:-4]``.
* :class:`ResDown` holds the ResNet trunk (``features``) and the adjust layer (``downsample``), and the unfreeze
  schedule: stage 0 (ratio < 0.5) trains only ``downsample``; from ratio 0.5 ``layer2`` and ``layer3`` train too.

Deviation: the original's ``unfix`` keeps a call-history counter and its ``train()`` override only switches the
currently trainable layers to train mode, which makes BatchNorm modes depend on whether a run was resumed. Here
:meth:`ResDown.set_train_ratio` derives everything from the ratio, and the BatchNorm modes are set by the model's
``train()`` (see :mod:`models.siammask`) as in an uninterrupted original run.
"""
from __future__ import annotations

from typing import Callable, Optional

from torch import Tensor, nn

from .resnet import ResNet, resnet50

#: Adjusted maps narrower than this are centre-cropped (template 15 -> 7, 143-px search 17 -> 9; 31 is kept).
CROP_BELOW_WIDTH = 20
#: Cells removed on each side by the centre crop.
CROP_MARGIN = 4


def crop_adjusted_center(x: Tensor) -> Tensor:
    """Centre crop of a small adjusted feature map, the original ``ResDownS`` rule.

    The template (127 px) gives a 15x15 map, cropped to its central 7x7; the refine-stage search (143 px) gives
    17x17, cropped to 9x9. Search maps of a 255-px crop (31x31) are returned unchanged.

    Args:
        x: (B, C, H, W) adjusted features.

    Returns:
        (B, C, H - 8, W - 8) when W < 20, else ``x`` itself.
    """
    if x.size(3) < CROP_BELOW_WIDTH:
        return x[:, :, CROP_MARGIN:-CROP_MARGIN, CROP_MARGIN:-CROP_MARGIN]
    return x


class ResDownS(nn.Module):
    """Adjust layer: 1x1 conv (no bias) + BatchNorm, then :func:`crop_adjusted_center`.

    Args:
        inplane: input channels (1024, ResNet layer3).
        outplane: output channels (256).
    """

    def __init__(self, inplane: int = 1024, outplane: int = 256) -> None:
        super().__init__()
        self.downsample = nn.Sequential(
            nn.Conv2d(inplane, outplane, kernel_size=1, bias=False),
            nn.BatchNorm2d(outplane),
        )

    def forward(self, x: Tensor) -> Tensor:
        """(B, 1024, H, W) -> (B, 256, H, W), cropped to (B, 256, H-8, W-8) when W < 20."""
        return crop_adjusted_center(self.downsample(x))


class ResDown(nn.Module):
    """ResNet-50 trunk plus adjust layer, with the original's two-stage unfreeze schedule.

    ``train_layers`` are ``[downsample, features.layer2, features.layer3]``; the number of them that train is
    1 for ratios in [0, 0.5) and 3 from 0.5 on (``train_nums = [1, 3]``, ``change_point = [0, 0.5]``).
    ``conv1``, ``bn1`` and ``layer1`` never train.
    """

    #: (change point, number of train layers), as the original's ``change_point`` / ``train_nums``.
    SCHEDULE: tuple[tuple[float, int], ...] = ((0.0, 1), (0.5, 3))
    #: Optional ``runner(trunk, x)`` giving the trunk's (p0, p1, p2, p3) another way, or None to decline (then
    #: ``features(x)`` runs); a plain attribute, not a submodule (no state_dict keys). The training tool sets a
    #: :class:`training.frozen_trunk.FrozenTrunkRunner` (inference graphs while the trunk trains nothing).
    trunk_runner: Optional[Callable[[nn.Module, Tensor], Optional[tuple[Tensor, ...]]]] = None

    def __init__(self) -> None:
        super().__init__()
        self.features: ResNet = resnet50()
        self.downsample = ResDownS(1024, 256)
        self.train_num = 0
        self.set_train_ratio(0.0)

    def train_layers(self) -> list[nn.Module]:
        """The modules whose parameters currently train, in the original's order."""
        return [self.downsample, self.features.layer2, self.features.layer3][: self.train_num]

    @classmethod
    def train_num_for(cls, ratio: float) -> int:
        """Number of trainable layers at progress ``ratio`` = epoch / epochs (the largest change point <= ratio)."""
        num = 0
        for point, layers in cls.SCHEDULE:
            if ratio >= point:
                num = layers
        return num

    def set_train_ratio(self, ratio: float) -> bool:
        """Set ``requires_grad`` for training progress ``ratio`` (the original's ``unfix``).

        Returns:
            True when the number of trainable layers changed (the original then rebuilds the optimizer).
        """
        num = self.train_num_for(ratio)
        changed = num != self.train_num
        self.train_num = num
        self.requires_grad_(False)
        for module in self.train_layers():
            module.requires_grad_(True)
        return changed

    def param_groups(self, start_lr: float, feature_mult: float = 1.0) -> list[dict]:
        """Optimizer groups: adjust layer at ``start_lr * feature_mult``, trainable ResNet layers at 0.1x that.

        Groups without trainable parameters are left out, as in the original.
        """
        lr = start_lr * feature_mult
        groups = []
        for name, module, mult in (("features.downsample", self.downsample, 1.0),
                                   ("features.features", self.features, 0.1)):
            params = [p for p in module.parameters() if p.requires_grad]
            if params:
                groups.append({"params": params, "lr": lr * mult, "name": name})
        return groups

    def trunk(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The ResNet trunk's (p0, p1, p2, p3) of `x` (:meth:`ResNet.forward`), through :attr:`trunk_runner` when
        it takes the call."""
        if self.trunk_runner is not None:
            out = self.trunk_runner(self.features, x)
            if out is not None:
                return out  # type: ignore[return-value]
        return self.features(x)

    def forward(self, x: Tensor) -> Tensor:
        """(B, 3, S, S) BGR 0-255 crop -> adjusted layer3 features: (B, 256, 7, 7) for S=127, 31x31 for 255."""
        return self.downsample(self.trunk(x)[-1])

    def forward_all(self, x: Tensor) -> tuple[tuple[Tensor, Tensor, Tensor, Tensor], Tensor]:
        """Backbone features (p0, p1, p2, p3) and the adjusted p3 (see :meth:`ResNet.forward`, :meth:`forward`)."""
        feats = self.trunk(x)
        return feats, self.downsample(feats[-1])
