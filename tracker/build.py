"""Config + checkpoint + device -> a ready :class:`SiamMaskTracker` (used by test, demo, tune_vot and the benches)."""
from __future__ import annotations

import argparse
import hashlib
import os
from typing import Any, Optional

import torch

from ..models.weights import CheckpointError, load_pretrained
from ..utils.config import Config, ConfigError, load_config, load_hp
from ..utils.runtime import Runtime, amp_dtype_for, init_runtime
from .siammask_tracker import DEFAULT_LOST_THRESHOLD, SiamMaskTracker
from .state import state_fingerprint

#: Values of build_tracker's `backend` (the tools' --backend).
BACKENDS = ("torch", "onnxruntime")
#: Values of build_tracker's `graphs` (the tools' --graphs) and the compilers each tries, in order (None: the
#: SIAMMASK_GRAPHS environment variable, else tracker.frozen.DEFAULT_BACKENDS).
GRAPHS = ("auto", "inductor", "torchscript")
_GRAPH_BACKENDS = {"auto": None, "inductor": ("inductor", "torchscript"), "torchscript": ("torchscript",)}


def add_backend_arguments(parser: argparse.ArgumentParser) -> None:
    """The tools' --backend / --onnx-dir flags (passed on to :func:`build_tracker` as `backend`, `onnx_dir`)."""
    parser.add_argument("--backend", default="torch", choices=BACKENDS, help="network backend: torch (default) or "
                        "onnxruntime on the graphs of tools/export_onnx.py (--onnx-dir)")
    parser.add_argument("--onnx-dir", default="", metavar="DIR", help="with --backend onnxruntime: the folder "
                        "tools/export_onnx.py wrote")
    parser.add_argument("--no-optimize", dest="optimize", action="store_false", help="exact mode on the CPU: run "
                        "the unfused network (the original's arithmetic, eager kernels) instead of the frozen "
                        "graphs with BatchNorm folded (tracker/frozen.py; same results to float32 rounding)")
    parser.add_argument("--graphs", default="auto", choices=GRAPHS, help="how the CPU network is compiled "
                        "(tracker/frozen.py): inductor = torch.compile (fastest per frame, 5-20 s of compiling "
                        "at the first frame, needs a C++ compiler), torchscript (about a second); auto = the "
                        "SIAMMASK_GRAPHS environment variable, else inductor then torchscript")


def check_tracker_inputs(config_path: str, resume: str) -> Config:
    """The config (parsed strictly) after checking that `resume` exists: what a tool checks before any work.

    Raises:
        ConfigError: the config is missing or malformed.
        CheckpointError: `resume` does not exist.
    """
    config = load_config(config_path)
    if not os.path.isfile(resume):
        raise CheckpointError(f"checkpoint not found: {resume}")
    return config


def file_digest(paths: list[str]) -> str:
    """SHA-256 hex digest of the files' contents in the given order (weights identity for the state fingerprint)."""
    digest = hashlib.sha256()
    for path in paths:
        try:
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    digest.update(chunk)
        except OSError as e:
            raise CheckpointError(f"cannot read {path}: {e.strerror or e}") from e
    return digest.hexdigest()


def tracker_fingerprint(config: Config, weights_digest: str) -> str:
    """The fingerprint stamped on a tracker's states: the architecture, the template crop and the weights.

    States made under another architecture, exemplar size, context amount, anchor count or other weights hold
    template features this tracker cannot use; their fingerprints differ. Tracker-only hyper-parameters (penalties,
    window, lr, thresholds) do not enter: a state stays valid when only those change.
    """
    from ..models import resolve_arch

    return state_fingerprint({"arch": resolve_arch(config.network.arch, config.hp.out_size, config.source),
                              "exemplar_size": config.hp.exemplar_size, "context_amount": config.hp.context_amount,
                              "anchor_num": config.anchors.anchor_num, "weights": weights_digest})


def load_model(config: Config, resume: str, runtime: Runtime) -> torch.nn.Module:
    """Build the model a config names, load `resume` strictly, eval mode on the runtime's device.

    Raises:
        CheckpointError: `resume` is missing, unreadable or does not fit the model.
        ConfigError: the config names an unknown architecture.
    """
    from ..models import build_model

    if not os.path.isfile(resume):
        raise CheckpointError(f"checkpoint not found: {resume}")
    model = build_model(config)
    load_pretrained(model, resume)
    return model.eval().to(runtime.device)


