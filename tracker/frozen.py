"""The CPU tracker's network as compiled graphs: the exact mode (BatchNorms folded in float64) and the fast mode.

Not part of the original. :class:`FrozenModel` wraps an eval-mode SiamMask model and presents the calls the tracker
makes (``template``, ``template_kernels``, ``track``, ``mask_at`` and, for the sharp model, ``refine``). Per frame it
runs these graphs, each compiled once per input shape with the weights frozen as constants:

* ``search``: the (cls, loc) template kernels + the search crop -> cls, loc, the adjusted search features xf and,
  for the sharp model, the backbone maps p0, p1, p2 the refinement reads;
* ``corr_at``: the mask correlation vector at the picked position only, from the 7x7 window of xf it depends on
  (the whole 25x25 map is needed by nothing but the full mask head, which the tracker does not use);
* ``decode`` (sharp): the refinement's windows at that position -> the 127x127 mask logits.

The template (once per target), its kernels and the base model's mask head run on the unchanged model.

Compilers (:func:`graph_backends`, ``SIAMMASK_GRAPHS``), tried in order until one works:

* ``inductor`` (the default): ``torch.compile`` with ``freezing`` (weights as constants: oneDNN convolutions with
  prepacked weights, the remaining BatchNorms of the stem and layer1 folded too, fused pointwise ops, generated C++
  for the rest). Measured on an AVX-512 / AMX Xeon, 2 threads: the exact sharp network 103 ms per frame instead of
  117 with TorchScript, the fast mode's bf16 search graph 18 ms instead of 30 eager. The first frame of a process
  waits for the compiler (5-10 s on 2 cores; later models of the same architecture in the process reuse the
  compiled code), so tools/vot_trax.py (one process per sequence) defaults to TorchScript. Needs a C++ compiler
  (g++ / clang++ / ``$CXX``).
* ``torchscript``: traced, ``torch.jit.freeze`` + ``optimize_for_inference`` (oneDNN prepacked, fused ReLU /
  residual add) with the stem and layer1 BatchNorms unfolded; about a second to build. Not under autocast (the
  tracer drops it): the fast mode runs eagerly then.

Exact mode (:func:`freeze_model` of the fp32 model): same function, float32 rounding only. The BatchNorms of ResNet
layer2 / layer3, the adjust layer, the rpn and the mask branches are folded into their convolutions (in float64,
then cast, :func:`tracker.fast.fold_bn_into_conv`); folded there the change stays at the level of a different
thread count. The stem (conv1 + bn1) and layer1 are left to the compiler: on the 0-255 input conv1's outputs carry a
large mean that bn1 removes, and folding there (inductor does) moves the outputs about 2x further from the
original's: on the conformance vectors max|Δcls| / max|cls| is 8.0e-5 with inductor and 4.6e-5 with TorchScript
(loc 7.8e-5 / 4.3e-5), where the parity tolerance is 1e-4. ``tests/test_frozen.py`` checks the outputs of each
compiler against the original's own tensors and the tracker's boxes against the unfused model (0.01 px).

Fast mode (``freeze_model(fast_model, net=fast_model)`` of :func:`tracker.fast.make_fast_model`'s bf16 copy): the
same graphs compiled under the tracker's autocast.

Batches are run one sample at a time through the batch-1 graphs, so tracking several targets gives each target the
numbers it gets alone. Off the CPU, or where every compiler fails (the first reason is kept in ``fallback_reason``,
each failure is warned once) the same modules run eagerly.
"""
from __future__ import annotations

import copy
import os
import shutil
import warnings
from typing import Any, Optional

import torch
from torch import Tensor, nn

from ..models.refine import WINDOWS, position_indices
from ..utils.config import ConfigError
from ..utils.runtime import cpu_autocast
from .fast import fold_batchnorms

#: Sub-modules whose BatchNorms are folded (the stem and layer1 keep theirs, see the module docstring).
FOLDED_PARTS = ("features.features.layer2", "features.features.layer3", "features.downsample", "rpn_model",
                "mask_model")


def fold_for_exact(model: nn.Module) -> nn.Module:
    """An eval copy of `model` with the BatchNorms of :data:`FOLDED_PARTS` folded into their convolutions."""
    net = copy.deepcopy(model).eval()
    for name in FOLDED_PARTS:
        fold_batchnorms(net.get_submodule(name))
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def torchscript_graph(module: nn.Module, inputs: tuple[Tensor, ...]) -> Any:
    """`module` traced on `inputs`, frozen and optimised for inference (oneDNN prepacked, fused)."""
    traced = torch.jit.trace(module, inputs, check_trace=False)
    frozen = torch.jit.freeze(traced.eval(), optimize_numerics=False)
    return torch.jit.optimize_for_inference(frozen)


