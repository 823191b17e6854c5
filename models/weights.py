"""Loading weights into SiamMask models: one strict loader for every kind of file, and the pysot key converter.

Ports ``utils/load_helper.py`` (``load_pretrain``, ``restore_from``, ``remove_prefix``, ``check_keys``) of the
original SiamMask (reference.md C.6), and converts pysot's ``siammask_r50_l3`` ``model.pth`` key layout.

:func:`load_pretrained` accepts

* the ImageNet backbone ``resnet.model`` (bare ResNet keys ``conv1.weight``, ``layer1.0...``), loaded into
  ``model.features.features``;
* released SiamMask files: a raw state dict or ``{'state_dict': ...}``, keys optionally prefixed ``module.``;
* pysot ``model.pth`` files (converted by :func:`convert_pysot_state_dict`);
* this project's training checkpoints ``{'epoch', 'state_dict', 'optimizer', ..., 'config', 'arch'}``.

Deviations from the original: loading is strict. The original logged missing and unused keys and then loaded with
``strict=False`` (and retried with a ``features.`` prefix after any failure). Here every missing, unexpected or
mis-shaped key raises :class:`CheckpointError` with a one-line-per-category report naming the file. The tolerated
exceptions are documented ones: ``num_batches_tracked`` missing from old files (the model's value is kept), ``layer4.*``
/ ``fc.*`` classifier keys in an ImageNet backbone file (not part of this backbone), and, on request
(``allow_missing_refine=True``), the ``refine_model.*`` keys when a base checkpoint starts the refine stage of a sharp
model (reference.md D.7). Files are always read with ``torch.load(weights_only=True)``; numpy scalars and arrays
are allowed on a retry, nothing else.
"""
from __future__ import annotations

import importlib
import os
import pickle
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from ..utils.errors import SiamMaskError

PathLike = str | os.PathLike

#: Globals a checkpoint may need beyond plain tensors and containers (numpy scalars and arrays, e.g. a saved
#: ``best_acc`` or anchor table); they are allowed on a retry of ``torch.load(weights_only=True)``.
SAFE_NUMPY_GLOBALS = frozenset({
    "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar",
    "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct",
    "numpy.dtype", "numpy.ndarray",
})
_NUMPY_DTYPE_CLASS = re.compile(r"^numpy\.dtypes\.\w+DType$")
# torch's messages for a global outside the allow-list (a GLOBAL opcode, a blocked module, a class built by a reduce).
_UNSUPPORTED_GLOBAL = re.compile(r"GLOBAL (\S+) was not an allowed global|but got <class '([\w.]+)'>"
                                 r"|unsupported GLOBAL (\S+) whose module")
# The lines of torch's weights-only message that advise or point elsewhere; the reason is what remains.
_TORCH_ADVICE = re.compile(r"^(Weights only load failed|Please file an issue|Check the documentation|"
                           r"WeightsUnpickler error:\s*$)|weights_only", re.IGNORECASE)
#: Prefixes of the SiamMask state dict (reference.md C.6).
SIAMMASK_PREFIXES = ("features.", "rpn_model.", "mask_model.", "refine_model.")
REFINE_PREFIX = "refine_model."
#: Keys of an ImageNet classification ResNet that this backbone does not have.
BACKBONE_IGNORED_PREFIXES = ("layer4.", "fc.")
#: pysot ``siammask_r50_l3`` prefix -> original prefix, checked in order (first match wins).
PYSOT_PREFIX_MAP: tuple[tuple[str, str], ...] = (
    ("backbone.", "features.features."),
    ("neck.downsample.downsample.", "features.downsample.downsample."),  # AdjustAllLayer holding one AdjustLayer
    ("neck.downsample.", "features.downsample.downsample."),  # a bare AdjustLayer as the neck
    ("rpn_head.", "rpn_model."),  # DepthwiseRPN: cls / loc DepthwiseXCorr, same sub-names as DepthCorr
    ("mask_head.", "mask_model.mask."),  # MaskCorr is itself the DepthwiseXCorr
    ("refine_head.", "refine_model."),  # Refine: v0..v2, h0..h2, deconv, post0..post2, same names
)
_MAX_LISTED = 8


class CheckpointError(SiamMaskError):
    """A checkpoint file is missing, unreadable, or does not match the model."""


@dataclass
class LoadReport:
    """What :func:`load_pretrained` loaded.

    Attributes:
        path: the file.
        kind: ``"backbone"`` (ImageNet ResNet), ``"siammask"`` (state dict, raw or wrapped), ``"pysot"`` (converted)
            or ``"training"`` (this project's checkpoint with optimizer state).
        arch: ``"siammask_base"`` / ``"siammask_sharp"`` as judged from the keys, or ``"resnet"`` for a backbone.
        loaded: number of state-dict entries copied into the model.
        tolerated: keys the file lacks or holds that were accepted (see the module docstring).
        problems: missing / unexpected / mis-shaped keys; only non-empty with ``strict=False``.
        extra: the checkpoint's other top-level entries (``epoch``, ``optimizer``, ``config``, ...), for a resume.
    """

    path: str
    kind: str
    arch: str
    loaded: int
    tolerated: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


