"""VOT reset protocol (scripted fake tracker), result-file grammar, tools/test.py end to end, tools/tune_vot.py."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from tracking_helpers import small_sharp_model

from siammask.tracker import run_vot_sequence, vot_result_path, write_vot_result
from siammask.tracker.vot import format_vot_regions
from siammask.utils.bbox import get_axis_aligned_bbox

ROOT = Path(__file__).resolve().parents[1]
CONFIG = str(ROOT / "experiments" / "siammask_sharp" / "config_vot.json")


# ---------------------------------------------------------------------------------------------- protocol
@dataclass
class FakeVideo:
    name: str
    img_paths: list[str]
    gt: np.ndarray


@dataclass
class FakeResult:
    polygon: np.ndarray
    box: np.ndarray
    score: float = 0.9


class ScriptedTracker:
    """Reports the ground truth (overlap 1) except on `misses` frames, where it reports a far-away box (overlap 0).

    Frames are images whose pixel value is the frame index (see `reader`).
    """

    def __init__(self, gt: np.ndarray, misses: set[int]) -> None:
        self.gt = gt
        self.misses = misses
        self.inits: list[tuple[int, tuple[float, ...]]] = []

    def init_cxcywh(self, frame: np.ndarray, box: tuple[float, ...]) -> dict:
        self.inits.append((int(frame[0, 0, 0]), tuple(box)))
        return {}

    def track(self, state: dict, frame: np.ndarray) -> FakeResult:
        f = int(frame[0, 0, 0])
        if f in self.misses:
            return FakeResult(polygon=np.array([[80, 80], [90, 80], [90, 90], [80, 90]], float),
                              box=np.array([80.0, 80.0, 10.0, 10.0]))
        g = self.gt[f]
        if g.size == 4:
            return FakeResult(polygon=np.zeros((4, 2)), box=g.astype(float))
        xs, ys = g[0::2], g[1::2]
        return FakeResult(polygon=g.reshape(4, 2).astype(float),
                          box=np.array([xs.min(), ys.min(), xs.max() - xs.min(), ys.max() - ys.min()]))


def reader(path: str) -> np.ndarray:
    return np.full((100, 100, 3), int(path), np.uint8)


def _square_gt(n: int) -> np.ndarray:
    return np.array([[20 + i, 30, 40 + i, 30, 40 + i, 50, 20 + i, 50] for i in range(n)], float)


def test_vot_protocol_codes_by_hand() -> None:
    """Failures at frames 3 and 12 of 20: re-init 5 frames later (8, 17), frames in between are 0.

    Expected: 1 L L 2 0 0 0 0 1 L L L 2 0 0 0 0 1 L L (L = the reported polygon).
    """
    gt = _square_gt(20)
    video = FakeVideo("fake", [str(i) for i in range(20)], gt)
    tracker = ScriptedTracker(gt, misses={3, 12})
    ticks = iter(range(1000))
    res = run_vot_sequence(tracker, video, use_polygon=True, image_reader=reader, clock=lambda: float(next(ticks)))
    codes = [r if isinstance(r, int) else "L" for r in res.regions]
    assert codes == [1, "L", "L", 2, 0, 0, 0, 0, 1, "L", "L", "L", 2, 0, 0, 0, 0, 1, "L", "L"]
    assert res.lost == 2
    assert [f for f, _ in tracker.inits] == [0, 8, 17]
    assert tracker.inits[1][1] == pytest.approx(get_axis_aligned_bbox(gt[8]))
    assert res.regions[1] == pytest.approx(list(gt[1]))
    assert res.time_s == 20.0 and res.fps == pytest.approx(19 / 20)  # one tick per frame, speed = last index / time


def test_vot_protocol_box_mode_with_rectangle_ground_truth() -> None:
    """4-value gt rows become polygons as the original loader did; box mode reports and records x, y, w, h."""
    rects = np.array([[20 + i, 30, 20, 20] for i in range(8)], float)
    video = FakeVideo("rects", [str(i) for i in range(8)], rects)
    tracker = ScriptedTracker(rects, misses={2})
    res = run_vot_sequence(tracker, video, use_polygon=False, image_reader=reader)
    assert [r if isinstance(r, int) else len(r) for r in res.regions] == [1, 4, 2, 0, 0, 0, 0, 1]
    # init from the converted polygon (x, y, x, y+h-1, x+w-1, y+h-1, x+w-1, y): centre x + (w-1)/2, size w.
    assert tracker.inits[0][1] == pytest.approx((29.5, 39.5, 20.0, 20.0))


def test_result_file_grammar(tmp_path: Path) -> None:
    regions = [1, [1.0, 2.5, 3.25, 4.00004], 2, 0, [0.1, -0.00001, 7, 8, 9, 10, 11, 12.123456]]
    path = vot_result_path(str(tmp_path / "VOT2018"), "T", "vid")
    assert path == str(tmp_path / "VOT2018" / "T" / "baseline" / "vid" / "vid_001.txt")
    write_vot_result(path, regions)
    assert Path(path).read_text() == ("1\n1.0000,2.5000,3.2500,4.0000\n2\n0\n"
                                      "0.1000,-0.0000,7.0000,8.0000,9.0000,10.0000,11.0000,12.1235\n")
    assert format_vot_regions([np.int64(1)]) == "1\n"


# ---------------------------------------------------------------------------------------------- tools/test.py
def test_parser_defaults_and_tracker_name() -> None:
    from siammask.tools.test import default_tracker_name, get_args_parser

    args = get_args_parser().parse_args(["--config", "c.json", "--resume", "m.pth"])
    assert (args.dataset, args.data_root, args.result_dir, args.device) == ("VOT2018", "data", "results", "auto")
    assert not (args.mask or args.refine or args.vis or args.save_mask or args.amp or args.fast)
    args = get_args_parser().parse_args(["--config", "c.json", "--resume", "m.pth", "--mask", "--refine",
                                         "--dataset", "VOT2016", "--video", "ants1", "--device", "cpu"])
    assert args.mask and args.refine and args.dataset == "VOT2016" and args.video == "ants1"
    assert default_tracker_name("Custom", "/w/SiamMask_VOT.pth", True, True) == "Custom_mask_refine_SiamMask_VOT"
    assert default_tracker_name("Custom", "snap/checkpoint_e20.pth", False, False) == "Custom_checkpoint_e20"


@pytest.fixture(scope="module")
def vot_setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A 2-video, 10-frame 160x120 synthetic VOT2018 and a sharp-model checkpoint."""
    from siammask.datasets.synthetic import write_vot_dataset

    root = tmp_path_factory.mktemp("vot")
    data = str(root / "data")
    write_vot_dataset(data, name="VOT2018", num_videos=2, num_frames=10, frame_size=(160, 120), seed=0)
    ckpt = str(root / "SiamMask_tiny.pth")
    torch.save(small_sharp_model().state_dict(), ckpt)
    return {"root": str(root), "data": data, "ckpt": ckpt}


