"""The invalid-loss policy: the original's rule for skipping an optimizer step, made loud and bounded.

The original skipped the step silently when the loss was not finite or above 1e4. Here every skipped step is logged
with its loss terms and counted; :data:`MAX_CONSECUTIVE_SKIPS` consecutive skips stop the run (it has diverged).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

#: The original skipped the optimizer step when the loss was not finite or above this value.
MAX_VALID_LOSS = 1e4
#: Consecutive skipped steps after which training stops with an error (the run has diverged).
MAX_CONSECUTIVE_SKIPS = 20


def is_valid_loss(value: float) -> bool:
    """The original's rule for taking an optimizer step: finite and at most 1e4."""
    return math.isfinite(value) and value <= MAX_VALID_LOSS


@dataclass
class InvalidSteps:
    """Counts skipped optimizer steps; the consecutive count survives epochs and resume (it is checkpointed)."""

    consecutive: int = 0
    total: int = 0

    def record(self, valid: bool) -> None:
        """Count one step: a valid one resets the consecutive count."""
        if valid:
            self.consecutive = 0
        else:
            self.consecutive += 1
            self.total += 1

    @property
    def diverged(self) -> bool:
        """True once :data:`MAX_CONSECUTIVE_SKIPS` steps in a row were invalid."""
        return self.consecutive >= MAX_CONSECUTIVE_SKIPS

    def state_dict(self) -> dict[str, int]:
        return {"consecutive": self.consecutive, "total": self.total}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.consecutive, self.total = int(state["consecutive"]), int(state["total"])
