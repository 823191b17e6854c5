"""One-pass (OPE) benchmarks: pysot's success / precision / norm precision, result files, tools, got10k adapter."""
from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from tracking_helpers import StubNet, tamed_sharp_model

from siammask.datasets.synthetic import write_ope_dataset
from siammask.datasets.synthetic.ope_benchmark import outline_box, write_got10k_dataset
from siammask.evaluation.errors import BenchmarkError, ResultError
from siammask.evaluation.ope import (
    NORM_PRECISION_THRESHOLDS,
    PRECISION_THRESHOLDS,
    SUCCESS_THRESHOLDS,
    OPETrackerResult,
    box_centers,
    evaluate_ope,
    evaluate_ope_tracker,
    evaluate_ope_video,
    overlap_ratio,
    success_curve,
)
from siammask.evaluation.ope_datasets import OPE_DATASETS, OPEDataset, OPEVideo, load_ope_dataset, ope_result_file
from siammask.evaluation.ope_report import format_ope_attribute_table, format_ope_table, plot_success_precision
from siammask.tracker import SiamMaskTracker
from siammask.tracker.ope import OPESequenceResult, format_ope_boxes, run_ope_sequence, write_ope_result

ROOT = Path(__file__).resolve().parents[1]
CONFIG = str(ROOT / "experiments" / "siammask_sharp" / "config_vot.json")
HP = {"penalty_k": 0.1, "window_influence": 0.1, "lr": 0.5}


# ---------------------------------------------------------------------------------------------- hand-computed
def test_overlap_has_no_plus_one_and_is_clipped() -> None:
    """[0,0,10,10] vs [5,5,10,10]: intersection 5*5 = 25 (right = x + w, no +1), union 175 -> 1/7."""
    iou = overlap_ratio(np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]], float),
                        np.array([[5, 5, 10, 10], [0, 0, 10, 10], [20, 20, 5, 5]], float))
    np.testing.assert_allclose(iou, [1 / 7, 1.0, 0.0])


def test_success_curve_by_hand_with_an_empty_ground_truth_frame() -> None:
    """4 frames: IoU 1, 1/7, 0, and a [0,0,0,0] ground truth (never a success, even with a matching [0,0,0,0]).

    IoU > t: t = 0 and 0.05, 0.1 -> frames 1, 2 (2/4); 0.15 ... 0.95 -> frame 1 (1/4); t = 1 -> none (strict >).
    """
    gt = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 0, 0]], float)
    pred = np.array([[0, 0, 10, 10], [5, 5, 10, 10], [50, 50, 10, 10], [0, 0, 0, 0]], float)
    curve = success_curve(gt, pred, 4)
    assert curve.shape == (21,)
    np.testing.assert_allclose(curve[:3], [0.5, 0.5, 0.5])
    np.testing.assert_allclose(curve[3:20], 0.25)
    assert curve[20] == 0.0


def test_precision_centres_use_minus_one_and_invalid_frames_count_as_hits() -> None:
    """Centre = x + (w-1)/2: [10,10,5,5] -> (12, 12); [13,14,5,5] -> (15, 16): distance 5 px, a hit from 5 px on.

    A [0,0,0,0] ground truth has centre (-0.5, -0.5) <= 0: distance -1, a hit at every threshold (pysot's rule).
    """
    np.testing.assert_allclose(box_centers(np.array([[10, 10, 5, 5], [3, 4, 1, 1]], float)), [[12, 12], [3, 4]])
    scores = evaluate_ope_video(np.array([[10, 10, 5, 5], [0, 0, 0, 0]], float),
                                np.array([[13, 14, 5, 5], [90, 90, 5, 5]], float))
    np.testing.assert_allclose(scores.precision[:5], 0.5)
    np.testing.assert_allclose(scores.precision[5:], 1.0)
    assert scores.precision.shape == (51,) and scores.norm_precision.shape == (51,)
    # IoU of the shifted box: 2*1 / (25 + 25 - 2) = 0.042: above 0 only; the empty frame never counts
    np.testing.assert_allclose(scores.success, [0.5] + [0.0] * 20)