def _test_args(setup: dict[str, str], *extra: str) -> argparse.Namespace:
    from siammask.tools.test import get_args_parser

    return get_args_parser().parse_args(["--config", CONFIG, "--resume", setup["ckpt"], "--data-root", setup["data"],
                                         "--result-dir", os.path.join(setup["root"], "results"), "--device", "cpu",
                                         *extra])


def _check_result_file(path: str, frames: int, values: int) -> None:
    lines = Path(path).read_text().splitlines()
    assert len(lines) == frames and lines[0] == "1"
    for line in lines:
        if line in ("0", "1", "2"):
            continue
        parts = line.split(",")
        assert len(parts) == values
        assert all(len(p.split(".")[1]) == 4 for p in parts)  # %.4f
        [float(p) for p in parts]


def test_test_tool_end_to_end_and_eval_reads_it(vot_setup: dict[str, str], capsys: pytest.CaptureFixture) -> None:
    from siammask.tools import eval as eval_tool
    from siammask.tools import test as test_tool

    assert test_tool.main(_test_args(vot_setup, "--mask", "--refine", "--save-mask")) == 0
    out = capsys.readouterr().out
    assert "(  1) Video: vot0000" in out and "Total Lost:" in out and "Mean Speed:" in out
    tracker_dir = os.path.join(vot_setup["root"], "results", "VOT2018", "Custom_mask_refine_SiamMask_tiny")
    for video in ("vot0000", "vot0001"):
        _check_result_file(os.path.join(tracker_dir, "baseline", video, f"{video}_001.txt"), 10, 8)
        assert len(os.listdir(os.path.join(tracker_dir, "masks", video))) == 10
    assert test_tool.main(_test_args(vot_setup, "--video", "vot0001")) == 0  # box mode, one video
    _check_result_file(os.path.join(vot_setup["root"], "results", "VOT2018", "Custom_SiamMask_tiny", "baseline",
                                    "vot0001", "vot0001_001.txt"), 10, 4)
    capsys.readouterr()
    eval_args = eval_tool.get_args_parser().parse_args(
        ["--dataset", "VOT2018", "--data-root", vot_setup["data"], "--tracker_prefix", "Custom_mask",
         "--result_dir", os.path.join(vot_setup["root"], "results", "VOT2018")])
    assert eval_tool.main(eval_args) == 0
    assert "Custom_mask_refine_SiamMask_tiny" in capsys.readouterr().out


