"""utils.anchors against the original's anchors (conformance) and the hand-derived invariants of reference.md §H."""
from __future__ import annotations

import numpy as np

from siammask.utils.anchors import base_anchors, box_iou_x1y1x2y2, cosine_window, tracker_anchors, training_anchors
from siammask.utils.config import AnchorsConfig

CFG = AnchorsConfig()


def test_anchor_sizes_by_hand() -> None:
    wh = base_anchors(CFG)[:, 2:] * 2
    assert wh.tolist() == [[104, 32], [88, 40], [64, 64], [40, 80], [32, 96]]


def test_training_layout_invariants() -> None:
    corners, centres = training_anchors(CFG, 255, 25)
    assert centres.shape == (4, 5, 25, 25)
    assert np.array_equal(centres[0, 2, 0], 31 + 8 * np.arange(25))  # cx along a row
    assert np.array_equal(centres[1, 2, :, 0], 31 + 8 * np.arange(25))  # cy down a column
    assert np.array_equal(corners[2] - corners[0], centres[2])
    _, c143 = training_anchors(CFG, 143, 3)
    assert c143[0, 0, 0].tolist() == [63, 71, 79]


def test_tracker_layout_matches_training_layout() -> None:
    _, centres = training_anchors(CFG, 255, 25)
    flat = tracker_anchors(CFG, 25)
    for a, r, c in [(0, 0, 0), (3, 7, 19), (4, 24, 24)]:
        expected = centres[:, a, r, c] - np.array([127, 127, 0, 0], dtype=np.float32)
        assert np.array_equal(flat[a * 625 + r * 25 + c], expected)


def test_equal_to_the_original(conformance_dir) -> None:
    ref = np.load(conformance_dir / "anchors.npz")
    assert np.array_equal(base_anchors(CFG), ref["base_anchor_x1y1x2y2"])
    corners, centres = training_anchors(CFG, 255, 25)
    assert np.array_equal(corners, ref["train_anchor_x1y1x2y2"])
    assert np.array_equal(centres, ref["train_anchor_cxcywh"])
    assert np.array_equal(training_anchors(CFG, 143, 3)[1], ref["train143_anchor_cxcywh"])
    assert np.array_equal(tracker_anchors(CFG, 25), ref["tracker_anchor_cxcywh"])
    assert np.array_equal(cosine_window(25, 5), ref["tracker_window"])
    for box, iou in zip(ref["target_box_x1y1x2y2"], ref["iou"]):
        np.testing.assert_allclose(box_iou_x1y1x2y2(corners, box), iou, atol=1e-6)


def test_iou_by_hand() -> None:
    anchors = np.array([[0.0], [0.0], [10.0], [10.0]])
    assert box_iou_x1y1x2y2(anchors, (5, 0, 15, 10))[0] == 50 / 150
    assert box_iou_x1y1x2y2(anchors, (20, 20, 30, 30))[0] == 0.0


def test_uniform_window() -> None:
    assert np.array_equal(cosine_window(5, 2, "uniform"), np.ones(50))