def _inductor(module: nn.Module, inputs: tuple[Tensor, ...]) -> Any:
    """`module` compiled by ``torch.compile`` (inductor, weights frozen as constants) for these input shapes; run once
    on `inputs` so that a compiler failure shows here and not in the middle of a sequence."""
    if not inductor_available():
        raise RuntimeError("no C++ compiler for inductor (set CXX, or install g++ / clang++)")
    compiled = torch.compile(module, fullgraph=True, dynamic=False)
    # freezing as a global setting while the first call compiles (as `options` it leaves the weights unfrozen:
    # measured 25 ms instead of 18 for the bf16 search graph)
    with torch._inductor.config.patch(freezing=True):
        compiled(*inputs)
    return compiled


def inductor_available() -> bool:
    """Whether ``torch.compile``'s CPU code generator can run here (torch.compile exists and a C++ compiler is on
    PATH: ``$CXX``, g++, c++ or clang++)."""
    if not hasattr(torch, "compile"):
        return False
    candidates = [os.environ.get("CXX", ""), "g++", "c++", "clang++"]
    return any(c and shutil.which(c) for c in candidates)


def compile_graph(module: nn.Module, inputs: tuple[Tensor, ...], backends: tuple[str, ...], failed: dict[str, str],
                  who: str) -> Optional[Any]:
    """`module` compiled for `inputs` by the first of `backends` that works, or None (then it runs eagerly).

    Compilers in `failed` (name -> reason) are skipped; a new failure is added there and warned once, naming `who`.
    Under CPU autocast TorchScript is skipped (its tracer drops autocast).
    """
    autocast = cpu_autocast()
    for backend in backends:
        if backend in failed or (autocast and backend == "torchscript"):
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # TorchScript's tracer and deprecation notes
                return GRAPH_BUILDERS[backend](module, inputs)
        except Exception as exc:  # noqa: BLE001 - any compiler failure: the next backend computes the same
            failed[backend] = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
            following = next((b for b in backends if b not in failed), "eager")
            warnings.warn(f"{who}: {_NAMES[backend]} failed ({failed[backend]}); running the network "
                          f"{_NAMES[following] if following != 'eager' else 'eagerly'} instead",
                          RuntimeWarning, stacklevel=4)
    return None


#: name -> ``build(module, inputs)`` returning the compiled graph (the inductor one run once on `inputs`).
GRAPH_BUILDERS = {"inductor": _inductor, "torchscript": torchscript_graph}
_NAMES = {"inductor": "torch.compile (inductor)", "torchscript": "TorchScript freezing"}
#: Graph compilers tried in order by default (``SIAMMASK_GRAPHS``: a comma-separated list of inductor / torchscript,
#: or eager).
DEFAULT_BACKENDS = ("inductor", "torchscript")


def graph_backends() -> tuple[str, ...]:
    """The compilers to try, from ``SIAMMASK_GRAPHS`` (default :data:`DEFAULT_BACKENDS`; ``eager`` = none).

    Raises:
        ConfigError: an unknown name in ``SIAMMASK_GRAPHS``.
    """
    value = os.environ.get("SIAMMASK_GRAPHS", "").strip()
    if not value:
        return DEFAULT_BACKENDS
    names = tuple(v.strip() for v in value.split(",") if v.strip())
    unknown = [n for n in names if n not in (*GRAPH_BUILDERS, "eager")]
    if unknown:
        raise ConfigError(f"SIAMMASK_GRAPHS: unknown graph compiler {unknown[0]!r} (use inductor, torchscript or "
                          f"eager)")
    return tuple(n for n in names if n != "eager")


class _SearchGraph(nn.Module):
    """(cls, loc) kernels (1, 256, 5, 5) and x (1, 3, X, X) -> cls, loc, xf [, p0, p1, p2]."""

    def __init__(self, net: nn.Module, with_features: bool) -> None:
        super().__init__()
        self.net = net
        self.with_features = with_features

    def forward(self, k_cls: Tensor, k_loc: Tensor, x: Tensor) -> tuple[Tensor, ...]:
        features, xf = self.net.features.forward_all(x)
        cls, loc = self.net.rpn_model.forward_adjusted(k_cls, k_loc, xf)
        return (cls, loc, xf) + (tuple(features[:3]) if self.with_features else ())


