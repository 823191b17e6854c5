"""Tests of utils/checkpoint.py: every supported file kind, strictness, architecture checks, pysot conversion."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from siammask.models import SiamMaskBase, SiamMaskSharp
from siammask.models.weights import (
    PYSOT_PREFIX_MAP,
    CheckpointError,
    convert_pysot_state_dict,
    load_checkpoint,
    load_pretrained,
)


@pytest.fixture(scope="module")
def base_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(11)
    return SiamMaskBase().state_dict()


@pytest.fixture(scope="module")
def sharp_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(12)
    return SiamMaskSharp().state_dict()


def half(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Smaller files for tests where exact values do not matter (the loader upcasts)."""
    return {k: (v.half() if v.is_floating_point() else v) for k, v in state.items()}


def assert_state_equal(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
    ours = model.state_dict()
    assert list(ours) == list(state)
    assert all(torch.equal(ours[k], state[k].to(ours[k].dtype)) for k in state)


def to_pysot(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """pysot siammask_r50_l3 names (backbone, neck = AdjustAllLayer, rpn_head, mask_head, refine_head)."""
    reverse = (("features.features.", "backbone."), ("features.downsample.", "neck.downsample."),
               ("rpn_model.", "rpn_head."), ("mask_model.mask.", "mask_head."), ("refine_model.", "refine_head."))
    out = {}
    for key, value in state.items():
        for ours, theirs in reverse:
            if key.startswith(ours):
                key = theirs + key[len(ours):]
                break
        out[key] = value
    return out


def test_training_checkpoint_round_trip(tmp_path: Path, base_state: dict) -> None:
    model = SiamMaskBase()
    model.load_state_dict(base_state)
    optimizer = torch.optim.SGD(model.param_groups(0.01), momentum=0.9)
    model(dict(template=torch.rand(1, 3, 127, 127) * 255, search=torch.rand(1, 3, 255, 255) * 255,
               label_mask_weight=torch.zeros(1, 1, 25, 25)))["cls"].sum().backward()
    optimizer.step()
    path = tmp_path / "checkpoint_e3.pth"
    torch.save({"epoch": 3, "state_dict": model.state_dict(), "optimizer": optimizer.state_dict(),
                "config": {"network": {"arch": "siammask_base"}}, "arch": model.arch}, path)
    assert torch.load(path, weights_only=True)["epoch"] == 3

    restored = SiamMaskBase()
    report = load_pretrained(restored, path)
    assert_state_equal(restored, model.state_dict())
    assert report.kind == "training" and report.arch == "siammask_base" and report.loaded == 324
    assert report.extra["epoch"] == 3 and report.tolerated == [] and report.problems == []
    wrapped = torch.nn.DataParallel(SiamMaskBase())  # a wrapper is unwrapped
    load_pretrained(wrapped, path)
    assert_state_equal(wrapped.module, model.state_dict())
    fresh = torch.optim.SGD(restored.param_groups(0.01), momentum=0.9)
    fresh.load_state_dict(report.extra["optimizer"])
    assert [g["name"] for g in fresh.param_groups] == ["features.downsample", "rpn_model", "mask_model"]


@pytest.mark.parametrize("layout", ["raw", "wrapped", "module", "wrapped_module"])
def test_released_layouts(tmp_path: Path, sharp_state: dict, layout: str) -> None:
    state = half(sharp_state)
    if "module" in layout:
        state = {f"module.{k}": v for k, v in state.items()}
    path = tmp_path / "SiamMask.pth"
    torch.save({"state_dict": state} if "wrapped" in layout else state, path)
    model = SiamMaskSharp()
    report = load_pretrained(model, path)
    assert report.kind == "siammask" and report.loaded == 356
    assert_state_equal(model, {k: v.float() if v.is_floating_point() else v for k, v in half(sharp_state).items()})


def test_missing_num_batches_tracked_is_tolerated(tmp_path: Path, base_state: dict) -> None:
    path = tmp_path / "old.pth"
    torch.save({k: v for k, v in half(base_state).items() if not k.endswith("num_batches_tracked")}, path)
    model = SiamMaskBase()
    report = load_pretrained(model, path)
    assert report.loaded == 324 - 53 and report.tolerated == ["kept 53 num_batches_tracked the file lacks"]


def test_strict_report_names_file_and_keys(tmp_path: Path, base_state: dict) -> None:
    state = half(base_state)
    del state["rpn_model.cls.head.3.bias"]
    state["rpn_model.extra.weight"] = torch.zeros(1)
    state["mask_model.mask.head.3.bias"] = torch.zeros(10)
    path = tmp_path / "broken.pth"
    torch.save(state, path)
    model = SiamMaskBase()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError) as info:
        load_pretrained(model, path)
    lines = str(info.value).splitlines()
    assert str(path) in lines[0]
    assert lines[1:] == ["  missing (1): rpn_model.cls.head.3.bias",
                         "  unexpected (1): rpn_model.extra.weight",
                         "  mis-shaped (1): mask_model.mask.head.3.bias (10,) vs model (3969,)"]
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())  # nothing loaded

    report = load_pretrained(model, path, strict=False)
    assert report.loaded == 322 and len(report.problems) == 3


