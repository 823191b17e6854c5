"""Winograd F(4x4, 3x3) convolution of CPU float32 training (models/winograd.py, models/_winograd.c): the values and
gradients of the direct convolution (float64) to float32 rounding, where it runs and where it does not, and a
training step that gives the direct step's loss and gradients."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from siammask.models import SiamMaskBase, compute_losses
from siammask.models import winograd as wg

needs_ext = pytest.mark.skipif(not wg.available(), reason="models._winograd not built (bash make.sh)")


def _rel(a: torch.Tensor, ref: torch.Tensor) -> float:
    return ((a.double() - ref).abs().max() / ref.abs().max()).item()


def test_filter_transform_is_g_w_gt() -> None:
    """U[6u+v, c, k] = (G w[k, c] G^T)[u, v], by hand for one filter."""
    w = torch.arange(2 * 3 * 9, dtype=torch.float32).reshape(2, 3, 3, 3) / 7 - 2
    g = torch.tensor(wg.G_ROWS, dtype=torch.float64)
    u = wg.filter_transform(w)
    assert u.shape == (36, 3, 2)
    for k in range(2):
        for c in range(3):
            expected = g @ w[k, c].double() @ g.T
            assert torch.allclose(u[:, c, k].double().reshape(6, 6), expected, atol=1e-5)


@needs_ext
@pytest.mark.parametrize("n,c,k,h,w,pad,dil", [
    (2, 16, 32, 17, 17, 1, 1),   # one phase, ragged last tile
    (2, 32, 16, 21, 18, 2, 2),   # dilation 2 (layer3), H != W
    (1, 16, 16, 29, 31, 0, 1),   # valid convolution (the rpn's conv_search)
    (3, 48, 16, 9, 12, 3, 3),    # dilation 3, padding 3
    (1, 16, 16, 6, 7, 1, 1),     # a single tile per side
])
@pytest.mark.parametrize("onednn", [True, False], ids=["onednn-products", "bmm-products"])
def test_forward_and_gradients_equal_the_direct_convolution(n: int, c: int, k: int, h: int, w: int, pad: int,
                                                            dil: int, onednn: bool,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Both ways of taking the 36 products (oneDNN's planes read through a pointer table, one bmm tensor)."""
    monkeypatch.setattr(wg, "ONEDNN_PRODUCTS", onednn)
    gen = torch.Generator().manual_seed(n * 1000 + c + k + h + w)
    x = torch.randn(n, c, h, w, generator=gen).contiguous(memory_format=torch.channels_last).requires_grad_()
    weight = (torch.randn(k, c, 3, 3, generator=gen) / math.sqrt(9 * c)).requires_grad_()
    bias = torch.randn(k, generator=gen).requires_grad_()
    ref_inputs = [t.detach().double().requires_grad_() for t in (x, weight, bias)]
    ref = F.conv2d(*ref_inputs, padding=pad, dilation=dil)
    grad = torch.randn(ref.shape, generator=gen)
    ref.backward(grad.double())

    y = wg.winograd_conv2d(x, weight, bias, pad, dil)
    assert y.shape == ref.shape and y.dtype == torch.float32
    assert y.is_contiguous(memory_format=torch.channels_last)
    y.backward(grad)
    # float32 rounding of F(4x4, 3x3): ~1e-5 of the largest value (direct float32 ~2e-6); a wrong tap or tile is O(1)
    assert _rel(y, ref) < 5e-5
    assert _rel(x.grad, ref_inputs[0].grad) < 5e-5
    assert _rel(weight.grad, ref_inputs[1].grad) < 5e-5
    assert _rel(bias.grad, ref_inputs[2].grad) < 1e-5


@needs_ext
@pytest.mark.skipif(wg._ONEDNN_LINEAR is None, reason="this torch has no mkldnn::_linear_pointwise")
def test_onednn_products_are_separate_planes_equal_to_bmm(monkeypatch: pytest.MonkeyPatch) -> None:
    """The 36 products come from oneDNN as 36 contiguous planes (what the C transforms read through a table), for
    plain and transposed operands, and equal torch.bmm's to float32 rounding; off, one bmm tensor."""
    gen = torch.Generator().manual_seed(3)
    v, u, dm = torch.randn(36, 40, 32, generator=gen), torch.randn(36, 32, 48, generator=gen), torch.randn(
        36, 40, 48, generator=gen)
    for a, b in ((v, u), (v.transpose(1, 2), dm), (dm, u.transpose(1, 2))):
        planes = wg._products(a, b)
        assert len(planes) == 36 and all(p.is_contiguous() for p in planes)
        ref = torch.bmm(a.double(), b.double())
        assert _rel(torch.stack(planes), ref) < 1e-5
    monkeypatch.setattr(wg, "ONEDNN_PRODUCTS", False)
    assert len(wg._products(v, u)) == 1 and torch.equal(wg._products(v, u)[0], torch.bmm(v, u))


