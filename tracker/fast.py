"""An inference copy of a SiamMask model for the tracker's fast mode: BatchNorm folded, low precision, channels_last.

Not part of the original. `make_fast_model(model)` deep-copies an eval-mode model, folds every BatchNorm2d that
directly follows a Conv2d into that convolution (consecutive children of an `nn.Sequential`, and the `conv<k>` /
`bn<k>` attribute pairs of the ResNet stem and Bottleneck blocks, whose forward applies `bn<k>(conv<k>(x))`), casts
the weights to `dtype` and converts them to channels_last. Folding is done in float64 before the cast. The copy has
the same tracking API (`template`, `track`, `refine`); run it under autocast of the same dtype (the tracker's
`amp_dtype`) so the functional ops (depth-wise correlation with the template kernels) see matching dtypes.

The original model is not modified. Results differ from the exact fp32 model by the rounding of `dtype`.
"""
from __future__ import annotations

import copy
import re
import warnings

import torch
from torch import nn

_CONV_ATTR = re.compile(r"^conv(\d+)$")


def fold_bn_into_conv(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A Conv2d computing bn(conv(x)) with the BatchNorm's running statistics (eval mode).

    Args:
        conv: the convolution (with or without bias).
        bn: the BatchNorm2d applied to its output.

    Returns:
        a new Conv2d with bias, float32 weights.
    """
    fused = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                      conv.dilation, conv.groups, bias=True, padding_mode=conv.padding_mode)
    w = conv.weight.detach().double()
    b = conv.bias.detach().double() if conv.bias is not None else torch.zeros(conv.out_channels, dtype=torch.float64)
    scale = bn.weight.detach().double() / torch.sqrt(bn.running_var.detach().double() + bn.eps)
    fused.weight.data = (w * scale.reshape(-1, 1, 1, 1)).float()
    fused.bias.data = ((b - bn.running_mean.detach().double()) * scale + bn.bias.detach().double()).float()
    return fused.to(conv.weight.device)


def fold_batchnorms(model: nn.Module) -> int:
    """Fold, in place, every BatchNorm2d that directly follows a Conv2d (see the module docstring).

    Returns:
        the number of BatchNorms folded (each is replaced by nn.Identity).
    """
    count = 0
    for module in list(model.modules()):
        if isinstance(module, nn.Sequential):
            names = list(module._modules)
            for first, second in zip(names, names[1:]):
                conv, bn = module._modules[first], module._modules[second]
                if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                    module._modules[first] = fold_bn_into_conv(conv, bn)
                    module._modules[second] = nn.Identity()
                    count += 1
            continue
        for name, child in list(module._modules.items()):
            match = _CONV_ATTR.match(name)
            bn = module._modules.get(f"bn{match.group(1)}") if match else None
            if isinstance(child, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                setattr(module, name, fold_bn_into_conv(child, bn))
                setattr(module, f"bn{match.group(1)}", nn.Identity())
                count += 1
    return count


def make_fast_model(model: nn.Module, dtype: torch.dtype = torch.bfloat16, channels_last: bool = True) -> nn.Module:
    """Folded, `dtype`, channels_last eval copy of `model` (the tracker's fast mode network).

    Args:
        model: a SiamMask model (base or sharp).
        dtype: weight dtype (bfloat16 on CPU; float16 on GPU/NPU); float32 keeps only the folding.
        channels_last: convert 4-D weights to channels_last.
    """
    fast = copy.deepcopy(model).eval()
    fold_batchnorms(fast)
    fast = fast.to(dtype=dtype)
    if channels_last:
        fast = fast.to(memory_format=torch.channels_last)
    for p in fast.parameters():
        p.requires_grad_(False)
    return fast


def cpu_has_native_bf16() -> bool:
    """Whether oneDNN computes bf16 natively on this CPU (AVX512-BF16 / AMX); elsewhere it emulates bf16 and the
    fast mode runs several times slower than fp32 (measured 0.13x on an AVX2-only AMD EPYC)."""
    return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def fast_mode_supported(device_type: str) -> bool:
    """Whether the fast mode's dtype is computed natively on `device_type` (CUDA/NPU fp16; CPU bf16, see above).

    Warns (RuntimeWarning) when it is not, so that a tool's --fast says why it falls back to fp32.
    """
    if device_type != "cpu" or cpu_has_native_bf16():
        return True
    warnings.warn("--fast: this CPU has no native bf16 (oneDNN would emulate it, several times slower than fp32); "
                  "running the exact fp32 network instead", RuntimeWarning, stacklevel=2)
    return False
