"""Winograd F(4x4, 3x3) convolution for CPU float32 training: 3x3 convolutions in a quarter of the products.

Not part of the original. An unfrozen-stage training step on the CPU is bound by its convolutions, which oneDNN
already runs near the machine's float32 peak; two thirds of the step's FLOPs are stride-1 3x3 convolutions (ResNet
layer2 / layer3, layer3's 3x3 downsample, the rpn and mask ``conv_search``). Winograd's minimal filtering
(Lavin & Gray, CVPR 2016) computes every 4x4 block of their outputs with 36 products per channel pair instead of 144:

    y = A^T [ (G w G^T) (.) (B^T x B) ] A      (per 6x6 input tile; points 0, +-1, +-2, infinity)

The 36 products of all tiles are 36 matrix products (oneDNN's, else ``torch.bmm``); the tile transforms around them
are the C extension ``models/_winograd.c`` (built by make.sh; without it nothing here is used). Dilation is handled by
tiling each phase grid of the output on its own. Backward: with ``dM = A dy A^T`` per tile, the weight gradient is
``G^T (V^T dM) G`` (the filter transform's adjoint, in C, on the 36 product planes), the input gradient
``B (dM U^T) B^T`` added back into the tiles' pixels (the exact adjoints of the forward's steps).

This is the same function as the direct convolution with a different float32 rounding: on unit-variance data the
output error is ~1e-5 of the output's largest value (the direct convolution's ~2e-6), as when cuDNN picks its Winograd
algorithms for float32. It is used only where autograd records a CPU float32 convolution outside autocast (training);
inference, the tracker and its parity tests never run it.

Use: :func:`use_winograd` turns the eligible ``nn.Conv2d`` modules of a model into :class:`WinogradConv2d` in place
(same parameters and state-dict keys); the training tool does it on the CPU (``--winograd``). For an inference copy
whose weights do not change, :func:`freeze_winograd` transforms each filter once and runs the convolution as the
operator ``torch.ops.siammask.winograd_conv3x3``, which torch.compile graphs call as it is (the frozen trunk of
the first training stage, training/frozen_trunk.py; torch >= 2.4). TorchScript graphs can call it too, but its
interpreter turns an exception raised in the operator's Python code (Ctrl-C, SIGTERM) into a RuntimeError, so the
trunk runner uses it with inductor only.
"""
from __future__ import annotations

import functools
import math
from typing import Any, Optional

import torch
from torch import Tensor, nn

from ..utils.runtime import cpu_autocast

try:
    from . import _winograd as _ext
except ImportError:  # not built (make.sh): the convolutions run directly
    _ext = None

#: Output tile side m and input tile side m + 2 of F(m x m, 3 x 3).
TILE = 4
ALPHA = TILE + 2
#: Filter transform G (6x3) of F(4x4, 3x3).
G_ROWS = ((1 / 4, 0.0, 0.0), (-1 / 6, -1 / 6, -1 / 6), (-1 / 6, 1 / 6, -1 / 6), (1 / 24, 1 / 12, 1 / 6),
          (1 / 24, -1 / 12, 1 / 6), (0.0, 0.0, 1.0))
#: oneDNN's float32 matrix product (torch's internal ``mkldnn::_linear_pointwise``, which torch.compile's CPU graphs
#: call), None where this torch lacks it. torch's float32 ``bmm`` is MKL's (or OpenBLAS's) sgemm, which on an AMD EPYC
#: (Zen 5, 2 threads) ran these products at 100-170 GFLOP/s, oneDNN at 210-300 (bench/model_step.py --products).
_ONEDNN_LINEAR = (getattr(torch.ops.mkldnn, "_linear_pointwise", None) if torch.backends.mkldnn.is_available()
                  else None)
#: Use it (tests and benches switch it off to compare with ``torch.bmm``).
ONEDNN_PRODUCTS = True


@functools.lru_cache(maxsize=None)
def _onednn_products_work() -> bool:
    """Whether this torch's ``mkldnn::_linear_pointwise`` takes the transposed views :func:`_products` passes and
    gives torch.bmm's values (checked once on small operands; an older or other build falls back to torch.bmm)."""
    if _ONEDNN_LINEAR is None:
        return False
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 24, 16, generator=gen), torch.randn(2, 24, 32, generator=gen)
    try:
        for x, y in ((a, b.transpose(1, 2)[:, :16]), (a.transpose(1, 2), b)):
            planes = [_ONEDNN_LINEAR(x[g], y[g].t(), None, "none", [], "") for g in range(2)]
            if not all(p.is_contiguous() for p in planes) or not torch.allclose(
                    torch.stack(planes), torch.bmm(x, y), rtol=1e-4, atol=1e-4):
                return False
    except (RuntimeError, TypeError):  # an op that refuses these operands
        return False
    return True


