"""SiamMask networks: the name -> class table ``MODELS`` and :func:`build_model`.

The original SiamMask had one model name, ``Custom``, defined once per experiment directory (base and sharp). Here
the two are explicit names; ``Custom`` is still accepted and resolves by the config's ``hp.out_size`` (127 in the
sharp configs, whose tracker uses the refine module; 63 otherwise, the base tracker's mask size).
"""
from __future__ import annotations

import os

from ..utils.config import Config, ConfigError, load_config
from .losses import compute_losses
from .siammask import SiamMaskBase, SiamMaskSharp

#: Model name -> class. ``network.arch`` in a config.json selects one (or ``Custom``, see :func:`resolve_arch`).
MODELS: dict[str, type[SiamMaskBase]] = {
    "siammask_base": SiamMaskBase,
    "siammask_sharp": SiamMaskSharp,
}
#: The original's only architecture name.
ORIGINAL_ARCH = "Custom"

__all__ = ["MODELS", "ORIGINAL_ARCH", "SiamMaskBase", "SiamMaskSharp", "build_model", "compute_losses",
           "resolve_arch"]


def resolve_arch(arch: str, out_size: int, source: str = "config") -> str:
    """Registered model name for a config's ``network.arch``.

    Args:
        arch: a key of :data:`MODELS`, or ``"Custom"``.
        out_size: the config's ``hp.out_size``; ``Custom`` means ``siammask_sharp`` when it is 127, else
            ``siammask_base``.
        source: the config file, named in the error.

    Raises:
        ConfigError: unknown name (the message names the key and lists the valid ones).
    """
    if arch == ORIGINAL_ARCH:
        return "siammask_sharp" if out_size == SiamMaskSharp.mask_size else "siammask_base"
    if arch not in MODELS:
        valid = ", ".join([*MODELS, ORIGINAL_ARCH])
        raise ConfigError(f"{source}: key 'network.arch': unknown model {arch!r}; valid names: {valid}")
    return arch


def build_model(config: str | os.PathLike | dict | Config) -> SiamMaskBase:
    """Build the model a config names, freshly initialised as the original (no weights loaded).

    Args:
        config: path to a config.json, its content as a dict, or a :class:`utils.config.Config`.

    Returns:
        a :class:`SiamMaskBase` or :class:`SiamMaskSharp` on the CPU, in train mode, at the epoch-0 / refine stage;
        load weights with :func:`siammask.models.weights.load_pretrained`.

    The anchor layout is not stored on the model: the tracker takes it from the config (``cfg.anchors``).

    Raises:
        ConfigError: the config cannot be read, or an unknown ``network.arch``.
    """
    parsed = load_config(config)
    name = resolve_arch(parsed.network.arch, parsed.hp.out_size, parsed.source)
    return MODELS[name](anchor_num=parsed.anchors.anchor_num)