def test_sharp_checkpoint_into_base_is_an_arch_error(tmp_path: Path, sharp_state: dict) -> None:
    path = tmp_path / "sharp.pth"
    torch.save(half(sharp_state), path)
    with pytest.raises(CheckpointError, match="siammask_sharp checkpoint .* model is siammask_base"):
        load_pretrained(SiamMaskBase(), path)


def test_base_checkpoint_into_sharp(tmp_path: Path, base_state: dict) -> None:
    path = tmp_path / "base.pth"
    torch.save({"epoch": 20, "state_dict": half(base_state), "optimizer": {}, "arch": "siammask_base"}, path)
    model = SiamMaskSharp()
    with pytest.raises(CheckpointError, match="siammask_base checkpoint .* model is siammask_sharp"):
        load_pretrained(model, path)
    refine_before = {k: v.clone() for k, v in model.refine_model.state_dict().items()}
    report = load_pretrained(model, path, allow_missing_refine=True)
    assert report.loaded == 324 and report.tolerated == ["kept the initial 32 refine_model entries"]
    assert all(torch.equal(v, refine_before[k]) for k, v in model.refine_model.state_dict().items())


def test_arch_entry_must_agree_with_keys(tmp_path: Path, base_state: dict) -> None:
    path = tmp_path / "mislabelled.pth"
    torch.save({"state_dict": half(base_state), "arch": "siammask_sharp"}, path)
    with pytest.raises(CheckpointError, match="'arch' says siammask_sharp"):
        load_pretrained(SiamMaskBase(), path)


def test_pysot_conversion(tmp_path: Path, sharp_state: dict) -> None:
    pysot = to_pysot(half(sharp_state))
    assert "neck.downsample.downsample.0.weight" in pysot and "mask_head.head.3.weight" in pysot
    assert "backbone.layer3.5.bn3.running_var" in pysot and "refine_head.post2.bias" in pysot
    converted = convert_pysot_state_dict(pysot)
    assert list(converted) == list(sharp_state)
    assert convert_pysot_state_dict(converted) == converted  # already converted: unchanged
    bare_neck = {k.replace("neck.downsample.downsample.", "neck.downsample."): v for k, v in pysot.items()}
    assert list(convert_pysot_state_dict(bare_neck)) == list(sharp_state)

    path = tmp_path / "model.pth"
    torch.save(pysot, path)
    model = SiamMaskSharp()
    report = load_pretrained(model, path)
    assert report.kind == "pysot" and report.loaded == 356
    assert [old for old, _ in PYSOT_PREFIX_MAP][:2] == ["backbone.", "neck.downsample.downsample."]


def test_imagenet_backbone(tmp_path: Path, base_state: dict) -> None:
    backbone = {k[len("features.features."):]: v for k, v in half(base_state).items()
                if k.startswith("features.features.")}
    backbone["layer4.0.conv1.weight"] = torch.zeros(512, 1024, 1, 1)
    backbone["fc.weight"] = torch.zeros(1000, 2048)
    path = tmp_path / "resnet.model"
    torch.save(backbone, path)
    model = SiamMaskSharp()
    heads_before = model.rpn_model.state_dict()["cls.head.3.weight"].clone()
    report = load_pretrained(model, path)
    assert report.kind == "backbone" and report.loaded == 258
    assert report.tolerated == ["ignored 2 classifier keys (layer4.*, fc.*)"]
    assert torch.equal(model.features.features.conv1.weight, backbone["conv1.weight"].float())
    assert torch.equal(model.rpn_model.state_dict()["cls.head.3.weight"], heads_before)

    backbone["layer2.0.downsample.0.weight"] = torch.zeros(512, 256, 1, 1)  # torchvision's 1x1 downsample
    torch.save(backbone, path)
    with pytest.raises(CheckpointError, match=r"mis-shaped \(1\): layer2.0.downsample.0.weight \(512, 256, 1, 1\)"):
        load_pretrained(model, path)


