"""Tests of models/losses.py against hand computations on tiny inputs."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from siammask.models.losses import (
    compute_losses,
    iou_measure,
    log_softmax_cls,
    mask_label_padding,
    mask_label_windows,
    select_cross_entropy_loss,
    select_mask_positions,
    soft_margin_loss,
    weight_l1_loss,
)


def test_log_softmax_pairs_background_and_foreground_channels() -> None:
    # A = 2 anchors: channels (bg0, bg1, fg0, fg1)
    cls = torch.tensor([1.0, -2.0, 3.0, 0.5]).view(1, 4, 1, 1)
    out = log_softmax_cls(cls)
    assert out.shape == (1, 2, 1, 1, 2)
    for a, (bg, fg) in enumerate([(1.0, 3.0), (-2.0, 0.5)]):
        norm = math.log(math.exp(bg) + math.exp(fg))
        assert out[0, a, 0, 0].tolist() == pytest.approx([bg - norm, fg - norm], abs=1e-6)


def test_cross_entropy_balances_positives_and_negatives() -> None:
    logp = torch.log(torch.tensor([[0.2, 0.8], [0.6, 0.4], [0.5, 0.5], [0.1, 0.9], [0.7, 0.3]]))
    pred = logp.view(1, 5, 1, 1, 2)
    label = torch.tensor([1, 0, -1, 1, 0]).view(1, 5, 1, 1)
    pos = -(math.log(0.8) + math.log(0.9)) / 2
    neg = -(math.log(0.6) + math.log(0.7)) / 2
    assert select_cross_entropy_loss(pred, label).item() == pytest.approx(0.5 * pos + 0.5 * neg, rel=1e-6)


def test_cross_entropy_without_positives_counts_negatives_only_and_keeps_graph() -> None:
    pred = torch.log(torch.tensor([[0.6, 0.4], [0.7, 0.3]])).view(1, 2, 1, 1, 2).requires_grad_()
    loss = select_cross_entropy_loss(pred, torch.tensor([0, -1]).view(1, 2, 1, 1))
    assert loss.item() == pytest.approx(-0.5 * math.log(0.6), rel=1e-6)
    loss.backward()
    assert pred.grad is not None


def test_weight_l1_loss_is_plain_weighted_l1_over_batch() -> None:
    # B = 2, A = 1, 1x1 map
    pred = torch.tensor([[0.5, -1.0, 2.0, 0.0], [1.0, 1.0, 1.0, 1.0]]).view(2, 4, 1, 1)
    target = torch.tensor([[0.0, 0.0, 0.0, 0.0], [1.5, 0.0, 1.0, 3.0]]).view(2, 4, 1, 1, 1)
    weight = torch.tensor([0.5, 0.25]).view(2, 1, 1, 1)
    expected = (0.5 * (0.5 + 1.0 + 2.0 + 0.0) + 0.25 * (0.5 + 1.0 + 0.0 + 2.0)) / 2
    assert weight_l1_loss(pred, target, weight).item() == pytest.approx(expected, rel=1e-6)


def test_weight_l1_loss_layout_coordinate_major() -> None:
    # A = 2: channels dx0 dx1 dy0 dy1 dw0 dw1 dh0 dh1; only anchor 1 is weighted
    pred = torch.arange(8, dtype=torch.float32).view(1, 8, 1, 1)
    target = torch.zeros(1, 4, 2, 1, 1)
    weight = torch.tensor([0.0, 1.0]).view(1, 2, 1, 1)
    assert weight_l1_loss(pred, target, weight).item() == pytest.approx(1 + 3 + 5 + 7)


def test_mask_positions_are_flat_b_row_col() -> None:
    w = torch.zeros(2, 1, 3, 3)
    w[0, 0, 1, 2] = 1
    w[1, 0, 0, 0] = 1
    w[1, 0, 2, 1] = 0.5  # only weight == 1 counts
    assert select_mask_positions(w).tolist() == [5, 9]


@pytest.mark.parametrize("map_size, search, padding", [(25, 255, 32), (3, 143, 0), (17, 255, 0)])
def test_mask_label_padding(map_size: int, search: int, padding: int) -> None:
    assert mask_label_padding(map_size, search) == padding


def test_mask_label_padding_rejects_impossible_sizes() -> None:
    with pytest.raises(ValueError):
        mask_label_padding(25, 256)
    with pytest.raises(ValueError):
        mask_label_padding(2, 255)


def test_mask_label_window_position_and_zero_padding() -> None:
    label = -torch.ones(1, 1, 255, 255)
    label[0, 0, 31, 31] = 1.0  # centre of window (0, 0)
    label[0, 0, 127, 135] = 1.0  # centre of window (12, 13): (31 + 8 * 12, 31 + 8 * 13)
    windows = mask_label_windows(label, torch.tensor([0, 12 * 25 + 13]), (25, 25)).view(2, 127, 127)
    assert windows[0, 63, 63] == 1 and windows[1, 63, 63] == 1
    assert (windows[0, :32] == 0).all() and (windows[0, :, :32] == 0).all()  # zero padding
    assert (windows[0, 32:, 32:] != 0).all()
    assert (windows[1] != 0).all()


def test_soft_margin_mask_loss_and_iou_by_hand() -> None:
    # one position of the 3x3 map of a 143 crop (no padding); logits x, labels y: loss = mean log(1 + exp(-y x))
    label_mask = -torch.ones(1, 1, 143, 143)
    label_mask[0, 0, 0:10, 0:10] = 1.0
    logits = torch.full((1, 16129), -2.0)
    logits.view(127, 127)[0:5, 0:10] = 3.0  # 50 predicted foreground pixels inside the 100 labelled ones
    logits.view(127, 127)[50, 50] = 0.0  # logit 0 counts as foreground (>= 0), outside the label
    out = {"cls": torch.zeros(1, 10, 3, 3), "loc": torch.zeros(1, 20, 3, 3), "mask": logits.requires_grad_(),
           "mask_index": torch.tensor([0])}
    batch = {"label_cls": torch.full((1, 5, 3, 3), -1), "label_loc": torch.zeros(1, 4, 5, 3, 3),
             "label_loc_weight": torch.zeros(1, 5, 3, 3), "label_mask": label_mask}
    losses = compute_losses(out, batch, (1.0, 1.2, 36.0))
    terms = (50 * math.log1p(math.exp(-3.0))  # label +1, logit 3
             + 50 * math.log1p(math.exp(2.0))  # label +1, logit -2
             + math.log(2.0)  # label -1, logit 0
             + (16129 - 101) * math.log1p(math.exp(-2.0)))  # label -1, logit -2
    assert losses["mask"].item() == pytest.approx(terms / 16129, rel=1e-5)
    assert losses["iou_mean"].item() == pytest.approx(50 / 101, rel=1e-6)
    assert losses["iou_at_5"].item() == 0.0 and losses["iou_at_7"].item() == 0.0
    assert losses["total"].item() == pytest.approx(36.0 * losses["mask"].item(), rel=1e-6)
    losses["total"].backward()
    assert out["mask"].grad is not None


def test_soft_margin_equals_torch_and_does_not_overflow() -> None:
    torch.manual_seed(0)
    logits = torch.randn(4, 16129) * 15  # |x| < 88: torch stays finite
    labels = torch.randint(-1, 2, (4, 16129)).float()
    torch.testing.assert_close(soft_margin_loss(logits, labels), F.soft_margin_loss(logits, labels), rtol=1e-6, atol=0)
    big = torch.tensor([[-100.0, 100.0]])
    assert torch.isinf(F.soft_margin_loss(big, torch.tensor([[1.0, -1.0]])))
    assert soft_margin_loss(big, torch.tensor([[1.0, -1.0]])).item() == pytest.approx(100.0)


def test_iou_thresholds_are_strict_and_padding_is_background() -> None:
    labels = torch.tensor([[1, 1, -1, -1], [1, 1, 1, 1], [1, -1, 0, 0]], dtype=torch.float32)
    logits = torch.tensor([[1.0, -1.0, -1.0, -1.0],  # IoU 1/2, not counted at 0.5
                           [1.0, 1.0, 1.0, -1.0],  # IoU 3/4
                           [1.0, -1.0, 1.0, 1.0]])  # padding predicted fg: IoU 1/3
    mean, at5, at7, per = iou_measure(logits, labels)
    assert per.tolist() == pytest.approx([0.5, 0.75, 1 / 3])
    assert mean.item() == pytest.approx((0.5 + 0.75 + 1 / 3) / 3)
    assert at5.item() == pytest.approx(1 / 3) and at7.item() == pytest.approx(1 / 3)


def test_total_is_weighted_sum() -> None:
    torch.manual_seed(0)
    out = {"cls": torch.randn(2, 10, 25, 25), "loc": torch.randn(2, 20, 25, 25), "mask": torch.randn(0, 3969),
           "mask_index": torch.zeros(0, dtype=torch.long)}
    label_cls = torch.randint(-1, 2, (2, 5, 25, 25))
    batch = {"label_cls": label_cls, "label_loc": torch.randn(2, 4, 5, 25, 25),
             "label_loc_weight": (label_cls == 1).float() / 10, "label_mask": torch.ones(2, 1, 255, 255)}
    a = compute_losses(out, batch, (1.0, 1.2, 36.0))
    b = compute_losses(out, batch, (1.0, 1.0, 32.0))
    assert a["mask"].item() == 0.0
    assert a["total"].item() == pytest.approx(a["cls"].item() + 1.2 * a["loc"].item(), rel=1e-6)
    assert b["total"].item() == pytest.approx(b["cls"].item() + b["loc"].item(), rel=1e-6)