class _CorrAtGraph(nn.Module):
    """The mask correlation vector at one position: xf window (1, 256, 7, 7), kernel (1, 256, 5, 5) -> (1, 256, 1, 1).

    The window is what the 3x3 search conv and the 5x5 correlation read for that position, so the vector equals
    ``corr_feature[:, :, row, col]`` of the whole map (to rounding) at 1/841 of its cost.
    """

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.mask = net.mask_model.mask

    def forward(self, xf_window: Tensor, k_mask: Tensor) -> Tensor:
        return self.mask.correlate(k_mask, xf_window)


class _DecodeGraph(nn.Module):
    """Refinement windows (1, 64, 61, 61), (1, 256, 31, 31), (1, 512, 15, 15), (1, 256, 1, 1) -> (1, 16129)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.refine_model = net.refine_model

    def forward(self, p0: Tensor, p1: Tensor, p2: Tensor, p3: Tensor) -> Tensor:
        return self.refine_model.decode(p0, p1, p2, p3)


def window_at(x: Tensor, size: int, stride: int, padding: int, row: int, col: int) -> Tensor:
    """Window (row, col) of one sample's map zero-padded by `padding` (as ``models.refine.gather_windows``).

    Rows/cols ``[stride*row - padding, stride*row - padding + size)`` of ``x`` (1, C, H, W), zeros outside, without
    padding the whole map first.
    """
    top, left = stride * row - padding, stride * col - padding
    height, width = x.shape[2], x.shape[3]
    if top >= 0 and left >= 0 and top + size <= height and left + size <= width:
        return x[:, :, top:top + size, left:left + size]
    out = x.new_zeros((x.shape[0], x.shape[1], size, size))
    r0, c0 = max(top, 0), max(left, 0)
    r1, c1 = min(top + size, height), min(left + size, width)
    if r1 > r0 and c1 > c0:
        out[:, :, r0 - top:r1 - top, c0 - left:c1 - left] = x[:, :, r0:r1, c0:c1]
    return out


class FrozenModel(nn.Module):
    """Frozen-graph inference wrapper of a SiamMask model for the exact (fp32) tracker; see the module docstring.

    Args:
        model: a SiamMaskBase / SiamMaskSharp in eval mode (kept, unchanged, for the template and mask heads).
        freeze: compile the graphs (CPU); False runs the modules eagerly.
        backends: the compilers to try in order (default :func:`graph_backends`).
        net: the modules the graphs run (default: :func:`fold_for_exact` of `model`; the fast mode passes its
            folded bf16 copy, the same object as `model`).
    """

    def __init__(self, model: nn.Module, freeze: bool = True, backends: Optional[tuple[str, ...]] = None,
                 net: Optional[nn.Module] = None) -> None:
        super().__init__()
        self.model = model.eval()
        self.net = fold_for_exact(model) if net is None else net.eval()
        self.freeze = bool(freeze)
        self.sharp = callable(getattr(model, "refine", None))
        self.arch = getattr(model, "arch", "")
        self.mask_size = getattr(model, "mask_size", 0)
        self.backends = graph_backends() if backends is None else tuple(backends)
        self.failed: dict[str, str] = {}  # compiler -> why it failed (not tried again)
        self._search = _SearchGraph(self.net, self.sharp)
        self._corr = _CorrAtGraph(self.net)
        self._decode = _DecodeGraph(self.net) if self.sharp else None
        self._graphs: dict[Any, Any] = {}

    # ------------------------------------------------------------------ graphs
    def _graph(self, name: str, module: nn.Module, inputs: tuple[Tensor, ...]) -> Any:
        """The frozen graph of `module` for these input shapes (built on first use), or `module` itself."""
        key = (name, cpu_autocast()) + tuple((tuple(t.shape), t.dtype, t.device.type) for t in inputs)
        graph = self._graphs.get(key)
        if graph is None:
            graph = self._build(module, inputs)
            self._graphs[key] = graph
        return graph

    def _build(self, module: nn.Module, inputs: tuple[Tensor, ...]) -> Any:
        if not self.freeze or inputs[0].device.type != "cpu":
            return module
        graph = compile_graph(module, inputs, self.backends, self.failed, "tracker.frozen")
        return module if graph is None else graph

    @property
    def fallback_reason(self) -> Optional[str]:
        """Why the first compiler that failed failed (None when none did)."""
        return next(iter(self.failed.values()), None)

    # ------------------------------------------------------------------ the tracker's calls
    def template(self, z: Tensor) -> Tensor:
        """(B, 3, 127, 127) -> zf (B, 256, 7, 7), on the unchanged model."""
        return self.model.template(z)

    def template_kernels(self, zf: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The (cls, loc, mask) template branches of `zf`, each (B, 256, 5, 5), on the unchanged model."""
        return self.model.template_kernels(zf)

    def track(self, zf: Tensor, x: Tensor, mask_head: bool = True,
              kernels: Optional[tuple[Tensor, Tensor, Tensor]] = None) -> dict[str, Any]:
        """As ``SiamMaskBase.track``, but the mask correlation is left to :meth:`mask_at` / ``refine``.

        Args:
            zf: (B, 256, 7, 7) template features.
            x: (B, 3, X, X) search crops.
            mask_head: also the whole mask correlation map ``corr_feature`` and the 3969-channel head ``mask``.
            kernels: :meth:`template_kernels` of `zf` (computed here when None).

        Returns:
            dict with ``cls``, ``loc``, ``xf`` (B, 256, 31, 31), ``mask_kernel`` (B, 256, 5, 5) (what
            :meth:`mask_at` / ``refine`` correlate at their position), ``features`` = (p0, p1, p2) for the sharp
            model, and ``corr_feature`` + ``mask`` with `mask_head`. p3 is not returned (tracking does not read it).
        """
        if kernels is None:
            kernels = self.template_kernels(zf)
        runs = []
        for b in range(x.shape[0]):
            inputs = (kernels[0][b:b + 1], kernels[1][b:b + 1], x[b:b + 1])
            runs.append(self._graph("search", self._search, inputs)(*inputs))
        parts = [torch.cat(p) if len(p) > 1 else p[0] for p in zip(*runs)]
        out: dict[str, Any] = {"cls": parts[0], "loc": parts[1], "xf": parts[2], "mask_kernel": kernels[2],
                               "features": tuple(parts[3:])}
        if mask_head:
            out["corr_feature"] = self.net.mask_model.mask.correlate(kernels[2], parts[2])
            out["mask"] = self.model.mask_model.mask.head(out["corr_feature"])
        return out

    def _corr_at(self, out: dict, b: int, row: int, col: int) -> Tensor:
        """(1, 256, 1, 1) mask correlation vector of sample `b` at (row, col), from the xf window it reads."""
        kernel = out["mask_kernel"][b:b + 1]
        side = kernel.shape[2] + self.net.mask_model.mask.conv_search[0].kernel_size[0] - 1
        inputs = (out["xf"][b:b + 1, :, row:row + side, col:col + side].contiguous(), kernel.contiguous())
        return self._graph("corr_at", self._corr, inputs)(*inputs)

    def mask_at(self, out: dict, pos: Any) -> Tensor:
        """(B, 3969) mask-head logits at one position per sample, as ``SiamMaskBase.mask_at``."""
        num = out["xf"].shape[0]
        rows, cols = position_indices(pos, num, out["xf"].device)
        vectors = torch.cat([self._corr_at(out, b, int(rows[b]), int(cols[b])) for b in range(num)])
        return self.model.mask_model.mask.head_at(vectors, torch.arange(num, device=vectors.device))


