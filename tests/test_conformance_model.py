"""Parity of models/ with the original SiamMask's outputs (../shared/conformance, see its README).

Skipped with a reason when the conformance directory (or env SIAMMASK_CONFORMANCE) is absent.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from siammask.models import SiamMaskBase, SiamMaskSharp, compute_losses
from siammask.models.losses import iou_measure, log_softmax_cls, select_cross_entropy_loss, weight_l1_loss
from siammask.models.weights import load_pretrained

REPO = Path(__file__).resolve().parents[1]
CONFORMANCE = Path(os.environ.get("SIAMMASK_CONFORMANCE", REPO.parent / "shared" / "conformance"))
WEIGHTS = CONFORMANCE / "weights_sharp_seed1_fp16.pth"
pytestmark = pytest.mark.skipif(not WEIGHTS.exists(), reason=f"conformance vectors not found at {CONFORMANCE}")

FORWARD_TOL = 1e-4  # max|port - ref| / max|ref| (README "Tolerances")


def rel_err(actual: torch.Tensor, expected: np.ndarray) -> float:
    ref = torch.from_numpy(np.asarray(expected)).to(torch.float64)
    return ((actual.detach().to(torch.float64) - ref).abs().max() / ref.abs().max()).item()


def reference_state_dict() -> dict[str, torch.Tensor]:
    state = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
    return {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}


def base_model() -> SiamMaskBase:
    """The base model with the reference weights, at epoch 0 of 20 (backbone frozen)."""
    model = SiamMaskBase()
    model.load_state_dict({k: v for k, v in reference_state_dict().items() if not k.startswith("refine_model.")})
    model.set_epoch(0, 20)
    return model


@pytest.fixture(scope="module")
def sharp() -> SiamMaskSharp:
    model = SiamMaskSharp()
    report = load_pretrained(model, WEIGHTS)
    assert report.loaded == 356 and report.arch == "siammask_sharp"
    return model.eval()


@pytest.fixture(scope="module")
def fwd() -> dict[str, np.ndarray]:
    return dict(np.load(CONFORMANCE / "forward_seed1.npz", allow_pickle=False))


@pytest.fixture(scope="module")
def ref_losses() -> dict[str, np.ndarray]:
    return dict(np.load(CONFORMANCE / "losses_seed1.npz", allow_pickle=False))


def test_seed_one_init_reproduces_original_tensors() -> None:
    """Same construction order and init calls as the original: torch.manual_seed(1) gives its tensors (fp16)."""
    torch.manual_seed(1)
    ours = SiamMaskSharp().state_dict()
    calibrated = ("running_mean", "running_var", "num_batches_tracked", "rpn_model.cls.head.3.",
                  "rpn_model.loc.head.3.", "refine_model.post2.")  # changed after init (README)
    ref = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
    compared = [k for k in ours if not any(c in k for c in calibrated)]
    assert len(compared) == 191  # 197 parameter tensors minus the 6 rescaled ones
    assert [k for k in compared if not torch.equal(ours[k].half(), ref[k])] == []


def test_tracking_path(sharp: SiamMaskSharp, fwd: dict) -> None:
    with torch.no_grad():
        zf = sharp.template(torch.from_numpy(fwd["template"]))
        out = sharp.track(zf, torch.from_numpy(fwd["search"]))
    assert rel_err(zf, fwd["zf"]) <= FORWARD_TOL
    for key in ("xf", "cls", "loc", "mask", "corr_feature"):
        assert rel_err(out[key], fwd[key]) <= FORWARD_TOL, key
    assert [list(f.shape) for f in out["features"]] == fwd["backbone_shapes"].tolist()
    sums = np.array([f.double().sum().item() for f in out["features"]])
    np.testing.assert_allclose(sums, fwd["backbone_sum_f64"], rtol=1e-6)

    positions = fwd["refine_pos"]
    with torch.no_grad():
        for i, (row, col) in enumerate(positions.tolist()):
            assert rel_err(sharp.refine(out, (row, col))[0], fwd["refine"][i]) <= FORWARD_TOL, (row, col)
        many = {"features": tuple(f.expand(len(positions), -1, -1, -1) for f in out["features"]),
                "corr_feature": out["corr_feature"].expand(len(positions), -1, -1, -1)}
        assert rel_err(sharp.refine(many, torch.from_numpy(positions)), fwd["refine"]) <= FORWARD_TOL


def test_training_path_143(sharp: SiamMaskSharp, fwd: dict) -> None:
    batch = {"template": torch.from_numpy(fwd["template"]), "search": torch.from_numpy(fwd["search143"]),
             "label_mask_weight": torch.ones(1, 1, 3, 3)}
    with torch.no_grad():
        out = sharp(batch)
        xf = sharp.features(batch["search"])
    assert out["mask_index"].tolist() == list(range(9))
    assert rel_err(out["cls"], fwd["run143_cls"]) <= FORWARD_TOL
    assert rel_err(out["loc"], fwd["run143_loc"]) <= FORWARD_TOL
    assert rel_err(out["mask"], fwd["run143_mask"]) <= FORWARD_TOL
    assert rel_err(log_softmax_cls(out["cls"]), fwd["run143_cls_logsoftmax"]) <= FORWARD_TOL
    assert rel_err(xf, fwd["run143_xf"]) <= FORWARD_TOL


def test_losses_from_stored_predictions(ref_losses: dict) -> None:
    """The loss formulas alone, fed with the original's predictions."""
    batch = {k[3:]: torch.from_numpy(v) for k, v in ref_losses.items() if k.startswith("in_label")}
    cls = select_cross_entropy_loss(torch.from_numpy(ref_losses["pred_cls_logsoftmax"]), batch["label_cls"])
    loc = weight_l1_loss(torch.from_numpy(ref_losses["pred_loc"]), batch["label_loc"], batch["label_loc_weight"])
    assert cls.item() == pytest.approx(float(ref_losses["rpn_loss_cls"]), rel=1e-5)
    assert loc.item() == pytest.approx(float(ref_losses["rpn_loss_loc"]), rel=1e-5)
    out = {"cls": torch.zeros(2, 10, 25, 25), "loc": torch.zeros(2, 20, 25, 25),
           "mask": torch.from_numpy(ref_losses["mask_head_sel"]),
           "mask_index": torch.from_numpy(ref_losses["mask_pos_index"])}
    losses = compute_losses(out, batch, (1.0, 1.2, 36.0))
    assert losses["mask"].item() == pytest.approx(float(ref_losses["rpn_loss_mask"]), rel=1e-5)
    assert losses["iou_mean"].item() == pytest.approx(float(ref_losses["iou_mean"]), abs=1e-4)


