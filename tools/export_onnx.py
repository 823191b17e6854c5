"""Export the SiamMask tracking network to ONNX graphs for the onnxruntime backend (tracker/onnx_backend.py).

Usage::

    python tools/export_onnx.py --config experiments/siammask_sharp/config_vot.json --resume SiamMask_VOT.pth \\
        --out onnx/SiamMask_VOT

writes ``template.onnx``, ``search.onnx``, ``mask.onnx`` (+ ``refine.onnx`` for the sharp model) and
``siammask_onnx.json`` (input/output names, shapes, dtypes, opset, and the max relative error against PyTorch).
Each graph is checked with ``onnx.checker`` and run in onnxruntime on random inputs against the PyTorch model; the
max relative error (max |onnx - torch| / max |torch|) is printed. The template-dependent depth-wise correlations
export as standard ``Conv`` nodes whose weight is a graph tensor (not an initializer), and the positions of the
mask / refine graphs are an int64 (row, col) input gathered with ``Gather`` nodes.

Needs ``pip install onnx onnxruntime`` (``pip install siammask[onnx]``). Uses PyTorch's TorchScript-based exporter
(``dynamo=False``), which needs no onnxscript.
"""
from __future__ import annotations

import argparse
import os
import warnings
from typing import Any, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from siammask.tracker.onnx_backend import (
    GRAPH_IO,
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    MANIFEST_VERSION,
    SHARP_SEARCH_OUTPUTS,
    OnnxBackendError,
    graph_file,
)
from siammask.utils.config import load_config, response_size
from siammask.utils.errors import run_tool, tool_cli
from siammask.utils.io import atomic_path, atomic_write_json, ensure_output_dir

#: ONNX opset of the export (>= 13: Conv with a non-initializer weight, Gather, ...).
DEFAULT_OPSET = 17
#: Largest max relative error accepted against PyTorch (float32 rounding of a deep network is ~1e-5).
MAX_REL_ERROR = 1e-3


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Export SiamMask to ONNX (template, search, mask, refine)",
                                     add_help=add_help)
    parser.add_argument("--config", required=True, help="experiment config.json (network.arch, hp sizes)")
    parser.add_argument("--resume", required=True, metavar="PATH", help="weights: released .pth, pysot model.pth "
                        "or a training checkpoint")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for the .onnx files and "
                        f"{MANIFEST_NAME}")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset, >= 13 (default "
                        f"{DEFAULT_OPSET})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random check inputs")
    return parser


class TemplateGraph(nn.Module):
    """z (1, 3, S, S) -> zf (1, 256, 7, 7)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, z: Tensor) -> Tensor:
        return self.model.template(z)


class SearchGraph(nn.Module):
    """zf, x -> cls, loc, corr_feature (+ p0, p1, p2 with ``with_features``)."""

    def __init__(self, model: nn.Module, with_features: bool) -> None:
        super().__init__()
        self.model = model
        self.with_features = with_features

    def forward(self, zf: Tensor, x: Tensor) -> tuple[Tensor, ...]:
        out = self.model.track(zf, x, mask_head=False)
        head = (out["cls"], out["loc"], out["corr_feature"])
        return head + tuple(out["features"][:3]) if self.with_features else head


def _flat_position(pos: Tensor, width: int) -> Tensor:
    """(2,) int64 (row, col) -> (1,) flat index row * width + col."""
    return (pos[0] * width + pos[1]).reshape(1)


class MaskGraph(nn.Module):
    """corr_feature (1, 256, R, R), pos (2,) -> (1, 3969) base mask-head logits (``model.mask_at``)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.head = model.mask_model.mask

    def forward(self, corr_feature: Tensor, pos: Tensor) -> Tensor:
        return self.head.head_at(corr_feature, _flat_position(pos, corr_feature.size(3)))