def _one_line_error(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    return err


def test_test_tool_errors_are_one_line(vot_setup: dict[str, str], tmp_path: Path,
                                       capsys: pytest.CaptureFixture) -> None:
    from siammask.tools import test as test_tool

    args = _test_args(vot_setup)
    args.data_root = str(tmp_path / "nowhere")
    assert test_tool.main(args) == 2
    err = _one_line_error(capsys)
    assert "VOT2018" in err and "make_synthetic_data" in err
    args = _test_args(vot_setup)
    args.resume = str(tmp_path / "missing.pth")
    assert test_tool.main(args) == 2
    assert "checkpoint not found" in _one_line_error(capsys)
    bad = tmp_path / "bad.json"
    bad.write_text('{"hp": {"penalty_kk": 0.1}}')
    args = _test_args(vot_setup)
    args.config = str(bad)
    assert test_tool.main(args) == 2
    assert "penalty_kk" in _one_line_error(capsys)
    assert test_tool.main(_test_args(vot_setup, "--video", "nope")) == 2
    assert "nope" in _one_line_error(capsys)
    assert test_tool.main(_test_args(vot_setup, "--save-mask")) == 2
    assert "--mask" in _one_line_error(capsys)


def test_test_tool_error_exit_status_from_the_command_line(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "test.py"), "--config", CONFIG, "--resume",
                           str(tmp_path / "none.pth"), "--device", "cpu"], capture_output=True, text=True, cwd=ROOT,
                          timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"error: checkpoint not found: {tmp_path / 'none.pth'}"]


# ---------------------------------------------------------------------------------------------- tools/tune_vot.py
def test_claim_locks(tmp_path: Path) -> None:
    from siammask.tools.tune_vot import claim, release

    path = str(tmp_path / "T" / "baseline" / "v" / "v_001.txt")
    assert claim(path) and os.path.isfile(path + ".lock")
    assert not claim(path)  # held by this (live) process
    release(path)
    Path(path + ".lock").write_text(f"999999999 {os.uname().nodename}\n")  # a dead owner on this host
    assert claim(path)
    release(path)
    Path(path).write_text("1\n")
    assert not claim(path)  # finished


def test_tune_vot_grid_resumes_and_reports_best(vot_setup: dict[str, str], capsys: pytest.CaptureFixture) -> None:
    from siammask.tools import tune_vot

    out_dir = os.path.join(vot_setup["root"], "tune")
    argv = ["--config", CONFIG, "--resume", vot_setup["ckpt"], "--mask", "--refine", "--data-root", vot_setup["data"],
            "--result-dir", out_dir, "--penalty-k", "0.04,0.1,0.05", "--lr", "0.3,0.31,0.05",
            "--window-influence", "0.4,0.41,0.05", "--device", "cpu"]
    assert tune_vot.main(tune_vot.get_args_parser().parse_args(argv)) == 0
    out = capsys.readouterr().out
    names = sorted(os.listdir(os.path.join(out_dir, "VOT2018")))
    assert names == ["Custom_SiamMask_tiny_r255_penalty_k_0_040_window_influence_0_400_lr_0_300",
                     "Custom_SiamMask_tiny_r255_penalty_k_0_090_window_influence_0_400_lr_0_300"]
    assert "tracked 4 (combination, video) jobs" in out and "Best: Custom_SiamMask_tiny_r255" in out
    for name in names:
        _check_result_file(os.path.join(out_dir, "VOT2018", name, "baseline", "vot0000", "vot0000_001.txt"), 10, 8)
    assert not list(Path(out_dir).rglob("*.lock"))
    assert tune_vot.main(tune_vot.get_args_parser().parse_args(argv + ["--no-eval"])) == 0
    assert "tracked 0 (combination, video) jobs" in capsys.readouterr().out
