"""tracker/frozen.py, the default exact tracker network on the CPU: parity with the original and the unfused model.

The outputs are compared with the original's own tensors (../shared/conformance, the parity tolerance
max|Δ| <= 1e-4 * max|ref|), the tracker's positions and sizes with those of the unfused model (0.01 px).
"""
from __future__ import annotations

import warnings

import cv2
import numpy as np
import pytest
import torch
from tracking_helpers import CONFORMANCE_WEIGHTS, small_sharp_model, tamed_sharp_model

from siammask.models.refine import WINDOWS, gather_windows
from siammask.tracker import SiamMaskTracker
from siammask.tracker.fast import cpu_has_native_bf16
from siammask.tracker.frozen import FrozenModel, FrozenSharpModel, freeze_model, inductor_available, window_at

FORWARD_TOL = 1e-4  # ../shared/conformance/README.md "Tolerances"
POSITION_TOL = 0.01  # px
#: The graph compilers (tracker.frozen), each checked on its own; inductor needs a C++ compiler.
COMPILERS = [pytest.param("inductor", marks=pytest.mark.skipif(not inductor_available(),
                                                                reason="torch.compile: no C++ compiler")),
             "torchscript"]
GRAPH_TYPES = {"inductor": torch._dynamo.eval_frame.OptimizedModule, "torchscript": torch.jit.ScriptModule}


def rel_err(actual: torch.Tensor, expected: np.ndarray) -> float:
    ref = torch.from_numpy(np.asarray(expected)).double()
    return ((actual.detach().double() - ref).abs().max() / ref.abs().max()).item()


@pytest.fixture(scope="module")
def clip() -> list[np.ndarray]:
    rng = np.random.default_rng(5)
    base = cv2.resize(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8), (200, 150), interpolation=cv2.INTER_CUBIC)
    frames = []
    for i in range(4):
        im = base.copy()
        cv2.ellipse(im, (70 + 5 * i, 75 - 2 * i), (22, 14), 8 * i, 0, 360, (30, 200, 240), -1)
        frames.append(im)
    return frames


@pytest.fixture(scope="module", params=COMPILERS)
def tamed(request: pytest.FixtureRequest) -> tuple[torch.nn.Module, FrozenModel]:
    """The tamed model (boxes move) and its network compiled by each compiler; built once for the module."""
    model = tamed_sharp_model()
    return model, freeze_model(model, backends=(request.param,))


@pytest.mark.skipif(not CONFORMANCE_WEIGHTS.is_file(), reason="conformance vectors not found")
@pytest.mark.parametrize("compiler", COMPILERS)
def test_frozen_outputs_match_the_original_tensors(compiler: str) -> None:
    fwd = dict(np.load(CONFORMANCE_WEIGHTS.parent / "forward_seed1.npz", allow_pickle=False))
    frozen = freeze_model(small_sharp_model(), backends=(compiler,))
    assert isinstance(frozen, FrozenSharpModel)
    # channels_last-strided crops, as the tracker feeds them (HWC pixels viewed as CHW)
    z = torch.from_numpy(fwd["template"]).contiguous(memory_format=torch.channels_last)
    x = torch.from_numpy(fwd["search"]).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        zf = frozen.template(z).contiguous(memory_format=torch.channels_last)
        out = frozen.track(zf, x, mask_head=True, kernels=frozen.template_kernels(zf))
        assert frozen.fallback_reason is None
        assert rel_err(zf, fwd["zf"]) <= FORWARD_TOL
        for key in ("cls", "loc", "corr_feature", "mask"):
            assert rel_err(out[key], fwd[key]) <= FORWARD_TOL, key
        assert [tuple(f.shape) for f in out["features"]] == [tuple(s) for s in fwd["backbone_shapes"][:3, :].tolist()]
        assert rel_err(out["xf"], fwd["xf"]) <= FORWARD_TOL
        lean = frozen.track(zf, x, mask_head=False)  # what the tracker asks for: no mask correlation map
        assert "corr_feature" not in lean and "mask" not in lean
        torch.testing.assert_close(lean["cls"], out["cls"], rtol=0, atol=0)
        for i, (row, col) in enumerate(fwd["refine_pos"].tolist()):
            # the correlation vector at (row, col) from the xf window it reads, then the refinement / the head
            assert rel_err(frozen.refine(lean, (row, col))[0], fwd["refine"][i]) <= FORWARD_TOL, (row, col)
            assert rel_err(frozen.mask_at(lean, (row, col))[0], fwd["mask"][0, :, row, col]) <= FORWARD_TOL
    # the graphs really are the compiler's (not the eager fallback)
    assert len(frozen._graphs) == 3 and all(isinstance(g, GRAPH_TYPES[compiler]) for g in frozen._graphs.values())


