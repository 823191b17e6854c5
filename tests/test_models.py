"""Tests of models/: registry, state-dict layout, shapes, stateless tracking API, training forward, freeze schedule."""
from __future__ import annotations

import copy
import json
import math
import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from siammask.datasets.fake_batch import synthetic_batch
from siammask.models import MODELS, SiamMaskBase, SiamMaskSharp, build_model, compute_losses, resolve_arch
from siammask.models.features import crop_adjusted_center
from siammask.models.losses import mask_label_windows, upsample_mask_logits
from siammask.utils.config import ConfigError, LrConfig

REPO = Path(__file__).resolve().parents[1]
SPEC = Path(os.environ.get("SIAMMASK_SPEC", REPO.parent / "shared" / "spec"))
CONFORMANCE = Path(os.environ.get("SIAMMASK_CONFORMANCE", REPO.parent / "shared" / "conformance"))
PARAM_COUNTS = {"siammask_base": (324, 18_816_735), "siammask_sharp": (356, 21_482_052)}


@pytest.fixture(scope="module")
def base() -> SiamMaskBase:
    torch.manual_seed(0)
    return SiamMaskBase().eval()


@pytest.fixture(scope="module")
def sharp() -> SiamMaskSharp:
    torch.manual_seed(0)
    return SiamMaskSharp().eval()


def assert_rel_max(actual: torch.Tensor, expected: torch.Tensor, tol: float = 1e-5) -> None:
    """max|actual - expected| <= tol * max|expected| (activations of random weights on 0-255 input are large)."""
    assert actual.shape == expected.shape
    err = (actual - expected).abs().max().item()
    assert err <= tol * expected.abs().max().item(), err


def images(n: int, size: int, seed: int) -> torch.Tensor:
    return torch.floor(torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 256)


# ---------------------------------------------------------------------------------------------------- registry
@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_registered_name_builds(name: str) -> None:
    model = build_model({"network": {"arch": name}})
    assert type(model) is MODELS[name] and model.arch == name


@pytest.mark.parametrize("out_size, expected", [(127, "siammask_sharp"), (63, "siammask_base")])
def test_custom_resolves_by_out_size(out_size: int, expected: str) -> None:
    assert resolve_arch("Custom", out_size) == expected
    assert build_model({"network": {"arch": "Custom"}, "hp": {"out_size": out_size}}).arch == expected


def test_custom_without_out_size_is_base() -> None:
    assert build_model({"network": {"arch": "Custom"}}).arch == "siammask_base"


@pytest.mark.parametrize("config", sorted(p.relative_to(REPO).as_posix() for p in REPO.glob("experiments/*/*.json")))
def test_experiment_configs_build(config: str) -> None:
    data = json.loads((REPO / config).read_text())
    expected = resolve_arch(data["network"]["arch"], data.get("hp", {}).get("out_size", 63))
    assert build_model(REPO / config).arch == expected
    if "sharp" in config:
        assert expected == "siammask_sharp"


def test_unknown_arch_lists_valid_names() -> None:
    with pytest.raises(ConfigError, match="siammask_base.*siammask_sharp.*Custom"):
        build_model({"network": {"arch": "SiamRPNA"}})


def test_two_configs_in_one_process() -> None:
    a = build_model({"network": {"arch": "siammask_base"}})
    b = build_model({"network": {"arch": "siammask_sharp"}, "anchors": {"ratios": [0.5, 1, 2]}})
    assert a.rpn_model.cls.head[3].out_channels == 10 and b.rpn_model.cls.head[3].out_channels == 6


# ---------------------------------------------------------------------------------------------------- layout
@pytest.mark.parametrize("name", sorted(MODELS))
def test_state_dict_size(name: str) -> None:
    model = MODELS[name]()
    assert len(model.state_dict()) == PARAM_COUNTS[name][0]
    assert sum(p.numel() for p in model.parameters()) == PARAM_COUNTS[name][1]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_state_dict_matches_spec(name: str) -> None:
    tsv = SPEC / f"state_dict_{name}.tsv"
    if not tsv.exists():
        pytest.skip(f"{tsv} not present (set SIAMMASK_SPEC)")
    rows = [line.split("\t") for line in tsv.read_text().splitlines()[1:] if line]
    state = MODELS[name]().state_dict()
    ours = [[k, str(tuple(v.shape)), str(v.dtype).replace("torch.", "")] for k, v in state.items()]
    assert ours == rows


