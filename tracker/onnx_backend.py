"""onnxruntime backend of the tracker: the model calls the tracker makes, on the graphs of tools/export_onnx.py.

:class:`OnnxBackend` (base model) and :class:`OnnxSharpBackend` (+ ``refine``) present ``template``, ``track``,
``mask_at`` and ``refine`` as the torch model does, but take and return NumPy arrays, batch 1
(``numpy_io = True`` tells :class:`~siammask.tracker.SiamMaskTracker` to feed them per target). No torch runs in these
calls. The graph names, file names and the manifest layout are declared here once; the exporter writes them.

Graphs (fixed shapes, batch 1, S = exemplar side, X = instance side, R = response side):

* ``template.onnx``: ``z`` (1, 3, S, S) float32 BGR 0-255 -> ``zf`` (1, 256, 7, 7);
* ``search.onnx``: ``zf``, ``x`` (1, 3, X, X) -> ``cls`` (1, 2A, R, R), ``loc`` (1, 4A, R, R), ``corr_feature``
  (1, 256, R, R) and, for the sharp model, the backbone maps ``p0``, ``p1``, ``p2``; the depth-wise correlations are
  ``Conv`` nodes whose weight is the (input-dependent) template branch;
* ``mask.onnx``: ``corr_feature``, ``pos`` (2,) int64 (row, col) -> ``mask`` (1, 3969) logits of the 63x63 head;
* ``refine.onnx`` (sharp): ``p0``, ``p1``, ``p2``, ``corr_feature``, ``pos`` -> ``mask`` (1, 16129) refined logits.
"""
from __future__ import annotations

import os
from typing import Any, Mapping, Optional, Sequence

import numpy as np

from ..utils.errors import SiamMaskError
from ..utils.io import read_json

#: The manifest the exporter writes beside the graphs.
MANIFEST_NAME = "siammask_onnx.json"
MANIFEST_FORMAT = "siammask-onnx"
MANIFEST_VERSION = 1
#: graph name -> (input names, output names); the sharp model's search graph adds SHARP_SEARCH_OUTPUTS.
GRAPH_IO: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "template": (("z",), ("zf",)),
    "search": (("zf", "x"), ("cls", "loc", "corr_feature")),
    "mask": (("corr_feature", "pos"), ("mask",)),
    "refine": (("p0", "p1", "p2", "corr_feature", "pos"), ("mask",)),
}
SHARP_SEARCH_OUTPUTS = ("p0", "p1", "p2")
#: Graphs every export has; "refine" only for models with a refinement module.
REQUIRED_GRAPHS = ("template", "search", "mask")


class OnnxBackendError(SiamMaskError):
    """The exported graphs are missing, unreadable or do not fit the config; or onnxruntime is not installed."""


def graph_file(name: str) -> str:
    """File name of a graph in the export folder (``template`` -> ``template.onnx``)."""
    return f"{name}.onnx"


def _import_onnxruntime() -> Any:
    try:
        import onnxruntime
    except ImportError:
        raise OnnxBackendError("the onnxruntime backend needs onnxruntime: pip install onnxruntime "
                               "(or pip install siammask[onnx])") from None
    return onnxruntime


def providers_for(device: str) -> list[str]:
    """onnxruntime execution providers for a device choice ('auto', 'cpu', 'cuda', 'cuda:N')."""
    ort = _import_onnxruntime()
    available = ort.get_available_providers()
    kind = device.split(":")[0]
    if kind == "auto":
        return (["CUDAExecutionProvider"] if "CUDAExecutionProvider" in available else []) + ["CPUExecutionProvider"]
    if kind == "cpu":
        return ["CPUExecutionProvider"]
    if kind == "cuda":
        if "CUDAExecutionProvider" not in available:
            raise OnnxBackendError(f"--device {device}: this onnxruntime has no CUDA provider (available: "
                                   f"{', '.join(available)}); pip install onnxruntime-gpu")
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    raise OnnxBackendError(f"--device {device} is not supported by the onnxruntime backend (auto, cpu or cuda)")