def _products(a: Tensor, b: Tensor) -> list[Tensor]:
    """The products ``a[g] @ b[g]`` of (G, M, K) and (G, K, N) float32 (transposed views welcome): G contiguous
    (M, N) planes from oneDNN, or one (G, M, N) tensor from ``torch.bmm`` (a list of one)."""
    if (not ONEDNN_PRODUCTS or a.dtype != torch.float32 or a.device.type != "cpu"
            or not _onednn_products_work()):
        return [torch.bmm(a, b)]
    return [_ONEDNN_LINEAR(a[g], b[g].t(), None, "none", [], "") for g in range(a.shape[0])]


def _tables() -> bool:
    """Whether the built extension reads products as plane tables and has filter_adjoint (one built before them
    does not: then the planes are gathered into one array and the weight gradient is taken by torch)."""
    return bool(getattr(_ext, "PLANE_TABLES", 0))


def _plane_table(planes: list[Tensor]) -> tuple[int, tuple[int, ...], Tensor]:
    """(source pointer, the extra argument of the C transforms that read 36 products: () or (table pointer,), the
    tensor to keep alive while they run) for :func:`_products`' planes."""
    if len(planes) > 1 and not _tables():
        planes = [torch.stack(planes)]
    if len(planes) == 1:
        return planes[0].data_ptr(), (), planes[0]
    assert all(p.is_contiguous() for p in planes)
    table = torch.tensor([p.data_ptr() for p in planes], dtype=torch.int64)
    return planes[0].data_ptr(), (table.data_ptr(),), table


#: Smallest channel counts (both sides) and output side that are worth it; channels must be multiples of 16.
MIN_CHANNELS = 128
MIN_SIDE = 12


def available() -> bool:
    """Whether the C tile transforms are built (``bash make.sh``)."""
    return _ext is not None


def filter_transform(weight: Tensor) -> Tensor:
    """U = G w G^T of every (out, in) filter, differentiably.

    Args:
        weight: (K, C, 3, 3) float32.

    Returns:
        (36, C, K): ``U[6 u + v, c, k] = sum_ij G[u, i] w[k, c, i, j] G[v, j]``.
    """
    k, c = weight.shape[:2]
    # one (36, 9) x (9, C K) product: U comes out in its (36, C, K) layout without a transposing copy
    return (_kron_g(weight) @ weight.permute(2, 3, 1, 0).reshape(9, c * k)).view(ALPHA * ALPHA, c, k)


def _kron_g(like: Tensor) -> Tensor:
    """kron(G, G): (36, 9), ``[6 u + v, 3 i + j] = G[u, i] G[v, j]``, in `like`'s dtype and device."""
    g = like.new_tensor(G_ROWS)
    return (g[:, None, :, None] * g[None, :, None, :]).reshape(ALPHA * ALPHA, 9)


def _tiles(side: int, dilation: int) -> int:
    """Tiles per phase grid along one side of the output."""
    return math.ceil(math.ceil(side / dilation) / TILE)


def _nhwc(x: Tensor) -> Tensor:
    """(N, C, H, W) -> a contiguous (N, H, W, C) view or copy (a view for channels_last input)."""
    return x.permute(0, 2, 3, 1).contiguous()


def _winograd_forward(x: Tensor, u: Tensor, bias: Optional[Tensor], padding: int,
                      dilation: int) -> tuple[Tensor, Tensor]:
    """y (N, K, Ho, Wo) channels_last and the transformed input tiles V (36, T, C)."""
    n, c, h, w = x.shape
    k = u.shape[2]
    ho, wo = h + 2 * padding - 2 * dilation, w + 2 * padding - 2 * dilation
    nth, ntw = _tiles(ho, dilation), _tiles(wo, dilation)
    threads = torch.get_num_threads()
    xn = _nhwc(x)
    tiles = n * nth * ntw * dilation * dilation
    v = x.new_empty((ALPHA * ALPHA, tiles, c))
    _ext.input_transform(xn.data_ptr(), n, h, w, c, padding, dilation, nth, ntw, v.data_ptr(), threads)
    m = _products(v, u)
    first, table, _keep = _plane_table(m)  # _keep: alive until the transform has read the products
    y = torch.empty((n, k, ho, wo), dtype=x.dtype, memory_format=torch.channels_last)  # NHWC in memory
    b = bias.contiguous() if bias is not None else None
    _ext.output_transform(first, n, ho, wo, k, dilation, nth, ntw, b.data_ptr() if b is not None else 0,
                          y.data_ptr(), threads, *table)
    return y, v


