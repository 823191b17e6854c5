"""VOT evaluation (evaluation/, tools/eval.py): hand-computed accuracy/robustness/EAO, parity with a plain
transcription of pysot-toolkit's formulas on random result sets, the dataset/result loaders, and the CLI (JSON, plot,
one-line errors)."""
from __future__ import annotations

import importlib
import itertools
import json
import math
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from siammask.evaluation import (
    BenchmarkError,
    ResultError,
    eval_accuracy_robustness,
    eval_eao,
    evaluate_trackers,
    list_trackers,
    load_tracker_trajectories,
    load_vot_dataset,
)
from siammask.utils.region import vot_overlap_traj

eval_tool = importlib.import_module("siammask.tools.eval")
ATTRS = ("camera_motion", "illum_change", "motion_change", "size_change", "occlusion")
SQUARE = [10.0, 10.0, 30.0, 10.0, 30.0, 30.0, 10.0, 30.0]


# ----------------------------------------------------------------------------------------------------------------
# Writing datasets and result folders
# ----------------------------------------------------------------------------------------------------------------
def write_dataset(root: Path, videos: dict[str, dict], name: str = "VOT2018", pysot_layout: bool = False) -> Path:
    """``videos``: name -> {gt, width, height, [attribute lists]}; writes the json the way create_json.py does."""
    meta = {}
    for video, info in videos.items():
        n = len(info["gt"])
        meta[video] = {
            "video_dir": video,
            "init_rect": [0, 0, 1, 1],
            "img_names": [f"{video}/color/{i + 1:08d}.jpg" for i in range(n)],
            "gt_rect": [list(map(float, r)) for r in info["gt"]],
            "width": info["width"],
            "height": info["height"],
            **{a: list(info.get(a, [])) for a in ATTRS},
        }
    path = root / name / f"{name}.json" if pysot_layout else root / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(meta))
    return path


def fmt(region: list[float]) -> str:
    return ",".join(f"{v:.4f}" for v in region)


def write_result(result_dir: Path, tracker: str, video: str, lines: list[str], rep: int = 1) -> Path:
    folder = result_dir / tracker / "baseline" / video
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{video}_{rep:03d}.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def perfect_lines(gt: list[list[float]]) -> list[str]:
    return ["1"] + [fmt(r) for r in gt[1:]]


# ----------------------------------------------------------------------------------------------------------------
# A plain transcription of pysot-toolkit's evaluation formulas (statistics.calculate_failures / calculate_accuracy /
# calculate_expected_overlap, AccuracyRobustnessBenchmark, EAOBenchmark._calculate_eao), written for this test.
# The 'empty' tag is the per-frame one (see evaluation/vot.py for why pysot's differs).
# ----------------------------------------------------------------------------------------------------------------
def ref_read(path: Path) -> list[list[float]]:
    with open(path) as f:
        return [list(map(float, line.strip().split(","))) for line in f.readlines()]


def ref_failures(traj):
    return [i for i, x in enumerate(traj) if len(x) == 1 and x[0] == 2]


def ref_overlaps(pred, gt, burnin=0, bound=None):
    pred_ = pred
    if burnin > 0:
        pred_ = pred[:]
        marks = [len(x) == 1 and x[0] == 1 for x in pred]
        for i in range(len(marks)):
            if marks[i]:
                for j in range(burnin):
                    if i + j < len(marks):
                        pred_[i + j] = [0]
    n = min(len(pred_), len(gt))
    return list(vot_overlap_traj(pred_[:n], gt[:n], bound))