def test_intended_iou_on_synthetic_predictions(ref_losses: dict) -> None:
    labels = torch.from_numpy(ref_losses["mask_label_sel"]).float()
    a = torch.from_numpy(ref_losses["iou_synth_a"])
    pred = labels * a[:, None] + torch.from_numpy(ref_losses["mask_logits_sel"])
    mean, at5, at7, per = iou_measure(pred, labels)
    np.testing.assert_allclose(per.numpy(), ref_losses["iou_synth_per_pos"], atol=1e-3)
    assert mean.item() == pytest.approx(float(ref_losses["iou_synth_mean"]), abs=1e-4)
    assert at5.item() == pytest.approx(float(ref_losses["iou_synth_at_0p5"]))
    assert at7.item() == pytest.approx(float(ref_losses["iou_synth_at_0p7"]))


def test_base_training_step(ref_losses: dict) -> None:
    """Epoch-0 base training forward/backward: losses, IoU, gradient norms and BatchNorm buffers."""
    model = base_model().train()
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ref_losses["trainable_names"].tolist()
    bn_names = ref_losses["bn_train_mode"].tolist()
    assert [n for n, m in model.named_modules() if isinstance(m, torch.nn.BatchNorm2d) and m.training] == bn_names
    assert [g["lr"] for g in model.param_groups(0.001)] == pytest.approx(ref_losses["opt_group_lrs"].tolist())

    batch = {k[3:]: torch.from_numpy(v) for k, v in ref_losses.items() if k.startswith("in_")}
    out = model(batch)
    assert out["mask_index"].tolist() == ref_losses["mask_pos_index"].tolist()
    assert rel_err(out["mask"], ref_losses["mask_head_sel"]) <= FORWARD_TOL
    assert rel_err(log_softmax_cls(out["cls"]), ref_losses["pred_cls_logsoftmax"]) <= FORWARD_TOL
    assert rel_err(out["loc"], ref_losses["pred_loc"]) <= FORWARD_TOL

    losses = compute_losses(out, batch, (1.0, 1.2, 36.0))
    for ours, ref in (("cls", "rpn_loss_cls"), ("loc", "rpn_loss_loc"), ("mask", "rpn_loss_mask"),
                      ("total", "total_w_1_1p2_36")):
        assert losses[ours].item() == pytest.approx(float(ref_losses[ref]), rel=1e-5), ours
    ascend = compute_losses(out, batch, (1.0, 1.0, 32.0))["total"]
    assert ascend.item() == pytest.approx(float(ref_losses["total_w_1_1_32"]), rel=1e-5)
    assert losses["iou_mean"].item() == pytest.approx(float(ref_losses["iou_mean"]), abs=1e-4)
    assert losses["iou_at_5"].item() == float(ref_losses["iou_at_0p5"])
    assert losses["iou_at_7"].item() == float(ref_losses["iou_at_0p7"])

    # Gradients and BatchNorm buffers are checked on a float64 run of the same model and batch: float32 conv
    # backward kernels differ by CPU (oneDNN on AVX2 vs AVX-512 gave 3.7e-4 relative on the 1024-channel adjust
    # conv), while float64 agrees with the original's float32 reference to <= 4e-5 on every parameter.
    model = base_model().train().double()
    batch64 = {k: (v.double() if v.is_floating_point() else v) for k, v in batch.items()}
    losses = compute_losses(model(batch64), batch64, (1.0, 1.2, 36.0))
    assert losses["total"].item() == pytest.approx(float(ref_losses["total_w_1_1p2_36"]), rel=1e-5)
    losses["total"].backward()
    params = dict(model.named_parameters())
    for name, ref in zip(ref_losses["grad_names"].tolist(), ref_losses["grad_norms"].tolist(), strict=True):
        norm = params[name].grad.norm().item()
        if name == "features.downsample.downsample.1.bias":  # true gradient 0 (README)
            assert norm <= 1e-6
        else:
            assert norm == pytest.approx(ref, rel=1e-4), name
    total_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
    assert total_norm.item() == pytest.approx(float(ref_losses["grad_total_norm"]), rel=1e-4)

    modules = dict(model.named_modules())
    for i, name in enumerate(bn_names):
        bn = modules[name]
        assert rel_err(bn.running_mean, ref_losses["bn_after_running_mean"][i]) <= 1e-5, name
        assert rel_err(bn.running_var, ref_losses["bn_after_running_var"][i]) <= 1e-5, name
        assert bn.num_batches_tracked.item() == ref_losses["bn_after_num_batches_tracked"][i], name