def _filter_adjoint(planes: list[Tensor], c: int, k: int) -> Tensor:
    """dW = G^T dU G: the weight gradient (K, C, 3, 3) (a (3, 3, C, K) array's permuted view) from the gradient of
    the transformed filters, :func:`_products`' planes of (36, C, K); the adjoint of :func:`filter_transform`."""
    if _tables():
        first, table, _keep = _plane_table(planes)
        out = torch.empty((3, 3, c, k))
        _ext.filter_adjoint(first, c, k, out.data_ptr(), torch.get_num_threads(), *table)
    else:  # an extension built before it
        grad_u = planes[0] if len(planes) == 1 else torch.stack(planes)
        out = (_kron_g(grad_u).t() @ grad_u.reshape(ALPHA * ALPHA, c * k)).view(3, 3, c, k)
    return out.permute(3, 2, 0, 1)


class _WinogradConv(torch.autograd.Function):
    """y = conv2d(x, w, bias, padding, dilation) through F(4x4, 3x3), with its exact backward (see module doc)."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, weight: Tensor, bias: Optional[Tensor], padding: int, dilation: int) -> Tensor:
        u = filter_transform(weight)
        y, v = _winograd_forward(x, u, bias, padding, dilation)
        ctx.padding, ctx.dilation, ctx.x_shape = padding, dilation, x.shape
        ctx.save_for_backward(v if ctx.needs_input_grad[1] else None, u if ctx.needs_input_grad[0] else None)
        return y

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Optional[Tensor], ...]:
        v, u = ctx.saved_tensors
        p, d = ctx.padding, ctx.dilation
        n, c, h, w = ctx.x_shape
        k, ho, wo = grad.shape[1:]
        nth, ntw = _tiles(ho, d), _tiles(wo, d)
        threads = torch.get_num_threads()
        grad_x = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:
            # dM = A dy A^T: the output transform's adjoint, shared by both gradients
            dm = grad.new_empty((ALPHA * ALPHA, nth * ntw * d * d * n, k))
            gn = _nhwc(grad)  # held while the extension reads it
            _ext.grad_transform(gn.data_ptr(), n, ho, wo, k, d, nth, ntw, dm.data_ptr(), threads)
            if ctx.needs_input_grad[1]:  # dU = V^T dM, then back through the filter transform
                grad_weight = _filter_adjoint(_products(v.transpose(1, 2), dm), c, k)
            if ctx.needs_input_grad[0]:
                dv = _products(dm, u.transpose(1, 2))
                first, table, _keep = _plane_table(dv)
                grad_x = grad.new_zeros((n, h, w, c)).permute(0, 3, 1, 2)  # channels_last (N, C, H, W)
                _ext.input_adjoint(first, n, h, w, c, p, d, nth, ntw, grad_x.data_ptr(), threads, *table)
        if ctx.needs_input_grad[2]:
            grad_bias = grad.sum((0, 2, 3))
        return grad_x, grad_weight, grad_bias, None, None


def winograd_conv2d(x: Tensor, weight: Tensor, bias: Optional[Tensor] = None, padding: int = 0,
                    dilation: int = 1) -> Tensor:
    """``F.conv2d(x, weight, bias, 1, padding, dilation)`` by Winograd F(4x4, 3x3) (float32 CPU, extension built).

    Args:
        x: (N, C, H, W) float32; C a multiple of 16.
        weight: (K, C, 3, 3) float32; K a multiple of 16.
        bias: (K,) or None.
        padding: zero padding on every side.
        dilation: dilation of the 3x3 taps.

    Returns:
        (N, K, H + 2 padding - 2 dilation, W + 2 padding - 2 dilation), channels_last.
    """
    if _ext is None:
        raise RuntimeError("the Winograd extension siammask.models._winograd is not built: run `bash make.sh`")
    return _WinogradConv.apply(x, weight, bias, padding, dilation)


def _pays(conv: nn.Conv2d, x: Tensor) -> bool:
    """Whether `conv` on `x` runs by Winograd: float32 CPU input outside autocast, outputs at least 12x12 (the 5x5
    template kernels of the correlations give too few tiles for efficient matrix products)."""
    pad, dil = conv.padding[0], conv.dilation[0]
    return (x.device.type == "cpu" and x.dtype == torch.float32 and x.dim() == 4 and not cpu_autocast()
            and min(x.shape[2], x.shape[3]) + 2 * pad - 2 * dil >= MIN_SIDE)


class WinogradConv2d(nn.Conv2d):
    """An ``nn.Conv2d`` (3x3, stride 1, one group) that convolves by Winograd F(4x4, 3x3) where that pays.

    That is: the extension is built, autograd records (training), the weight is float32 and :func:`_pays`. Everywhere
    else it is ``nn.Conv2d``. Made by :func:`use_winograd`; parameters and state-dict keys are those of the
    ``nn.Conv2d`` it was.
    """

    def _conv_forward(self, input: Tensor, weight: Tensor, bias: Optional[Tensor]) -> Tensor:  # noqa: A002
        if (_ext is not None and torch.is_grad_enabled() and weight.dtype == torch.float32
                and (input.requires_grad or weight.requires_grad or (bias is not None and bias.requires_grad))
                and _pays(self, input)):
            return winograd_conv2d(input, weight, bias, self.padding[0], self.dilation[0])
        return super()._conv_forward(input, weight, bias)


def _register_operator() -> Any:
    """``siammask::winograd_conv3x3(x, u, bias, padding, dilation)``: inference by pre-transformed filters u, as an
    operator graphs can call (torch.library.custom_op, torch >= 2.4); None on older torch or without the extension."""
    if _ext is None or not hasattr(torch.library, "custom_op"):
        return None

    @torch.library.custom_op("siammask::winograd_conv3x3", mutates_args=())
    def winograd_conv3x3(x: Tensor, u: Tensor, bias: Optional[Tensor], padding: int, dilation: int) -> Tensor:
        return _winograd_forward(x, u, bias, padding, dilation)[0]

    @winograd_conv3x3.register_fake
    def _(x: Tensor, u: Tensor, bias: Optional[Tensor], padding: int, dilation: int) -> Tensor:
        n, _, h, w = x.shape
        k = u.shape[2]
        ho, wo = h + 2 * padding - 2 * dilation, w + 2 * padding - 2 * dilation
        return x.new_empty_strided((n, k, ho, wo), (ho * wo * k, 1, wo * k, k))

    return winograd_conv3x3


_operator = _register_operator()


class FrozenWinogradConv2d(nn.Conv2d):
    """An inference ``nn.Conv2d`` with its filters transformed once (``winograd_u``, not in the state dict) that
    convolves float32 CPU input of at least 12x12 outputs through ``siammask::winograd_conv3x3`` (else directly).
    Made by :func:`freeze_winograd`; its weights must not change afterwards."""

    winograd_u: Tensor

    def _conv_forward(self, input: Tensor, weight: Tensor, bias: Optional[Tensor]) -> Tensor:  # noqa: A002
        if weight is self.weight and _pays(self, input):
            return _operator(input, self.winograd_u, bias, self.padding[0], self.dilation[0])
        return super()._conv_forward(input, weight, bias)


def freeze_winograd(model: nn.Module) -> int:
    """Turn every eligible convolution of an inference copy into a :class:`FrozenWinogradConv2d`, in place.

    The weights are transformed now (call it after folding BatchNorms); the copy must not train afterwards.

    Returns:
        how many were turned; 0 where the operator is missing (extension not built, torch < 2.4).
    """
    if _operator is None:
        return 0
    count = 0
    for module in model.modules():
        if eligible(module):
            with torch.no_grad():
                u = filter_transform(module.weight.detach().float()).contiguous()
            module.__class__ = FrozenWinogradConv2d
            module.register_buffer("winograd_u", u, persistent=False)
            count += 1
    return count


def eligible(conv: nn.Module) -> bool:
    """Whether `conv` is a 3x3 stride-1 ungrouped zero-padded ``nn.Conv2d`` with square padding and dilation and
    at least 128 (a multiple of 16) channels on each side (with 64, layer1's, the matrix products are too narrow to
    gain)."""
    return (type(conv) is nn.Conv2d and conv.kernel_size == (3, 3) and conv.stride == (1, 1) and conv.groups == 1
            and conv.padding_mode == "zeros" and not isinstance(conv.padding, str)
            and conv.padding[0] == conv.padding[1] and conv.dilation[0] == conv.dilation[1]
            and conv.in_channels >= MIN_CHANNELS and conv.out_channels >= MIN_CHANNELS
            and conv.in_channels % 16 == 0 and conv.out_channels % 16 == 0)


def use_winograd(model: nn.Module) -> int:
    """Turn every eligible convolution of `model` into a :class:`WinogradConv2d`, in place.

    Returns:
        how many were turned; 0 when the extension is not built (then nothing changes).
    """
    if _ext is None:
        return 0
    count = 0
    for module in model.modules():
        if eligible(module):
            module.__class__ = WinogradConv2d
            count += 1
    return count
