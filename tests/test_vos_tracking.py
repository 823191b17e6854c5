"""The VOS protocol: merge rule, late-starting objects, the mIoU meter, and test.py -> eval.py end to end."""
from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from tracking_helpers import small_sharp_model

from siammask.evaluation.davis import VOSObject, VOSSequence, load_davis, load_ytb_vos
from siammask.tracker.vos import labels_at, merge_object_masks, run_vos_sequence
from siammask.utils.palette import read_index_png, write_palette_png

ROOT = Path(__file__).resolve().parents[1]
CONFIG = str(ROOT / "experiments" / "siammask_sharp" / "config_davis.json")
SHAPE = (30, 40)


def test_merge_is_argmax_over_objects_with_background_below_threshold() -> None:
    a = np.array([[0.2, 0.6, 0.5, -1.0]], np.float32)
    b = np.array([[0.3, 0.4, 0.5, -1.0]], np.float32)
    best_id, best_prob = merge_object_masks([a, None, b], [1, 2, 3], (1, 4))
    np.testing.assert_array_equal(best_id, [[3, 1, 1, 0]])  # tie at 0.5: the first object (np.argmax)
    np.testing.assert_array_equal(labels_at(best_id, best_prob, 0.35), [[0, 1, 1, 0]])  # 0.3 is not above 0.35
    np.testing.assert_array_equal(labels_at(best_id, best_prob, 0.5), [[0, 1, 0, 0]])  # strictly above


@dataclass
class FakeResult:
    mask: np.ndarray


class ScriptedTracker:
    """Frames are images whose pixels hold the frame index; `track_many` returns `script(obj, frame)` per state."""

    def __init__(self, script: Any) -> None:
        self.script = script
        self.inits: list[tuple[int, tuple[float, ...]]] = []
        self.tracks: list[tuple[int, list[int]]] = []
        self._n = 0

    def init_cxcywh(self, frame: np.ndarray, box: tuple[float, ...]) -> dict:
        self.inits.append((int(frame[0, 0, 0]), tuple(box)))
        self._n += 1
        return {"obj": self._n}

    def init_mask(self, frame: np.ndarray, mask: np.ndarray) -> dict:
        self.inits.append((int(frame[0, 0, 0]), ("mask", int(mask.sum()))))
        self._n += 1
        return {"obj": self._n}

    def track_many(self, states: list[dict], frame: np.ndarray) -> list[FakeResult]:
        f = int(frame[0, 0, 0])
        self.tracks.append((f, [s["obj"] for s in states]))
        return [FakeResult(self.script(s["obj"], f)) for s in states]


def reader(path: str) -> np.ndarray:
    return np.full((*SHAPE, 3), int(Path(path).stem), np.uint8)


def _sequence(tmp: Path, labels: list[np.ndarray], objects: list[tuple[int, int, int]], annotate_all: bool,
              per_object: bool) -> VOSSequence:
    frames = [f"{t:05d}" for t in range(len(labels))]
    annos = {}
    for t, lab in enumerate(labels):
        if annotate_all or any(start == t for _, start, _ in objects):
            annos[frames[t]] = str(tmp / f"{frames[t]}.png")
            write_palette_png(annos[frames[t]], lab)
    objs = [VOSObject(i, s, e, annos[frames[s]]) for i, s, e in objects]
    return VOSSequence("v", frames, [str(tmp / f"{t}.jpg") for t in range(len(labels))], annos, objs,
                       per_object_frames=per_object)


def test_late_starting_object_is_initialised_on_its_first_frame(tmp_path: Path) -> None:
    """Object 1 spans frames 0-4; object 2 starts on frame 2 (box x 20-29, y 5-14) and ends on frame 3."""
    labels = [np.zeros(SHAPE, np.uint8) for _ in range(5)]
    labels[0][2:6, 2:8] = 1
    labels[2][5:15, 20:30] = 2
    seq = _sequence(tmp_path, labels, [(1, 0, 4), (2, 2, 3)], annotate_all=False, per_object=True)
    left = np.full(SHAPE, -1.0, np.float32)
    left[:, :10] = 0.6
    square = np.zeros(SHAPE, np.float32)
    square[0:10, 0:20] = 0.9
    tracker = ScriptedTracker(lambda obj, f: left if obj == 1 else square)
    seen: dict[int, np.ndarray] = {}
    res = run_vos_sequence(tracker, seq, image_reader=reader,
                           on_frame=lambda f, name, i, p: seen.__setitem__(f, labels_at(i, p, 0.35)))
    assert tracker.inits == [(0, (5.0, 4.0, 6, 4)), (2, (25.0, 10.0, 10, 10))]  # boundingRect centre and size
    assert tracker.tracks == [(1, [1]), (2, [1]), (3, [1, 2]), (4, [1])]  # object 2 tracked up to its end only
    np.testing.assert_array_equal(seen[0], labels[0])  # the first frame of an object is its annotation
    expected2 = np.where(left > 0.35, 1, 0)
    expected2[labels[2] == 2] = 2  # object 2's annotation (1.0) beats object 1's 0.6
    np.testing.assert_array_equal(seen[2], expected2)
    expected3 = np.where(left > 0.35, 1, 0)
    expected3[square > 0.6] = 2
    np.testing.assert_array_equal(seen[3], expected3)
    np.testing.assert_array_equal(seen[4], np.where(left > 0.35, 1, 0))
    assert res.miou is None  # YouTube-VOS valid: no ground truth after the first frames