def test_init_as_original() -> None:
    torch.manual_seed(0)
    model = SiamMaskSharp()
    resnet = model.features.features
    for conv in (resnet.conv1, resnet.layer2[0].downsample[0], resnet.layer3[5].conv2):
        std = math.sqrt(2.0 / (conv.kernel_size[0] * conv.kernel_size[1] * conv.out_channels))
        assert conv.weight.std().item() == pytest.approx(std, rel=0.05)
        assert abs(conv.weight.mean().item()) < 0.1 * std
    bn = resnet.layer3[2].bn2
    assert torch.equal(bn.weight, torch.ones_like(bn.weight)) and torch.equal(bn.bias, torch.zeros_like(bn.bias))
    for conv in (model.refine_model.v2[0], model.refine_model.post0):
        bound = math.sqrt(3.0 / (conv.in_channels * 9))  # kaiming_uniform a=1: sqrt(6 / ((1 + a^2) fan_in))
        assert 0.95 * bound < conv.weight.abs().max().item() <= bound
    deconv = model.refine_model.deconv  # default init: kaiming_uniform a=sqrt(5) -> bound 1/sqrt(fan_in)
    assert deconv.weight.abs().max().item() <= 1 / math.sqrt(32 * 15 * 15) + 1e-7


# ---------------------------------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("width, expected", [(15, 7), (17, 9), (31, 31), (19, 11), (20, 20)])
def test_crop_adjusted_center(width: int, expected: int) -> None:
    x = torch.arange(2 * 3 * width * width, dtype=torch.float32).view(2, 3, width, width)
    out = crop_adjusted_center(x)
    assert out.shape == (2, 3, expected, expected)
    if expected < width:
        assert torch.equal(out, x[:, :, 4:-4, 4:-4])
    else:
        assert out is x


@pytest.mark.parametrize("size, sides, adjusted", [(127, (61, 31, 15, 15), 7), (143, (69, 35, 17, 17), 9),
                                                    (255, (125, 63, 31, 31), 31)])
def test_backbone_shapes(base: SiamMaskBase, size: int, sides: tuple, adjusted: int) -> None:
    with torch.no_grad():
        feats, xf = base.features.forward_all(images(1, size, 0))
    assert [tuple(f.shape[1:]) for f in feats] == [(c, s, s) for c, s in zip((64, 256, 512, 1024), sides, strict=True)]
    assert xf.shape == (1, 256, adjusted, adjusted)


def test_track_shapes_and_refine(sharp: SiamMaskSharp) -> None:
    with torch.no_grad():
        zf = sharp.template(images(2, 127, 1))
        out = sharp.track(zf, images(2, 255, 2))
        refined = sharp.refine(out, (12, 3))
    assert zf.shape == (2, 256, 7, 7)
    shapes = {k: tuple(v.shape) for k, v in out.items() if k != "features"}
    assert shapes == {"cls": (2, 10, 25, 25), "loc": (2, 20, 25, 25), "mask": (2, 3969, 25, 25),
                      "corr_feature": (2, 256, 25, 25), "xf": (2, 256, 31, 31)}
    assert refined.shape == (2, 16129)
    assert all(torch.isfinite(v).all() for v in (out["cls"], out["loc"], out["mask"], refined))


def test_track_without_mask_head(base: SiamMaskBase) -> None:
    z, x = images(1, 127, 3), images(1, 255, 4)
    with torch.no_grad():
        zf = base.template(z)
        full, light = base.track(zf, x), base.track(zf, x, mask_head=False)
        at = base.mask_at(light, (7, 19))
    assert "mask" not in light
    assert torch.equal(full["cls"], light["cls"]) and torch.equal(full["corr_feature"], light["corr_feature"])
    assert_rel_max(at, full["mask"][:, :, 7, 19])


