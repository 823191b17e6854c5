"""Running averages of named training values, printed as ``name: <val> (<avg>)``.

Ports `utils/average_meter_helper.AverageMeter` of the original (and the Ascend port's variant). Differences: an
unknown name raises ``KeyError`` instead of printing "invalid key"; ``update(..., accumulate=False)`` records the
current value without adding it to the average (used to keep warm-up iterations out of the speed figures, as the
Ascend port's ``TimeAverageMeter`` did); the average of a name with nothing accumulated yet is its current value.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Union

import torch

Number = Union[float, int, torch.Tensor]


@dataclass(frozen=True)
class Meter:
    """One named value: the latest value and the running average."""

    name: str
    val: float
    avg: float

    def __str__(self) -> str:
        return f"{self.name}: {self.val:.6f} ({self.avg:.6f})"

    def __format__(self, spec: str) -> str:
        return str(self)


class AverageMeter:
    """Named running averages. ``update(n=1, **values)`` adds per-sample values weighted by `n`."""

    def __init__(self) -> None:
        self.val: dict[str, float] = {}
        self.sum: dict[str, float] = {}
        self.count: dict[str, int] = {}

    def reset(self) -> None:
        """Forget everything (e.g. at an epoch start)."""
        self.val.clear()
        self.sum.clear()
        self.count.clear()

    def update(self, n: int = 1, accumulate: bool = True, **values: Number) -> None:
        """Record `values` (each the mean over `n` samples); add them to the averages unless `accumulate` is False."""
        for name, value in values.items():
            value = float(value.detach()) if isinstance(value, torch.Tensor) else float(value)
            self.val[name] = value
            self.sum.setdefault(name, 0.0)
            self.count.setdefault(name, 0)
            if accumulate:
                self.sum[name] += value * n
                self.count[name] += n

    def avg(self, name: str) -> float:
        """Running average of `name` (its current value while nothing has been accumulated)."""
        if name not in self.val:
            raise KeyError(f"no value named {name!r} has been recorded (known: {', '.join(self.val) or 'none'})")
        return self.sum[name] / self.count[name] if self.count[name] else self.val[name]

    def __getitem__(self, name: str) -> Meter:
        return Meter(name, self.val[name] if name in self.val else self.avg(name), self.avg(name))

    def __contains__(self, name: str) -> bool:
        return name in self.val

    def format(self, names: Iterable[str], sep: str = "\t") -> str:
        """``name: val (avg)`` for each recorded name of `names`, joined by `sep`."""
        return sep.join(str(self[name]) for name in names if name in self.val)

    def __str__(self) -> str:
        return self.format(self.val, sep=" ")
