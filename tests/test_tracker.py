"""SiamMask tracker: hand-computed box step, penalties, crops, mask paste-back, multi-target state, serialisation."""
from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
import torch
from tracking_helpers import StubNet, small_sharp_model

from siammask.tracker import SiamMaskTracker, TargetState, get_subwindow_tracking, select_anchor
from siammask.tracker.fast import fold_batchnorms, make_fast_model
from siammask.tracker.mask_ops import crop_back, label_map, paste_mask, polygon_from_mask
from siammask.utils.bbox import get_axis_aligned_bbox, mask_to_xywh, vot_rect_to_polygon8, xywh_to_cxcywh
from siammask.utils.config import HpConfig

HP = {"penalty_k": 0.1, "window_influence": 0.1, "lr": 0.5}


def _frame(value: int = 100, size: tuple[int, int] = (320, 240)) -> np.ndarray:
    return np.full((size[1], size[0], 3), value, np.uint8)


# ---------------------------------------------------------------------------------------------- box step (stub)
def test_box_moves_to_hand_computed_place() -> None:
    """Stub peak: anchor 1 (88x40) at row 14, col 10 -> centre (-16, +16) in the crop; loc (0.25, -0.5, 0, ln 1.5).

    Hand computation (init box x,y,w,h = 100,80,60,40 -> centre (130, 100), size (60, 40)):
      context size sqrt((60+50)(40+50)) = 99.4987, scale_x = 127/99.4987 = 1.276398;
      decoded box in the crop: cx = 0.25*88 - 16 = 6, cy = -0.5*40 + 16 = -4, w = 88, h = 40*1.5 = 60;
      target in the crop (76.584, 51.056): sz = 127; sz(88, 60) = sqrt(162*134) = 147.336 -> s_c = 1.160129;
      r_c = (76.584/51.056)/(88/60) = 1.022727; penalty = exp(-(r_c*s_c - 1)*0.1) = 0.981523;
      score = sigmoid(20 - (-20)) ~ 1; lr = 0.981523 * 0.5 = 0.490762;
      centre = (130 + 6/1.276398, 100 - 4/1.276398) = (134.70073, 96.86618);
      size = (60*(1-lr) + 88/1.276398*lr, 40*(1-lr) + 60/1.276398*lr) = (64.38938, 43.43890).
    """
    net = StubNet()
    tracker = SiamMaskTracker(net, HP, "cpu", mask=False)
    frame = _frame()
    state = tracker.init(frame, (100, 80, 60, 40))
    res = tracker.track(state, frame)
    assert res.response_pos == (14, 10)
    np.testing.assert_allclose(res.target_pos, [134.70073, 96.86618], atol=2e-4)
    np.testing.assert_allclose(res.target_sz, [64.38938, 43.43890], atol=2e-4)
    np.testing.assert_allclose(res.box, [134.70073 - 64.38938 / 2, 96.86618 - 43.43890 / 2, 64.38938, 43.43890],
                               atol=3e-4)
    assert res.score == pytest.approx(1.0, abs=1e-6) and not res.lost
    assert res.mask is None
    np.testing.assert_allclose(res.polygon, [[res.box[0], res.box[1]], [res.box[0] + res.box[2], res.box[1]],
                                             [res.box[0] + res.box[2], res.box[1] + res.box[3]],
                                             [res.box[0], res.box[1] + res.box[3]]])
    # The state was updated in place and the network saw one 255 crop; no mask head without mask mode.
    np.testing.assert_allclose(state.target_pos, res.target_pos)
    assert net.calls[-1] == ("track", (1, 3, 255, 255), False)


def test_box_is_clamped_to_the_image() -> None:
    """A prediction 100 anchor-widths to the right lands beyond the frame: centre clamps to W, size to [10, W]."""
    net = StubNet(loc=(100.0, 0.0, math.log(0.01), math.log(0.01)))
    tracker = SiamMaskTracker(net, {"penalty_k": 0.0, "window_influence": 0.0, "lr": 1.0}, "cpu", mask=False)
    frame = _frame()
    state = tracker.init(frame, (100, 80, 60, 40))
    res = tracker.track(state, frame)
    assert res.target_pos[0] == 320.0  # clamped to im_w
    np.testing.assert_allclose(res.target_sz, [10.0, 10.0])  # 88*0.01/scale and 40*0.01/scale < 10 -> 10


