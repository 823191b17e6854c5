"""DAVIS J and F: hand-made masks, the statistics, equality with a literal port of the toolkit, eval.py errors."""
from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from siammask.evaluation.davis import (
    db_eval_boundary,
    db_eval_iou,
    db_statistics,
    disk,
    evaluate_davis,
    evaluate_sequence,
    load_davis,
    seg2bmap,
)
from siammask.evaluation.errors import ResultError
from siammask.utils.palette import davis_palette, read_index_png, write_palette_png


def _square(shape: tuple[int, int], rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[rows[0]:rows[1], cols[0]:cols[1]] = True
    return m


# ---------------------------------------------------------------------------------------------- a literal reference
def _ref_bmap(seg: np.ndarray) -> np.ndarray:
    """The toolkit's boundary rule written pixel by pixel (slow, obvious)."""
    h, w = seg.shape
    b = np.zeros((h, w), bool)
    for y in range(h):
        for x in range(w):
            e = seg[y, x + 1] if x + 1 < w else False
            s = seg[y + 1, x] if y + 1 < h else False
            se = seg[y + 1, x + 1] if (x + 1 < w and y + 1 < h) else False
            if y == h - 1 and x == w - 1:
                b[y, x] = False
            elif y == h - 1:
                b[y, x] = seg[y, x] != e
            elif x == w - 1:
                b[y, x] = seg[y, x] != s
            else:
                b[y, x] = (seg[y, x] != e) or (seg[y, x] != s) or (seg[y, x] != se)
    return b


def _ref_f(fg: np.ndarray, gt: np.ndarray, bound_th: float = 0.008) -> float:
    """F of one frame: full-frame dilations with a disk, the toolkit's empty-boundary cases."""
    r = bound_th if bound_th >= 1 else math.ceil(bound_th * np.linalg.norm(fg.shape))
    yy, xx = np.mgrid[-int(r):int(r) + 1, -int(r):int(r) + 1]
    kernel = (xx ** 2 + yy ** 2 <= r ** 2).astype(np.uint8)
    fb, gb = _ref_bmap(fg), _ref_bmap(gt)
    fd = cv2.dilate(fb.astype(np.uint8), kernel) > 0
    gd = cv2.dilate(gb.astype(np.uint8), kernel) > 0
    n_fg, n_gt = fb.sum(), gb.sum()
    if n_fg == 0 and n_gt > 0:
        p, rc = 1.0, 0.0
    elif n_fg > 0 and n_gt == 0:
        p, rc = 0.0, 1.0
    elif n_fg == 0 and n_gt == 0:
        p, rc = 1.0, 1.0
    else:
        p, rc = (fb & gd).sum() / n_fg, (gb & fd).sum() / n_gt
    return 0.0 if p + rc == 0 else 2 * p * rc / (p + rc)


def _blobs(rng: np.random.Generator, shape: tuple[int, int], k: int) -> np.ndarray:
    out = np.zeros(shape, np.uint8)
    for obj in range(1, k + 1):
        if rng.random() < 0.15:
            continue  # an object absent from this frame
        c = (int(rng.integers(0, shape[1])), int(rng.integers(0, shape[0])))
        cv2.ellipse(out, c, (int(rng.integers(2, 14)), int(rng.integers(2, 10))), float(rng.uniform(0, 180)), 0,
                    360, obj, -1)
    return out


# ---------------------------------------------------------------------------------------------- J
def test_j_identical_disjoint_empty() -> None:
    a = _square((20, 20), (2, 8), (2, 8))
    b = _square((20, 20), (10, 15), (10, 15))
    assert db_eval_iou(a, a) == 1.0
    assert db_eval_iou(a, b) == 0.0
    empty = np.zeros((20, 20), bool)
    assert db_eval_iou(empty, empty) == 1.0  # empty union counts 1
    assert db_eval_iou(a, empty) == 0.0
    stack = db_eval_iou(np.stack([a, a, empty]), np.stack([a, b, empty]))
    np.testing.assert_array_equal(stack, [1.0, 0.0, 1.0])


def test_j_and_f_of_a_one_pixel_shift_by_hand() -> None:
    """10x10 square at rows/cols 10-19 vs the same square one column to the right.

    J: intersection 10x9 = 90, union 110 -> 9/11. Boundaries (seg2bmap) have 40 pixels each: in the square its
    last row and column (19), outside it column 9 (rows 9-19) and row 9 (cols 10-19). With no tolerance (0 px)
    they share only rows 9 and 19 at cols 10-19 = 20 pixels -> P = R = 0.5 -> F = 0.5; with 1 px every boundary
    pixel of one has a 4-neighbour on the other -> F = 1.
    """
    gt = _square((40, 40), (10, 20), (10, 20))
    res = _square((40, 40), (10, 20), (11, 21))
    assert db_eval_iou(gt, res) == pytest.approx(9 / 11)
    bm = seg2bmap(gt)
    assert bm.sum() == 40
    assert bm[19, 10:20].all() and bm[10:20, 19].all() and bm[9:20, 9].all() and bm[9, 10:20].all()
    assert db_eval_boundary(gt, res, bound_th=0) == pytest.approx(0.5)
    assert db_eval_boundary(gt, res, bound_th=1) == pytest.approx(1.0)
    assert db_eval_boundary(gt, gt) == 1.0


def test_f_disjoint_and_empty_cases() -> None:
    a = _square((100, 100), (5, 15), (5, 15))
    far = _square((100, 100), (70, 90), (70, 90))
    empty = np.zeros((100, 100), bool)
    assert db_eval_boundary(a, far) == 0.0  # boundaries farther apart than the tolerance (2 px here)
    assert db_eval_boundary(empty, empty) == 1.0
    assert db_eval_boundary(a, empty) == 0.0  # P 1, R 0
    assert db_eval_boundary(empty, a) == 0.0  # P 0, R 1


def test_disk_is_scikit_images() -> None:
    np.testing.assert_array_equal(disk(1), [[0, 1, 0], [1, 1, 1], [0, 1, 0]])
    assert disk(8).shape == (17, 17) and disk(8).sum() == 197  # lattice points with x^2 + y^2 <= 64


# ---------------------------------------------------------------------------------------------- statistics
def test_statistics_mean_recall_decay_by_hand() -> None:
    """N = 8: bin ends round(linspace(1, 8, 5) + 1e-10) - 1 = [0, 2, 4, 5, 7]; bins v[0:3], ..., v[5:8].

    v = 1, .8, .6, .4, .2, 0, 0, 0: mean 3/8, recall (> 0.5) 3/8, decay mean(1, .8, .6) - mean(0, 0, 0) = 0.8.
    """
    mean, recall, decay = db_statistics([1.0, 0.8, 0.6, 0.4, 0.2, 0.0, 0.0, 0.0])
    assert mean == pytest.approx(0.375)
    assert recall == pytest.approx(0.375)
    assert decay == pytest.approx(0.8)
    assert db_statistics([0.5] * 5) == pytest.approx((0.5, 0.0, 0.0))  # 0.5 is not a recall


def test_vectorised_metrics_equal_a_literal_port() -> None:
    rng = np.random.default_rng(3)
    shape = (37, 53)
    frames = 6
    gt = np.stack([_blobs(rng, shape, 3) for _ in range(frames)])
    res = np.stack([_blobs(rng, shape, 2) for _ in range(frames)])  # object 3 never in the result
    res[2] = gt[2]
    gt[3, -6:, -9:] = 1  # touching the bottom-right corner (the frame-edge rules of seg2bmap)
    res[4] = 1  # the whole frame
    gt[5, :4, :] = 2  # a band along the top edge
    j, f = evaluate_sequence(gt, res, 3)
    for k in range(3):
        for t in range(frames):
            g, r = gt[t] == k + 1, res[t] == k + 1
            union = (g | r).sum()
            ref_j = 1.0 if union == 0 else (g & r).sum() / union
            assert j[k, t] == pytest.approx(ref_j, abs=1e-6)
            assert f[k, t] == pytest.approx(_ref_f(r, g), abs=1e-6)
    others = [t for t in range(frames) if t != 2]  # frame 2 of the result is the ground truth
    np.testing.assert_array_equal(j[2, others], np.where([(gt[t] == 3).any() for t in others], 0.0, 1.0))


# ---------------------------------------------------------------------------------------------- files
def _davis(root: Path, seqs: dict[str, list[np.ndarray]], year: str = "2017") -> Path:
    base = root / "DAVIS"
    for name, labels in seqs.items():
        for t, lab in enumerate(labels):
            (base / "JPEGImages" / "480p" / name).mkdir(parents=True, exist_ok=True)
            (base / "JPEGImages" / "480p" / name / f"{t:05d}.jpg").write_bytes(b"")
            write_palette_png(base / "Annotations" / "480p" / name / f"{t:05d}.png", lab)
    (base / "ImageSets" / year).mkdir(parents=True, exist_ok=True)
    (base / "ImageSets" / year / "val.txt").write_text("\n".join(seqs) + "\n")
    return root


@pytest.fixture()
def davis_gt(tmp_path: Path) -> dict[str, object]:
    rng = np.random.default_rng(5)
    seqs = {f"seq{i}": [_blobs(rng, (48, 64), 2) for _ in range(6)] for i in range(2)}
    for labels in seqs.values():  # both objects present in the first annotation
        labels[0][2:8, 2:8] = 1
        labels[0][20:30, 30:40] = 2
    root = _davis(tmp_path / "data", seqs)
    return {"root": str(root), "seqs": seqs, "tmp": tmp_path}


def _write_results(folder: Path, seqs: dict[str, list[np.ndarray]]) -> None:
    for name, labels in seqs.items():
        for t, lab in enumerate(labels):
            write_palette_png(folder / name / f"{t:05d}.png", lab)


def test_palette_png_round_trip_and_colours(tmp_path: Path) -> None:
    lab = np.array([[0, 1, 2], [3, 255, 1]], np.uint8)
    write_palette_png(tmp_path / "m.png", lab)
    np.testing.assert_array_equal(read_index_png(tmp_path / "m.png"), lab)
    pal = davis_palette()
    assert pal[3:6] == [128, 0, 0] and pal[6:9] == [0, 128, 0] and pal[9:12] == [128, 128, 0]
    bgr = cv2.imread(str(tmp_path / "m.png"))
    assert tuple(bgr[0, 1]) == (0, 0, 128)  # object 1 is DAVIS red


def test_ground_truth_as_result_scores_one_and_first_last_frames_are_excluded(davis_gt: dict) -> None:
    seqs = davis_gt["seqs"]
    res_dir = davis_gt["tmp"] / "res" / "T"
    wrong_ends = {n: [np.zeros_like(labels[0])] + labels[1:-1] + [np.zeros_like(labels[0])]
                  for n, labels in seqs.items()}
    _write_results(res_dir, wrong_ends)
    ev = evaluate_davis(load_davis(davis_gt["root"], "2017"), str(res_dir), "T")
    summary = ev.summary()
    assert list(summary) == ["J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"]
    assert summary["J&F-Mean"] == 1.0 and summary["J-Decay"] == 0.0 and summary["F-Recall"] == 1.0
    assert sorted(ev.objects) == ["seq0_1", "seq0_2", "seq1_1", "seq1_2"]
    assert all(o.j.shape == (4,) for o in ev.objects.values())  # 6 frames minus first and last


def test_global_means_are_over_objects_and_davis2016_binarises(davis_gt: dict) -> None:
    seqs = davis_gt["seqs"]
    res_dir = davis_gt["tmp"] / "res" / "T"
    swapped = {n: [np.choose(lab, [0, 2, 1]).astype(np.uint8) for lab in labels] for n, labels in seqs.items()}
    _write_results(res_dir, swapped)  # ids 1 and 2 exchanged: wrong for 2017, right for binary 2016
    ev = evaluate_davis(load_davis(davis_gt["root"], "2017"), str(res_dir), "T")
    per = [o.stats()["J-Mean"] for o in ev.objects.values()]
    assert ev.summary()["J-Mean"] == pytest.approx(np.mean(per))
    assert ev.summary()["J-Mean"] < 0.5
    binary = evaluate_davis(load_davis(davis_gt["root"], "2017", binary=True), str(res_dir), "T", binary=True)
    assert list(binary.objects) == ["seq0_1", "seq1_1"] and binary.summary()["J&F-Mean"] == 1.0


@pytest.mark.parametrize("fault", ["missing", "size", "id", "rgb"])
def test_result_errors_name_the_file(davis_gt: dict, fault: str, capsys: pytest.CaptureFixture) -> None:
    from siammask.tools import eval as eval_tool

    seqs = davis_gt["seqs"]
    res_root = davis_gt["tmp"] / "res"
    _write_results(res_root / "T", seqs)
    bad = res_root / "T" / "seq1" / "00003.png"
    if fault == "missing":
        bad.unlink()
    elif fault == "size":
        write_palette_png(bad, np.zeros((10, 10), np.uint8))
    elif fault == "id":
        lab = seqs["seq1"][3].copy()
        lab[0, 0] = 3
        write_palette_png(bad, lab)
    else:
        cv2.imwrite(str(bad), np.zeros((48, 64, 3), np.uint8))
    with pytest.raises(ResultError, match=str(bad)):
        evaluate_davis(load_davis(davis_gt["root"], "2017"), str(res_root / "T"))
    out_json = davis_gt["tmp"] / "e.json"
    args = eval_tool.get_args_parser().parse_args(["--dataset", "DAVIS2017", "--data-root", davis_gt["root"],
                                                   "--result_dir", str(res_root), "--json", str(out_json)])
    assert eval_tool.main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(bad) in err[0] and err[0].startswith("error:")
    assert not out_json.exists()


def test_eval_tool_table_json_and_object_table(davis_gt: dict, capsys: pytest.CaptureFixture) -> None:
    from siammask.tools import eval as eval_tool

    seqs = davis_gt["seqs"]
    res_root = davis_gt["tmp"] / "res"
    _write_results(res_root / "CustomA", seqs)
    _write_results(res_root / "CustomB", {n: [np.zeros_like(x) for x in labels] for n, labels in seqs.items()})
    _write_results(res_root / "Other", seqs)
    out_json = davis_gt["tmp"] / "e.json"
    args = eval_tool.get_args_parser().parse_args(["--dataset", "DAVIS2017", "--data-root", davis_gt["root"],
                                                   "--result_dir", str(res_root), "--tracker_prefix", "Custom",
                                                   "--json", str(out_json), "--show_video_level"])
    assert eval_tool.main(args) == 0
    out = capsys.readouterr().out
    assert "J&F-Mean" in out and "F-Decay" in out and "seq1_2" in out and "Other" not in out
    report = json.loads(out_json.read_text())
    assert sorted(report) == ["CustomA", "CustomB"]
    assert report["CustomA"]["J&F-Mean"] == 1.0
    assert report["CustomA"]["per_object"]["seq0_2"] == {"J-Mean": 1.0, "F-Mean": 1.0}
    empty_j = report["CustomB"]["per_object"]["seq0_1"]["J-Mean"]
    frames_without = sum(not (lab == 1).any() for lab in seqs["seq0"][1:-1])
    assert empty_j == pytest.approx(frames_without / 4)  # an empty result scores 1 only where the object is absent


def test_ytb_vos_loader_objects_with_their_own_frames(tmp_path: Path) -> None:
    """As the original loader: frames = sorted union; start/end = indices of each object's first/last frame."""
    base = tmp_path / "ytb_vos" / "valid"
    base.mkdir(parents=True)
    meta = {"videos": {"vid": {"objects": {"2": {"category": "x", "frames": ["00010", "00015"]},
                                           "1": {"category": "x", "frames": ["00000", "00005", "00010"]}}}}}
    (base / "meta.json").write_text(json.dumps(meta))
    write_palette_png(base / "Annotations" / "vid" / "00000.png", np.ones((4, 4), np.uint8))
    write_palette_png(base / "Annotations" / "vid" / "00010.png", np.full((4, 4), 2, np.uint8))
    from siammask.evaluation.davis import load_ytb_vos

    (seq,) = load_ytb_vos(str(tmp_path))
    assert seq.frames == ["00000", "00005", "00010", "00015"] and not seq.fully_annotated
    assert [(o.obj_id, o.start, o.end, Path(o.init_anno).name) for o in seq.objects] == \
        [(1, 0, 2, "00000.png"), (2, 2, 3, "00010.png")]
    assert seq.image_paths[3].endswith("JPEGImages/vid/00015.jpg")


def test_builtin_vos_benchmarks_layout(tmp_path: Path) -> None:
    from siammask.datasets.synthetic.vos_benchmarks import write_vos_benchmarks
    from siammask.evaluation.davis import load_ytb_vos

    write_vos_benchmarks(str(tmp_path))
    d17 = load_davis(str(tmp_path), "2017")
    d16 = load_davis(str(tmp_path), "2016")
    assert len(d17) == 2 and len(d16) == 1 and all(len(s.objects) >= 2 for s in d17)
    assert [len(s.objects) for s in d16] == [1] and all(s.fully_annotated for s in d17)
    ytb = load_ytb_vos(str(tmp_path))
    assert all(any(o.start > 0 for o in v.objects) for v in ytb)  # objects that appear later
    for v in ytb:
        for o in v.objects:
            assert (read_index_png(o.init_anno) == o.obj_id).any()