def build_tracker(config_path: str, resume: str, device: str = "auto", amp: bool = False, mask: bool = True,
                  refine: Optional[bool] = None, channels_last: bool = False,
                  hp_overrides: Optional[dict[str, Any]] = None, lost_threshold: float = DEFAULT_LOST_THRESHOLD,
                  fast: bool = False, backend: str = "torch", onnx_dir: Optional[str] = None,
                  optimize: bool = True, graphs: str = "auto") -> tuple[SiamMaskTracker, Config, Runtime]:
    """A tracker for a config.json and a checkpoint on a device; the anchors are the config's.

    Args:
        config_path: experiment config.json (hp, anchors, network.arch).
        resume: weights (released .pth, pysot model.pth or a training checkpoint).
        device: a utils.runtime device choice ('auto', 'cpu', 'cuda', ...).
        amp: autocast the unchanged model.
        mask, refine, channels_last, lost_threshold: as :class:`SiamMaskTracker`.
        hp_overrides: hp keys replacing the config's (e.g. a tuning combination).
        fast: run a BatchNorm-folded low-precision channels_last copy of the model (tracker.fast.make_fast_model)
            under autocast: bf16 on the CPU, fp16 on CUDA/NPU. On a CPU without native bf16 (oneDNN would
            emulate it, several times slower than fp32) it warns and runs the exact fp32 network instead.
        backend: 'torch' (the model of `resume`) or 'onnxruntime': the graphs tools/export_onnx.py wrote to
            `onnx_dir` (their weights are used, `resume` is not read; `amp`, `fast`, `channels_last` do not apply).
        onnx_dir: the export folder for backend 'onnxruntime'.
        optimize: on the CPU, run the network as compiled graphs (tracker.frozen: torch.compile / TorchScript,
            weights frozen; the compilers are tried in the order of ``SIAMMASK_GRAPHS``). Exact fp32 (no `amp`,
            no `fast`): BatchNorm folded outside the stem, same results to float32 rounding; False keeps the
            unfused eager model (the original's arithmetic). `fast`: its bf16 copy compiled under autocast; False
            runs it eagerly.
        graphs: which compilers `optimize` tries (:data:`GRAPHS`: inductor = torch.compile first, torchscript
            only, auto = ``SIAMMASK_GRAPHS``, else inductor then torchscript).

    Returns:
        (tracker, config, runtime).

    Raises:
        SiamMaskError: ConfigError, CheckpointError or RuntimeSetupError with a one-line message.
    """
    if backend not in BACKENDS:
        raise ConfigError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if graphs not in GRAPHS:
        raise ConfigError(f"--graphs must be one of {', '.join(GRAPHS)}, got {graphs!r}")
    if backend == "onnxruntime":
        return _build_onnx_tracker(config_path, onnx_dir, device, amp or fast or channels_last, mask, refine,
                                   hp_overrides, lost_threshold)
    cfg = load_config(config_path)
    runtime = init_runtime(device, amp=amp)
    model = load_model(cfg, resume, runtime)
    amp_dtype = runtime.amp_dtype
    if fast:
        from .fast import fast_mode_supported

        fast = fast_mode_supported(runtime.device.type)
    if fast:
        from .fast import make_fast_model

        amp_dtype = amp_dtype_for(runtime.device.type)
        model = make_fast_model(model, amp_dtype, channels_last=True)
        channels_last = True
        if optimize and runtime.device.type == "cpu":
            from .frozen import freeze_model

            model = freeze_model(model, backends=_GRAPH_BACKENDS[graphs], net=model)
    elif optimize and amp_dtype is None and runtime.device.type == "cpu":
        from .frozen import freeze_model

        model = freeze_model(model, backends=_GRAPH_BACKENDS[graphs])
    hp = load_hp(config_path, hp_overrides) if hp_overrides else cfg.hp
    tracker = SiamMaskTracker(model, hp, runtime.device, anchors=cfg.anchors, mask=mask, refine=refine,
                              amp_dtype=amp_dtype, channels_last=channels_last, lost_threshold=lost_threshold,
                              fingerprint=tracker_fingerprint(cfg, file_digest([resume])))
    return tracker, cfg, runtime


def _build_onnx_tracker(config_path: str, onnx_dir: Optional[str], device: str, torch_options: bool, mask: bool,
                        refine: Optional[bool], hp_overrides: Optional[dict[str, Any]],
                        lost_threshold: float) -> tuple[SiamMaskTracker, Config, Runtime]:
    """build_tracker for backend 'onnxruntime': the tracker over tracker.onnx_backend on `onnx_dir`."""
    from .onnx_backend import OnnxBackendError, load_onnx_backend

    if not onnx_dir:
        raise OnnxBackendError("--backend onnxruntime needs --onnx-dir (the folder tools/export_onnx.py wrote)")
    if torch_options:
        raise OnnxBackendError("--amp, --fast and --channels-last apply to the torch backend only")
    cfg = load_config(config_path)
    hp = load_hp(config_path, hp_overrides) if hp_overrides else cfg.hp
    # onnxruntime ignores OMP_NUM_THREADS; honour it as torch does (0 = onnxruntime's default, one per core)
    threads = os.environ.get("OMP_NUM_THREADS", "")
    net = load_onnx_backend(onnx_dir, device, int(threads) if threads.isdigit() else 0)
    if (net.exemplar_size, net.instance_size) != (hp.exemplar_size, hp.instance_size):
        raise OnnxBackendError(f"--onnx-dir {onnx_dir} was exported for {net.exemplar_size}/{net.instance_size}-px "
                               f"crops, the config's hp has {hp.exemplar_size}/{hp.instance_size}")
    runtime = init_runtime("cpu")
    graphs = sorted(os.path.join(onnx_dir, name) for name in os.listdir(onnx_dir) if name.endswith(".onnx"))
    tracker = SiamMaskTracker(net, hp, "cpu", anchors=cfg.anchors, mask=mask, refine=refine,
                              lost_threshold=lost_threshold, fingerprint=tracker_fingerprint(cfg, file_digest(graphs)))
    return tracker, cfg, runtime
