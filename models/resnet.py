"""ResNet-50 variant used as the SiamMask backbone (conv1 ... layer3, no layer4).

Ports ``experiments/siammask_sharp/resnet.py`` of the original SiamMask (``ResNet``, ``Bottleneck``,
``resnet50(layer3=True, layer4=False)``); the base experiment's ``resnet.py`` holds the same layers and keys.
Differences from torchvision's ResNet-50, all kept from the original:

* ``conv1`` is 7x7 stride 2 with **padding 0**;
* ``layer2`` block 0 uses a 3x3 stride-2 ``conv2`` with padding 0 and a **3x3** stride-2 downsample (padding 0);
* ``layer3`` keeps stride 8 with dilation 2: block 0 has a 3x3 downsample (padding 1) and a plain 3x3 ``conv2``,
  blocks 1-5 use dilation 2;
* there is no ``layer4``, average pool or classifier (the original's ``layer4`` is an identity lambda).

Deviation: :meth:`ResNet.forward` always returns ``(p0, p1, p2, p3)``. The original base experiment returned
``(p2, p3, p3)`` and used ``p3``, so the adjusted feature is the same.

Feature sizes (input -> p0, p1, p2, p3): 127 -> 61, 31, 15, 15; 143 -> 69, 35, 17, 17; 255 -> 125, 63, 31, 31.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def conv_bn(conv: nn.Conv2d, bn: nn.Module, x: Tensor) -> Tensor:
    """``bn(conv(x))``; while autograd records through an eval-mode BatchNorm, one convolution instead.

    In training the trunk's BatchNorms keep their running statistics (eval mode) while their affine parameters and
    the convolution train (``SiamMaskBase.train``): then BN is a per-channel scale ``s = weight / sqrt(var + eps)``
    and shift, folded here into the convolution's weights (``conv.weight * s``) and bias, differentiably, so that
    the gradients of the convolution, ``weight`` and ``bias`` are the same (float64: to 1e-12) without the
    BatchNorm's two passes over the activations (forward and backward; ~10 % of an unfrozen training step on the
    CPU). Everywhere else (inference, train-mode BatchNorm, nothing to train, or `bn` not a BatchNorm, e.g. the
    ``nn.Identity`` of an already folded copy) it is ``bn(conv(x))``, the original's arithmetic.
    """
    if (isinstance(bn, nn.BatchNorm2d) and not bn.training and bn.track_running_stats and bn.affine
            and conv.padding_mode == "zeros" and torch.is_grad_enabled()
            and (conv.weight.requires_grad or bn.weight.requires_grad or bn.bias.requires_grad)):
        scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
        bias = bn.bias - bn.running_mean * scale
        if conv.bias is not None:
            bias = bias + conv.bias * scale
        # the module's own convolution (F.conv2d, or the Winograd one of models.winograd) with the folded weights
        return conv._conv_forward(x, conv.weight * scale.reshape(-1, 1, 1, 1), bias)
    return bn(conv(x))


def _downsample(module: nn.Module, x: Tensor) -> Tensor:
    """A residual branch: :func:`conv_bn` for the (conv, BatchNorm) Sequential, else ``module(x)``."""
    if isinstance(module, nn.Sequential) and len(module) == 2 and isinstance(module[0], nn.Conv2d):
        return conv_bn(module[0], module[1], x)
    return module(x)


class Bottleneck(nn.Module):
    """Bottleneck residual block (1x1 -> 3x3 -> 1x1 x4) with the original's padding rule.

    The 3x3 padding is ``2 - stride`` for dilation 1 (so a stride-2 block pads 0) and ``dilation`` otherwise.

    Args:
        inplanes: input channels.
        planes: bottleneck width; the block outputs ``4 * planes`` channels.
        stride: stride of the 3x3 convolution.
        downsample: module applied to the input for the residual branch, or None for identity.
        dilation: dilation of the 3x3 convolution.
    """

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 dilation: int = 1) -> None:
        super().__init__()
        if stride != 1 and dilation != 1:
            raise ValueError("a Bottleneck cannot have both stride and dilation above 1")
        padding = dilation if dilation > 1 else 2 - stride
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=padding, bias=False,
                               dilation=dilation)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        """(B, inplanes, H, W) -> (B, 4*planes, H', W')."""
        residual = x if self.downsample is None else _downsample(self.downsample, x)
        out = self.relu(conv_bn(self.conv1, self.bn1, x))
        out = self.relu(conv_bn(self.conv2, self.bn2, out))
        out = conv_bn(self.conv3, self.bn3, out)
        out += residual
        return self.relu(out)


class ResNet(nn.Module):
    """The SiamMask ResNet trunk: conv1, bn1, maxpool, layer1, layer2 and the dilated layer3.

    Initialisation as the original: every conv weight ~ N(0, sqrt(2 / (k*k*out_channels))), BatchNorm weight 1 and
    bias 0. Modules are created in the original's order, so a given torch seed gives the original's tensors.

    Args:
        layers: number of blocks in layer1, layer2, layer3.
    """

    def __init__(self, layers: tuple[int, int, int] = (3, 4, 6)) -> None:
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=0, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(64, layers[0])
        self.layer2 = self._make_layer(128, layers[1], stride=2)
        self.layer3 = self._make_layer(256, layers[2], stride=1, dilation=2)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
        """One stage; block 0 gets the downsample and half the dilation (the original's ``dd``)."""
        out_channels = planes * Bottleneck.expansion
        downsample = None
        first_dilation = dilation
        if stride != 1 or self.inplanes != out_channels:
            if stride == 1 and dilation == 1:
                downsample = nn.Sequential(
                    nn.Conv2d(self.inplanes, out_channels, kernel_size=1, stride=stride, bias=False),
                    nn.BatchNorm2d(out_channels),
                )
            else:
                first_dilation = dilation // 2 if dilation > 1 else 1
                padding = first_dilation if dilation > 1 else 0
                downsample = nn.Sequential(
                    nn.Conv2d(self.inplanes, out_channels, kernel_size=3, stride=stride, padding=padding,
                              dilation=first_dilation, bias=False),
                    nn.BatchNorm2d(out_channels),
                )
        blocks_list = [Bottleneck(self.inplanes, planes, stride, downsample, dilation=first_dilation)]
        self.inplanes = out_channels
        blocks_list += [Bottleneck(self.inplanes, planes, dilation=dilation) for _ in range(1, blocks)]
        return nn.Sequential(*blocks_list)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Backbone features of a BGR 0-255 crop.

        Args:
            x: (B, 3, S, S) float image.

        Returns:
            p0 (B, 64, S0, S0) = ReLU(bn1(conv1(x))) before the max-pool, p1 (B, 256, .) = layer1,
            p2 (B, 512, .) = layer2, p3 (B, 1024, .) = layer3; for S = 255 the sides are 125, 63, 31, 31.
        """
        p0 = self.relu(conv_bn(self.conv1, self.bn1, x))
        p1 = self.layer1(self.maxpool(p0))
        p2 = self.layer2(p1)
        p3 = self.layer3(p2)
        return p0, p1, p2, p3


def resnet50() -> ResNet:
    """The original's ``resnet50(layer3=True, layer4=False)``: blocks (3, 4, 6), 13,786,176 parameters."""
    return ResNet((3, 4, 6))