def _run(tracker: SiamMaskTracker, frames: list[np.ndarray], box: tuple[float, ...]) -> list:
    state = tracker.init(frames[0], box)
    return [tracker.track(state, im) for im in frames[1:]]


def test_frozen_tracker_follows_the_unfused_one(clip: list[np.ndarray], tamed: tuple) -> None:
    """Positions and sizes within 0.01 px of the unfused model, the same response positions, masks nearly equal."""
    model, frozen_model = tamed
    box = (48.0, 61.0, 44.0, 28.0)
    plain = _run(SiamMaskTracker(model, None, "cpu", mask=True, refine=True), clip, box)
    frozen = _run(SiamMaskTracker(frozen_model, None, "cpu", mask=True, refine=True), clip, box)
    moved = np.abs(plain[-1].target_pos - np.array([70.0, 75.0])).max()
    assert moved > 0.5  # the boxes move, so the comparison is not trivially equal
    for a, b in zip(plain, frozen):
        assert a.response_pos == b.response_pos
        np.testing.assert_allclose(b.target_pos, a.target_pos, atol=POSITION_TOL)
        np.testing.assert_allclose(b.target_sz, a.target_sz, atol=POSITION_TOL)
        assert b.score == pytest.approx(a.score, abs=1e-4)
        assert np.mean((a.mask > 0.3) != (b.mask > 0.3)) < 1e-3


def test_frozen_track_many_equals_each_target_alone(clip: list[np.ndarray], tamed: tuple) -> None:
    tracker = SiamMaskTracker(tamed[1], None, "cpu", mask=True, refine=True)
    boxes = [(48.0, 61.0, 44.0, 28.0), (20.0, 20.0, 30.0, 40.0)]
    alone = [_run(tracker, clip[:2], b) for b in boxes]
    states = [tracker.init(clip[0], b) for b in boxes]
    together = [tracker.track_many(states, im) for im in clip[1:2]]
    for f, results in enumerate(together):
        for t, res in enumerate(results):
            np.testing.assert_array_equal(res.target_pos, alone[t][f].target_pos)
            np.testing.assert_array_equal(res.mask, alone[t][f].mask)


def test_window_at_equals_padded_unfold_windows_at_the_borders() -> None:
    x = torch.arange(2 * 9 * 9, dtype=torch.float32).reshape(1, 2, 9, 9) + 1
    for row, col in ((0, 0), (0, 3), (3, 0), (1, 2), (3, 3)):
        got = window_at(x, 5, 2, 2, row, col)
        want = gather_windows(x, 5, 2, 2, torch.tensor([0]), torch.tensor([row]), torch.tensor([col]))
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    # hand case: window (0, 0) starts 2 rows/cols above-left of the map, so its first two rows/cols are zeros
    w = window_at(x, 5, 2, 2, 0, 0)
    assert w[0, 0, :2].abs().sum() == 0 and w[0, 0, :, :2].abs().sum() == 0
    assert w[0, 0, 2, 2] == x[0, 0, 0, 0] == 1
    assert tuple(WINDOWS[0]) == (61, 4, 16)