def _safe_global(name: str) -> tuple[Any, str]:
    module, _, attr = name.rpartition(".")
    return getattr(importlib.import_module(module), attr), name


def load_checkpoint(path: PathLike, map_location: str | torch.device | None = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``, allowing numpy scalars/arrays (and only those) on a retry.

    Raises:
        CheckpointError: the file does not exist, is not a PyTorch file, or needs other globals (one line).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: checkpoint file not found")
    if os.path.getsize(path) == 0:
        raise CheckpointError(f"{path}: empty file, not a PyTorch checkpoint")
    allowed: list[tuple[Any, str]] = []
    while True:
        try:
            with torch.serialization.safe_globals(allowed), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # e.g. "Detected pickle protocol 4": the refusal below says it all
                return torch.load(path, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError as e:
            found = _UNSUPPORTED_GLOBAL.search(str(e))
            if found is None:
                raise CheckpointError(f"{path}: not a PyTorch checkpoint ({unpickler_reason(e)})") from None
            name = next(g for g in found.groups() if g)
            if name in {n for _, n in allowed} or not (name in SAFE_NUMPY_GLOBALS or _NUMPY_DTYPE_CLASS.match(name)):
                raise CheckpointError(f"{path}: refused: it would load the Python global {name}, which is not "
                                      f"tensor data (a checkpoint holds tensors, numbers and plain containers); "
                                      f"nothing in it was run") from None
            try:
                allowed.append(_safe_global(name))
            except (ImportError, AttributeError):
                raise CheckpointError(f"{path}: needs {name}, which this numpy does not provide") from None
        except Exception as e:  # torch raises RuntimeError, KeyError, EOFError ... for non-checkpoint files
            reason = _first_line(e).split(". ")[0].rstrip(".")
            raise CheckpointError(f"{path}: not a PyTorch checkpoint, or cut short ({type(e).__name__}: "
                                  f"{reason})") from None


def unpickler_reason(error: BaseException) -> str:
    """What torch's weights-only unpickler objected to, without torch's advice to load the file unsafely."""
    lines = [line.strip() for line in str(error).splitlines()]
    kept = [line for line in lines if line and not _TORCH_ADVICE.search(line)]
    if not kept:
        return type(error).__name__
    reason = kept[0].rstrip(".")
    operand = re.match(r"Unsupported operand (\d+)", reason)
    if operand:
        return f"byte 0x{int(operand.group(1)):02x} is no instruction the weights-only loader accepts"
    return reason


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def strip_prefix(state_dict: Mapping[str, Tensor], prefix: str = "module.") -> dict[str, Tensor]:
    """Remove a leading ``prefix`` (DataParallel / DDP's ``module.``) from every key that has it."""
    return {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in state_dict.items()}


def convert_pysot_state_dict(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename pysot ``siammask_r50_l3`` keys to the original SiamMask names (:data:`PYSOT_PREFIX_MAP`).

    ``backbone.`` -> ``features.features.``, ``neck.downsample[.downsample].`` -> ``features.downsample.downsample.``,
    ``rpn_head.`` -> ``rpn_model.``, ``mask_head.`` -> ``mask_model.mask.``, ``refine_head.`` -> ``refine_model.``.
    pysot's module names below these prefixes equal the original's (checked against pysot's ``resnet_atrous.py``,
    ``neck.py``, ``rpn.py`` and ``mask.py``). Keys matching no rule, e.g. an already converted dict, pass unchanged.
    """
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        for old, new in PYSOT_PREFIX_MAP:
            if key.startswith(old):
                key = new + key[len(old):]
                break
        out[key] = value
    return out


def _is_pysot(keys: list[str]) -> bool:
    return any(k.startswith(old) for k in keys for old, _ in PYSOT_PREFIX_MAP)


def _is_bare_backbone(keys: list[str]) -> bool:
    return not any(k.startswith(SIAMMASK_PREFIXES) for k in keys) and any(
        k.startswith(("conv1.", "layer1.")) for k in keys)


def arch_of_keys(keys: Any) -> str:
    """``"siammask_sharp"`` when any key belongs to ``refine_model``, else ``"siammask_base"``."""
    return "siammask_sharp" if any(k.startswith(REFINE_PREFIX) for k in keys) else "siammask_base"


def _listing(label: str, items: list[str]) -> str:
    shown = ", ".join(items[:_MAX_LISTED])
    more = f" ... and {len(items) - _MAX_LISTED} more" if len(items) > _MAX_LISTED else ""
    return f"  {label} ({len(items)}): {shown}{more}"


def _split_checkpoint(obj: Any, path: str) -> tuple[dict[str, Tensor], dict[str, Any]]:
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: not a checkpoint (holds a {type(obj).__name__}, expected a dict)")
    if "state_dict" in obj:
        state_dict, extra = obj["state_dict"], {k: v for k, v in obj.items() if k != "state_dict"}
    else:
        state_dict, extra = obj, {}
    if not isinstance(state_dict, Mapping) or not state_dict or not all(
            isinstance(k, str) and isinstance(v, Tensor) for k, v in state_dict.items()):
        raise CheckpointError(f"{path}: not a checkpoint (no state dict of named tensors)")
    return dict(state_dict), extra


def load_pretrained(model: nn.Module, path: PathLike, *, map_location: str | torch.device | None = "cpu",
                    strict: bool = True, allow_missing_refine: bool = False) -> LoadReport:
    """Load any supported weights file into a SiamMask model (see the module docstring for the kinds).

    Args:
        model: a :class:`models.SiamMaskBase` / :class:`models.SiamMaskSharp` (a DataParallel / DDP wrapper is
            unwrapped).
        path: the file.
        map_location: passed to ``torch.load``.
        strict: raise on any missing, unexpected or mis-shaped key (default). With False the matching keys are
            loaded and the rest is listed in ``LoadReport.problems``.
        allow_missing_refine: accept a base checkpoint for a sharp model; ``refine_model`` keeps its initialisation
            (how the refine stage starts from a trained base model).

    Returns:
        a :class:`LoadReport`; ``extra`` holds the checkpoint's optimizer state, epoch, config etc.

    Raises:
        CheckpointError: unreadable file, base/sharp mismatch, or (strict) any key problem; the message names the
            file and lists the keys, one line per category.
    """
    path = os.fspath(path)
    if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
        model = model.module
    state_dict, extra = _split_checkpoint(load_checkpoint(path, map_location), path)
    state_dict = strip_prefix(state_dict)
    keys = list(state_dict)
    kind = "training" if "optimizer" in extra else "siammask"
    if _is_pysot(keys):
        state_dict, kind = convert_pysot_state_dict(state_dict), "pysot"
    tolerated: list[str] = []
    if _is_bare_backbone(list(state_dict)):
        target, kind, arch = model.features.features, "backbone", "resnet"
        ignored = [k for k in state_dict if k.startswith(BACKBONE_IGNORED_PREFIXES)]
        state_dict = {k: v for k, v in state_dict.items() if k not in ignored}
        if ignored:
            tolerated.append(f"ignored {len(ignored)} classifier keys (layer4.*, fc.*)")
    else:
        target, arch = model, arch_of_keys(state_dict)
        _check_arch(model, path, arch, extra, allow_missing_refine)

    own = target.state_dict()
    missing = [k for k in own if k not in state_dict]
    if arch == "siammask_base" and allow_missing_refine:
        refine = [k for k in missing if k.startswith(REFINE_PREFIX)]
        missing = [k for k in missing if not k.startswith(REFINE_PREFIX)]
        if refine:
            tolerated.append(f"kept the initial {len(refine)} refine_model entries")
    untracked = [k for k in missing if k.endswith("num_batches_tracked")]
    missing = [k for k in missing if k not in untracked]
    if untracked:
        tolerated.append(f"kept {len(untracked)} num_batches_tracked the file lacks")
    unexpected = [k for k in state_dict if k not in own]
    mismatched = [f"{k} {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
                  for k in state_dict if k in own and state_dict[k].shape != own[k].shape]
    problems = [_listing(label, items) for label, items in
                (("missing", missing), ("unexpected", unexpected), ("mis-shaped", mismatched)) if items]
    if problems and strict:
        target_name = "model.features.features (ResNet)" if kind == "backbone" else type(model).__name__
        raise CheckpointError(f"{path}: does not match {target_name}:\n" + "\n".join(problems))

    merged = {k: (state_dict[k] if k in state_dict and state_dict[k].shape == v.shape else v)
              for k, v in own.items()}
    target.load_state_dict(merged, strict=True)
    loaded = sum(1 for k, v in own.items() if k in state_dict and state_dict[k].shape == v.shape)
    return LoadReport(path=path, kind=kind, arch=arch, loaded=loaded, tolerated=tolerated, problems=problems,
                      extra=extra)


def _check_arch(model: nn.Module, path: str, file_arch: str, extra: Mapping[str, Any],
                allow_missing_refine: bool) -> None:
    """Raise when a sharp file meets a base model or vice versa (also via a checkpoint's ``arch`` entry)."""
    model_arch = arch_of_keys(model.state_dict())
    stored = extra["arch"] if "arch" in extra else None
    if stored in ("siammask_base", "siammask_sharp") and stored != file_arch:
        raise CheckpointError(f"{path}: 'arch' says {stored} but the state dict is {file_arch}")
    if file_arch == model_arch:
        return
    if file_arch == "siammask_sharp":
        raise CheckpointError(f"{path}: holds a siammask_sharp checkpoint (refine_model.* entries) but the model is "
                              f"{model_arch}; build the model from a sharp config")
    if not allow_missing_refine:
        raise CheckpointError(f"{path}: holds a siammask_base checkpoint (no refine_model.* entries) but the model "
                              f"is {model_arch} (a sharp config); track with the base config "
                              f"(experiments/siammask_base/config.json), or train the refine stage from it "
                              f"(tools/train_siammask_refine.py --pretrained {path})")