def test_lost_flag_follows_the_score_threshold() -> None:
    net = StubNet(fg_logit=-0.5)  # peak foreground probability sigmoid(-0.5 - 0) = 0.3775
    frame = _frame()
    low = SiamMaskTracker(net, HP, "cpu", mask=False, lost_threshold=0.5)
    state = low.init(frame, (100, 80, 60, 40))
    res = low.track(state, frame)
    assert res.score == pytest.approx(1 / (1 + math.exp(0.5)), abs=1e-6)
    assert res.lost and state.lost
    high = SiamMaskTracker(net, HP, "cpu", mask=False, lost_threshold=0.3)
    assert not high.track(high.init(frame, (100, 80, 60, 40)), frame).lost


# ---------------------------------------------------------------------------------------------- penalties / window
def _hp(**kw: float) -> HpConfig:
    return HpConfig(**kw)


def test_penalty_and_window_hand_case() -> None:
    """Two candidates (score_size 1, 2 anchors), target 32x32 at scale 2 (64x64 in the crop).

    Candidate 0: 64x64, score 0.9 -> no size/ratio change, penalty 1.
    Candidate 1: 128x128, score 0.95 -> sz 256 vs 128, s_c = 2, r_c = 1, penalty = exp(-(2 - 1)*0.5) = 0.606531.
    window [1, 1], influence 0.2: pscore = 0.8*[0.9, 0.576204] + 0.2 -> candidate 0 wins.
    window [0, 1], influence 0.5: pscore = [0.45, 0.788102] -> candidate 1 wins; lr = 0.606531*0.95*0.4 = 0.230482;
    new size = 32*(1 - lr) + (128/2)*lr = 39.37542; new centre = (10 + 8/2, 20 - 4/2).
    """
    anchor = np.array([[0, 0, 64, 64], [0, 0, 128, 128]], np.float32)
    delta = np.array([[0.0, 8 / 128], [0.0, -4 / 128], [0.0, 0.0], [0.0, 0.0]], np.float32)
    score = np.array([0.9, 0.95], np.float32)
    pos, sz = np.array([10.0, 20.0]), np.array([32.0, 32.0])
    pick = select_anchor(delta, score, anchor, np.ones(2), pos, sz, 2.0,
                         _hp(penalty_k=0.5, window_influence=0.2, lr=0.4), 1)
    np.testing.assert_allclose(pick.penalty, [1.0, 0.606531], atol=1e-6)
    np.testing.assert_allclose(pick.pscore, [0.92, 0.6609632], atol=1e-6)
    assert pick.index == 0
    np.testing.assert_allclose(pick.target_sz, [32.0, 32.0])  # lr = 1*0.9*0.4, pred = target -> unchanged
    pick = select_anchor(delta, score, anchor, np.array([0.0, 1.0]), pos, sz, 2.0,
                         _hp(penalty_k=0.5, window_influence=0.5, lr=0.4), 1)
    assert pick.index == 1 and pick.anchor == 1 and (pick.row, pick.col) == (0, 0)
    np.testing.assert_allclose(pick.pscore, [0.45, 0.7881022], atol=1e-6)
    np.testing.assert_allclose(pick.target_sz, [39.37542, 39.37542], atol=1e-5)
    np.testing.assert_allclose(pick.target_pos, [14.0, 18.0], atol=1e-6)


def test_ratio_penalty_hand_case() -> None:
    """Same size measure, different aspect: target 64x64 in the crop vs 32x128 -> r_c = 1/(32/128) = 4.

    sz(32, 128) = sqrt((32+80)(128+80)) = 152.6303 vs sz(64, 64) = 128 -> s_c = 1.192424;
    penalty = exp(-(4*1.192424 - 1)*0.1) = 0.685937.
    """
    anchor = np.array([[0, 0, 32, 128]], np.float32)
    pick = select_anchor(np.zeros((4, 1), np.float32), np.array([1.0], np.float32), anchor, np.zeros(1),
                         np.array([0.0, 0.0]), np.array([32.0, 32.0]), 2.0, _hp(penalty_k=0.1, lr=0.0), 1)
    np.testing.assert_allclose(pick.penalty, [0.685937], atol=1e-6)