def test_interleaved_targets_match_single(sharp: SiamMaskSharp) -> None:
    za, zb, xa, xb = images(1, 127, 5), images(1, 127, 6), images(1, 255, 7), images(1, 255, 8)
    with torch.no_grad():
        alone_a = sharp.track(sharp.template(za), xa)
        alone_a_mask = sharp.refine(alone_a, (10, 11))
        alone_b = sharp.track(sharp.template(zb), xb)
        zfa, zfb = sharp.template(za), sharp.template(zb)  # both targets live at once
        out_a, out_b = sharp.track(zfa, xa), sharp.track(zfb, xb)
        mask_b = sharp.refine(out_b, (3, 4))
        mask_a = sharp.refine(out_a, (10, 11))
        batched = sharp.track(torch.cat([zfa, zfb]), torch.cat([xa, xb]))
        batched_masks = sharp.refine(batched, torch.tensor([[10, 11], [3, 4]]))
    for key in ("cls", "loc", "mask", "corr_feature"):
        assert torch.equal(out_a[key], alone_a[key]) and torch.equal(out_b[key], alone_b[key])
        assert_rel_max(batched[key], torch.cat([alone_a[key], alone_b[key]]))
    assert torch.equal(mask_a, alone_a_mask)
    assert_rel_max(batched_masks, torch.cat([alone_a_mask, mask_b]))
    assert not any(k in vars(sharp) for k in ("zf", "xf", "feature", "search", "corr_feature"))


# ---------------------------------------------------------------------------------------------------- training forward
def _full_head_reference(model: SiamMaskBase, batch: dict) -> dict:
    """The original's computation: 3969-channel head everywhere, then select, upsample and unfold the label."""
    zf, xf = model.features(batch["template"]), model.features(batch["search"])
    cls, loc = model.rpn_model(zf, xf)
    p_m = model.mask_model(zf, xf)
    pos = torch.nonzero(batch["label_mask_weight"].view(-1) == 1).squeeze(1)
    p_m = p_m.permute(0, 2, 3, 1).reshape(-1, 1, 63, 63).index_select(0, pos)
    p_m = F.interpolate(p_m, size=(127, 127), mode="bilinear", align_corners=True).view(-1, 16129)
    label = F.unfold(batch["label_mask"], (127, 127), padding=32, stride=8).transpose(1, 2).reshape(-1, 16129)
    mask_loss = F.soft_margin_loss(p_m, label.index_select(0, pos))
    return {"cls": cls, "loc": loc, "mask_loss": mask_loss}


def test_selected_mask_head_equals_full_computation() -> None:
    torch.manual_seed(0)
    fast = SiamMaskBase()
    fast.set_epoch(0, 20)
    fast.train()
    slow = copy.deepcopy(fast)
    batch = synthetic_batch(2, 255, num_pos=5, generator=torch.Generator().manual_seed(1))
    out = fast(batch)
    assert out["mask"].shape == (int(batch["label_mask_weight"].sum()), 3969)
    losses = compute_losses(out, batch, (1.0, 1.2, 36.0))
    ref = _full_head_reference(slow, batch)
    torch.testing.assert_close(losses["mask"], ref["mask_loss"], rtol=1e-5, atol=0)
    losses["mask"].backward()
    ref["mask_loss"].backward()
    for (name, p), q in zip(fast.named_parameters(), slow.parameters(), strict=True):
        if p.requires_grad and p.grad is not None and name.startswith("mask_model"):
            torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-6, msg=name)
    for (name, b), c in zip(fast.named_buffers(), slow.buffers(), strict=True):
        torch.testing.assert_close(b, c, rtol=1e-5, atol=1e-6, msg=name)


def test_label_windows_equal_unfold() -> None:
    batch = synthetic_batch(2, 255, generator=torch.Generator().manual_seed(2))
    index = torch.tensor([0, 17, 312, 624, 625, 1000, 1249])
    unfolded = F.unfold(batch["label_mask"], (127, 127), padding=32, stride=8).transpose(1, 2).reshape(-1, 16129)
    assert torch.equal(mask_label_windows(batch["label_mask"], index, (25, 25)), unfolded[index])
    small = synthetic_batch(2, 143, generator=torch.Generator().manual_seed(3))
    unfolded = F.unfold(small["label_mask"], (127, 127), padding=0, stride=8).transpose(1, 2).reshape(-1, 16129)
    assert torch.equal(mask_label_windows(small["label_mask"], torch.arange(18), (3, 3)), unfolded)


