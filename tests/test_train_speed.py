"""The training step's speed work keeps its arithmetic: foreach SGD equals the per-parameter loop, one host sync per
step, and the frozen backbone records no autograd graph."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from torch import nn

from siammask.models import SiamMaskBase
from siammask.training.engine import train_one_epoch
from siammask.training.invalid_loss import InvalidSteps
from siammask.training.optim import OptimizerSettings, build_optimizer
from siammask.training.progress import EpochPlan, ProgressLogger
from siammask.utils.config import load_config
from siammask.utils.runtime import init_runtime

ROOT = Path(__file__).resolve().parents[1]
CFG = load_config(ROOT / "experiments/siammask_base/config.json")


class _Net(nn.Module):
    """Two 'stages' standing in for the model: features (two groups) and an rpn head."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
        self.rpn_model = nn.Conv2d(4, 2, 1)

    def param_groups(self, start_lr: float, lr=None) -> list[dict]:
        return [{"params": list(self.features.parameters()), "lr": start_lr, "name": "features"},
                {"params": list(self.rpn_model.parameters()), "lr": start_lr * 0.1, "name": "rpn_model"}]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rpn_model(self.features(x)).square().mean()


def test_foreach_sgd_updates_equal_the_per_parameter_loop() -> None:
    a, b = _Net(), _Net()
    fast, _ = build_optimizer(a, CFG, OptimizerSettings(), 20)
    assert all(group["foreach"] for group in fast.param_groups)
    slow = torch.optim.SGD(b.param_groups(CFG.lr.start_lr), 0.001, momentum=0.9, weight_decay=1e-4, foreach=False)
    for group_a, group_b in zip(fast.param_groups, slow.param_groups, strict=True):
        group_b["lr"] = group_a["lr"]  # the scheduler's warm-up lr
        assert group_a["momentum"] == 0.9 and group_a["weight_decay"] == 1e-4 and group_a["name"] == group_b["name"]
    x = torch.randn(2, 3, 9, 9, generator=torch.Generator().manual_seed(1))
    for _ in range(4):
        for net, opt in ((a, fast), (b, slow)):
            opt.zero_grad(set_to_none=True)
            net(x).backward()
            opt.step()
    for (name, p), q in zip(a.named_parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q), name


class _Stub(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"x": self.w * batch["x"].mean()}


def test_one_host_sync_per_step(monkeypatch: pytest.MonkeyPatch) -> None:
    def losses(out, batch, weights):
        zero = out["x"] * 0
        return {"cls": out["x"], "loc": zero, "mask": zero, "total": out["x"] * 2, "iou_mean": zero.detach(),
                "iou_at_5": zero.detach(), "iou_at_7": zero.detach()}

    monkeypatch.setattr("siammask.training.engine.compute_losses", losses)
    syncs = []
    for method in ("tolist", "item", "__float__", "__bool__", "__int__"):
        original = getattr(torch.Tensor, method)

        def counted(self, *args, _original=original, _name=method, **kwargs):
            syncs.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, method, counted)
    model = _Stub()
    runtime = init_runtime("cpu", env={})
    progress = ProgressLogger(logging.getLogger("test_syncs"), runtime, 1, 2, total=5)
    loader = [{"x": torch.full((1, 1), float(i + 1))} for i in range(5)]
    stats = train_one_epoch(model, torch.optim.SGD(model.parameters(), lr=0.1, foreach=True), runtime.make_scaler(),
                            loader, runtime, progress, EpochPlan(0, 5, 0.1), CFG.loss.weight, CFG.clip, 10.0,
                            InvalidSteps())
    assert stats.iterations == 5 and stats.skipped == 0
    assert syncs == ["tolist"] * 5
    assert progress.meters.val["grad_norm"] == 10.0  # d(2 w x)/dw at the last step (x = 5), read in the one sync


def test_frozen_backbone_records_no_autograd_graph() -> None:
    model = SiamMaskBase()
    model.set_epoch(0, 20)
    x = torch.randn(1, 3, 127, 127)
    p0, p1, p2, p3 = model.features.features(x)
    assert all(t.grad_fn is None for t in (p0, p1, p2, p3))  # the frozen trunk: no graph, no saved tensors
    assert model.features(x).grad_fn is not None  # the adjust layer trains
    model.set_epoch(10, 20)
    p0, p1, p2, p3 = model.features.features(x)
    assert p0.grad_fn is None and p1.grad_fn is None and p2.grad_fn is not None  # layer1 stays frozen