def ref_accuracy_robustness(videos, trajs):
    overlaps, failures = {}, {}
    for v in videos:
        group = [ref_overlaps(t, v["gt"], burnin=10, bound=(v["width"], v["height"])) for t in trajs[v["name"]]]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=RuntimeWarning)
            overlaps[v["name"]] = np.nanmean(group, axis=0).tolist()
        failures[v["name"]] = [len(ref_failures(t)) for t in trajs[v["name"]]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        accuracy = np.nanmean(list(itertools.chain(*overlaps.values())))
    length = sum(len(x) for x in overlaps.values())
    fails = list(failures.values())
    lost = np.mean(np.sum(fails, axis=0))
    robustness = np.mean(np.sum(np.array(fails), axis=0) / length) * 100
    return accuracy, robustness, lost, overlaps, failures


def ref_expected_overlap(fragments, fweights):
    max_len = fragments.shape[1]
    expected = np.zeros(max_len, np.float32)
    expected[0] = 1
    for i in range(1, max_len):
        mask = np.logical_not(np.isnan(fragments[:, i]))
        if np.any(mask):
            fragment = fragments[mask, 1:i + 1]
            seq_mean = np.sum(fragment, 1) / fragment.shape[1]
            with np.errstate(invalid="ignore", divide="ignore"):
                expected[i] = np.sum(seq_mean * fweights[mask]) / np.sum(fweights[mask])
    return expected


def ref_eao(videos, trajs, tags, low=100, high=356, skipping=5):
    all_overlaps, all_failures, video_tags, lengths = [], [], [], []
    for v in videos:
        for t in trajs[v["name"]]:
            lengths.append(len(v["gt"]))
            video_tags.append(v["tags"])
            all_overlaps.append(ref_overlaps(t, v["gt"], bound=(v["width"] - 1, v["height"] - 1)))
            all_failures.append(ref_failures(t))
        seq_weight = 1 / len(trajs[v["name"]])
    fragment_num = sum(len(x) + 1 for x in all_failures)
    max_len = max(len(x) for x in all_overlaps)
    out = {}
    for tag in tags:
        fweights = np.ones(fragment_num) * np.nan
        fragments = np.ones((fragment_num, max_len)) * np.nan
        seg = 0
        for vt, traj_len, failures, overlaps in zip(video_tags, lengths, all_failures, all_overlaps):
            if len(failures) > 0:
                points = [x + skipping for x in failures if x + skipping <= len(overlaps)]
                points.insert(0, 0)
                for i in range(len(points)):
                    if i != len(points) - 1:
                        fragment = np.array(overlaps[points[i]:points[i + 1] + 1])
                        fragments[seg, :] = 0
                    else:
                        fragment = np.array(overlaps[points[i]:])
                    fragment[np.isnan(fragment)] = 0
                    fragments[seg, :len(fragment)] = fragment
                    if i != len(points) - 1:
                        w = sum(vt[tag][points[i]:points[i + 1] + 1]) / (points[i + 1] - points[i] + 1)
                    else:
                        w = sum(vt[tag][points[i]:len(overlaps)]) / (traj_len - points[i] + 1e-16)
                    fweights[seg] = seq_weight * w
                    seg += 1
            else:
                max_idx = min(len(overlaps), max_len)
                fragments[seg, :max_idx] = overlaps[:max_idx]
                fweights[seg] = seq_weight * sum(vt[tag][:max_idx]) / max_idx
                seg += 1
        expected = ref_expected_overlap(fragments, fweights)
        weight = np.zeros(len(expected))
        weight[low - 1:high - 1 + 1] = 1
        valid = np.logical_not(np.isnan(expected))
        with np.errstate(invalid="ignore", divide="ignore"):
            out[tag] = np.sum(expected[valid] * weight[valid]) / np.sum(weight[valid])
    return out


# ----------------------------------------------------------------------------------------------------------------
# Random VOT-protocol result sets
# ----------------------------------------------------------------------------------------------------------------
def random_video(rng: np.random.Generator, name: str) -> dict:
    n = int(rng.integers(60, 420))
    width, height = int(rng.choice([320, 640])), int(rng.choice([240, 360]))
    center = np.array([width / 2, height / 2]) + np.cumsum(rng.normal(0, 2, (n, 2)), axis=0)
    size = rng.uniform(20, 80, 2)
    gt = []
    for i in range(n):
        a = 0.3 * np.sin(i / 20)
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * size / 2
        gt.append([round(float(v), 2) for v in (corners @ rot.T + center[i]).ravel()])
    info = {"name": name, "gt": gt, "width": width, "height": height}
    for attr in ATTRS:  # runs of 0/1, some lists short or empty (padded with 0 by the loader)
        cut = int(rng.integers(0, n + 1)) if rng.random() < 0.3 else n
        info[attr] = (np.cumsum(rng.random(n) < 0.03) % 2).astype(int)[:cut].tolist()
    return info


def random_run(rng: np.random.Generator, gt: list[list[float]], fail_rate: float) -> list[str]:
    """Lines of one run: 1 at init, noisy polygons / boxes, 2 on a failure, 0 for the 4 skipped frames, re-init."""
    lines, i, n = [], 0, len(gt)
    while i < n:
        lines.append("1")
        i += 1
        while i < n:
            if rng.random() < fail_rate:
                lines.append("2")
                lines.extend(["0"] * min(4, n - i - 1))
                i += 5
                break
            g = np.asarray(gt[i])
            if rng.random() < 0.2:  # axis-aligned box x, y, w, h
                x0, y0 = g[0::2].min(), g[1::2].min()
                lines.append(fmt([x0 + rng.normal(0, 3), y0 + rng.normal(0, 3), g[0::2].max() - x0,
                                  g[1::2].max() - y0]))
            else:
                lines.append(fmt((g + rng.normal(0, 4 if rng.random() < 0.9 else 40, 8)).tolist()))
            i += 1
    return lines[:n]


def make_random_set(tmp_path: Path, seed: int, reps: int) -> tuple[Path, Path, list[dict]]:
    rng = np.random.default_rng(seed)
    videos = [random_video(rng, f"seq{k}") for k in range(4)]
    data_root = tmp_path / "data"
    write_dataset(data_root, {v["name"]: v for v in videos})
    result_dir = tmp_path / "results"
    for tracker, rate in (("trk_a", 0.004), ("trk_b", 0.02)):
        for v in videos:
            for rep in range(1, reps + 1):
                write_result(result_dir, tracker, v["name"], random_run(rng, v["gt"], rate), rep)
    for v in videos:  # the per-frame tags the transcription uses: 'all', padded attributes, per-frame 'empty'
        n = len(v["gt"])
        tags = {"all": [1] * n}
        for a in ATTRS:
            tags[a] = (v[a] + [0] * n)[:n]
        tags["empty"] = [int(not any(tags[a][f] for a in ATTRS)) for f in range(n)]
        v["tags"] = tags
    return data_root, result_dir, videos


# ----------------------------------------------------------------------------------------------------------------
# Tests
# ----------------------------------------------------------------------------------------------------------------
def test_perfect_results(tmp_path: Path) -> None:
    gt = {"a": [[10 + i, 20, 60 + i, 22, 58 + i, 70, 8 + i, 68] for i in range(120)],
          "b": [[5, 5, 40, 30]] * 130}
    write_dataset(tmp_path / "data", {k: {"gt": g, "width": 320, "height": 240} for k, g in gt.items()})
    for video, g in gt.items():
        write_result(tmp_path / "res", "perfect", video, perfect_lines(g))
    dataset = load_vot_dataset("VOT2018", tmp_path / "data")
    trajs = load_tracker_trajectories(tmp_path / "res", "perfect", dataset)
    ar = eval_accuracy_robustness(dataset, trajs)
    assert ar.accuracy == 1.0 and ar.robustness == 0.0 and ar.lost_number == 0.0
    assert ar.failures == {"a": [0], "b": [0]}
    assert np.isnan(ar.overlaps["a"][:10]).all() and (ar.overlaps["a"][10:] == 1.0).all()
    eao = eval_eao(dataset, trajs)
    assert eao.eao["all"] == 1.0 and eao.interval == (100, 356)


def hand_made_case(tmp_path: Path) -> tuple[Path, Path]:
    """One 200-frame video, 100x100 image, ground truth the square (10,10)-(30,30) (21 x 21 = 441 pixels).

    Frames 1-49 exact (overlap 1); failure at frame 50; frames 51-54 skipped; re-init at 55 (= 50 + 5); frames 56-199
    the square shifted 7 px right: 14 x 21 = 294 shared pixels of 441 + 441 - 294 = 588 -> overlap exactly 0.5.
    Occlusion is tagged on frames 0-55, no other attribute is set.
    """
    gt = [SQUARE] * 200
    write_dataset(tmp_path / "data", {"sq": {"gt": gt, "width": 100, "height": 100, "occlusion": [1] * 56}})
    shifted = [v + 7 if k % 2 == 0 else v for k, v in enumerate(SQUARE)]
    lines = ["1"] + [fmt(SQUARE)] * 49 + ["2"] + ["0"] * 4 + ["1"] + [fmt(shifted)] * 144
    assert len(lines) == 200
    write_result(tmp_path / "res", "hand", "sq", lines)
    return tmp_path / "data", tmp_path / "res"


def test_hand_made_case(tmp_path: Path) -> None:
    data_root, res = hand_made_case(tmp_path)
    dataset = load_vot_dataset("VOT2018", data_root)
    trajs = load_tracker_trajectories(res, "hand", dataset)
    ar = eval_accuracy_robustness(dataset, trajs)
    # Accuracy: burn-in hides frames 0-9 and 55-64; lines 2/0/1 are unknown. Known frames: 10-49 (40 frames at 1.0)
    # and 65-199 (135 frames at 0.5): (40 + 67.5) / 175.
    assert ar.accuracy == pytest.approx(107.5 / 175, abs=1e-12)
    # Robustness: 1 failure in 200 frames, x 100; lost number 1.
    assert ar.robustness == pytest.approx(0.5, abs=1e-12) and ar.lost_number == 1.0

    # EAO (bounds 99 x 99 clip nothing). Fragments: F0 = frames 0-55, zero-padded to 200 columns (ones at columns
    # 1-49); F1 = frames 55-199 in columns 0-144 (0.5 in columns 1-144), NaN after. Weights ('all'): 56/56 and 145/145.
    # E[l] = (min(l, 49) / l + 0.5) / 2 for l <= 144, 49 / l for 145 <= l <= 199; EAO = mean of E[99..199].
    def curve(w0: float, w1: float) -> dict[int, float]:
        out = {}
        for length in range(99, 200):
            if length <= 144:
                out[length] = (min(length, 49) / length * w0 + 0.5 * w1) / (w0 + w1)
            else:
                out[length] = 49 / length
        return out

    eao = eval_eao(dataset, trajs, tags=("all", "occlusion", "empty", "camera_motion"))
    expected_all = curve(1.0, 1.0)
    assert eao.eao["all"] == pytest.approx(sum(expected_all.values()) / 101, abs=1e-6)
    for length, value in expected_all.items():
        assert eao.curves["all"][length] == pytest.approx(value, abs=1e-6)
    # occlusion: F0 has 56 tagged frames of 56 -> weight 1; F1 has 1 (frame 55) of 145 -> weight 1/145.
    assert eao.eao["occlusion"] == pytest.approx(sum(curve(1.0, 1 / 145).values()) / 101, abs=1e-6)
    # empty (no attribute): frames 56-199. F0 weight 0, F1 weight 144/145: E = 0.5 for l <= 144, undefined (0/0)
    # beyond, so EAO = 0.5 over the defined lengths 99-144.
    assert eao.eao["empty"] == pytest.approx(0.5, abs=1e-6)
    assert np.isnan(eao.curves["empty"][150])
    # camera_motion is never set: every weight is 0 -> NaN (pysot raises ZeroDivisionError here).
    assert math.isnan(eao.eao["camera_motion"])


@pytest.mark.parametrize("seed,reps", [(0, 1), (1, 1), (2, 15)])
def test_parity_with_pysot_transcription(tmp_path: Path, seed: int, reps: int) -> None:
    data_root, result_dir, videos = make_random_set(tmp_path, seed, reps)
    dataset = load_vot_dataset("VOT2018", data_root)
    tags = ("all",) + ATTRS + ("empty",)
    evals = evaluate_trackers(dataset, result_dir, list_trackers(result_dir), tags=tags)
    assert set(evals) == {"trk_a", "trk_b"}
    for tracker, ev in evals.items():
        trajs = {v["name"]: [ref_read(result_dir / tracker / "baseline" / v["name"] / f"{v['name']}_{r:03d}.txt")
                             for r in range(1, reps + 1)] for v in videos}
        accuracy, robustness, lost, overlaps, failures = ref_accuracy_robustness(videos, trajs)
        assert ev.repetitions == reps
        assert ev.accuracy == pytest.approx(accuracy, abs=1e-6)
        assert ev.robustness == pytest.approx(robustness, abs=1e-6)
        assert ev.lost_number == pytest.approx(lost, abs=1e-6)
        assert ev.ar.failures == failures
        for name, values in overlaps.items():
            np.testing.assert_allclose(ev.ar.overlaps[name], values, atol=1e-6, equal_nan=True)
        reference = ref_eao(videos, trajs, tags)
        for tag in tags:
            assert ev.eao.eao[tag] == pytest.approx(reference[tag], abs=1e-6, nan_ok=True), tag
        assert 0 < ev.eao_all < 1
    assert evals["trk_a"].lost_number < evals["trk_b"].lost_number


def test_dataset_loader_layouts_and_tags(tmp_path: Path) -> None:
    gt = [[1, 2, 30, 2, 30, 40, 1, 40]] * 5
    write_dataset(tmp_path, {"v": {"gt": gt, "width": 64, "height": 48, "occlusion": [0, 1], "size_change": []}},
                  name="VOT2016", pysot_layout=True)
    ds = load_vot_dataset("VOT2016", tmp_path)
    video = ds["v"]
    assert len(ds) == 1 and video.gt.shape == (5, 8) and (video.width, video.height) == (64, 48)
    assert video.img_paths[0] == str((tmp_path / "VOT2016" / "v" / "color" / "00000001.jpg").resolve())
    assert video.tags["occlusion"].tolist() == [0, 1, 0, 0, 0]
    assert video.tags["all"].tolist() == [1] * 5 and video.tags["empty"].tolist() == [1, 0, 1, 1, 1]
    # mixed rectangles and polygons: rectangles become their corner polygons
    write_dataset(tmp_path, {"m": {"gt": [[0, 0, 10, 5], SQUARE], "width": 50, "height": 50}}, name="VOT2019")
    assert load_vot_dataset("VOT2019", tmp_path)["m"].gt[0].tolist() == [0, 0, 10, 0, 10, 5, 0, 5]


def test_dataset_errors(tmp_path: Path) -> None:
    with pytest.raises(BenchmarkError, match=r"VOT2018\.json.*create_json\.py.*make_synthetic_data"):
        load_vot_dataset("VOT2018", tmp_path)
    path = write_dataset(tmp_path, {"v": {"gt": [SQUARE], "width": 9, "height": 9}})
    meta = json.loads(path.read_text())
    del meta["v"]["width"]
    path.write_text(json.dumps(meta))
    with pytest.raises(BenchmarkError, match="lacks key 'width'"):
        load_vot_dataset("VOT2018", tmp_path)
    path.write_text("{not json")
    with pytest.raises(BenchmarkError, match="cannot read"):
        load_vot_dataset("VOT2018", tmp_path)


def test_result_loader_repetitions_and_errors(tmp_path: Path) -> None:
    gt = [SQUARE] * 30
    write_dataset(tmp_path / "data", {"v": {"gt": gt, "width": 60, "height": 60},
                                      "w": {"gt": gt, "width": 60, "height": 60}})
    ds = load_vot_dataset("VOT2018", tmp_path / "data")
    res = tmp_path / "res"
    failing = ["1"] + [fmt(SQUARE)] * 9 + ["2", "0", "0", "0", "0", "1"] + [fmt(SQUARE)] * 14
    for rep in range(1, 16):  # 15 repetitions: all are used; 5 of them fail once
        write_result(res, "t", "v", failing if rep <= 5 else perfect_lines(gt), rep)
        write_result(res, "t", "w", perfect_lines(gt), rep)
    ar = eval_accuracy_robustness(ds, load_tracker_trajectories(res, "t", ds))
    assert ar.lost_number == pytest.approx(5 / 15) and ar.robustness == pytest.approx(5 / 15 / 60 * 100)
    (res / "t" / "baseline" / "w" / "w_015.txt").unlink()  # 14 files: only _001 is used, so 'w' has 1 vs 15
    with pytest.raises(ResultError, match="repetitions"):
        load_tracker_trajectories(res, "t", ds)
    write_result(res, "u", "v", perfect_lines(gt))
    with pytest.raises(ResultError, match=r"w_001\.txt: missing"):
        load_tracker_trajectories(res, "u", ds)
    write_result(res, "u", "w", perfect_lines(gt)[:20])
    with pytest.raises(ResultError, match=r"w_001\.txt: truncated: 20 lines for 30 frames"):
        load_tracker_trajectories(res, "u", ds)
    write_result(res, "u", "w", perfect_lines(gt)[:3] + ["Occ"] + perfect_lines(gt)[4:])
    with pytest.raises(ResultError, match=r"w_001\.txt:4: cannot read 'Occ'"):
        load_tracker_trajectories(res, "u", ds)
    with pytest.raises(ResultError, match="no tracker folders starting with 'zz'"):
        list_trackers(res, "zz")
    assert list_trackers(res) == ["t", "u"] and list_trackers(res, "u") == ["u"]


def run_cli(argv: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    rc = eval_tool.main(eval_tool.get_args_parser().parse_args(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data_root, res = hand_made_case(tmp_path)
    gt = [SQUARE] * 200
    write_result(res, "perfect", "sq", perfect_lines(gt))
    out_json, out_png = tmp_path / "out" / "eval.json", tmp_path / "eao.png"
    rc, out, err = run_cli(["--dataset", "VOT2018", "--data-root", str(data_root), "--result-dir", str(res),
                            "--json", str(out_json), "--plot", str(out_png), "--attributes", "--show_video_level"],
                           capsys)
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[1].replace(" ", "") == "|TrackerName|Accuracy|Robustness|LostNumber|EAO|"
    assert lines[3].split("|")[1].strip() == "perfect" and lines[4].split("|")[1].strip() == "hand"  # by EAO
    assert "occlusion" in out and "Video name" in out
    report = json.loads(out_json.read_text())
    assert set(report) == {"perfect", "hand"}
    hand = report["hand"]
    assert hand["accuracy"] == pytest.approx(107.5 / 175) and hand["robustness"] == pytest.approx(0.5)
    assert hand["lost"] == 1.0 and 0 < hand["eao"] < 1 and hand["eao_tags"]["camera_motion"] is None
    assert hand["videos"]["sq"] == {"accuracy": pytest.approx(107.5 / 175), "lost": 1.0, "failures": [1],
                                    "frames": 200}
    assert report["perfect"]["eao"] == 1.0 and report["perfect"]["robustness"] == 0.0
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out_json.parent.glob(".*tmp"))  # the atomic write left no temporary file
    json_2 = tmp_path / "eval_2.json"  # two worker processes give the same report
    rc, _, err = run_cli(["--data-root", str(data_root), "--result_dir", str(res), "--num", "2", "--json",
                          str(json_2)], capsys)
    assert rc == 0, err
    assert json.loads(json_2.read_text()) == {k: {**v, "eao_tags": {"all": v["eao"]}} for k, v in report.items()}
    rc, out, _ = run_cli(["--data-root", str(data_root), "--result_dir", str(res), "--tracker_prefix", "ha"], capsys)
    assert rc == 0 and "hand" in out and "perfect" not in out


def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data_root, res = hand_made_case(tmp_path)
    base = ["--data-root", str(data_root), "--result_dir", str(res)]
    cases = {
        "missing json": (["--data-root", str(tmp_path / "nowhere"), "--result_dir", str(res)], "VOT2018.json"),
        "no result dir": (["--data-root", str(data_root), "--result_dir", str(tmp_path / "nope")], "not found"),
        "no tracker": (base + ["--tracker_prefix", "zzz"], "no tracker folders"),
    }
    for name, (argv, needle) in cases.items():
        rc, _, err = run_cli(argv, capsys)
        assert rc != 0 and len(err.strip().splitlines()) == 1 and needle in err, (name, err)
    (res / "other" / "baseline").mkdir(parents=True)
    rc, _, err = run_cli(base, capsys)
    assert rc != 0 and len(err.strip().splitlines()) == 1 and "other: no results for 1 video (sq)" in err
    write_result(res, "other", "sq", ["1"] * 150)
    rc, _, err = run_cli(base, capsys)
    assert rc != 0 and len(err.strip().splitlines()) == 1 and "truncated" in err and "sq_001.txt" in err
    # as a process: exit status 1, one line, no traceback
    proc = subprocess.run([sys.executable, "tools/eval.py", "--data-root", str(tmp_path / "nowhere"),
                           "--result_dir", str(res)], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1], timeout=120)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_non_finite_regions_name_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data_root, res = hand_made_case(tmp_path)
    lines = ["1"] + [fmt(SQUARE)] * 199
    for bad in ("nan,10,20,30,30,30,10,30", "10.0,inf,30,10,30,30,10,30", "-inf,1,2,3"):
        lines[7] = bad
        path = write_result(res, "hand", "sq", lines)
        rc, _, err = run_cli(["--data-root", str(data_root), "--result_dir", str(res)], capsys)
        assert rc == 2 and err.strip().splitlines() == [err.strip()]
        assert f"{path}:8: non-finite value" in err, err


def _two_video_case(tmp_path: Path) -> tuple[Path, Path]:
    gt = [SQUARE] * 120
    write_dataset(tmp_path / "data", {"a": {"gt": gt, "width": 100, "height": 100},
                                      "b": {"gt": gt, "width": 100, "height": 100}})
    res = tmp_path / "res"
    write_result(res, "T", "a", perfect_lines(gt))
    return tmp_path / "data", res


def test_missing_and_extra_videos_are_errors_unless_allowed(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data_root, res = _two_video_case(tmp_path)
    base = ["--data-root", str(data_root), "--result_dir", str(res)]
    rc, _, err = run_cli(base, capsys)
    assert rc == 2 and "T: no results for 1 video (b) of the 2 videos of VOT2018" in err and "--allow-missing" in err
    rc, out, err = run_cli(base + ["--allow-missing"], capsys)
    assert rc == 0, err
    assert "no results from T: b" in out and "evaluating 1 of the 2 videos" in out
    row = next(line for line in out.splitlines() if line.startswith("|") and line.split("|")[1].strip() == "T")
    assert float(row.split("|")[2]) == pytest.approx(1.0)  # accuracy of the one perfect video
    write_result(res, "T", "b", perfect_lines([SQUARE] * 120))
    write_result(res, "T", "zebra", ["1"])  # a video of another dataset
    rc, _, err = run_cli(base, capsys)
    assert rc == 2 and "T: results for 1 video (zebra) not in VOT2018" in err
    rc, out, _ = run_cli(base + ["--allow-missing"], capsys)
    assert rc == 0 and "not in VOT2018: T's zebra" in out and "evaluating" not in out


def test_regions_far_larger_than_the_truth_are_warned_about(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data_root, res = _two_video_case(tmp_path)
    frame = [0.0, 0.0, 99.0, 0.0, 99.0, 99.0, 0.0, 99.0]  # the whole 100x100 frame: overlaps the square everywhere
    for video in ("a", "b"):
        write_result(res, "T", video, ["1"] + [fmt(frame)] * 119)
    rc, out, err = run_cli(["--data-root", str(data_root), "--result_dir", str(res)], capsys)
    assert rc == 0
    # area 99 * 99 against 20 * 20 (the square's polygon) -> 24.5x
    assert f"warning: T: the mean predicted region is {99 * 99 / 400:.1f}x the ground truth's area" in err
    write_result(res, "T", "a", perfect_lines([SQUARE] * 120))
    write_result(res, "T", "b", perfect_lines([SQUARE] * 120))
    rc, _, err = run_cli(["--data-root", str(data_root), "--result_dir", str(res)], capsys)
    assert rc == 0 and "warning" not in err
