"""Config + checkpoint + device -> a ready :class:`SiamMaskTracker` (what test, demo, tune_vot and the benchmarks use)."""
from __future__ import annotations

import os
from typing import Any, Optional

import torch

from ..models.weights import CheckpointError, load_pretrained
from ..utils.config import Config, load_config, load_hp
from ..utils.runtime import Runtime, amp_dtype_for, init_runtime
from .siammask_tracker import DEFAULT_LOST_THRESHOLD, SiamMaskTracker


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
                  fast: bool = False) -> tuple[SiamMaskTracker, Config, Runtime]:
    """A tracker for a config.json and a checkpoint on a device; the anchors are the config's.

    Args:
        config_path: experiment config.json (hp, anchors, network.arch).
        resume: weights (released .pth, pysot model.pth or a training checkpoint).
        device: a utils.runtime device choice ('auto', 'cpu', 'cuda', ...).
        amp: autocast the unchanged model.
        mask, refine, channels_last, lost_threshold: as :class:`SiamMaskTracker`.
        hp_overrides: hp keys replacing the config's (e.g. a tuning combination).
        fast: run a BatchNorm-folded low-precision channels_last copy of the model (tracker.fast.make_fast_model)
            under autocast: bf16 on the CPU, fp16 on CUDA/NPU.

    Returns:
        (tracker, config, runtime).

    Raises:
        SiamMaskError: ConfigError, CheckpointError or RuntimeSetupError with a one-line message.
    """
    cfg = load_config(config_path)
    runtime = init_runtime(device, amp=amp)
    model = load_model(cfg, resume, runtime)
    amp_dtype = runtime.amp_dtype
    if fast:
        from .fast import make_fast_model

        amp_dtype = amp_dtype_for(runtime.device.type)
        model = make_fast_model(model, amp_dtype, channels_last=True)
        channels_last = True
    hp = load_hp(config_path, hp_overrides) if hp_overrides else cfg.hp
    tracker = SiamMaskTracker(model, hp, runtime.device, anchors=cfg.anchors, mask=mask, refine=refine,
                              amp_dtype=amp_dtype, channels_last=channels_last, lost_threshold=lost_threshold)
    return tracker, cfg, runtime