def test_torchscript_failure_falls_back_to_the_eager_folded_network(monkeypatch: pytest.MonkeyPatch) -> None:
    model = tamed_sharp_model()
    x = torch.rand(1, 3, 255, 255, generator=torch.Generator().manual_seed(0)) * 255
    z = torch.rand(1, 3, 127, 127, generator=torch.Generator().manual_seed(1)) * 255

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("no TorchScript here")

    monkeypatch.setattr(torch.jit, "trace", broken)
    frozen = freeze_model(model, backends=("torchscript",))
    with torch.inference_mode(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        zf = frozen.template(z)
        out = frozen.track(zf, x, mask_head=False)
        ref = model.track(zf, x, mask_head=False)
        for key in ("cls", "loc"):
            assert rel_err(out[key], ref[key].numpy()) <= FORWARD_TOL, key
        assert rel_err(frozen.refine(out, (3, 20)), model.refine(ref, (3, 20)).numpy()) <= FORWARD_TOL
    assert frozen.fallback_reason == "RuntimeError: no TorchScript here"
    assert sum("TorchScript freezing failed" in str(w.message) for w in caught) == 1  # warned once
    assert not any(isinstance(g, torch.jit.ScriptModule) for g in frozen._graphs.values())


def test_a_failing_compiler_hands_over_to_the_next_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """inductor failing (no C++ compiler, a torch.compile error): warned once, then TorchScript builds the graphs;
    SIAMMASK_GRAPHS picks the order and names a bad entry."""
    from siammask.tracker import frozen as frozen_module
    from siammask.utils.config import ConfigError

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("inductor is broken here")

    monkeypatch.setitem(frozen_module.GRAPH_BUILDERS, "inductor", broken)
    model = tamed_sharp_model()
    net = freeze_model(model, backends=("inductor", "torchscript"))
    x = torch.rand(1, 3, 255, 255, generator=torch.Generator().manual_seed(0)) * 255
    with torch.inference_mode(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        zf = net.template(x[:, :, :127, :127])
        net.track(zf, x, mask_head=False)
        net.track(zf, x, mask_head=False)
    assert net.failed == {"inductor": "RuntimeError: inductor is broken here"}
    assert [type(g) for g in net._graphs.values()] == [torch.jit.RecursiveScriptModule]
    assert sum("torch.compile (inductor) failed" in str(w.message) for w in caught) == 1
    monkeypatch.setenv("SIAMMASK_GRAPHS", "torchscript")
    assert freeze_model(model).backends == ("torchscript",)
    monkeypatch.setenv("SIAMMASK_GRAPHS", "eager")
    assert freeze_model(model).backends == ()
    monkeypatch.setenv("SIAMMASK_GRAPHS", "inductor,tensorrt")
    with pytest.raises(ConfigError, match="SIAMMASK_GRAPHS: unknown graph compiler 'tensorrt'"):
        freeze_model(model)


def test_build_tracker_uses_the_frozen_network_unless_told_not_to(tmp_path) -> None:
    from siammask.tracker import build_tracker

    ckpt = tmp_path / "sharp.pth"
    torch.save(small_sharp_model().state_dict(), ckpt)
    config = "experiments/siammask_sharp/config_vot.json"
    tracker, _, _ = build_tracker(config, str(ckpt), "cpu")
    assert isinstance(tracker.model, FrozenSharpModel)
    plain, _, _ = build_tracker(config, str(ckpt), "cpu", optimize=False)
    assert not isinstance(plain.model, FrozenModel)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fast, _, _ = build_tracker(config, str(ckpt), "cpu", fast=True)
    if cpu_has_native_bf16():
        assert next(fast.model.parameters()).dtype == torch.bfloat16 and fast.amp_dtype == torch.bfloat16
    else:  # emulated bf16 would be several times slower than fp32: the exact network, with a warning saying so
        assert isinstance(fast.model, FrozenSharpModel) and fast.amp_dtype is None
        assert any("no native bf16" in str(w.message) for w in caught)
