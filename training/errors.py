"""The error of the training package."""
from __future__ import annotations

from ..utils.errors import SiamMaskError


class TrainingError(SiamMaskError):
    """A training run cannot start or go on (one-line message for the command line)."""