def read_manifest(onnx_dir: str) -> dict[str, Any]:
    """The export folder's manifest, checked for format, version and the graph files it lists."""
    path = os.path.join(onnx_dir, MANIFEST_NAME)
    if not os.path.isfile(path):
        raise OnnxBackendError(f"--onnx-dir {onnx_dir}: no {MANIFEST_NAME} (write it with tools/export_onnx.py)")
    manifest = read_json(path, "ONNX manifest", error=OnnxBackendError)
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT \
            or manifest.get("version") != MANIFEST_VERSION:
        raise OnnxBackendError(f"{path}: not a version-{MANIFEST_VERSION} {MANIFEST_FORMAT} manifest")
    graphs = manifest.get("graphs")
    if not isinstance(graphs, dict) or any(g not in graphs for g in REQUIRED_GRAPHS):
        raise OnnxBackendError(f"{path}: key 'graphs' must list {', '.join(REQUIRED_GRAPHS)}")
    for name in graphs:
        if not os.path.isfile(os.path.join(onnx_dir, graph_file(name))):
            raise OnnxBackendError(f"--onnx-dir {onnx_dir}: {graph_file(name)} is missing")
    return manifest


class OnnxBackend:
    """The base model's tracking calls on onnxruntime sessions (NumPy in and out, batch 1).

    Args:
        onnx_dir: folder written by tools/export_onnx.py.
        device: 'auto' (CUDA provider when present), 'cpu' or 'cuda'.
        threads: intra-op threads of each session (0 = onnxruntime's default).
    """

    #: The tracker passes NumPy arrays, one target per call.
    numpy_io = True

    def __init__(self, onnx_dir: str, device: str = "auto", threads: int = 0,
                 manifest: Optional[Mapping[str, Any]] = None) -> None:
        ort = _import_onnxruntime()
        self.onnx_dir = onnx_dir
        self.manifest = dict(manifest) if manifest is not None else read_manifest(onnx_dir)
        self.arch = str(self.manifest.get("arch", ""))
        self.exemplar_size = int(self.manifest["exemplar_size"])
        self.instance_size = int(self.manifest["instance_size"])
        self.providers = providers_for(device)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        self.sessions = {}
        for name in self.manifest["graphs"]:
            path = os.path.join(onnx_dir, graph_file(name))
            self.sessions[name] = ort.InferenceSession(path, options, providers=self.providers)

    def _run(self, graph: str, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        names = GRAPH_IO[graph][0]
        return self.sessions[graph].run(None, {n: feeds[n] for n in names})

    def template(self, z: np.ndarray) -> np.ndarray:
        """(1, 3, S, S) float32 template crop -> zf (1, 256, 7, 7) float32."""
        return self._run("template", {"z": np.ascontiguousarray(z, np.float32)})[0]

    def track(self, zf: np.ndarray, x: np.ndarray, mask_head: bool = False) -> dict[str, np.ndarray]:
        """zf (1, 256, 7, 7), search crop (1, 3, X, X) -> dict of ``cls``, ``loc``, ``corr_feature`` (+ p0..p2).

        ``mask_head=True`` (the full 3969-channel head) is not exported; the tracker never asks for it.
        """
        if mask_head:
            raise NotImplementedError("the exported search graph has no full mask head; use mask_at")
        outs = self._run("search", {"zf": np.ascontiguousarray(zf, np.float32),
                                    "x": np.ascontiguousarray(x, np.float32)})
        names = [o.name for o in self.sessions["search"].get_outputs()]
        return dict(zip(names, outs))

    def mask_at(self, out: Mapping[str, np.ndarray], pos: Sequence[int]) -> np.ndarray:
        """Mask-head logits (1, 3969) at response position (row, col)."""
        return self._run("mask", {"corr_feature": out["corr_feature"], "pos": _position(pos)})[0]


class OnnxSharpBackend(OnnxBackend):
    """:class:`OnnxBackend` plus the refinement module (``refine.onnx``)."""

    def refine(self, out: Mapping[str, np.ndarray], pos: Sequence[int]) -> np.ndarray:
        """Refined mask logits (1, 16129) at response position (row, col)."""
        return self._run("refine", {**out, "pos": _position(pos)})[0]


def _position(pos: Sequence[int]) -> np.ndarray:
    return np.asarray([int(pos[0]), int(pos[1])], dtype=np.int64)


def load_onnx_backend(onnx_dir: str, device: str = "auto", threads: int = 0) -> OnnxBackend:
    """The backend for an export folder: :class:`OnnxSharpBackend` when it holds ``refine.onnx``."""
    manifest = read_manifest(onnx_dir)
    cls = OnnxSharpBackend if "refine" in manifest["graphs"] else OnnxBackend
    return cls(onnx_dir, device, threads, manifest=manifest)