# ---------------------------------------------------------------------------------------------- crops
def test_subwindow_padding_hand_case() -> None:
    """4x5 image, centre (0.5, 0.5), side 3: c = 2, xmin = round(-1.5) = -2 (round half to even), xmax = 0.

    Pixels left of / above the image take avg_chans truncated to uint8: (10.7, 20.2, 30.9) -> (10, 20, 30).
    """
    im = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    avg = np.array([10.7, 20.2, 30.9])
    patch = get_subwindow_tracking(im, (0.5, 0.5), 3, 3, avg)
    expected = np.empty((3, 3, 3), np.uint8)
    expected[:] = (10, 20, 30)
    expected[2, 2] = im[0, 0]
    np.testing.assert_array_equal(patch, expected)
    # Inside the image, centre (2.5, 1.5), side 2: c = 1.5, xmin = round(1.0) = 1, ymin = round(0.0) = 0.
    np.testing.assert_array_equal(get_subwindow_tracking(im, (2.5, 1.5), 2, 2, avg), im[0:2, 1:3])
    # Bottom-right overhang: centre (4, 3), side 4: c = 2.5, xmin = round(1.5) = 2 -> x 2..5, y round(0.5)=0 -> 0..3.
    patch = get_subwindow_tracking(im, (4.0, 3.0), 4, 4, avg)
    np.testing.assert_array_equal(patch[:, :3], im[0:4, 2:5])
    assert (patch[:, 3] == (10, 20, 30)).all()
    # Entirely outside: all padding; resized crops are cv2.resize of the padded crop.
    assert (get_subwindow_tracking(im, (50.0, 50.0), 3, 3, avg) == (10, 20, 30)).all()
    big = get_subwindow_tracking(im, (0.5, 0.5), 7, 3, avg)
    np.testing.assert_array_equal(big, cv2.resize(expected, (7, 7)))


# ---------------------------------------------------------------------------------------------- mask paste-back
def test_crop_back_hand_case_with_a_ramp() -> None:
    """A horizontal ramp mask[i, j] = j pasted at x = 10, y = 20 (scale 1) into a 200x100 image.

    crop_back's map is x' = a*x + c with a = (W - 1)/W, c = a*10, so a destination pixel x samples the source at
    x/a - 10; bilinear interpolation of a ramp is exact (OpenCV interpolates at 1/32 px), outside it is -1.
    """
    mask = np.tile(np.arange(63, dtype=np.float32), (63, 1))
    out = paste_mask(mask, [10.0, 20.0, 63.0, 63.0], 200, 100)
    assert out.shape == (100, 200) and out.dtype == np.float32
    a = 199 / 200
    for x, y in [(15, 30), (40, 50), (70, 80)]:
        assert out[y, x] == pytest.approx(x / a - 10, abs=0.04)
    assert out[5, 5] == -1.0 and out[95, 150] == -1.0
    # crop_back itself: the identity box maps pixel to pixel (a = (W-1)/(W-1) = 1).
    img = np.random.default_rng(0).random((6, 8)).astype(np.float32)
    np.testing.assert_allclose(crop_back(img, [0, 0, 7, 5], (8, 6)), img, atol=1e-6)