def test_sharp_training_refines_selected_positions_only(sharp: SiamMaskSharp) -> None:
    batch = synthetic_batch(2, 143, num_pos=3, generator=torch.Generator().manual_seed(4))
    every = dict(batch, label_mask_weight=torch.ones(2, 1, 3, 3))
    with torch.no_grad():
        out, out_all = sharp(batch), sharp(every)
    assert out["cls"].shape == (2, 10, 3, 3) and out_all["mask"].shape == (18, 16129)
    assert_rel_max(out["mask"], out_all["mask"][out["mask_index"]])


def test_refine_train_window_is_test_window_shifted_by_four(sharp: SiamMaskSharp) -> None:
    x = images(1, 143, 9)
    with torch.no_grad():
        feats, xf = sharp.features.forward_all(x)
        corr = sharp.mask_model.mask.forward_corr(sharp.template(images(1, 127, 10)), xf)
        train = sharp.refine_model.forward_train(feats, corr, torch.tensor([5]))  # (r, c) = (1, 2)
        wide = F.pad(corr, [4, 4, 4, 4])  # put corr (1, 2) at test position (5, 6)
        test = sharp.refine_model.forward_test(feats, wide, (5, 6))
    assert_rel_max(train, test)


@pytest.mark.parametrize("cls_model, search", [(SiamMaskBase, 255), (SiamMaskSharp, 143)])
def test_no_mask_positions_keeps_every_trainable_parameter_in_graph(cls_model: type, search: int) -> None:
    torch.manual_seed(0)
    model = cls_model()
    model.set_epoch(10, 20)
    model.train()
    batch = synthetic_batch(1, search, with_mask=False, generator=torch.Generator().manual_seed(5))
    out = model(batch)
    losses = compute_losses(out, batch, (1.0, 1.2, 36.0))
    assert out["mask"].shape[0] == 0 and losses["mask"].item() == 0.0 and losses["iou_mean"].item() == 0.0
    losses["total"].backward()
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert no_grad == []


