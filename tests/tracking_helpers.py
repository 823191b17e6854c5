"""Shared pieces of the tracker / test-tool / demo tests: a scriptable stub network and a small sharp model."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import torch

CONFORMANCE_WEIGHTS = Path(__file__).resolve().parents[1].parent / "shared" / "conformance" / \
    "weights_sharp_seed1_fp16.pth"


class StubNet:
    """A stand-in for the SiamMask network with outputs fixed by hand.

    `track` returns, for every sample, background logits 0 and foreground logits -20 everywhere except +20 at the
    peak (anchor, row, col), loc (dx, dy, dw, dh) at the peak and 0 elsewhere. With `peak_from_template`, the peak
    column of sample b is shifted by round(mean(zf[b])) % 3, so targets with different templates get different
    (but per-sample, batch-invariant) outputs. `refine` returns +10 logits inside rows/cols [lo, hi) of the
    127x127 window and -10 outside; `mask` / `mask_at` (the base head) is the same pattern on 63x63 at every position.
    Calls are recorded in `calls`.
    """

    def __init__(self, peak: tuple[int, int, int] = (1, 14, 10),
                 loc: tuple[float, float, float, float] = (0.25, -0.5, 0.0, math.log(1.5)), score_size: int = 25,
                 anchor_num: int = 5, square: tuple[int, int] = (32, 96), peak_from_template: bool = False,
                 fg_logit: float = 20.0) -> None:
        self.peak = peak
        self.loc = loc
        self.s = score_size
        self.a = anchor_num
        self.square = square
        self.peak_from_template = peak_from_template
        self.fg_logit = fg_logit
        self.calls: list[tuple[str, tuple[int, ...], Optional[bool]]] = []

    def template(self, z: torch.Tensor) -> torch.Tensor:
        self.calls.append(("template", tuple(z.shape), None))
        return z[:, :, 60:67, 60:67].clone()

    def _peak_of(self, zf: torch.Tensor, b: int) -> tuple[int, int, int]:
        a, row, col = self.peak
        if self.peak_from_template:
            col = col + round(float(zf[b].mean())) % 3
        return a, row, col

    def track(self, zf: torch.Tensor, x: torch.Tensor, mask_head: bool = True) -> dict:
        self.calls.append(("track", tuple(x.shape), mask_head))
        batch, s, a = x.shape[0], self.s, self.a
        cls = torch.zeros(batch, 2 * a, s, s)
        cls[:, a:] = -20.0
        loc = torch.zeros(batch, 4 * a, s, s)
        for b in range(batch):
            pa, row, col = self._peak_of(zf, b)
            cls[b, a + pa, row, col] = self.fg_logit
            for k in range(4):
                loc[b, k * a + pa, row, col] = self.loc[k]
        out = {"cls": cls, "loc": loc, "corr_feature": torch.zeros(batch, 1, s, s),
               "features": (x[:, :, :4, :4],)}
        if mask_head:
            out["mask"] = self._mask63().reshape(3969, 1, 1).expand(batch, 3969, s, s).clone()
        return out

    def _mask63(self) -> torch.Tensor:
        m = torch.full((63, 63), -10.0)
        lo, hi = self.square[0] // 2, self.square[1] // 2
        m[lo:hi, lo:hi] = 10.0
        return m

    def mask_at(self, out: dict, pos: torch.Tensor) -> torch.Tensor:
        self.calls.append(("mask_at", tuple(out["cls"].shape), None))
        return self._mask63().reshape(1, -1).expand(out["cls"].shape[0], -1).clone()

    def refine(self, out: dict, pos: tuple[int, int]) -> torch.Tensor:
        self.calls.append(("refine", tuple(out["cls"].shape), None))
        m = torch.full((127, 127), -10.0)
        lo, hi = self.square
        m[lo:hi, lo:hi] = 10.0
        return m.reshape(1, -1).expand(out["cls"].shape[0], -1).clone()


def small_sharp_model() -> torch.nn.Module:
    """The sharp model in eval mode: the conformance vectors' calibrated weights when present, else seed-0 init."""
    from siammask.models import build_model

    torch.manual_seed(0)
    model = build_model({"hp": {"out_size": 127}})
    if CONFORMANCE_WEIGHTS.is_file():
        sd = torch.load(CONFORMANCE_WEIGHTS, map_location="cpu", weights_only=True)
        model.load_state_dict({k: (v.float() if v.is_floating_point() else v) for k, v in sd.items()})
    return model.eval()


def tamed_sharp_model() -> torch.nn.Module:
    """:func:`small_sharp_model` with its box regression scaled by 1e-3, so that boxes stay finite and move.

    Unscaled, the random regression overflows and the tracker keeps the init box at score 0, which makes two
    tracking runs trivially equal; backend and protocol tests use this model instead.
    """
    model = small_sharp_model()
    with torch.no_grad():
        model.rpn_model.loc.head[3].weight.mul_(1e-3)
        model.rpn_model.loc.head[3].bias.mul_(1e-3)
    return model