def test_numpy_scalars_are_allowed(tmp_path: Path, base_state: dict) -> None:
    path = tmp_path / "np.pth"
    torch.save({"state_dict": half(base_state), "best_acc": np.float64(0.0), "epoch": np.int64(4),
                "anchors": np.zeros((5, 4), np.float32)}, path)
    report = load_pretrained(SiamMaskBase(), path)
    assert report.extra["epoch"] == 4 and report.extra["anchors"].shape == (5, 4)


class Opaque:
    """Any class outside the weights-only allow-list."""


@pytest.mark.parametrize("content, message", [
    (None, "checkpoint file not found"),
    (b"hello, this is not a checkpoint\n", "not a PyTorch checkpoint"),
    (torch.zeros(3), "not a checkpoint (holds a Tensor"),
    ({"state_dict": {"a": 1}}, "no state dict of named tensors"),
    ({"x": Opaque()}, "refused: it would load the Python global test_checkpoint.Opaque"),
])
def test_unreadable_files_are_one_line_errors(tmp_path: Path, content: object, message: str) -> None:
    path = tmp_path / "bad.pth"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        torch.save(content, path)
    with pytest.raises(CheckpointError) as info:
        load_pretrained(SiamMaskBase(), path)
    assert message in str(info.value) and str(path) in str(info.value)
    assert len(str(info.value).splitlines()) == 1


def test_load_checkpoint_never_unpickles_code(tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    torch.save({"x": Opaque()}, path)
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


class _Payload:
    """A pickle that, if unpickled unsafely, creates the file named by `marker`."""

    def __init__(self, call: object, marker: Path) -> None:
        self.call, self.marker = call, marker

    def __reduce__(self) -> tuple:
        return self.call, (f"touch {self.marker}",) if self.call is os.system else (["touch", str(self.marker)],)


@pytest.mark.parametrize("kind", ["os.system", "subprocess.Popen", "legacy pickle", "jpeg renamed", "empty",
                                  "truncated"])
def test_refusals_name_the_reason_and_never_advise_unsafe_loading(tmp_path: Path, kind: str) -> None:
    """What was refused is named (the blocked global, or "not a PyTorch checkpoint"); torch's advice to retry with
    weights_only=False is never shown; nothing in the file runs."""
    import pickle
    import subprocess

    import cv2

    path, marker = tmp_path / "weights.pth", tmp_path / "pwned"
    if kind == "os.system":
        torch.save({"state_dict": {}, "x": _Payload(os.system, marker)}, path)
        expected = "global posix.system" if os.name == "posix" else "global nt.system"
    elif kind == "subprocess.Popen":
        torch.save([_Payload(subprocess.Popen, marker)], path)
        expected = "refused: it would load the Python global"
    elif kind == "legacy pickle":
        path.write_bytes(pickle.dumps(_Payload(os.system, marker), protocol=4))
        expected = "not a PyTorch checkpoint (byte 0x95 is no instruction"
    elif kind == "jpeg renamed":
        cv2.imwrite(str(tmp_path / "frame.jpg"), np.zeros((16, 16, 3), np.uint8))
        path.write_bytes((tmp_path / "frame.jpg").read_bytes())
        expected = "not a PyTorch checkpoint (byte 0xff is no instruction"
    elif kind == "empty":
        path.write_bytes(b"")
        expected = "empty file, not a PyTorch checkpoint"
    else:
        torch.save({"state_dict": {"w": torch.zeros(100)}}, path)
        path.write_bytes(path.read_bytes()[:200])
        expected = "not a PyTorch checkpoint, or cut short"
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(path)
    message = str(info.value)
    assert expected in message and str(path) in message
    assert "weights_only" not in message and "trusted source" not in message
    assert len(message.splitlines()) == 1
    assert not marker.exists()