def test_one_batch_overfit() -> None:
    torch.manual_seed(0)
    model = SiamMaskBase()
    model.set_epoch(0, 20)
    model.train()
    batch = synthetic_batch(1, 143, num_pos=4, generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.SGD(model.param_groups(0.01), momentum=0.9, weight_decay=1e-4)
    totals = []
    for _ in range(50):
        losses = compute_losses(model(batch), batch, (1.0, 1.2, 36.0))
        assert all(torch.isfinite(v) for v in losses.values())
        optimizer.zero_grad()
        losses["total"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()
        totals.append(losses["total"].item())
    assert totals[-1] < 0.5 * totals[0]


# ---------------------------------------------------------------------------------------------------- schedule
def _trainable(model: torch.nn.Module) -> set[str]:
    return {n for n, p in model.named_parameters() if p.requires_grad}


def _bn_train(model: torch.nn.Module) -> list[str]:
    return [n for n, m in model.named_modules() if isinstance(m, torch.nn.BatchNorm2d) and m.training]


HEAD_BNS = ["rpn_model.cls.conv_kernel.1", "rpn_model.cls.conv_search.1", "rpn_model.cls.head.1",
            "rpn_model.loc.conv_kernel.1", "rpn_model.loc.conv_search.1", "rpn_model.loc.head.1",
            "mask_model.mask.conv_kernel.1", "mask_model.mask.conv_search.1", "mask_model.mask.head.1"]


@pytest.mark.parametrize("epoch, unfrozen, changed", [(0, False, False), (9, False, False), (10, True, True),
                                                      (19, True, False)])
def test_freeze_schedule(epoch: int, unfrozen: bool, changed: bool) -> None:
    model = SiamMaskBase()
    for e in range(epoch):  # an uninterrupted run up to `epoch`
        model.set_epoch(e, 20)
    assert model.set_epoch(epoch, 20) is changed
    model.train()
    names = _trainable(model)
    resnet = {n for n in names if n.startswith("features.features.")}
    assert not any(n.startswith(("features.features.conv1", "features.features.bn1", "features.features.layer1"))
                   for n in names)
    assert bool(resnet) is unfrozen
    if unfrozen:
        assert resnet == {f"features.features.{n}" for n, _ in model.features.features.named_parameters()
                          if n.startswith(("layer2.", "layer3."))}
    assert {n for n in names if not n.startswith("features.features.")} == {
        n for n, _ in model.named_parameters() if not n.startswith(("features.features.", "refine_model."))}
    assert _bn_train(model) == ["features.downsample.downsample.1", *HEAD_BNS]

    lr = LrConfig(feature_lr_mult=2.0, rpn_lr_mult=3.0, mask_lr_mult=5.0)
    groups = model.param_groups(0.01, lr)
    expected = [("features.downsample", 0.02), ("features.features", 0.002), ("rpn_model", 0.03),
                ("mask_model", 0.05)]
    if not unfrozen:
        expected.pop(1)
    assert [(g["name"], pytest.approx(g["lr"], rel=1e-12)) for g in groups] == expected
    assert sum(len(g["params"]) for g in groups) == len(names)

    resumed = SiamMaskBase()  # a resume at `epoch` gives the same stage and BatchNorm modes
    resumed.set_epoch(epoch, 20)
    resumed.train()
    assert _trainable(resumed) == names and _bn_train(resumed) == _bn_train(model)


def test_param_group_order_matches_original_schedule() -> None:
    path = CONFORMANCE / "lr_schedules.json"
    if not path.exists():
        pytest.skip(f"{path} not present")
    schedules = json.loads(path.read_text())["schedules"]
    base, sharp = SiamMaskBase(), SiamMaskSharp()
    for epoch, order in enumerate(schedules["siammask_base"]["param_group_order"]):
        base.set_epoch(epoch, 20)
        assert [g["name"] for g in base.param_groups(0.005)] == order, epoch
    for epoch, order in enumerate(schedules["siammask_sharp"]["param_group_order"]):
        assert sharp.set_epoch(epoch, 20) is True
        assert [g["name"] for g in sharp.param_groups(0.01)] == order, epoch


def test_refine_stage() -> None:
    torch.manual_seed(0)
    model = SiamMaskSharp()
    model.set_epoch(3, 20)
    model.train()
    assert _bn_train(model) == ["mask_model.mask.conv_kernel.1", "mask_model.mask.conv_search.1",
                                "mask_model.mask.head.1"]
    assert not model.features.training and not model.rpn_model.training and model.refine_model.training
    groups = model.param_groups(0.01, LrConfig(mask_lr_mult=2.0, rpn_lr_mult=7.0))
    assert [(g["name"], g["lr"]) for g in groups] == [("mask_model", 0.02), ("refine_model", 0.02)]
    grouped = {id(p) for g in groups for p in g["params"]}
    expected = [p for n, p in model.named_parameters()
                if n.startswith(("mask_model.mask.conv_", "refine_model."))]
    assert grouped == {id(p) for p in expected}

    batch = synthetic_batch(2, 143, num_pos=3, generator=torch.Generator().manual_seed(6))
    losses = compute_losses(model(batch), batch, (0.0, 0.0, 36.0))
    losses["total"].backward()
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None}
    assert not any(n.startswith(("mask_model.mask.head", "rpn_model", "features.features")) for n in with_grad)
    trained = {n for n, _ in model.named_parameters() if n.startswith(("refine_model", "features.downsample"))}
    assert trained <= with_grad


def test_upsample_mask_logits_is_bilinear_align_corners() -> None:
    mask = torch.zeros(1, 63 * 63)
    mask[0, 0] = 1.0  # align_corners=True: output column k samples input column k * 62 / 126
    up = upsample_mask_logits(mask).view(127, 127)
    expected = torch.tensor([max(0.0, 1 - k * 62 / 126) for k in range(4)])
    torch.testing.assert_close(up[0, :4], expected)
    torch.testing.assert_close(up[:4, 0], expected)
    assert upsample_mask_logits(torch.ones(2, 16129)).shape == (2, 16129)