def test_polygon_from_mask_rotated_rectangle_and_fallbacks() -> None:
    prob = np.zeros((120, 160), np.float32)
    rect = ((80.0, 60.0), (60.0, 24.0), 30.0)
    cv2.fillPoly(prob, [cv2.boxPoints(rect).round().astype(np.int32)], 1.0)
    poly = polygon_from_mask(prob, 0.5, (0, 0), (1, 1))
    (cx, cy), (w, h), _ = cv2.minAreaRect(poly.astype(np.float32))
    assert (cx, cy) == pytest.approx((80, 60), abs=1.0)
    assert sorted((w, h)) == pytest.approx([24, 60], abs=2.0)
    # A blob of area <= 100 falls back to the box of (centre, size).
    small = np.zeros((120, 160), np.float32)
    small[10:18, 10:18] = 1.0  # contour area 49
    np.testing.assert_allclose(polygon_from_mask(small, 0.5, (50, 40), (20, 10)),
                               [[40, 35], [60, 35], [60, 45], [40, 45]])
    np.testing.assert_allclose(polygon_from_mask(np.zeros((5, 5), np.float32), 0.5, (2, 2), (2, 2)),
                               [[1, 1], [3, 1], [3, 3], [1, 3]])


def test_mask_and_polygon_with_stub_refine() -> None:
    """Stub refine: +10 logits on rows/cols [32, 96) of the 127 window of cell (14, 10), -10 elsewhere.

    Search crop side round(199.78) = 200 at the previous centre (130, 100) -> crop_box (30, 0, 200, 200);
    sub_box = (30 + 6*8*200/255, 0 + 10*8*200/255, 127*200/255) = (67.647, 62.745, 99.608); the warp scales by
    (W-1)/W, (H-1)/H; the 0.35 crossings of the interpolated step sit at source 31.35 and 95.65, so the mask covers
    pixels x 92..142, y 87..137 and its minAreaRect has those corners.
    """
    net = StubNet()
    tracker = SiamMaskTracker(net, {**HP, "seg_thr": 0.35}, "cpu", mask=True, refine=True)
    frame = _frame()
    state = tracker.init(frame, (100, 80, 60, 40))
    res = tracker.track(state, frame)
    assert net.calls[-2] == ("track", (1, 3, 255, 255), False)  # no 3969 head when refining
    assert net.calls[-1][0] == "refine"
    assert res.mask.shape == (240, 320)
    assert res.mask[110, 115] == pytest.approx(1.0, abs=1e-4)
    assert res.mask[70, 75] == pytest.approx(0.0, abs=1e-4)  # inside the window, outside the square
    assert res.mask[10, 10] == -1.0  # outside the pasted window
    xs, ys = sorted(set(np.round(res.polygon[:, 0]))), sorted(set(np.round(res.polygon[:, 1])))
    assert xs == pytest.approx([92, 142], abs=1) and ys == pytest.approx([87, 137], abs=1)
    # Base head (63x63): same square at half resolution, the same place within a pixel or two.
    base = SiamMaskTracker(StubNet(), {**HP, "seg_thr": 0.35}, "cpu", mask=True, refine=False)
    res63 = base.track(base.init(frame, (100, 80, 60, 40)), frame)
    assert sorted(set(np.round(res63.polygon[:, 0]))) == pytest.approx([92, 142], abs=2)


def test_label_map_takes_the_most_probable_object() -> None:
    a = np.array([[0.9, 0.2], [0.5, -1.0]], np.float32)
    b = np.array([[0.4, 0.25], [0.6, -1.0]], np.float32)
    np.testing.assert_array_equal(label_map([a, b, None], 0.3, (2, 2)), [[1, 0], [2, 0]])


# ---------------------------------------------------------------------------------------------- init paths
def test_init_mask_uses_bounding_rect_and_matches_box_init() -> None:
    frame = (np.random.default_rng(1).random((120, 160, 3)) * 255).astype(np.uint8)
    mask = np.zeros((120, 160), np.uint8)
    mask[30:50, 40:90] = 3
    assert mask_to_xywh(mask) == (40, 30, 50, 20)
    tracker = SiamMaskTracker(StubNet(), HP, "cpu", mask=False)
    s1 = tracker.init_mask(frame, mask)
    s2 = tracker.init(frame, (40, 30, 50, 20))
    np.testing.assert_array_equal(s1.target_pos, [65.0, 40.0])
    np.testing.assert_array_equal(s1.target_sz, [50.0, 20.0])
    assert torch.equal(s1.zf, s2.zf)
    with pytest.raises(ValueError, match="empty"):
        tracker.init_mask(frame, np.zeros((120, 160), np.uint8))
    with pytest.raises(ValueError, match="positive"):
        tracker.init(frame, (1, 2, 0, 5))
    with pytest.raises(ValueError, match="BGR uint8"):
        tracker.init(frame.astype(np.float32), (1, 2, 3, 5))


