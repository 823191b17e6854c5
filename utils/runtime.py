"""Where and how a run executes: device choice, mixed precision, torch.distributed, seeding.

One small :class:`Runtime` object is made in a tool's ``main`` by :func:`init_runtime` and passed down; nothing here
is a module-level singleton. The original hard-coded CUDA (``.cuda()``, DataParallel) and the Ascend port hard-coded
``npu:{RANK}`` with apex O1; this module replaces both:

* device ``auto`` prefers an Ascend NPU (``torch_npu`` importable and a device present), then CUDA, then the CPU;
  ``torch_npu`` is imported only on that branch;
* ``--amp`` = ``torch.autocast`` (fp16 on NPU/CUDA, bf16 on CPU) plus a GradScaler with dynamic scaling (what apex
  O1 did); ``loss_scale=128`` gives the Ascend port's static scale;
* distributed runs are initialised from torchrun's environment (RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR,
  MASTER_PORT) with hccl on NPU, nccl on CUDA and gloo on CPU; the device index comes from LOCAL_RANK.
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import random
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Optional

import numpy as np
import torch

from .errors import SiamMaskError

DEVICE_CHOICES = ("auto", "npu", "cuda", "cpu")
BACKENDS = {"npu": "hccl", "cuda": "nccl", "cpu": "gloo"}


class RuntimeSetupError(SiamMaskError):
    """The requested device or distributed setup is not available (one-line message)."""


def npu_available() -> bool:
    """True when torch_npu is installed and reports at least one NPU. Imports torch_npu only if installed."""
    if importlib.util.find_spec("torch_npu") is None:
        return False
    importlib.import_module("torch_npu")
    npu = getattr(torch, "npu", None)
    return bool(npu is not None and npu.is_available() and npu.device_count() > 0)


def cuda_available() -> bool:
    """True when a CUDA device is usable."""
    return torch.cuda.is_available()


def resolve_device_type(name: str = "auto") -> str:
    """Turn 'auto' | 'npu' | 'cuda' | 'cpu' into a concrete device type.

    Raises:
        RuntimeSetupError: an explicit 'npu' or 'cuda' was asked for and is not available.
    """
    if name not in DEVICE_CHOICES:
        raise RuntimeSetupError(f"unknown device {name!r}; choose one of {', '.join(DEVICE_CHOICES)}")
    if name == "auto":
        if npu_available():
            return "npu"
        return "cuda" if cuda_available() else "cpu"
    if name == "npu" and not npu_available():
        raise RuntimeSetupError("--device npu: torch_npu is not installed or no Ascend NPU is visible")
    if name == "cuda" and not cuda_available():
        raise RuntimeSetupError("--device cuda: no CUDA device is available to this PyTorch build")
    return name


def cpu_autocast() -> bool:
    """Whether CPU autocast is on (``torch.is_autocast_enabled("cpu")``; its older spelling on torch < 2.4)."""
    try:
        return torch.is_autocast_enabled("cpu")
    except TypeError:
        return torch.is_autocast_cpu_enabled()


def cpu_autocast_dtype() -> Optional[torch.dtype]:
    """The dtype CPU autocast casts to while it is on, else None."""
    if not cpu_autocast():
        return None
    try:
        return torch.get_autocast_dtype("cpu")
    except AttributeError:  # torch < 2.4
        return torch.get_autocast_cpu_dtype()


def amp_dtype_for(device_type: str) -> torch.dtype:
    """The autocast dtype for a device: float16 on NPU/CUDA (as apex O1), bfloat16 on the CPU."""
    return torch.bfloat16 if device_type == "cpu" else torch.float16


class StaticGradScaler(torch.amp.GradScaler):
    """A GradScaler whose scale never changes (apex's static ``loss_scale=128``): steps with inf/nan are skipped."""

    def __init__(self, device: str, scale: float) -> None:
        super().__init__(device, init_scale=scale)
        self.static_scale = float(scale)

    def update(self, new_scale: Optional[float] = None) -> None:  # noqa: D102 - see class docstring
        super().update(new_scale=self.static_scale if new_scale is None else new_scale)


@dataclass
class Runtime:
    """Device, precision and process-group facts of one process."""

    device: torch.device
    amp_dtype: Optional[torch.dtype] = None  # None: fp32
    loss_scale: Optional[float] = None  # None: dynamic scaling (only used with fp16)
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    backend: Optional[str] = None  # set when torch.distributed was initialised
    channels_last: bool = False  # model and input crops in channels_last layout (what oneDNN / cuDNN AMP prefer)

    @property
    def amp(self) -> bool:
        return self.amp_dtype is not None

    @property
    def distributed(self) -> bool:
        return self.backend is not None

    @property
    def is_main(self) -> bool:
        """Only the main process (rank 0) logs to the console and writes files."""
        return self.rank == 0

    def autocast(self) -> contextlib.AbstractContextManager:
        """Context for forward passes: autocast to `amp_dtype` when AMP is on, else a no-op."""
        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def make_scaler(self) -> torch.amp.GradScaler:
        """GradScaler for fp16 AMP (dynamic, or static with `loss_scale`); a disabled one otherwise (bf16/fp32)."""
        if self.amp_dtype != torch.float16:
            return torch.amp.GradScaler(self.device.type, enabled=False)
        if self.loss_scale is not None:
            return StaticGradScaler(self.device.type, self.loss_scale)
        return torch.amp.GradScaler(self.device.type)

    def describe(self) -> str:
        """One line: device, precision, world size."""
        prec = "fp32" if not self.amp else f"amp {str(self.amp_dtype).replace('torch.', '')}"
        if self.amp_dtype == torch.float16:
            prec += f" (loss scale {'static ' + str(self.loss_scale) if self.loss_scale else 'dynamic'})"
        if self.channels_last:
            prec += ", channels_last"
        dist = f"{self.backend} rank {self.rank}/{self.world_size}" if self.distributed else "single process"
        return f"device {self.device}, {prec}, {dist}"


def _env_int(env: Mapping[str, str], key: str, default: int) -> int:
    value = env.get(key)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise RuntimeSetupError(f"environment variable {key}={value!r} is not an integer") from None


def init_runtime(device: str = "auto", amp: bool = False, loss_scale: Optional[float] = None,
                 env: Optional[Mapping[str, str]] = None, init_process_group: bool = True,
                 channels_last: Optional[bool] = None) -> Runtime:
    """Choose the device, set up precision and, under torchrun (WORLD_SIZE > 1), the process group.

    Args:
        device: 'auto' | 'npu' | 'cuda' | 'cpu'.
        amp: autocast + GradScaler (fp16 on NPU/CUDA, bf16 on CPU).
        loss_scale: static loss scale for fp16 (the Ascend port used 128); None = dynamic.
        env: environment to read (default os.environ).
        init_process_group: call torch.distributed.init_process_group when WORLD_SIZE > 1.
        channels_last: model and crops in channels_last layout; None = on the CPU (bench/model_step.py on an AMX
            Xeon: bf16 1.5-1.6x faster per training step than NCHW, fp32 1.03x in the frozen stage and 1.1x in the
            unfrozen one) and with `amp` on CUDA, not on the NPU.
    """
    env = os.environ if env is None else env
    dev_type = resolve_device_type(device)
    world_size = _env_int(env, "WORLD_SIZE", 1)
    rank = _env_int(env, "RANK", 0)
    local_rank = _env_int(env, "LOCAL_RANK", 0)
    if dev_type in ("cuda", "npu"):
        module = getattr(torch, dev_type)
        count = module.device_count()
        if local_rank >= count:
            raise RuntimeSetupError(f"LOCAL_RANK={local_rank} but only {count} {dev_type} device(s) are visible")
        module.set_device(local_rank)
        dev = torch.device(dev_type, local_rank)
    else:
        dev = torch.device("cpu")
    backend = None
    if world_size > 1:
        backend = BACKENDS[dev_type]
        if init_process_group and not torch.distributed.is_initialized():
            for key in ("MASTER_ADDR", "MASTER_PORT"):
                if key not in env:
                    raise RuntimeSetupError(f"WORLD_SIZE={world_size} but {key} is not set; launch with torchrun")
            torch.distributed.init_process_group(backend=backend, rank=rank, world_size=world_size)
    if channels_last is None:
        channels_last = dev_type == "cpu" or (amp and dev_type == "cuda")
    return Runtime(device=dev, amp_dtype=amp_dtype_for(dev_type) if amp else None, loss_scale=loss_scale,
                   rank=rank, local_rank=local_rank, world_size=world_size, backend=backend,
                   channels_last=bool(channels_last))


def cleanup(runtime: Runtime) -> None:
    """Destroy the process group if this runtime made one."""
    if runtime.distributed and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (and every CUDA/NPU device) with `seed`."""
    random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    npu = getattr(torch, "npu", None)
    if npu is not None and hasattr(npu, "manual_seed_all"):
        npu.manual_seed_all(seed)


def worker_init_fn(worker_id: int) -> None:
    """DataLoader worker seeding: python and numpy from torch's per-worker seed (base seed + worker id).

    The base seed comes from the DataLoader's generator, so a seeded generator makes workers reproducible and every
    worker, epoch and rank draws differently.
    """
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


def versions() -> dict[str, str]:
    """Versions of python, torch, torch_npu (if installed), numpy and OpenCV."""
    import platform

    out = {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__}
    if importlib.util.find_spec("torch_npu") is not None:
        out["torch_npu"] = getattr(importlib.import_module("torch_npu"), "__version__", "unknown")
    try:
        import cv2

        out["cv2"] = cv2.__version__
    except ImportError:
        out["cv2"] = "not installed"
    return out


@contextlib.contextmanager
def main_process_first(runtime: Runtime) -> Iterator[None]:
    """Let rank 0 run the body first (e.g. generating data), the others after a barrier."""
    if runtime.distributed and not runtime.is_main:
        torch.distributed.barrier()
    yield
    if runtime.distributed and runtime.is_main:
        torch.distributed.barrier()


def unwrap(model: torch.nn.Module) -> Any:
    """The model inside a DistributedDataParallel wrapper (or the model itself)."""
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model