def test_init_from_mask_option_uses_init_mask(tmp_path: Path) -> None:
    labels = [np.zeros(SHAPE, np.uint8) for _ in range(3)]
    labels[0][2:6, 2:8] = 1
    seq = _sequence(tmp_path, labels, [(1, 0, 2)], annotate_all=True, per_object=False)
    tracker = ScriptedTracker(lambda obj, f: np.zeros(SHAPE, np.float32))
    run_vos_sequence(tracker, seq, image_reader=reader, init_from_mask=True)
    assert tracker.inits == [(0, ("mask", 24))]


def _moving_labels(n: int) -> list[np.ndarray]:
    out = []
    for t in range(n):
        lab = np.zeros(SHAPE, np.uint8)
        lab[2:8, 2 + 2 * t:8 + 2 * t] = 1
        lab[15:25, 20:30] = 2
        out.append(lab)
    return out


def test_miou_meter_excludes_first_and_last_frame(tmp_path: Path) -> None:
    labels = _moving_labels(6)
    seq = _sequence(tmp_path, labels, [(1, 0, 5), (2, 0, 5)], annotate_all=True, per_object=False)

    def script(obj: int, f: int) -> np.ndarray:
        if f == 5:
            return np.zeros(SHAPE, np.float32)  # the last frame is wrong: not counted
        if obj == 1 and f == 1:
            return np.zeros(SHAPE, np.float32)  # object 1 missed on frame 1: IoU 0 there
        return (labels[f] == obj).astype(np.float32)

    res = run_vos_sequence(ScriptedTracker(script), seq, image_reader=reader)
    assert res.object_ids == [1, 2]
    np.testing.assert_allclose(res.miou[0], [0.75] * 4)  # frames 1-4: 0, 1, 1, 1
    np.testing.assert_allclose(res.miou[1], [1.0] * 4)


def test_miou_meter_per_object_range_of_youtube_vos(tmp_path: Path) -> None:
    """YouTube-VOS objects: frames start+1 .. end-2 (the original's range(start + 1, end - 1))."""
    labels = _moving_labels(6)
    seq = _sequence(tmp_path, labels, [(1, 0, 5)], annotate_all=True, per_object=True)
    res = run_vos_sequence(ScriptedTracker(lambda obj, f: np.zeros(SHAPE, np.float32) if f == 4
                                           else (labels[f] == 1).astype(np.float32)), seq, image_reader=reader)
    np.testing.assert_allclose(res.miou[0], [1.0] * 4)  # frame 4 = end - 1 is outside the range


# ---------------------------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def vos_setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    from siammask.datasets.synthetic.vos_benchmarks import write_davis_dataset, write_ytb_vos_valid

    root = tmp_path_factory.mktemp("vos")
    data = root / "data"
    write_davis_dataset(str(data), num_seqs=1, num_frames=5, seed=1)
    write_ytb_vos_valid(str(data), num_videos=1, num_frames=5, seed=1)
    ckpt = str(root / "SiamMask_tiny.pth")
    torch.save(small_sharp_model().state_dict(), ckpt)
    return {"root": str(root), "data": str(data), "ckpt": ckpt}


def _test_args(setup: dict[str, str], dataset: str) -> Any:
    from siammask.tools.test import get_args_parser

    return get_args_parser().parse_args(["--config", CONFIG, "--resume", setup["ckpt"], "--mask", "--refine",
                                         "--dataset", dataset, "--data-root", setup["data"], "--device", "cpu",
                                         "--result-dir", str(Path(setup["root"]) / "results")])