def test_vot_init_box_helpers() -> None:
    # A rectangle polygon of the original's loader (x, y, w, h) = (10, 20, 30, 40) -> inclusive ends.
    poly = vot_rect_to_polygon8([10, 20, 30, 40])
    np.testing.assert_array_equal(poly, [10, 20, 10, 59, 39, 59, 39, 20])
    # Its axis-aligned box: centre = mean of vertices (24.5, 39.5), size = extent (29, 39) + 1.
    assert get_axis_aligned_bbox(poly) == pytest.approx((24.5, 39.5, 30.0, 40.0))
    # A 45-degree square of side 10*sqrt(2): extent 20x20, area ratio 200/400 -> size 20*sqrt(0.5) + 1.
    diamond = [10, 0, 20, 10, 10, 20, 0, 10]
    assert get_axis_aligned_bbox(diamond) == pytest.approx((10, 10, 20 * math.sqrt(0.5) + 1, 20 * math.sqrt(0.5) + 1))
    assert get_axis_aligned_bbox([1, 2, 3, 4]) == pytest.approx((2.5, 4.0, 3.0, 4.0))
    np.testing.assert_array_equal(xywh_to_cxcywh([1, 2, 3, 4]), [2.5, 4.0, 3.0, 4.0])


# ---------------------------------------------------------------------------------------------- multi-target
def test_track_many_equals_separate_tracks_with_stub() -> None:
    """Per-sample stub outputs: one batched call (B = 2) gives exactly the two single-target results."""
    frames = [(np.random.default_rng(i).random((120, 160, 3)) * 255).astype(np.uint8) for i in range(3)]
    boxes = [(20, 30, 40, 30), (90, 50, 30, 40)]
    net = StubNet(peak_from_template=True, loc=(0.1, 0.05, 0.02, -0.03))
    tracker = SiamMaskTracker(net, HP, "cpu", mask=True, refine=True)
    alone = [tracker.init(frames[0], b) for b in boxes]
    batched = [tracker.init(frames[0], b) for b in boxes]
    for frame in frames[1:]:
        singles = [tracker.track(s, frame) for s in alone]
        net.calls.clear()
        many = tracker.track_many(batched, frame)
        assert [c for c in net.calls if c[0] == "track"] == [("track", (2, 3, 255, 255), False)]
        for r1, r2 in zip(singles, many):
            np.testing.assert_array_equal(r1.box, r2.box)
            np.testing.assert_array_equal(r1.polygon, r2.polygon)
            np.testing.assert_array_equal(r1.mask, r2.mask)
            assert r1.score == r2.score
    assert not np.array_equal(alone[0].target_pos, alone[1].target_pos)


@pytest.fixture(scope="module")
def sharp_model() -> torch.nn.Module:
    return small_sharp_model()


@pytest.fixture(scope="module")
def clip() -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    base = cv2.resize(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8), (160, 120), interpolation=cv2.INTER_CUBIC)
    frames = []
    for i in range(4):
        im = base.copy()
        cv2.ellipse(im, (50 + 4 * i, 60), (18, 12), 10 * i, 0, 360, (30, 200, 240), -1)
        cv2.rectangle(im, (100, 30 + 3 * i), (130, 60 + 3 * i), (200, 40, 40), -1)
        frames.append(im)
    return frames


