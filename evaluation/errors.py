"""Errors raised by the evaluation package: each message is one line naming the file or folder at fault.

Replaces the original's failure modes (reference.md E.6, users.md item 13): ``assert len(trackers) > 0``, printing
wget hints and ``exit()`` on a missing dataset json, ``KeyError: 'width'`` on a json of another layout,
``could not convert string to float: 'Occ'`` on a placeholder result file, and silently evaluating truncated files.
"""
from __future__ import annotations

from ..utils.errors import SiamMaskError

__all__ = ["EvaluationError", "BenchmarkError", "ResultError"]


class EvaluationError(SiamMaskError):
    """Base class; ``str(error)`` is a one-line message meant for the user."""


class BenchmarkError(EvaluationError):
    """The dataset metadata json is missing or malformed."""


class ResultError(EvaluationError):
    """A tracker's result folder or file is missing, truncated or unreadable."""
