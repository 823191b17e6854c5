"""The training step's speed work keeps its arithmetic: foreach SGD equals the per-parameter loop, one host sync per
step, the frozen backbone records no autograd graph, the depth-wise correlation's backward and the folded eval-mode
BatchNorms give autograd's gradients, and the frozen trunk's inference graphs (fp32, bf16) give the trunk's features."""
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


# ---------------------------------------------------------------- the faster paths keep the gradients


def _tamed_bns(model: nn.Module) -> None:
    """Running statistics and affine parameters away from their initial 0 / 1, so that folding them matters."""
    gen = torch.Generator().manual_seed(3)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=gen) * 0.1)


def test_depthwise_xcorr_backward_equals_autograds_of_the_grouped_convolution() -> None:
    from siammask.models import rpn

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 9, 8, dtype=torch.float64, generator=gen, requires_grad=True)
    k = torch.randn(2, 3, 3, 2, dtype=torch.float64, generator=gen, requires_grad=True)
    grad = torch.randn(2, 3, 7, 7, dtype=torch.float64, generator=gen)
    fast = torch.autograd.grad(rpn.depthwise_xcorr(x, k), (x, k), grad)
    plain = torch.autograd.grad(rpn._grouped_xcorr(x, k), (x, k), grad)
    for a, b in zip(fast, plain, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    # hand case: one channel, 2x2 search, 1x1 kernel -> d out / d kernel = sum(search * grad)
    xs = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]], requires_grad=True)
    ks = torch.tensor([[[[2.0]]]], requires_grad=True)
    out = rpn.depthwise_xcorr(xs, ks)
    gx, gk = torch.autograd.grad(out, (xs, ks), torch.ones_like(out))
    assert gk.item() == 10.0 and torch.equal(gx, torch.full_like(xs, 2.0))
    # only one input needs a gradient: the other is not computed, and bf16 autocast gives grads in the inputs' dtype
    k32 = torch.randn(2, 3, 3, 2, generator=gen)
    x32 = torch.randn(2, 3, 9, 8, generator=gen, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = rpn.depthwise_xcorr(x32, k32)
    (g,) = torch.autograd.grad(out.float().sum(), (x32,))
    assert g.dtype == torch.float32 and out.dtype == torch.bfloat16
    torch.testing.assert_close(g, torch.autograd.grad(rpn._grouped_xcorr(x32, k32).sum(), (x32,))[0],
                               rtol=2e-2, atol=5e-2)


def test_eval_batchnorms_folded_while_training_give_the_unfolded_gradients(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unfrozen stage (layer2 / layer3 train, their BatchNorms in eval mode): the folded convolutions give the
    loss and every gradient of bn(conv(x)) to float64 rounding; in inference the unfolded arithmetic runs."""
    from siammask.datasets.fake_batch import synthetic_batch
    from siammask.models import compute_losses, resnet

    torch.manual_seed(0)
    model = SiamMaskBase().double()
    model.set_epoch(10, 20)
    model.train()
    _tamed_bns(model.features.features)
    batch = {k: v.double() if v.is_floating_point() else v
             for k, v in synthetic_batch(2, 255, generator=torch.Generator().manual_seed(0)).items()}

    def run() -> tuple[float, dict[str, torch.Tensor]]:
        model.zero_grad(set_to_none=True)
        losses = compute_losses(model(batch), batch, (1.0, 1.2, 36.0))
        losses["total"].backward()
        return losses["total"].item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    calls: list[bool] = []
    conv_forward = torch.nn.Conv2d._conv_forward

    def counting(conv: torch.nn.Conv2d, x: torch.Tensor, weight: torch.Tensor, bias: object) -> torch.Tensor:
        if weight is not conv.weight:  # only the folded path passes other weights than the module's
            calls.append(True)
        return conv_forward(conv, x, weight, bias)

    monkeypatch.setattr(torch.nn.Conv2d, "_conv_forward", counting)
    folded_loss, folded = run()
    assert len(calls) == 2 * (3 * 4 + 1 + 3 * 6 + 1)  # layer2 + layer3 convs (+ downsample) of both branches
    monkeypatch.setattr(resnet, "conv_bn", lambda conv, bn, x: bn(conv(x)))
    plain_loss, plain = run()
    assert folded_loss == pytest.approx(plain_loss, rel=1e-12)
    assert folded.keys() == plain.keys() and any(n.startswith("features.features.layer2") for n in plain)
    for name, grad in plain.items():
        scale = grad.abs().max().item()
        if scale > 1e-12:  # the adjust layer's train-mode BN bias has a zero gradient (1e-16 noise)
            assert (folded[name] - grad).abs().max().item() <= 1e-10 * scale, name
    calls.clear()
    monkeypatch.undo()
    monkeypatch.setattr(torch.nn.Conv2d, "_conv_forward", counting)
    with torch.no_grad():
        model(batch)
    assert not calls  # inference: bn(conv(x)), the original's arithmetic


def _frozen_stage_model() -> tuple[SiamMaskBase, nn.Module, torch.Tensor]:
    """A first-stage model in train mode (trunk frozen, tamed BatchNorms), its trunk and two template crops."""
    torch.manual_seed(0)
    model = SiamMaskBase()
    _tamed_bns(model.features.features)
    model.set_epoch(0, 20)
    model.train()
    return model, model.features.features, torch.rand(2, 3, 127, 127, generator=torch.Generator().manual_seed(1)) * 255


def test_frozen_trunk_runner_gives_the_trunks_features_and_declines_when_it_trains() -> None:
    from siammask.training.frozen_trunk import FrozenTrunkRunner

    model, trunk, x = _frozen_stage_model()
    runner = FrozenTrunkRunner()
    with torch.no_grad():
        want = trunk(x)
    got = runner(trunk, x)
    assert runner.failed is None and runner.calls == 1 and len(got) == 4
    for a, b in zip(got, want, strict=True):
        assert a.shape == b.shape
        assert ((a - b).abs().max() / b.abs().max()).item() < 1e-4  # float32 rounding of the folded BNs
    model.features.trunk_runner = runner
    out = model.features(x)
    assert runner.calls == 2 and out.requires_grad  # the adjust layer still records its graph
    # weights changed (a resume's load_state_dict): the graphs are rebuilt and follow the new weights
    with torch.no_grad():
        trunk.layer3[5].bn3.bias.add_(1.0)
        want = trunk(x)[3]
    assert ((runner(trunk, x)[3] - want).abs().max() / want.abs().max()).item() < 1e-4
    # unfrozen stage, train mode or autocast: it declines and the eager trunk runs
    model.set_epoch(10, 20)
    assert runner(trunk, x) is None
    model.set_epoch(0, 20)
    trunk.train()
    assert runner(trunk, x) is None
    trunk.eval()
    import copy

    assert copy.deepcopy(model).features.trunk_runner is None  # copies (the tracker's) run the trunk eagerly


def test_frozen_trunk_runner_under_bf16_autocast_is_as_close_to_float32_as_the_eager_trunk() -> None:
    """--amp on the CPU: a bfloat16 graph of the folded trunk, bf16 outputs as eager autocast gives, no further from
    the float32 trunk than eager autocast is; kept apart from the fp32 graph; another autocast dtype declines."""
    from siammask.training.frozen_trunk import FrozenTrunkRunner
    from siammask.utils.runtime import cpu_autocast_dtype

    model, trunk, x = _frozen_stage_model()
    x = x.contiguous(memory_format=torch.channels_last)
    runner = FrozenTrunkRunner()
    with torch.no_grad():
        exact = trunk(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            eager = trunk(x)
            got = runner(trunk, x)
    assert runner.failed is None and runner.calls == 1 and runner.winograd_convs == 0
    for g, e, want in zip(got, eager, exact, strict=True):
        assert g.dtype == e.dtype == torch.bfloat16 and g.shape == want.shape
        err_graph = ((g.float() - want).abs().max() / want.abs().max()).item()
        err_eager = ((e.float() - want).abs().max() / want.abs().max()).item()
        assert 0 < err_graph < 0.05 and err_graph <= 2 * err_eager, (err_graph, err_eager)  # bf16 rounding
    fp32 = runner(trunk, x)  # outside autocast: the float32 graph, a graph of its own
    assert len(runner._graphs) == 2 and all(t.dtype == torch.float32 for t in fp32)
    assert ((fp32[3] - exact[3]).abs().max() / exact[3].abs().max()).item() < 1e-4
    model.features.trunk_runner = runner
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model.features(x)
    assert runner.calls == 3 and out.requires_grad  # the adjust layer still records its graph
    with torch.autocast("cpu", dtype=torch.float16):
        if cpu_autocast_dtype() == torch.float16:  # CPU fp16 autocast exists (torch >= 2.2)
            assert runner(trunk, x) is None


def test_channels_last_on_the_cpu_and_the_engine_feeds_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """init_runtime: channels_last on the CPU (auto: fp32 and --amp), as asked otherwise; the epoch loop hands the
    model its crops in that layout (and leaves the labels alone)."""
    assert init_runtime("cpu", amp=True, env={}).channels_last
    assert init_runtime("cpu", env={}).channels_last
    assert not init_runtime("cpu", amp=True, env={}, channels_last=False).channels_last
    runtime = init_runtime("cpu", env={}, channels_last=True)
    assert "channels_last" in runtime.describe()
    seen: list[tuple[bool, bool]] = []

    class _Layout(_Stub):
        def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            seen.append((batch["search"].is_contiguous(memory_format=torch.channels_last),
                         batch["label_mask"].is_contiguous()))
            return {"x": self.w * batch["search"].mean()}

    def losses(out, batch, weights):
        zero = out["x"] * 0
        return {"cls": out["x"], "loc": zero, "mask": zero, "total": out["x"], "iou_mean": zero.detach(),
                "iou_at_5": zero.detach(), "iou_at_7": zero.detach()}

    model = _Layout()
    loader = [{"template": torch.rand(2, 3, 5, 5), "search": torch.rand(2, 3, 9, 9),
               "label_mask": torch.rand(2, 1, 9, 9)} for _ in range(2)]
    progress = ProgressLogger(logging.getLogger("test_layout"), runtime, 2, 2, total=2)
    monkeypatch.setattr("siammask.training.engine.compute_losses", losses)
    train_one_epoch(model, torch.optim.SGD(model.parameters(), lr=0.1), runtime.make_scaler(), loader, runtime,
                    progress, EpochPlan(0, 2, 0.1), CFG.loss.weight, CFG.clip, 10.0, InvalidSteps())
    assert seen == [(True, True), (True, True)]