def test_norm_precision_by_hand() -> None:
    """gt [10,10,20,10]: centre (19.5, 14.5) / (20, 10); pred shifted 3.3 px: normalized distance 3.3 / 20 = 0.165,
    a hit from the threshold 0.17 (index 17) on."""
    scores = evaluate_ope_video(np.array([[10, 10, 20, 10]], float), np.array([[13.3, 10, 20, 10]], float))
    assert scores.norm_precision[16] == 0.0 and scores.norm_precision[17] == 1.0
    assert NORM_PRECISION_THRESHOLDS[17] == pytest.approx(0.17)
    assert scores.precision[3] == 0.0 and scores.precision[4] == 1.0  # 3.3 px


def test_lasot_absent_frames_are_dropped_but_keep_the_denominator() -> None:
    """absent [1, 0, 1, 1] with a perfect tracker: 3 of 4 frames count, in success and precision alike."""
    gt = np.array([[5, 5, 10, 10]] * 4, float)
    scores = evaluate_ope_video(gt, gt.copy(), absent=np.array([1, 0, 1, 1]))
    np.testing.assert_allclose(scores.success[:20], 0.75)
    assert scores.success[20] == 0.0
    np.testing.assert_allclose(scores.precision, 0.75)


def test_first_frame_counts_and_summary_numbers() -> None:
    """Video a: frame 0 = gt, frame 1 far off -> success 0.5 below t = 1; video b: perfect.

    AUC = mean over videos and the 21 thresholds = (20 * 0.5 + 20 * 1) / 42; precision at 20 px (index 20) =
    mean(0.5, 1) = 0.75.
    """
    gt = np.array([[10, 10, 10, 10], [10, 10, 10, 10]], float)
    a = evaluate_ope_video(gt, np.array([[10, 10, 10, 10], [80, 80, 10, 10]], float))
    b = evaluate_ope_video(gt, gt.copy())
    result = OPETrackerResult("T", {"a": a, "b": b})
    assert result.auc() == pytest.approx((20 * 0.5 + 20 * 1.0) / 42)
    assert result.precision() == pytest.approx(0.75)
    assert result.auc(["b"]) == pytest.approx(20 / 21)
    assert PRECISION_THRESHOLDS[20] == 20 and len(SUCCESS_THRESHOLDS) == 21


# ---------------------------------------------------------------------------------------------- pysot reference
def _ref_iou(g: list[float], p: list[float]) -> float:
    left, right = max(g[0], p[0]), min(g[0] + g[2], p[0] + p[2])
    top, bottom = max(g[1], p[1]), min(g[1] + g[3], p[1] + p[3])
    inter = max(0.0, right - left) * max(0.0, bottom - top)
    union = g[2] * g[3] + p[2] * p[3] - inter
    iou = inter / union if union != 0 else (math.nan if inter == 0 else math.copysign(math.inf, inter))
    return min(1.0, max(0.0, iou)) if not math.isnan(iou) else math.nan


def _ref_video(gt: np.ndarray, pred: np.ndarray, absent: np.ndarray | None) -> tuple[list, list, list]:
    """pysot's eval_success / eval_precision / eval_norm_precision for one video, frame by frame in plain Python."""
    n = len(gt)
    frames = [i for i in range(n) if absent is None or absent[i] == 1]
    ious, dists, ndists = [], [], []
    for i in frames:
        g, p = [float(v) for v in gt[i]], [float(v) for v in pred[i]]
        ious.append(_ref_iou(g, p) if g[2] > 0 and g[3] > 0 else -1.0)
        gc = (g[0] + (g[2] - 1) / 2, g[1] + (g[3] - 1) / 2)
        pc = (p[0] + (p[2] - 1) / 2, p[1] + (p[3] - 1) / 2)
        dists.append(math.hypot(gc[0] - pc[0], gc[1] - pc[1]) if gc[0] > 0 and gc[1] > 0 else -1.0)
        gn = (gc[0] / (g[2] + 1e-16), gc[1] / (g[3] + 1e-16))
        pn = (pc[0] / (g[2] + 1e-16), pc[1] / (g[3] + 1e-16))
        ndists.append(math.hypot(gn[0] - pn[0], gn[1] - pn[1]) if gn[0] > 0 and gn[1] > 0 else -1.0)
    success = [sum(1 for v in ious if v > t) / n for t in [k * 0.05 for k in range(21)]]
    precision = [sum(1 for v in dists if v <= t) / n for t in range(51)]
    norm = [sum(1 for v in ndists if v <= t / 100) / n for t in range(51)]
    return success, precision, norm


