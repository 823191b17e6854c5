"""tools/vot_trax.py driven through vot-trax's own TraX client, against the tracker run in-process."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from tracking_helpers import tamed_sharp_model

REPO = Path(__file__).resolve().parents[1]
CONFIG = str(REPO / "experiments" / "siammask_sharp" / "config_vot.json")
FRAMES = 6


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from siammask.datasets.synthetic import write_vot_dataset
    from siammask.evaluation import load_vot_dataset

    root = tmp_path_factory.mktemp("trax")
    ckpt = str(root / "SiamMask_tiny.pth")
    torch.save(tamed_sharp_model().state_dict(), ckpt)
    write_vot_dataset(str(root / "data"), name="VOT2018", num_videos=1, num_frames=FRAMES, frame_size=(200, 150),
                      seed=4)
    [video] = list(load_vot_dataset("VOT2018", str(root / "data")))
    return {"ckpt": ckpt, "video": video}


class TraxSession:
    """tools/vot_trax.py in a subprocess and a trax.client.Client on its stdin/stdout."""

    def __init__(self, ckpt: str, *flags: str) -> None:
        import trax.client

        env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen([sys.executable, str(REPO / "tools" / "vot_trax.py"), "--config", CONFIG,
                                      "--resume", ckpt, "--device", "cpu", *flags], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0, env=env)
        self.client = trax.client.Client(stream=(self.proc.stdin.fileno(), self.proc.stdout.fileno()),
                                         log=lambda s: None)

    def close(self) -> tuple[int, str]:
        self.client.quit()
        _, err = self.proc.communicate(timeout=60)
        return self.proc.returncode, err.decode()


def _image(path: str):
    import trax

    return {"color": trax.FileImage.create(path)}


def _local(setup: dict, init, start: int, **kw) -> list:
    """The tracker's own results on frames start+1.. after init_cxcywh(frame start, init)."""
    from siammask.tracker import build_tracker

    tracker = build_tracker(CONFIG, setup["ckpt"], "cpu", **kw)[0]
    frames = [cv2.imread(p) for p in setup["video"].img_paths]
    state = tracker.init_cxcywh(frames[start], init)
    return [tracker.track(state, f) for f in frames[start + 1:]], tracker


def test_polygon_and_rectangle_init_and_reset_in_one_process(setup: dict) -> None:
    trax = pytest.importorskip("trax", reason="the TraX server needs vot-trax (pip install vot-trax)")
    from siammask.tracker.vot import gt_polygon8
    from siammask.utils.bbox import get_axis_aligned_bbox

    video = setup["video"]
    gt0 = np.asarray(video.gt[0], np.float64).ravel()
    session = TraxSession(setup["ckpt"], "--mask", "--refine", "--out", "polygon")
    client = session.client
    assert {"polygon", "rectangle", "mask"} <= set(client.region_formats)
    assert client.tracker_name == "SiamMask" and "vot" not in client._custom
    # 1. init by the ground-truth polygon, as tools/test.py
    polygon = trax.Polygon.create([tuple(p) for p in gt0.reshape(4, 2)])
    objects, _ = client.initialize(_image(video.img_paths[0]), [(polygon, {})], {})
    assert float(objects[0][1]["confidence"]) == 1.0
    want, _ = _local(setup, get_axis_aligned_bbox(gt0), 0, mask=True, refine=True)
    for path, expected in zip(video.img_paths[1:4], want):
        [(region, props)] = client.frame(_image(path), {}, [])[0]
        assert region.type == trax.Region.POLYGON
        np.testing.assert_allclose(np.array(list(region)), expected.polygon, atol=1e-3)
        assert abs(float(props["confidence"]) - expected.score) < 1e-4
    # 2. a reset: a second initialize (by rectangle) in the same process, tracked from frame 2
    rect = [float(v) for v in cv2.boundingRect(np.asarray(video.gt[2], np.float32).reshape(4, 2))]
    client.initialize(_image(video.img_paths[2]), [(trax.Rectangle.create(*rect), {})], {})
    want, _ = _local(setup, get_axis_aligned_bbox(gt_polygon8(rect)), 2, mask=True, refine=True)
    assert len(want) == FRAMES - 3
    moved = 0
    for path, expected in zip(video.img_paths[3:], want):
        [(region, _)] = client.frame(_image(path), {}, [])[0]
        np.testing.assert_allclose(np.array(list(region)), expected.polygon, atol=1e-3)
        moved += int(np.abs(expected.target_pos - np.array(rect[:2]) - np.array(rect[2:]) / 2).max() > 1)
    assert moved > 0
    code, err = session.close()
    assert code == 0, err
    assert "served 2 initialize request(s)" in err  # one process for both initializations


def test_mask_output_is_the_thresholded_mask_at_its_offset(setup: dict) -> None:
    trax = pytest.importorskip("trax", reason="the TraX server needs vot-trax (pip install vot-trax)")
    from siammask.utils.bbox import get_axis_aligned_bbox

    video = setup["video"]
    gt0 = np.asarray(video.gt[0], np.float64).ravel()
    session = TraxSession(setup["ckpt"], "--mask", "--refine", "--out", "mask")
    polygon = trax.Polygon.create([tuple(p) for p in gt0.reshape(4, 2)])
    session.client.initialize(_image(video.img_paths[0]), [(polygon, {})], {})
    want, tracker = _local(setup, get_axis_aligned_bbox(gt0), 0, mask=True, refine=True)
    height, width = cv2.imread(video.img_paths[0]).shape[:2]
    for path, expected in zip(video.img_paths[1:3], want):
        [(region, _)] = session.client.frame(_image(path), {}, [])[0]
        assert region.type == trax.Region.MASK
        got = np.zeros((height, width), np.uint8)
        crop = region.array(False)
        x0, y0 = region.offset()
        got[y0:y0 + crop.shape[0], x0:x0 + crop.shape[1]] = crop
        np.testing.assert_array_equal(got > 0, expected.mask > tracker.hp.seg_thr)
        assert (got > 0).any()
    code, err = session.close()
    assert code == 0, err


def test_missing_vot_trax_and_bad_flags_are_one_line_errors(setup: dict, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture) -> None:
    from siammask.tools import vot_trax

    args = vot_trax.get_args_parser().parse_args(["--config", CONFIG, "--resume", setup["ckpt"], "--out", "mask"])
    monkeypatch.setitem(sys.modules, "trax", None)  # import trax -> ImportError
    assert vot_trax.main(args) == 2
    assert capsys.readouterr().err.strip() == "error: tools/vot_trax.py needs vot-trax: pip install vot-trax"
    monkeypatch.undo()
    pytest.importorskip("trax", reason="the TraX server needs vot-trax (pip install vot-trax)")
    assert vot_trax.main(args) == 2  # --out mask without --mask, refused before any model is loaded
    assert "--out mask needs --mask" in capsys.readouterr().err