def test_two_targets_interleaved_equal_each_alone(sharp_model: torch.nn.Module, clip: list[np.ndarray]) -> None:
    """N targets = N states on one (stateless) model: interleaving A and B changes nothing for either."""
    boxes = [(32, 48, 36, 24), (100, 30, 30, 30)]
    tracker = SiamMaskTracker(sharp_model, {"out_size": 127}, "cpu", mask=True, refine=True)

    def run_alone(box: tuple[int, ...]) -> list:
        st = tracker.init(clip[0], box)
        return [tracker.track(st, im) for im in clip[1:]]

    alone = [run_alone(b) for b in boxes]
    states = [tracker.init(clip[0], b) for b in boxes]
    for f, im in enumerate(clip[1:]):
        for k in (1, 0):  # B before A
            res = tracker.track(states[k], im)
            np.testing.assert_array_equal(res.box, alone[k][f].box)
            np.testing.assert_array_equal(res.polygon, alone[k][f].polygon)
            np.testing.assert_array_equal(res.mask, alone[k][f].mask)


def test_track_many_equals_separate_tracks_on_the_model(sharp_model: torch.nn.Module,
                                                        clip: list[np.ndarray]) -> None:
    """One network call for two targets gives exactly the single-target results (batch-invariant model)."""
    boxes = [(32, 48, 36, 24), (100, 30, 30, 30)]
    tracker = SiamMaskTracker(sharp_model, {"out_size": 127}, "cpu", mask=True, refine=True)
    alone = [tracker.init(clip[0], b) for b in boxes]
    together = [tracker.init(clip[0], b) for b in boxes]
    for im in clip[1:]:
        singles = [tracker.track(s, im) for s in alone]
        many = tracker.track_many(together, im)
        for r1, r2 in zip(singles, many):
            np.testing.assert_array_equal(r1.box, r2.box)
            np.testing.assert_array_equal(r1.polygon, r2.polygon)
            np.testing.assert_array_equal(r1.mask, r2.mask)


def test_target_state_round_trips_through_json(sharp_model: torch.nn.Module, clip: list[np.ndarray]) -> None:
    tracker = SiamMaskTracker(sharp_model, {"out_size": 127}, "cpu", mask=True, refine=True)
    state = tracker.init(clip[0], (32, 48, 36, 24))
    tracker.track(state, clip[1])
    text = json.dumps(state.to_dict())
    copy = TargetState.from_dict(json.loads(text))
    assert torch.equal(copy.zf, state.zf) and copy.zf.dtype == state.zf.dtype
    np.testing.assert_array_equal(copy.target_pos, state.target_pos)
    np.testing.assert_array_equal(copy.avg_chans, state.avg_chans)
    assert (copy.im_h, copy.im_w, copy.score, copy.lost, copy.frames) == \
        (state.im_h, state.im_w, state.score, state.lost, state.frames)
    r1, r2 = tracker.track(state, clip[2]), tracker.track(copy, clip[2])
    np.testing.assert_array_equal(r1.box, r2.box)
    np.testing.assert_array_equal(r1.mask, r2.mask)
    # Callers may set the centre / size (e.g. an annotator's correction) with plain sequences.
    copy.target_pos, copy.target_sz = (60.0, 50.0), [30, 20]
    assert np.isfinite(tracker.track(copy, clip[3]).box).all()