class FrozenSharpModel(FrozenModel):
    """:class:`FrozenModel` of a sharp model: adds ``refine`` (the ``decode`` graph)."""

    def refine(self, out: dict, pos: Any) -> Tensor:
        """(B, 16129) refined mask logits at one position per sample, as ``SiamMaskSharp.refine``."""
        features = out["features"]
        num = out["xf"].shape[0]
        rows, cols = position_indices(pos, num, out["xf"].device)
        logits = []
        for b in range(num):
            row, col = int(rows[b]), int(cols[b])
            wins = [window_at(f[b:b + 1], size, stride, pad, row, col).contiguous()
                    for f, (size, stride, pad) in zip(features[:3], WINDOWS)]
            inputs = (*wins, self._corr_at(out, b, row, col))
            logits.append(self._graph("decode", self._decode, inputs)(*inputs))
        return torch.cat(logits) if num > 1 else logits[0]


def freeze_model(model: nn.Module, freeze: bool = True, backends: Optional[tuple[str, ...]] = None,
                 net: Optional[nn.Module] = None) -> FrozenModel:
    """The tracker's compiled network for `model` (arguments as :class:`FrozenModel`): :class:`FrozenSharpModel`
    when it has ``refine``."""
    cls = FrozenSharpModel if callable(getattr(model, "refine", None)) else FrozenModel
    return cls(model, freeze, backends, net)