def _random_video(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    gt = np.column_stack([rng.uniform(-5, 200, n), rng.uniform(-5, 150, n), rng.uniform(2, 80, (n, 2))])
    gt[rng.random(n) < 0.1] = 0.0  # OTB-style empty frames
    gt[rng.random(n) < 0.05, 2] = 0.0  # zero width only
    gt[rng.random(n) < 0.05] = np.nan  # UAV123-style NaN rows
    pred = gt + rng.normal(0, 12, (n, 4))
    pred[:, 2:] = np.abs(pred[:, 2:]) + 1
    pred[rng.random(n) < 0.1] = rng.uniform(0, 200, 4)
    absent = (rng.random(n) > 0.15).astype(np.int8)
    return np.nan_to_num(gt, nan=np.nan), pred, absent


@pytest.mark.parametrize("use_absent", [False, True], ids=["otb", "lasot"])
def test_equals_a_reimplementation_of_pysots_formulas(use_absent: bool) -> None:
    rng = np.random.default_rng(11)
    per_video = {}
    for k in range(6):
        gt, pred, absent = _random_video(rng, int(rng.integers(30, 120)))
        absent = absent if use_absent else None
        scores = evaluate_ope_video(gt, pred, absent)
        ref = _ref_video(gt, pred, absent)
        np.testing.assert_allclose(scores.success, ref[0], atol=1e-6, rtol=0)
        np.testing.assert_allclose(scores.precision, ref[1], atol=1e-6, rtol=0)
        np.testing.assert_allclose(scores.norm_precision, ref[2], atol=1e-6, rtol=0)
        per_video[f"v{k}"] = (scores, ref)
    result = OPETrackerResult("T", {v: s for v, (s, _) in per_video.items()})
    refs = [r for _, r in per_video.values()]
    assert result.auc() == pytest.approx(float(np.mean([r[0] for r in refs])), abs=1e-6)
    assert result.precision() == pytest.approx(float(np.mean([r[1][20] for r in refs])), abs=1e-6)
    assert result.norm_precision() == pytest.approx(float(np.mean([r[2][20] for r in refs])), abs=1e-6)


# ---------------------------------------------------------------------------------------------- result files
def _dataset(tmp_path: Path, name: str = "OTB100") -> OPEDataset:
    rng = np.random.default_rng(3)
    meta = {}
    for k, attrs in enumerate((["IV", "SV"], ["SV"], ["OCC"])):
        n = 12 + k
        gt = np.round(np.column_stack([rng.uniform(5, 100, n), rng.uniform(5, 80, n), rng.uniform(10, 40, (n, 2))]))
        gt[5] = 0
        meta[f"Vid{k}"] = {"video_dir": f"Vid{k}", "init_rect": gt[0].tolist(),
                           "img_names": [f"Vid{k}/img/{i + 1:04d}.jpg" for i in range(n)], "gt_rect": gt.tolist(),
                           "attr": attrs, "absent": [1] * n}
    (tmp_path / name).mkdir(parents=True, exist_ok=True)
    (tmp_path / name / f"{name}.json").write_text(json.dumps(meta))
    return load_ope_dataset(name, tmp_path)


def test_pysot_json_loader_and_attribute_index(tmp_path: Path) -> None:
    ds = _dataset(tmp_path)
    assert ds.spec == OPE_DATASETS["OTB100"] and list(ds.videos) == ["Vid0", "Vid1", "Vid2"]
    v = ds["Vid1"]
    assert len(v) == 13 and v.gt.shape == (13, 4) and v.attrs == ("SV",) and v.absent is None
    assert v.img_paths[0] == str((tmp_path / "OTB100" / "Vid1" / "img" / "0001.jpg").resolve())
    assert ds.attributes == {"ALL": ["Vid0", "Vid1", "Vid2"], "IV": ["Vid0"], "OCC": ["Vid2"], "SV": ["Vid0", "Vid1"]}
    lasot = _dataset(tmp_path, "LaSOT")
    assert lasot["Vid0"].absent.tolist() == [1] * 12
    with pytest.raises(BenchmarkError, match="UAV123.json"):
        load_ope_dataset("UAV123", tmp_path)


def test_results_dir_round_trip_pysot_and_got10k_layouts(tmp_path: Path) -> None:
    ds = _dataset(tmp_path / "data")
    rng = np.random.default_rng(5)
    boxes = {v.name: v.gt + rng.normal(0, 3, v.gt.shape) for v in ds}
    for layout in ("pysot", "got10k"):
        root = tmp_path / "results" / layout
        for v in ds:
            res = OPESequenceResult(boxes=boxes[v.name], times=np.full(len(v.gt), 0.01), scores=np.zeros(len(v.gt)))
            path = write_ope_result(root, "T", v.name, res, layout)
            assert path == ope_result_file(root, "T", v.name, layout)
        if layout == "got10k":
            assert (root / "T" / "Vid0" / "Vid0_001.txt").is_file()
            assert (root / "T" / "Vid0" / "Vid0_time.txt").read_text().splitlines()[0] == "0.010000"
            got = OPEDataset("GOT-10k", OPE_DATASETS["GOT-10k"], ds.source, ds.videos)
            result = evaluate_ope_tracker(got, root, "T")
        else:
            assert (root / "T" / "Vid0.txt").read_text().splitlines()[0] == ",".join(str(float(x))
                                                                                   for x in boxes["Vid0"][0])
            result = evaluate_ope_tracker(ds, root, "T")
        for v in ds:
            direct = evaluate_ope_video(v.gt, boxes[v.name])
            np.testing.assert_array_equal(result.videos[v.name].success, direct.success)
            np.testing.assert_array_equal(result.videos[v.name].precision, direct.precision)
    assert format_ope_boxes(np.array([[1.5, 2.0, 3.25, 1e-7]])) == "1.5,2.0,3.25,1e-07\n"


def test_otb_alternative_result_names_and_bad_files(tmp_path: Path) -> None:
    ds = _dataset(tmp_path / "data")
    root = tmp_path / "results"
    (root / "T").mkdir(parents=True)
    for v in ds:  # pysot's fallback: first letter lower-cased, tab-separated like some published OTB results
        (root / "T" / f"{v.name[0].lower()}{v.name[1:]}.txt").write_text(
            "".join("\t".join(str(x) for x in row) + "\n" for row in v.gt))
    result = evaluate_ope_tracker(ds, root, "T")
    # perfect except the empty frame 5: (n - 1) / n below t = 1, 0 at t = 1 (strict >), n = 12, 13, 14
    assert result.auc() == pytest.approx(np.mean([20 / 21 * (n - 1) / n for n in (12, 13, 14)]))
    (root / "T" / "Vid0.txt").write_text("1,2,3\n")
    with pytest.raises(ResultError, match=r"Vid0\.txt:1: 3 values"):
        evaluate_ope_tracker(ds, root, "T")
    (root / "T" / "Vid0.txt").write_text("1,2,3,4\n")
    with pytest.raises(ResultError, match="truncated: 1 lines for 12 frames"):
        evaluate_ope_tracker(ds, root, "T")


def test_attribute_table_and_png_plots(tmp_path: Path) -> None:
    ds = _dataset(tmp_path / "data")
    results = {}
    for name, noise in (("good", 1.0), ("bad", 15.0)):
        rng = np.random.default_rng(int(noise))
        noisy = {v.name: v.gt + rng.normal(0, noise, (len(v.gt), 4)) for v in ds}
        results[name] = OPETrackerResult(name, {v.name: evaluate_ope_video(v.gt, noisy[v.name]) for v in ds})
    table = format_ope_attribute_table(results, ds.attributes, "success")
    lines = table.splitlines()
    assert "ALL(3)" in lines[1] and "IV(1)" in lines[1] and "SV(2)" in lines[1]
    good_row = [line for line in lines if "good" in line][0]
    cells = [c.strip() for c in good_row.strip("|").split("|")]
    expected = [results["good"].auc(v) for v in ds.attributes.values()]
    assert [float(c) for c in cells[1:]] == [round(x, 3) for x in expected]
    assert lines.index(good_row) < [i for i, line in enumerate(lines) if "bad" in line][0]  # sorted by AUC
    summary = format_ope_table(results)
    assert f"{results['good'].auc():.3f}" in summary and f"{results['bad'].precision():.3f}" in summary
    files = plot_success_precision(results, "OTB100", tmp_path / "plots" / "ope.png", ds.attributes["SV"], "SV")
    assert [p.name for p in files] == ["ope_SV.png", "ope_SV_precision.png", "ope_SV_norm_precision.png"]
    for p in files:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000


# ---------------------------------------------------------------------------------------------- runner
class _ShiftTracker:
    """Moves the box 1 px right per frame; records what it was initialised with."""

    def __init__(self) -> None:
        self.init_box = None

    def init(self, frame: np.ndarray, box: np.ndarray) -> dict:
        self.init_box = list(box)
        return {"box": np.asarray(box, float).copy()}

    def track(self, state: dict, frame: np.ndarray) -> OPESequenceResult:
        state["box"][0] += 1

        class R:
            box = state["box"].copy()
            score = 0.5
        return R()


def test_one_pass_runner_inits_from_the_first_gt_and_never_resets() -> None:
    video = OPEVideo("v", [str(i) for i in range(5)], np.array([[10, 20, 30, 40]] + [[0, 0, 0, 0]] * 4, float))
    ticks = iter(range(100))
    tracker = _ShiftTracker()
    res = run_ope_sequence(tracker, video, image_reader=lambda p: np.zeros((8, 8, 3), np.uint8),
                           clock=lambda: float(next(ticks)))
    assert tracker.init_box == [10, 20, 30, 40]
    np.testing.assert_array_equal(res.boxes[:, 0], [10, 11, 12, 13, 14])
    assert np.isnan(res.scores[0]) and res.scores[1] == 0.5
    assert res.time_s == 5.0 and res.fps == pytest.approx(4 / 5)
    with pytest.raises(ValueError, match="first frame"):
        run_ope_sequence(tracker, OPEVideo("z", ["0"], np.zeros((1, 4))), image_reader=lambda p: None)


def test_synthetic_ope_set_layout(tmp_path: Path) -> None:
    write_ope_dataset(str(tmp_path), num_videos=2, num_frames=4, frame_size=(160, 120), seed=1)
    ds = load_ope_dataset("SyntheticOPE", tmp_path)
    assert list(ds.videos) == ["ope0000", "ope0001"] and all(len(v) == 4 for v in ds)
    assert all(os.path.isfile(p) for v in ds for p in v.img_paths)
    raw = (tmp_path / "SyntheticOPE" / "ope0000" / "groundtruth_rect.txt").read_text().splitlines()
    assert [[float(x) for x in line.split(",")] for line in raw] == ds["ope0000"].gt.tolist()
    assert outline_box(np.array([[-10.0, 5.0], [20.0, 30.4]]), (160, 120)) == ([0, 5, 20, 25], True)
    assert outline_box(np.array([[-30.0, 5.0], [-20.0, 30.0]]), (160, 120)) == ([0, 0, 0, 0], True)


# ---------------------------------------------------------------------------------------------- tools
@pytest.fixture(scope="module")
def ope_setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("ope")
    data = str(root / "data")
    write_ope_dataset(data, num_videos=2, num_frames=2, frame_size=(160, 120), seed=0)
    write_got10k_dataset(data, "val", num_videos=2, num_frames=2, frame_size=(160, 120), seed=0)
    ckpt = str(root / "SiamMask_tiny.pth")
    torch.save(tamed_sharp_model().state_dict(), ckpt)
    return {"root": str(root), "data": data, "ckpt": ckpt}


def _tool_args(module: object, argv: list[str]) -> object:
    return module.get_args_parser().parse_args(argv)


def test_test_and_eval_tools_end_to_end(ope_setup: dict[str, str], capsys: pytest.CaptureFixture) -> None:
    from siammask.tools import eval as eval_tool
    from siammask.tools import test as test_tool

    results = os.path.join(ope_setup["root"], "results")
    argv = ["--config", CONFIG, "--resume", ope_setup["ckpt"], "--data-root", ope_setup["data"], "--result-dir",
            results, "--device", "cpu"]
    assert test_tool.main(_tool_args(test_tool, argv + ["--dataset", "SyntheticOPE"])) == 0
    out = capsys.readouterr().out
    assert "(  1) Video: ope0000" in out and "Mean Speed:" in out
    ds = load_ope_dataset("SyntheticOPE", ope_setup["data"])
    for v in ds:
        lines = (Path(results) / "SyntheticOPE" / "Custom_SiamMask_tiny" / f"{v.name}.txt").read_text().splitlines()
        assert len(lines) == 2 and [float(x) for x in lines[0].split(",")] == v.gt[0].tolist()
        assert all(len(line.split(",")) == 4 for line in lines)
    assert test_tool.main(_tool_args(test_tool, argv + ["--dataset", "GOT-10k", "--video", "GOT-10k_Val_000002"])) == 0
    got_dir = Path(results) / "GOT-10k" / "Custom_SiamMask_tiny" / "GOT-10k_Val_000002"
    assert len((got_dir / "GOT-10k_Val_000002_001.txt").read_text().splitlines()) == 2
    assert len((got_dir / "GOT-10k_Val_000002_time.txt").read_text().splitlines()) == 2
    capsys.readouterr()
    report = os.path.join(ope_setup["root"], "ope.json")
    plot = os.path.join(ope_setup["root"], "plots", "ope.png")
    eval_argv = ["--dataset", "SyntheticOPE", "--data-root", ope_setup["data"], "--result_dir",
                 os.path.join(results, "SyntheticOPE")]
    assert eval_tool.main(_tool_args(eval_tool, eval_argv + ["--attributes", "--json", report])) == 0
    out = capsys.readouterr().out
    assert "Tracker name" in out and "Custom_SiamMask_tiny" in out and "Success (AUC)" in out
    assert eval_tool.main(_tool_args(eval_tool, eval_argv + ["--plot", plot])) == 0
    assert "wrote " + plot.replace(".png", "_norm_precision.png") in capsys.readouterr().out
    direct = evaluate_ope(ds, os.path.join(results, "SyntheticOPE"), ["Custom_SiamMask_tiny"])["Custom_SiamMask_tiny"]
    data = json.loads(Path(report).read_text())["Custom_SiamMask_tiny"]
    assert data["success"] == direct.auc() and data["precision"] == direct.precision()
    assert data["norm_precision"] == direct.norm_precision() and "ALL" in data["attributes"]
    assert os.path.isfile(plot) and os.path.isfile(plot.replace(".png", "_precision.png"))


def test_eval_tool_errors_are_one_line(ope_setup: dict[str, str], tmp_path: Path,
                                       capsys: pytest.CaptureFixture) -> None:
    from siammask.tools import eval as eval_tool
    from siammask.tools import test as test_tool

    ds = load_ope_dataset("SyntheticOPE", ope_setup["data"])
    results = tmp_path / "results" / "SyntheticOPE"
    (results / "T").mkdir(parents=True)
    (results / "T" / "ope0000.txt").write_text(format_ope_boxes(ds["ope0000"].gt))
    argv = ["--dataset", "SyntheticOPE", "--data-root", ope_setup["data"], "--result_dir", str(results)]
    assert eval_tool.main(_tool_args(eval_tool, argv)) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("error: ") and "ope0001" in err
    assert str(results / "T" / "ope0001.txt") in err
    assert eval_tool.main(_tool_args(eval_tool, argv[:-1] + [str(results.parent)])) == 2  # one folder too high
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"pass --result_dir {results}" in err
    assert eval_tool.main(_tool_args(eval_tool, ["--dataset", "LaSOT", "--data-root", str(tmp_path),
                                                 "--result_dir", str(results)])) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "LaSOT.json" in err
    write_got10k_dataset(str(tmp_path), "test", num_videos=1, num_frames=2, frame_size=(64, 48))
    assert eval_tool.main(_tool_args(eval_tool, ["--dataset", "GOT-10k-test", "--data-root", str(tmp_path),
                                                 "--result_dir", str(results)])) == 2
    assert "withheld" in capsys.readouterr().err
    base = ["--config", CONFIG, "--resume", str(tmp_path / "none.pth"), "--data-root", ope_setup["data"],
            "--device", "cpu", "--result-dir", str(tmp_path / "r"), "--dataset", "SyntheticOPE"]
    assert test_tool.main(_tool_args(test_tool, base + ["--video", "nope"])) == 2  # checked before the checkpoint
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "'nope'" in err and "SyntheticOPE.json" in err
    assert test_tool.main(_tool_args(test_tool, base + ["--save-mask", "--mask"])) == 2
    assert "--save-mask" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- got10k adapter
def test_got10k_loader_reads_the_official_layout(tmp_path: Path) -> None:
    split = write_got10k_dataset(str(tmp_path), "val", num_videos=2, num_frames=4, frame_size=(96, 72), seed=2)
    ds = load_ope_dataset("GOT-10k", tmp_path)
    assert ds.source == Path(split) / "list.txt"
    assert list(ds.videos) == ["GOT-10k_Val_000001", "GOT-10k_Val_000002"]
    v = ds["GOT-10k_Val_000001"]
    assert [os.path.basename(p) for p in v.img_paths] == [f"{i:08d}.jpg" for i in range(1, 5)]
    assert v.gt.shape == (4, 4) and ds.attributes == {"ALL": list(ds.videos)}
    (Path(split) / "GOT-10k_Val_000002" / "groundtruth.txt").write_text("1,2,3,4\n")
    with pytest.raises(BenchmarkError, match=r"GOT-10k_Val_000002.groundtruth\.txt: 1 boxes for 4 frames"):
        load_ope_dataset("GOT-10k", tmp_path)


def test_got10k_adapter_runs_experiment_got10k(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("got10k", reason="got10k not installed (pip install got10k)")
    from got10k.experiments import ExperimentGOT10k
    from got10k.trackers import Tracker

    from siammask.tracker.got10k import make_got10k_tracker

    write_got10k_dataset(str(tmp_path / "data"), "val", num_videos=2, num_frames=5, frame_size=(160, 120), seed=4)
    siam = SiamMaskTracker(StubNet(), HP, "cpu", mask=False)
    adapter = make_got10k_tracker(siam, "SiamStub")
    assert isinstance(adapter, Tracker) and adapter.is_deterministic and adapter.name == "SiamStub"
    monkeypatch.chdir(tmp_path)
    exp = ExperimentGOT10k(str(tmp_path / "data" / "GOT-10k"), subset="val", result_dir="res", report_dir="rep")
    exp.run(adapter)
    record = tmp_path / "res" / "GOT-10k" / "SiamStub" / "GOT-10k_Val_000001" / "GOT-10k_Val_000001_001.txt"
    assert record.is_file() and not record.with_name("GOT-10k_Val_000001_002.txt").exists()  # one repetition
    got = np.loadtxt(record, delimiter=",")
    ds = load_ope_dataset("GOT-10k", tmp_path / "data")
    ours = run_ope_sequence(SiamMaskTracker(StubNet(), HP, "cpu", mask=False), ds["GOT-10k_Val_000001"])
    np.testing.assert_allclose(got, ours.boxes, atol=6e-4)  # got10k writes %.3f; the same boxes as our runner
    assert not np.allclose(got[1:], got[0])  # the stub moves the box
    perf = exp.report(["SiamStub"])
    assert 0.0 <= perf["SiamStub"]["overall"]["ao"] <= 1.0
    assert (tmp_path / "rep" / "GOT-10k" / "SiamStub" / "success_plot.png").is_file()


def test_got10k_adapter_missing_package_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from siammask.tracker import got10k as adapter_module

    adapter_module.got10k_tracker_class.cache_clear()
    monkeypatch.setitem(sys.modules, "got10k.trackers", None)
    monkeypatch.setitem(sys.modules, "got10k", None)
    try:
        with pytest.raises(adapter_module.Got10kMissingError, match="pip install got10k"):
            adapter_module.make_got10k_tracker(object())
    finally:
        adapter_module.got10k_tracker_class.cache_clear()
    rgb = np.zeros((4, 5, 3), np.uint8)
    rgb[..., 0] = 200  # red in RGB -> channel 2 in BGR
    bgr = adapter_module.to_bgr(rgb)
    assert bgr.shape == (4, 5, 3) and bgr[0, 0].tolist() == [0, 0, 200] and bgr.flags["C_CONTIGUOUS"]
    assert adapter_module.to_bgr(np.full((3, 3), 7, np.uint8)).shape == (3, 3, 3)
