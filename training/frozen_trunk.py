"""The ResNet trunk as an inference graph while it trains nothing (the first training stage, and refine training).

Not part of the original. Before the unfreeze epoch no trunk parameter trains and the trunk's BatchNorms use their
running statistics (``SiamMaskBase.train`` keeps it in eval mode), so its forward is plain inference, ~70 % of a
frozen-stage step on the CPU. :class:`FrozenTrunkRunner` runs it as a TorchScript graph frozen for inference (a
deep copy with every BatchNorm folded into its convolution in float64, oneDNN prepacked weights, fused ReLU /
residual add: ~13 % faster than the eager trunk, fp32, 2 threads) and declines, so that the eager trunk runs, whenever
that is not exact to float32 rounding or not faster:

* a trunk parameter requires grad (the unfrozen stage) or the trunk is in train mode;
* the input is not on the CPU, or CPU autocast is on with another dtype than bfloat16;
* every compiler failed once (warned, then never tried again).

Under bf16 autocast (``--amp`` on the CPU) the graph is built from the folded copy cast to bfloat16 (folded in float64,
rounded once to bf16, where eager autocast rounds the unfolded weights and applies the BatchNorm to bf16 maps) and
runs outside autocast on the crops cast to bf16: the same bf16 convolutions with the BatchNorm / ReLU / residual
passes fused away, the trunk's outputs in bfloat16 as eager autocast gives them and as close to the float32 trunk
(tests/test_train_speed.py). On an AMD EPYC (Zen 5, no AMX), 2 threads, the frozen bf16 step was 1.05-1.11x faster
than with the eager trunk in three same-run comparisons (bench/model_step.py --stage frozen --trunk-graph both).

With ``winograd`` (the default; the training tool's ``--winograd``) the inductor graph (not the TorchScript one,
whose interpreter would turn Ctrl-C / SIGTERM inside the operator into a RuntimeError) runs the stride-1 3x3
convolutions of layer2 / layer3 (search and template maps) by Winograd F(4x4, 3x3) with filters transformed once
per build (:func:`models.winograd.freeze_winograd`; float32 rounding ~1e-5 of the largest value instead of ~2e-6):
the batch-8 search trunk 791 ms instead of 1026 on an AMD EPYC, 2 threads.

The graphs are rebuilt when any trunk parameter or buffer changed since they were built (``Tensor._version``:
``load_state_dict`` on resume), and one graph is kept per input shape / layout. A deep copy of the model does not
take the runner (its ``trunk_runner`` is None). The outputs are those of
``ResNet.forward`` (p0, p1, p2, p3) to float32 rounding (tests/test_frozen_trunk.py).

Usage::

    model.features.trunk_runner = FrozenTrunkRunner()   # what tools/train_siammask.py does on the CPU
"""
from __future__ import annotations

import copy
from typing import Any, Optional

import torch
from torch import Tensor, nn

from ..models.winograd import freeze_winograd
from ..tracker.fast import fold_batchnorms
from ..tracker.frozen import compile_graph, graph_backends
from ..utils.runtime import cpu_autocast_dtype


class FrozenTrunkRunner:
    """Runs a frozen ResNet trunk through TorchScript graphs frozen for inference (see the module docstring)."""

    def __init__(self, backends: Optional[tuple[str, ...]] = None, winograd: bool = True) -> None:
        self.backends = graph_backends() if backends is None else tuple(backends)
        self.winograd = winograd  # stride-1 3x3 convolutions by Winograd F(4x4, 3x3) in the graph
        self.winograd_convs = 0  # how many the last graph built runs so (for logs and tests)
        self.winograd_failures: dict[str, str] = {}  # the Winograd graph failed once: plain graphs from then on
        self._graphs: dict[Any, Any] = {}
        self._versions: Optional[tuple[int, ...]] = None
        self.failures: dict[str, str] = {}  # compiler -> why it failed (not tried again)
        self.failed: Optional[str] = None  # set when every compiler failed (then the runner always declines)
        self.calls = 0  # forwards run through a graph (for logs and tests)

    def __deepcopy__(self, memo: dict) -> None:
        """Copies of the model (the tracker's folded copies, EMA / eval copies) do not take the runner."""
        return None

    @staticmethod
    def applies(trunk: nn.Module, x: Tensor) -> bool:
        """Whether the trunk's forward on `x` is inference: eval mode, nothing trains, CPU, no autocast or bf16."""
        return (not trunk.training and x.device.type == "cpu" and cpu_autocast_dtype() in (None, torch.bfloat16)
                and not any(p.requires_grad for p in trunk.parameters()))

    def __call__(self, trunk: nn.Module, x: Tensor) -> Optional[tuple[Tensor, ...]]:
        """(p0, p1, p2, p3) of ``trunk(x)`` from the graph, or None when the eager trunk must run.

        Args:
            trunk: the model's ``features.features`` (:class:`models.resnet.ResNet`).
            x: (B, 3, S, S) crops.
        """
        if self.failed is not None or not self.applies(trunk, x):
            return None
        versions = (id(trunk),) + tuple(t._version for t in (*trunk.parameters(), *trunk.buffers()))
        if versions != self._versions:
            self._graphs.clear()
            self._versions = versions
        dtype = cpu_autocast_dtype()  # None or bfloat16 (applies)
        key = (tuple(x.shape), x.dtype, x.is_contiguous(memory_format=torch.channels_last), dtype)
        graph = self._graphs.get(key)
        with torch.autocast("cpu", enabled=False):  # a bf16 graph casts its input itself (_Bfloat16Trunk)
            if graph is None:
                graph = self._graphs[key] = self._build(trunk, x, dtype)
                if graph is None:
                    return None
            with torch.no_grad():
                out = graph(x)
        self.calls += 1
        return tuple(out)

    def _build(self, trunk: nn.Module, x: Tensor, dtype: Optional[torch.dtype]) -> Any:
        folded: nn.Module = copy.deepcopy(trunk).eval()
        fold_batchnorms(folded)
        if dtype is not None:
            folded = _Bfloat16Trunk(folded.to(dtype))
        graph, self.winograd_convs = None, 0
        if (self.winograd and dtype is None and "inductor" in self.backends and "inductor" not in self.failures
                and not self.winograd_failures):
            # inductor only: inside the TorchScript interpreter an exception of the operator's Python code (Ctrl-C,
            # SIGTERM's Interrupted) would come out as a RuntimeError, and the tool would not exit as interrupted
            frozen = copy.deepcopy(folded)
            count = freeze_winograd(frozen)
            if count:
                with torch.no_grad():
                    graph = compile_graph(frozen, (x,), ("inductor",), self.winograd_failures,
                                          "training.frozen_trunk (Winograd)")
                self.winograd_convs = count if graph is not None else 0
        if graph is None:
            with torch.no_grad():
                graph = compile_graph(folded, (x,), self.backends, self.failures, "training.frozen_trunk")
        if graph is None:
            self.failed = "no graph compiler worked: " + "; ".join(f"{k}: {v}" for k, v in self.failures.items())
        return graph


class _Bfloat16Trunk(nn.Module):
    """A bfloat16 copy of the folded trunk on float32 crops: (B, 3, S, S) -> (p0, p1, p2, p3) in bfloat16."""

    def __init__(self, trunk: nn.Module) -> None:
        super().__init__()
        self.trunk = trunk

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        return tuple(self.trunk(x.to(torch.bfloat16)))