def test_batchnorm_folding_keeps_the_function(sharp_model: torch.nn.Module) -> None:
    """The fast mode's folded copy computes the same network in fp32 (to rounding) and leaves the model intact."""
    import copy

    folded = copy.deepcopy(sharp_model)
    assert fold_batchnorms(folded) == sum(isinstance(m, torch.nn.BatchNorm2d) for m in sharp_model.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    torch.manual_seed(0)
    z = torch.randint(0, 256, (1, 3, 127, 127)).float()
    x = torch.randint(0, 256, (1, 3, 255, 255)).float()
    with torch.inference_mode():
        o1 = sharp_model.track(sharp_model.template(z), x, mask_head=False)
        o2 = folded.track(folded.template(z), x, mask_head=False)
        for key in ("cls", "loc", "corr_feature"):
            err = (o1[key] - o2[key]).abs().max() / o1[key].abs().max()
            assert err < 1e-3, key
    fast = make_fast_model(sharp_model)
    assert next(fast.parameters()).dtype == torch.bfloat16
    assert next(sharp_model.parameters()).dtype == torch.float32


def test_target_state_json_has_a_version_and_refuses_others(sharp_model: torch.nn.Module,
                                                             clip: list[np.ndarray]) -> None:
    from siammask.tracker import STATE_VERSION, TrackerStateError

    state = SiamMaskTracker(sharp_model, {"out_size": 127}, "cpu", mask=False).init(clip[0], (32, 48, 36, 24))
    data = json.loads(json.dumps(state.to_dict()))
    assert data["version"] == STATE_VERSION == 1
    assert data["zf"]["shape"] == [1, 256, 7, 7]
    assert set(data) == {"version", "target_pos", "target_sz", "avg_chans", "im_h", "im_w", "score", "lost",
                         "frames", "zf"}
    with pytest.raises(TrackerStateError, match="version 2"):
        TargetState.from_dict({**data, "version": 2})
    with pytest.raises(TrackerStateError, match="version None"):
        TargetState.from_dict({k: v for k, v in data.items() if k != "version"})
    short = {**data, "zf": {**data["zf"], "shape": [1, 256, 7, 8]}}  # 12544 floats stored, 14336 claimed
    with pytest.raises(TrackerStateError, match="'zf' holds 50176 bytes, shape \\[1, 256, 7, 8\\] needs 57344"):
        TargetState.from_dict(short)


def test_track_result_is_frozen(clip: list[np.ndarray]) -> None:
    import dataclasses

    tracker = SiamMaskTracker(StubNet(), HP, "cpu", mask=False)
    result = tracker.track(tracker.init(clip[0], (32, 48, 36, 24)), clip[1])
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.score = 0.0  # type: ignore[misc]
    with pytest.raises(TypeError):
        result["box"]  # type: ignore[index]  # attributes only, no dict view


def test_build_tracker_missing_checkpoint_names_the_file(tmp_path) -> None:
    from siammask.models.weights import CheckpointError
    from siammask.tracker import build_tracker

    missing = tmp_path / "nothing_here.pth"
    with pytest.raises(CheckpointError, match=f"checkpoint not found: {missing}"):
        build_tracker("experiments/siammask_sharp/config_vot.json", str(missing), "cpu")


def test_build_tracker_user_errors_are_siammask_errors(tmp_path, sharp_model: torch.nn.Module) -> None:
    from siammask.tracker import build_tracker
    from siammask.utils.config import ConfigError

    ckpt = tmp_path / "sharp.pth"
    torch.save(sharp_model.state_dict(), ckpt)
    bad_arch = tmp_path / "arch.json"
    bad_arch.write_text(json.dumps({"network": {"arch": "SiamFC"}}))
    with pytest.raises(ConfigError, match=f"{bad_arch}: key 'network.arch'"):
        build_tracker(str(bad_arch), str(ckpt), "cpu")
    with pytest.raises(ConfigError, match="hp.windowing"):
        build_tracker("experiments/siammask_sharp/config_vot.json", str(ckpt), "cpu",
                      hp_overrides={"windowing": "gauss"})
    base = tmp_path / "base.json"
    base.write_text(json.dumps({"network": {"arch": "siammask_base"}}))
    from siammask.models.weights import CheckpointError

    with pytest.raises(CheckpointError, match="siammask_sharp checkpoint"):
        build_tracker(str(base), str(ckpt), "cpu")
    tracker, cfg, _ = build_tracker("experiments/siammask_sharp/config_vot.json", str(ckpt), "cpu")
    assert tracker.anchors_cfg == cfg.anchors and tracker.refine_enable
    assert not hasattr(tracker.model, "anchors")  # build_model stores no anchors on the model


def test_refine_without_a_refine_module_is_a_config_error() -> None:
    from siammask.utils.config import ConfigError

    class BaseNet:  # template / track / mask_at, no refine: the base model's interface
        template = track = mask_at = StubNet.track

    with pytest.raises(ConfigError, match="refinement module"):
        SiamMaskTracker(BaseNet(), HP, "cpu", mask=True, refine=True)
    assert not SiamMaskTracker(BaseNet(), HP, "cpu", mask=True).refine_enable