def window_at(x: Tensor, size: int, stride: int, padding: int, pos: Tensor) -> Tensor:
    """The refine window of position (row, col): rows/cols [stride*r, stride*r + size) of x zero-padded by padding.

    Equal to ``models.refine.gather_windows`` for one sample, written with Gather so that the position is an input.
    """
    if padding:
        x = F.pad(x, [padding] * 4)
    offsets = torch.arange(size, device=x.device)
    return x.index_select(2, pos[0] * stride + offsets).index_select(3, pos[1] * stride + offsets)


class RefineGraph(nn.Module):
    """p0, p1, p2, corr_feature, pos (2,) -> (1, 16129) refined logits (``model.refine``)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.refine_model = model.refine_model

    def forward(self, p0: Tensor, p1: Tensor, p2: Tensor, corr_feature: Tensor, pos: Tensor) -> Tensor:
        from siammask.models.refine import WINDOWS

        windows = [window_at(f, size, stride, pad, pos) for f, (size, stride, pad) in zip((p0, p1, p2), WINDOWS)]
        channels = corr_feature.size(1)
        p3 = corr_feature.flatten(2).index_select(2, _flat_position(pos, corr_feature.size(3)))
        return self.refine_model.decode(*windows, p3.reshape(1, channels, 1, 1))


def _import_onnx() -> tuple[Any, Any]:
    try:
        import onnx
        import onnxruntime
    except ImportError:
        raise OnnxBackendError("tools/export_onnx.py needs onnx and onnxruntime: pip install onnx onnxruntime "
                               "(or pip install siammask[onnx])") from None
    return onnx, onnxruntime


def _export(module: nn.Module, inputs: tuple[Tensor, ...], path: str, name: str, opset: int) -> None:
    input_names, output_names = GRAPH_IO[name]
    if name == "search" and getattr(module, "with_features", False):
        output_names = output_names + SHARP_SEARCH_OUTPUTS
    with atomic_path(path) as tmp, warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation / tracer notes
        torch.onnx.export(module, inputs, tmp, dynamo=False, opset_version=opset, input_names=list(input_names),
                          output_names=list(output_names), do_constant_folding=True)


def _describe(values: Any) -> list[dict[str, Any]]:
    return [{"name": v.name, "shape": list(v.shape), "dtype": v.type} for v in values]


def max_relative_error(got: np.ndarray, want: np.ndarray) -> float:
    """max |got - want| / max |want| (0 when both are all zero)."""
    scale = float(np.abs(want).max()) if want.size else 0.0
    err = float(np.abs(got.astype(np.float64) - want.astype(np.float64)).max()) if want.size else 0.0
    return err / scale if scale > 0 else err


def check_graph(path: str, inputs: dict[str, np.ndarray], expected: list[np.ndarray]) -> tuple[float, Any]:
    """onnx.checker on the file, then onnxruntime on `inputs` against `expected`; returns (max rel error, session)."""
    onnx, ort = _import_onnx()
    onnx.checker.check_model(onnx.load(path))
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    outs = session.run(None, inputs)
    if len(outs) != len(expected):
        raise OnnxBackendError(f"{path}: {len(outs)} outputs, PyTorch gives {len(expected)}")
    return max(max_relative_error(o, e) for o, e in zip(outs, expected)), session


def export_model(model: nn.Module, out_dir: str, exemplar_size: int, instance_size: int,
                 opset: int = DEFAULT_OPSET, seed: int = 0, log: Optional[Any] = print) -> dict[str, Any]:
    """Export `model` (eval mode, CPU) to `out_dir`, check every graph, write the manifest; returns it.

    Args:
        model: a SiamMaskBase / SiamMaskSharp in eval mode.
        exemplar_size, instance_size: the config's crop sides (hp.exemplar_size, hp.instance_size).
        opset: ONNX opset (>= 13).
        seed: seed of the random check inputs (crops uniform in 0..255, positions inside the response map).
        log: called with one line per graph (None: silent).

    Raises:
        OnnxBackendError: onnx/onnxruntime missing, or a graph differs from PyTorch by more than MAX_REL_ERROR.
    """
    _import_onnx()
    if opset < 13:
        raise OnnxBackendError(f"--opset {opset}: needs >= 13")
    model = model.eval().cpu()
    sharp = callable(getattr(model, "refine", None))
    gen = torch.Generator().manual_seed(seed)
    z = torch.rand(1, 3, exemplar_size, exemplar_size, generator=gen) * 255
    x = torch.rand(1, 3, instance_size, instance_size, generator=gen) * 255
    with torch.no_grad():
        zf = model.template(z)
        out = model.track(zf, x, mask_head=False)
    side = out["cls"].size(3)
    pos = torch.randint(0, side, (2,), generator=gen, dtype=torch.int64)
    with torch.no_grad():
        mask = model.mask_at(out, pos.reshape(1, 2))
        refined = model.refine(out, (int(pos[0]), int(pos[1]))) if sharp else None
    p = out["features"][:3]
    plan: list[tuple[str, nn.Module, tuple[Tensor, ...], list[Tensor]]] = [
        ("template", TemplateGraph(model), (z,), [zf]),
        ("search", SearchGraph(model, sharp), (zf, x),
         [out["cls"], out["loc"], out["corr_feature"]] + (list(p) if sharp else [])),
        ("mask", MaskGraph(model), (out["corr_feature"], pos), [mask]),
    ]
    if sharp:
        plan.append(("refine", RefineGraph(model), (*p, out["corr_feature"], pos), [refined]))
    graphs: dict[str, Any] = {}
    errors: dict[str, float] = {}
    for name, module, inputs, expected in plan:
        path = os.path.join(out_dir, graph_file(name))
        _export(module, inputs, path, name, opset)
        feeds = {n: t.numpy() for n, t in zip(GRAPH_IO[name][0], inputs)}
        err, session = check_graph(path, feeds, [e.numpy() for e in expected])
        errors[name] = err
        graphs[name] = {"file": graph_file(name), "inputs": _describe(session.get_inputs()),
                        "outputs": _describe(session.get_outputs())}
        if log is not None:
            log(f"{graph_file(name)}: onnx.checker ok, onnxruntime vs PyTorch max relative error {err:.3g}")
        if not err <= MAX_REL_ERROR:
            raise OnnxBackendError(f"{path}: onnxruntime differs from PyTorch by {err:.3g} (relative), more than "
                                   f"{MAX_REL_ERROR}")
    manifest = {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "arch": getattr(model, "arch", ""),
                "opset": opset, "exemplar_size": exemplar_size, "instance_size": instance_size,
                "score_size": side, "graphs": graphs, "max_relative_error": errors}
    atomic_write_json(os.path.join(out_dir, MANIFEST_NAME), manifest)
    return manifest


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The work of `main`: load config + weights, export into --out."""
    from siammask.tracker.build import load_model
    from siammask.utils.runtime import init_runtime

    _import_onnx()
    cfg = load_config(args.config)
    ensure_output_dir(args.out, "--out")
    model = load_model(cfg, args.resume, init_runtime("cpu"))
    score = response_size(cfg.hp.instance_size, cfg.hp.exemplar_size, int(cfg.anchors.stride), cfg.hp.base_size)
    manifest = export_model(model, args.out, cfg.hp.exemplar_size, cfg.hp.instance_size, args.opset, args.seed)
    print(f"wrote {len(manifest['graphs'])} graphs ({score}x{score} response) and {MANIFEST_NAME} to {args.out}")
    return manifest


def main(args: argparse.Namespace) -> int:
    """Run tools/export_onnx.py; returns the exit status (0 ok, 2 user error)."""
    return run_tool(run, args)


def cli() -> None:
    tool_cli(main, get_args_parser)


if __name__ == "__main__":
    cli()