def test_builtin_davis_test_then_eval(vos_setup: dict[str, str], capsys: pytest.CaptureFixture) -> None:
    from siammask.tools import eval as eval_tool
    from siammask.tools import test as test_tool

    assert test_tool.main(_test_args(vos_setup, "DAVIS2017")) == 0
    out = capsys.readouterr().out
    assert "(  1) Video: davis000" in out and "Segmentation Threshold 0.30 mIoU:" in out and "Mean Speed:" in out
    seq = load_davis(vos_setup["data"], "2017")[0]
    res_dir = Path(vos_setup["root"]) / "results" / "DAVIS2017" / "Custom_mask_refine_SiamMask_tiny"
    pngs = sorted(p.name for p in (res_dir / seq.name).iterdir())
    assert pngs == [f + ".png" for f in seq.frames]
    first_gt = read_index_png(seq.anno_paths[seq.frames[0]])
    np.testing.assert_array_equal(read_index_png(res_dir / seq.name / pngs[0]), first_gt)
    for p in pngs:
        lab = read_index_png(res_dir / seq.name / p)
        assert lab.shape == first_gt.shape and lab.max() <= len(seq.objects)
    out_json = Path(vos_setup["root"]) / "davis.json"
    args = eval_tool.get_args_parser().parse_args(["--dataset", "DAVIS2017", "--data-root", vos_setup["data"],
                                                   "--result_dir", str(res_dir.parent), "--json", str(out_json)])
    assert eval_tool.main(args) == 0
    report = json.loads(out_json.read_text())["Custom_mask_refine_SiamMask_tiny"]
    assert 0.0 <= report["J&F-Mean"] <= 1.0
    assert sorted(report["per_object"]) == [f"davis000_{o.obj_id}" for o in seq.objects]


def test_builtin_ytb_vos_writes_pngs_and_server_zip(vos_setup: dict[str, str], capsys: pytest.CaptureFixture) -> None:
    from siammask.tools import test as test_tool

    assert test_tool.main(_test_args(vos_setup, "ytb_vos")) == 0
    video = load_ytb_vos(vos_setup["data"])[0]
    assert any(o.start > 0 for o in video.objects)  # the built-in set has a late-starting object
    zip_path = Path(vos_setup["root"]) / "results" / "ytb_vos" / "Custom_mask_refine_SiamMask_tiny.zip"
    with zipfile.ZipFile(zip_path) as zf:
        names = sorted(zf.namelist())
    assert names == [f"Annotations/{video.name}/{f}.png" for f in video.frames]


def test_vos_needs_mask(vos_setup: dict[str, str], capsys: pytest.CaptureFixture) -> None:
    from siammask.tools import test as test_tool

    args = _test_args(vos_setup, "DAVIS2016")
    args.mask = False
    assert test_tool.main(args) == 2
    assert "needs --mask" in capsys.readouterr().err


def test_tune_vos_scores_equal_eval_and_resume(tmp_path: Path, vos_setup: dict[str, str],
                                               capsys: pytest.CaptureFixture) -> None:
    """One combination = the config's hp: its J&F at seg_thr 0.35 equals eval.py on test.py's PNGs; a rerun resumes."""
    from siammask.tools import eval as eval_tool
    from siammask.tools import test as test_tool
    from siammask.tools import tune_vos

    argv = ["--config", CONFIG, "--resume", vos_setup["ckpt"], "--refine", "--dataset", "DAVIS2017",
            "--data-root", vos_setup["data"], "--result-dir", str(tmp_path / "tune"), "--device", "cpu",
            "--penalty-k", "0.04,0.05,0.02", "--window-influence", "0.4,0.41,0.05", "--lr", "1.0,1.01,0.05",
            "--seg-thr", "0.35,0.55,0.15"]
    summary = tune_vos.run(tune_vos.get_args_parser().parse_args(argv))
    assert summary["jobs_run"] == 1 and [r["seg_thr"] for r in sorted(summary["rows"], key=lambda r: r["seg_thr"])] \
        == pytest.approx([0.35, 0.5])
    again = tune_vos.run(tune_vos.get_args_parser().parse_args(argv))
    assert again["jobs_run"] == 0 and again["rows"] == summary["rows"]
    args = _test_args(vos_setup, "DAVIS2017")
    args.result_dir = str(tmp_path / "res")
    assert test_tool.main(args) == 0
    out_json = tmp_path / "e.json"
    eargs = eval_tool.get_args_parser().parse_args(["--dataset", "DAVIS2017", "--data-root", vos_setup["data"],
                                                    "--result_dir", str(tmp_path / "res" / "DAVIS2017"),
                                                    "--json", str(out_json)])
    assert eval_tool.main(eargs) == 0
    ref = json.loads(out_json.read_text())["Custom_mask_refine_SiamMask_tiny"]
    row = [r for r in summary["rows"] if abs(r["seg_thr"] - 0.35) < 1e-9][0]
    for key in ("J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"):
        assert row[key] == pytest.approx(ref[key], abs=1e-9)
