"""Training data: crop511 + json sub-datasets, pair sampling, augmentation, anchor targets, built-in synthetic data.

Main entry points: :func:`build_train_dataset` (the training set of a config), :class:`SiamMaskDataset`,
:class:`DataError`, :mod:`datasets.synthetic` (generated data for tests, benchmarks and quick training checks)
and :mod:`datasets.prep` (the preparation steps behind the `data/` scripts). The names below are imported lazily,
so that the preparation scripts do not import torch.
"""
from __future__ import annotations

import importlib
from typing import Any

from .errors import DataError

_LAZY = {"SamplePlan": ".siam_mask_dataset", "SiamMaskDataset": ".siam_mask_dataset",
         "build_train_dataset": ".siam_mask_dataset"}

__all__ = ["DataError", "SamplePlan", "SiamMaskDataset", "build_train_dataset"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