def test_a_onednn_op_that_refuses_the_operands_falls_back_to_bmm(monkeypatch: pytest.MonkeyPatch) -> None:
    """The one-time check: an op that raises (an older torch) or gives other values leaves torch.bmm in charge."""
    v, u = torch.randn(36, 8, 16), torch.randn(36, 16, 16)

    def refusing(*args: object) -> torch.Tensor:
        raise RuntimeError("mkldnn_linear: weight must be contiguous")

    for op in (refusing, lambda x, w, *rest: torch.zeros(x.shape[0], w.shape[0])):
        monkeypatch.setattr(wg, "_ONEDNN_LINEAR", op)
        wg._onednn_products_work.cache_clear()
        try:
            assert not wg._onednn_products_work()
            assert len(wg._products(v, u)) == 1 and torch.equal(wg._products(v, u)[0], torch.bmm(v, u))
        finally:
            wg._onednn_products_work.cache_clear()


@needs_ext
def test_an_extension_built_before_the_plane_tables_gets_one_array(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stale build of models/_winograd.c (no PLANE_TABLES, no filter_adjoint) is called with its old 11 arguments
    and one (36, T, C) array of the products, the weight gradient taken back through the filter transform by torch,
    and gives the same convolution and gradients."""
    real = wg._ext
    calls: dict[str, int] = {}

    class OldExtension:
        def __getattr__(self, name: str) -> object:
            if name in ("PLANE_TABLES", "filter_adjoint"):
                raise AttributeError(name)
            fn = getattr(real, name)

            def call(*args: object) -> object:
                calls[name] = len(args)
                return fn(*args)
            return call

    gen = torch.Generator().manual_seed(5)
    x = torch.randn(2, 32, 20, 20, generator=gen).contiguous(memory_format=torch.channels_last)
    weight, grad = torch.randn(32, 32, 3, 3, generator=gen) / 17, torch.randn(2, 32, 18, 18, generator=gen)

    def run() -> tuple[torch.Tensor, ...]:
        xs, ws = x.clone().requires_grad_(), weight.clone().requires_grad_()
        y = wg.winograd_conv2d(xs, ws, None, 0, 1)
        y.backward(grad)
        return y.detach(), xs.grad, ws.grad

    want = run()
    monkeypatch.setattr(wg, "_ext", OldExtension())
    got = run()
    assert calls == {"input_transform": 11, "output_transform": 11, "grad_transform": 10, "input_adjoint": 11}
    for a, b in zip(got, want, strict=True):  # another summation order of the weight gradient: float32 rounding
        assert ((a - b).abs().max() / b.abs().max()).item() < 1e-5


def test_nchw_input_and_no_bias() -> None:
    """A contiguous (NCHW) input is converted, and without a bias the output is the bare convolution."""
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, 16, 20, 20, generator=gen)
    weight = torch.randn(16, 16, 3, 3, generator=gen) / 12
    ref = F.conv2d(x.double(), weight.double(), padding=2, dilation=2)
    assert _rel(wg.winograd_conv2d(x, weight, None, 2, 2), ref) < 5e-5


@needs_ext
def test_channels_not_a_multiple_of_16_are_refused() -> None:
    with pytest.raises(ValueError, match="multiple of 16"):
        wg.winograd_conv2d(torch.randn(1, 24, 16, 16), torch.randn(16, 24, 3, 3), None, 1, 1)


def _winograd_conv(c: int = 128, k: int = 128, dil: int = 2) -> nn.Conv2d:
    conv = nn.Conv2d(c, k, 3, padding=dil, dilation=dil)
    assert wg.eligible(conv)
    conv.__class__ = wg.WinogradConv2d
    return conv


@needs_ext
def test_winograd_conv2d_module_runs_winograd_only_while_autograd_records_fp32(
        monkeypatch: pytest.MonkeyPatch) -> None:
    conv = _winograd_conv()
    x = torch.randn(2, 128, 20, 20).contiguous(memory_format=torch.channels_last)
    calls: list[int] = []
    real = wg.winograd_conv2d
    monkeypatch.setattr(wg, "winograd_conv2d", lambda *a: calls.append(1) or real(*a))
    direct = F.conv2d(x, conv.weight, conv.bias, 1, 2, 2)

    with torch.no_grad():  # inference: exactly nn.Conv2d
        assert torch.equal(conv(x), direct)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # autocast: nn.Conv2d's bf16 convolution
        assert conv(x).dtype == torch.bfloat16
    assert not calls
    small = torch.randn(2, 128, 11, 11)  # under 12x12 outputs (the correlations' 5x5 kernels): direct
    assert torch.equal(conv(small), F.conv2d(small, conv.weight, conv.bias, 1, 2, 2))
    assert not calls
    y = conv(x)  # training: Winograd, the same values to float32 rounding
    assert calls and _rel(y, direct.double()) < 5e-5


def test_use_winograd_turns_the_eligible_convolutions_and_keeps_the_state_dict(
        monkeypatch: pytest.MonkeyPatch) -> None:
    model = SiamMaskBase()
    keys = list(model.state_dict())
    expected = [name for name, m in model.named_modules() if wg.eligible(m)]
    # layer2 blocks 1-3 conv2, layer3's 3x3 downsample and six conv2, conv_kernel / conv_search of the cls, loc and
    # mask correlations: layer1 (64 channels), the stride-2 layer2 block 0 and every 1x1 stay
    assert len(expected) == 3 + 7 + 6
    assert "features.features.layer3.0.downsample.0" in expected
    assert "features.features.layer2.0.conv2" not in expected and "features.features.layer1.0.conv2" not in expected
    if not wg.available():
        assert wg.use_winograd(model) == 0
        return
    assert wg.use_winograd(model) == len(expected)
    assert {name for name, m in model.named_modules() if isinstance(m, wg.WinogradConv2d)} == set(expected)
    assert list(model.state_dict()) == keys
    model.load_state_dict(SiamMaskBase().state_dict(), strict=True)

    monkeypatch.setattr(wg, "_ext", None)  # not built: nothing is turned, and a direct call says what to run
    assert wg.use_winograd(SiamMaskBase()) == 0
    with pytest.raises(RuntimeError, match="make.sh"):
        wg.winograd_conv2d(torch.randn(1, 16, 16, 16), torch.randn(16, 16, 3, 3))


@needs_ext
@pytest.mark.slow
def test_training_step_with_winograd_gives_the_direct_steps_loss_and_gradients() -> None:
    """Unfrozen stage, fp32, channels_last as the training tool runs it: loss and every gradient of the direct
    step to float32 rounding (both against a float64 step)."""
    from siammask.datasets.fake_batch import synthetic_batch

    torch.manual_seed(0)
    model = SiamMaskBase()
    model.set_epoch(10, 20)
    model.train()
    model.to(memory_format=torch.channels_last)
    batch = synthetic_batch(2, 255, generator=torch.Generator().manual_seed(0))
    for key in ("template", "search"):
        batch[key] = batch[key].contiguous(memory_format=torch.channels_last)

    def run(net: nn.Module, data: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        net.zero_grad(set_to_none=True)
        total = compute_losses(net(data), data, (1.0, 1.2, 36.0))["total"]
        total.backward()
        return total.detach(), {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}

    ref_loss, ref = run(model.double(), {k: v.double() if v.is_floating_point() else v for k, v in batch.items()})
    model.float()
    direct_loss, direct = run(model, batch)
    assert wg.use_winograd(model) == 16
    wino_loss, wino = run(model, batch)
    assert wino.keys() == direct.keys() == ref.keys()
    assert any(n.startswith("features.features.layer3") for n in wino)
    assert abs(wino_loss.item() - ref_loss.item()) <= 1e-4 * abs(ref_loss.item())
    worst_direct = worst_wino = 0.0
    for name, grad in ref.items():
        scale = grad.abs().max().item()
        if scale < 1e-8:
            continue
        worst_direct = max(worst_direct, (direct[name].double() - grad).abs().max().item() / scale)
        worst_wino = max(worst_wino, (wino[name].double() - grad).abs().max().item() / scale)
    # the direct float32 step is ~1e-4 off float64 in its worst gradient (train-mode BNs amplify roundings);
    # Winograd stays within a few times that, far from a wrong gradient (O(1))
    assert worst_wino < max(10 * worst_direct, 1e-3), (worst_wino, worst_direct)


@needs_ext
def test_frozen_copy_transforms_each_filter_once_and_gives_the_direct_outputs() -> None:
    """freeze_winograd: inference convolutions of an unchanging copy by pre-transformed filters (the operator the
    frozen trunk's graph calls), the direct outputs to float32 rounding; small maps and no-grad stay direct."""
    if wg._operator is None:
        pytest.skip("torch.library.custom_op needs torch >= 2.4")
    conv = nn.Conv2d(128, 128, 3, padding=2, dilation=2)
    x = torch.randn(2, 128, 20, 20).contiguous(memory_format=torch.channels_last)
    small = torch.randn(1, 128, 11, 11)
    with torch.no_grad():
        want, want_small = conv(x), conv(small)
    frozen = nn.Sequential(conv)
    assert wg.freeze_winograd(frozen) == 1 and isinstance(conv, wg.FrozenWinogradConv2d)
    assert "0.winograd_u" not in frozen.state_dict()
    assert torch.equal(conv.winograd_u, wg.filter_transform(conv.weight.detach()))
    with torch.no_grad():
        got = frozen(x)
        assert torch.equal(frozen(small), want_small)
    assert _rel(got, want.double()) < 5e-5
    graph = torch.jit.trace(frozen.eval(), (x,))  # TorchScript calls the operator as it is
    assert "siammask::winograd_conv3x3" in str(graph.inlined_graph)
    assert torch.equal(graph(x), got)


@needs_ext
def test_frozen_trunk_runner_runs_the_search_maps_by_winograd() -> None:
    from siammask.training.frozen_trunk import FrozenTrunkRunner

    if wg._operator is None:
        pytest.skip("torch.library.custom_op needs torch >= 2.4")
    torch.manual_seed(0)
    model = SiamMaskBase()
    model.set_epoch(0, 20)
    model.train()
    trunk = model.features.features
    x = torch.rand(1, 3, 191, 191, generator=torch.Generator().manual_seed(1)) * 255  # layer3 23x23
    with torch.no_grad():
        want = trunk(x)
    runner = FrozenTrunkRunner(backends=("inductor", "torchscript"))
    got = runner(trunk, x)
    if runner.failures.get("inductor") or runner.winograd_failures:
        pytest.skip(f"torch.compile does not work here: {runner.failures or runner.winograd_failures}")
    # layer2 blocks 1-3 and layer3's seven stride-1 3x3 convolutions
    assert runner.winograd_convs == 10 and runner.failed is None
    for a, b in zip(got, want, strict=True):
        assert ((a - b).abs().max() / b.abs().max()).item() < 1e-4  # float32 rounding of folding and Winograd
    for backends, winograd in ((("inductor",), False), (("torchscript",), True)):
        plain = FrozenTrunkRunner(backends=backends, winograd=winograd)  # off, or TorchScript: direct convolutions
        errors = [((a - b).abs().max() / b.abs().max()).item() for a, b in zip(plain(trunk, x), want, strict=True)]
        assert max(errors) < 1e-4 and plain.winograd_convs == 0 and plain.failed is None


@needs_ext
def test_interrupt_inside_the_operator_stays_an_interrupt_under_inductor() -> None:
    """Why the trunk runner compiles the Winograd trunk with inductor only: an Interrupted (SIGTERM) raised in the
    operator's Python code reaches the tool's error boundary as it is, where TorchScript's interpreter would wrap it."""
    from siammask.utils.errors import Interrupted

    if wg._operator is None:
        pytest.skip("torch.library.custom_op needs torch >= 2.4")
    conv = nn.Conv2d(128, 128, 3, padding=1)
    frozen = nn.Sequential(conv, nn.ReLU()).eval()
    wg.freeze_winograd(frozen)
    x = torch.randn(1, 128, 16, 16)
    compiled = torch.compile(frozen)
    with torch.no_grad():
        compiled(x)
        real = wg._ext

        class Raising:
            def __getattr__(self, name: str) -> object:
                raise Interrupted(15)

        wg._ext = Raising()
        try:
            with pytest.raises(Interrupted):
                compiled(x)
        finally:
            wg._ext = real
