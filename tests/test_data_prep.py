"""Dataset preparation: crop geometry, the per-dataset steps (raw -> crop511 + json), resume, errors, the VOT json
and the download script."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from siammask.datasets import DataError
from siammask.datasets.crop import crop_like_siamfc, crop_mask_like_siamfc, target_box_in_crop
from siammask.datasets.prep import coco as coco_prep
from siammask.datasets.prep import det as det_prep
from siammask.datasets.prep import vid as vid_prep
from siammask.datasets.prep import ytb_vos as ytb_prep
from siammask.datasets.prep.vot import VOT_TAGS, create_vot_json
from siammask.datasets.synthetic import write_raw_ytb_vos, write_vot_dataset

REPO = Path(__file__).resolve().parents[1]


def _digest(folder: Path, pattern: str = "*") -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob(pattern)) if p.is_file()}


# ---------------------------------------------------------------------------------------------- crop geometry
def test_crop_like_siamfc_centres_and_scales_the_target() -> None:
    image = np.full((300, 400, 3), 90, np.uint8)
    cx, cy, w, h = 150.0, 120.0, 40.0, 60.0
    image[int(cy - h / 2):int(cy + h / 2), int(cx - w / 2):int(cx + w / 2)] = (0, 0, 255)
    crop = crop_like_siamfc(image, (cx, cy), (w, h), instance_size=511)
    assert crop.shape == (511, 511, 3)
    red = (crop[..., 2] > 200) & (crop[..., 0] < 50)
    ys, xs = np.nonzero(red)
    x1, y1, x2, y2 = target_box_in_crop((w, h), crop.shape)
    assert abs(xs.mean() - 255) < 1.5 and abs(ys.mean() - 255) < 1.5
    assert abs((xs.max() - xs.min() + 1) - (x2 - x1)) < 2.5 and abs((ys.max() - ys.min() + 1) - (y2 - y1)) < 2.5
    p = 0.5 * (w + h)  # the target takes w * 127 / s_z pixels
    assert abs((x2 - x1) - w * 127 / np.sqrt((w + p) * (h + p))) < 1e-9
    border = crop[0, 0]
    assert np.allclose(border, cv2.mean(image)[:3], atol=1)  # padding = the image's mean colour
    mask = np.zeros((300, 400), bool)
    mask[int(cy - h / 2):int(cy + h / 2), int(cx - w / 2):int(cx + w / 2)] = True
    m = crop_mask_like_siamfc(mask, (cx, cy), (w, h), 0.5) > 0
    assert m[255, 255] and not m[0, 0]
    assert (m & red).sum() / (m | red).sum() > 0.95


# ---------------------------------------------------------------------------------------------- YouTube-VOS
@pytest.fixture(scope="module")
def ytb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ytb") / "ytb_vos"
    write_raw_ytb_vos(str(root), num_videos=3, num_frames=6, seed=11)
    ytb_prep.parse_ytb_vos(str(root), progress=False)
    ytb_prep.crop_ytb_vos(str(root), progress=False)
    ytb_prep.gen_json_ytb_vos(str(root))
    return root


def test_ytb_vos_round_trip(ytb: Path) -> None:
    instances = json.loads((ytb / "instances_train.json").read_text())
    train = json.loads((ytb / "train.json").read_text())
    assert sorted(train) == [f"train/{v}" for v in sorted(instances)]
    for video, objects in instances.items():
        for track, (_obj_id, anns) in enumerate(objects.items()):
            boxes = train[f"train/{video}"][f"{track:02d}"]
            for ann in anns:
                frame = f"{int(ann['file_name'].split('/')[-1]):06d}"
                x, y, w, h = ann["bbox"]
                assert boxes[frame] == [x, y, x + w, y + h]
                assert ann["area"] > ytb_prep.MIN_PIXELS
                folder = ytb / "crop511" / "train" / video
                img = cv2.imread(str(folder / f"{frame}.{track:02d}.x.jpg"))
                mask = cv2.imread(str(folder / f"{frame}.{track:02d}.m.png"), cv2.IMREAD_GRAYSCALE)
                assert img.shape == (511, 511, 3) and mask.shape == (511, 511)
                assert set(np.unique(mask)) <= {0, 255}
                ys, xs = np.nonzero(mask)
                bx1, by1, bx2, by2 = target_box_in_crop((w, h), mask.shape)
                # the object is centred and fills the annotated box
                assert abs((xs.min() + xs.max() + 1) / 2 - 255.5) < 2.5
                assert abs((ys.min() + ys.max() + 1) / 2 - 255.5) < 2.5
                assert abs((xs.max() + 1 - xs.min()) - (bx2 - bx1)) < 3
                assert abs((ys.max() + 1 - ys.min()) - (by2 - by1)) < 3
    assert not list(ytb.rglob("*.tmp"))


def test_ytb_vos_palette_ids_and_instance_boxes(ytb: Path) -> None:
    png = next((ytb / "train" / "Annotations").rglob("*.png"))
    label = ytb_prep.read_label_png(str(png))
    assert label.max() <= 2 and label.dtype == np.int32  # palette indices, not grey levels
    square = np.zeros((100, 100), np.int32)
    square[10:50, 20:45] = 3  # 40 x 25 = 1000 px: not more than 1000, dropped (the original's rule)
    square[60:70, 60:70] = 4
    assert ytb_prep.instance_boxes(square) == {}
    square[10:50, 20:46] = 3  # 1040 px: kept, box (x, y, w + 1, h + 1) of the contour
    assert ytb_prep.instance_boxes(square) == {3: {"area": 1040, "bbox": [20.0, 10.0, 26.0, 40.0]}}


def test_crop_resumes_and_parallel_matches_serial(ytb: Path, tmp_path: Path) -> None:
    crops = ytb / "crop511"
    before = _digest(crops)
    victim = sorted(crops.rglob("*.x.jpg"))[3]
    victim.unlink()
    stamp = {p: p.stat().st_mtime_ns for p in crops.rglob("*") if p.is_file()}
    ytb_prep.crop_ytb_vos(str(ytb), progress=False)
    assert victim.exists() and _digest(crops) == before
    assert all(p.stat().st_mtime_ns == t for p, t in stamp.items())  # nothing else rewritten
    copy = tmp_path / "ytb_vos"
    shutil.copytree(ytb / "train", copy / "train")
    shutil.copy(ytb / "instances_train.json", copy / "instances_train.json")
    ytb_prep.crop_ytb_vos(str(copy), num_workers=2, progress=False)
    assert _digest(copy / "crop511") == before


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / script), *args], capture_output=True, text=True,
                          cwd=str(REPO), timeout=120)


def test_scripts_fail_with_one_line_on_missing_or_malformed_data(tmp_path: Path) -> None:
    missing = str(tmp_path / "nothing")
    for script in ("data/ytb_vos/parse_ytb_vos.py", "data/ytb_vos/par_crop.py", "data/det/par_crop.py",
                   "data/vid/parse_vid.py", "data/coco/par_crop.py"):
        res = _run(script, "--data-dir", missing, "--num-workers", "0", "--no-progress")
        assert res.returncode == 2, (script, res.stderr)
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and missing in lines[0], (script, res.stderr)
    raw = tmp_path / "ytb"
    (raw / "train" / "Annotations").mkdir(parents=True)
    (raw / "train" / "meta.json").write_text('{"video": {}}')
    res = _run("data/ytb_vos/parse_ytb_vos.py", "--data-dir", str(raw), "--num-workers", "0", "--no-progress")
    assert res.returncode == 2 and "'videos'" in res.stderr and "meta.json" in res.stderr
    res = _run("data/ytb_vos/gen_json.py", "--data-dir", str(raw))
    assert res.returncode == 2 and "instances_train.json" in res.stderr


def test_ytb_vos_scripts_end_to_end(tmp_path: Path) -> None:
    root = tmp_path / "ytb_vos"
    write_raw_ytb_vos(str(root), num_videos=1, num_frames=3, seed=2)
    for script in ("parse_ytb_vos.py", "par_crop.py"):
        res = _run(f"data/ytb_vos/{script}", "--data-dir", str(root), "--num-workers", "0", "--no-progress")
        assert res.returncode == 0, res.stderr
    res = _run("data/ytb_vos/gen_json.py", "--data-dir", str(root))
    assert res.returncode == 0, res.stderr
    assert json.loads((root / "train.json").read_text())


# ---------------------------------------------------------------------------------------------- COCO
def _tiny_coco(root: Path) -> None:
    images, anns = [], []
    rng = np.random.default_rng(0)
    for i in range(2):
        img = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
        name = f"{i:012d}.jpg"
        (root / "val2017").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / "val2017" / name), img)
        images.append({"id": i + 1, "file_name": name, "height": 120, "width": 160})
    # image 1: a polygon square, a zero-width box; image 2: an uncompressed-RLE crowd region
    anns.append({"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 1600.0,
                 "bbox": [40.0, 30.0, 40.0, 40.0], "segmentation": [[40, 30, 80, 30, 80, 70, 40, 70]]})
    anns.append({"id": 2, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 0.0,
                 "bbox": [10.0, 10.0, 0.0, 5.0], "segmentation": [[10, 10, 10, 15, 10, 15]]})
    counts = [120 * 50 + 40, 30, 90, 30, 120 * 160 - (120 * 50 + 40) - 150]
    anns.append({"id": 3, "image_id": 2, "category_id": 1, "iscrowd": 1, "area": 90.0,
                 "bbox": [50.0, 40.0, 3.0, 30.0], "segmentation": {"size": [120, 160], "counts": counts}})
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "instances_val2017.json").write_text(json.dumps(
        {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "thing"}]}))


def test_coco_crop_and_json(tmp_path: Path) -> None:
    root = tmp_path / "coco"
    _tiny_coco(root)
    coco_prep.crop_coco(str(root), subsets=("val2017",), progress=False)
    (path,) = coco_prep.gen_json_coco(str(root), subsets=("val2017",))
    data = json.loads(Path(path).read_text())
    assert data == {"val2017/000000000000": {"00": {"000000": [40.0, 30.0, 79.0, 69.0]}},
                    "val2017/000000000001": {"00": {"000000": [50.0, 40.0, 52.0, 69.0]}}}
    folder = root / "crop511" / "val2017" / "000000000000"
    assert sorted(p.name for p in folder.iterdir()) == ["000000.00.m.png", "000000.00.x.jpg"]  # zero box skipped
    mask = cv2.imread(str(folder / "000000.00.m.png"), cv2.IMREAD_GRAYSCALE)
    assert mask[255, 255] == 255 and mask[0, 0] == 0
    ys, xs = np.nonzero(mask)
    x1, y1, x2, y2 = target_box_in_crop((40, 40), mask.shape)  # the crop uses size (w, h) = (40, 40)
    assert abs(xs.max() + 1 - xs.min() - (x2 - x1)) < 3
    crowd = cv2.imread(str(root / "crop511" / "val2017" / "000000000001" / "000000.00.m.png"), 0)
    assert crowd[255, 255] == 255


def test_coco_missing_annotation_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="COCO annotation file for train2017 not found"):
        coco_prep.crop_coco(str(tmp_path), subsets=("train2017",), progress=False)


# ---------------------------------------------------------------------------------------------- ImageNet DET / VID
def _xml(path: Path, objects: list[tuple[int, list[int]]], size: tuple[int, int] = (160, 120)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    objs = "".join(f"<object><trackid>{t}</trackid><name>n0</name><occluded>0</occluded><bndbox><xmin>{b[0]}</xmin>"
                   f"<ymin>{b[1]}</ymin><xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>" for t, b in objects)
    path.write_text(f"<annotation><filename>{path.stem}</filename><size><width>{size[0]}</width>"
                    f"<height>{size[1]}</height></size>{objs}</annotation>")


def test_det_crop_and_json(tmp_path: Path) -> None:
    root = tmp_path / "det"
    anno, data = root / det_prep.ANNO_SUBDIR, root / det_prep.DATA_SUBDIR
    _xml(anno / "ILSVRC2013_train" / "n01" / "a.xml", [(0, [10, 20, 60, 80]), (0, [70, 10, 150, 50])])
    _xml(anno / "ILSVRC2014_train_0000" / "b.xml", [(0, [5, 5, 40, 40])])
    with pytest.raises(DataError, match="a.JPEG: image not found"):
        det_prep.crop_det(str(root), progress=False)
    for rel in ("ILSVRC2013_train/n01/a.JPEG", "ILSVRC2014_train_0000/b.JPEG"):
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(data / rel), np.full((120, 160, 3), 128, np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 90])
    det_prep.crop_det(str(root), progress=False)
    js = json.loads(Path(det_prep.gen_json_det(str(root))).read_text())
    assert js == {"ILSVRC2013_train/a": {"00": {"000000": [10, 20, 60, 80]}, "01": {"000000": [70, 10, 150, 50]}},
                  "ILSVRC2014_train_0000/b": {"00": {"000000": [5, 5, 40, 40]}}}
    assert (root / "crop511" / "ILSVRC2013_train" / "a" / "000000.01.x.jpg").is_file()
    (anno / "ILSVRC2014_train_0000" / "b.xml").write_text("<annotation><object>")
    with pytest.raises(DataError, match="b.xml: malformed XML"):
        det_prep.gen_json_det(str(root))


def test_vid_parse_crop_and_tracks(tmp_path: Path) -> None:
    root = tmp_path / "vid"
    anno, data = root / vid_prep.ANNO_SUBDIR, root / vid_prep.DATA_SUBDIR
    # track 0 in frames 0-2 and 5-8 (two runs: the longer one stays), track 1 in frame 3 only (dropped),
    # track 2 twice in frame 4 and 5 (first object wins)
    layout = {0: [(0, [10, 10, 50, 50])], 1: [(0, [11, 10, 50, 50])], 2: [(0, [12, 10, 50, 50])],
              3: [(1, [0, 0, 9, 9])], 4: [(2, [20, 20, 40, 40]), (2, [1, 1, 2, 2])], 5: [(0, [15, 10, 50, 50]),
              (2, [21, 20, 40, 40])], 6: [(0, [16, 10, 50, 50])], 7: [(0, [17, 10, 50, 50])],
              8: [(0, [18, 10, 50, 50])]}
    for subset, snippet in (("ILSVRC2015_VID_train_0000", "s0"), ("val", "v0")):
        for f, objs in layout.items():
            _xml(anno / subset / snippet / f"{f:06d}.xml", objs)
            (data / subset / snippet).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(data / subset / snippet / f"{f:06d}.JPEG"), np.full((120, 160, 3), 100, np.uint8))
    vid_prep.parse_vid(str(root), progress=False)
    vid_prep.crop_vid(str(root), progress=False)
    train_path, val_path = vid_prep.gen_json_vid(str(root))
    train = json.loads(Path(train_path).read_text())
    val = json.loads(Path(val_path).read_text())
    assert list(train) == ["ILSVRC2015_VID_train_0000/s0"] and list(val) == ["val/v0"]
    tracks = train["ILSVRC2015_VID_train_0000/s0"]
    assert sorted(tracks) == ["00", "02"]
    assert sorted(tracks["00"]) == ["000005", "000006", "000007", "000008"]
    assert tracks["02"] == {"000004": [20, 20, 40, 40], "000005": [21, 20, 40, 40]}
    crops = root / "crop511" / "ILSVRC2015_VID_train_0000" / "s0"
    assert (crops / "000008.00.x.jpg").is_file() and (crops / "000003.01.x.jpg").is_file()


# ---------------------------------------------------------------------------------------------- VOT json + download
def test_create_vot_json_pads_tags(tmp_path: Path) -> None:
    folder = write_vot_dataset(str(tmp_path), "VOTX", num_videos=2, num_frames=6, seed=1)
    seq = Path(folder) / "vot0000"
    (seq / "occlusion.tag").write_text("1\n1\n")  # short tag file
    (seq / "size_change.tag").unlink()  # missing tag file
    meta = create_vot_json(folder)
    entry = meta["vot0000"]
    assert entry["occlusion"] == [1, 1, 0, 0, 0, 0] and entry["size_change"] == [0] * 6
    assert entry["img_names"][0] == "vot0000/color/00000001.jpg" and entry["video_dir"] == "vot0000"
    assert len(entry["gt_rect"]) == 6 and len(entry["gt_rect"][0]) == 8 and entry["init_rect"] == entry["gt_rect"][0]
    assert (entry["width"], entry["height"]) == (320, 240)
    assert set(entry) == {"video_dir", "init_rect", "img_names", "gt_rect", "width", "height", *VOT_TAGS}
    res = subprocess.run([sys.executable, str(REPO / "data" / "create_json.py"), "VOTX", "--data-root", str(tmp_path)],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert json.loads((tmp_path / "VOTX.json").read_text())["vot0000"]["occlusion"][:3] == [1, 1, 0]
    (seq / "groundtruth.txt").unlink()
    with pytest.raises(DataError, match="groundtruth not found"):
        create_vot_json(folder)


def test_get_vot2018_script_syntax_and_usage() -> None:
    script = REPO / "data" / "get_VOT2018_data.sh"
    assert subprocess.run(["bash", "-n", str(script)], timeout=30).returncode == 0
    res = subprocess.run(["bash", str(script), "--help"], capture_output=True, text=True, timeout=30)
    assert res.returncode == 0 and "Usage: bash data/get_VOT2018_data.sh" in res.stdout
    text = script.read_text()
    assert "set -euo pipefail" in text


@pytest.mark.skipif(not all(shutil.which(t) for t in ("jq", "unzip", "curl")), reason="needs jq, unzip and curl")
def test_get_vot2018_script_offline(tmp_path: Path) -> None:
    """The download script against a local mirror (file:// URLs) of description.json and the sequence archives."""
    mirror = tmp_path / "mirror"
    src = Path(write_vot_dataset(str(tmp_path / "src"), "VOT2018", num_videos=2, num_frames=3, seed=4))
    sequences = []
    for name in ("vot0000", "vot0001"):
        (mirror / "annotations").mkdir(parents=True, exist_ok=True)
        (mirror / "sequences").mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(mirror / "annotations" / f"{name}.zip", "w") as z:
            for f in (src / name).glob("*.*"):
                z.write(f, f.name)
        with zipfile.ZipFile(mirror / "sequences" / f"{name}.zip", "w") as z:
            for f in (src / name / "color").glob("*.jpg"):
                z.write(f, f.name)
        sequences.append({"name": name, "annotations": {"url": f"annotations/{name}.zip"},
                          "channels": {"color": {"url": f"sequences/{name}.zip"}}})
    (mirror / "description.json").write_text(json.dumps({"sequences": sequences}))
    out = tmp_path / "data"
    env = dict(os.environ, VOT_DOWNLOADER="curl", VOT2018_BASE_URL=f"file://{mirror}",
               VOT2018_JSON_URL=f"file://{mirror}/missing.json", PYTHON=sys.executable)
    res = subprocess.run(["bash", str(REPO / "data" / "get_VOT2018_data.sh"), str(out)], capture_output=True,
                         text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (out / "VOT2018" / "list.txt").read_text().split() == ["vot0000", "vot0001"]
    assert len(list((out / "VOT2018" / "vot0001" / "color").glob("*.jpg"))) == 3
    meta = json.loads((out / "VOT2018.json").read_text())  # rebuilt by create_json.py (json URL missing)
    assert sorted(meta) == ["vot0000", "vot0001"]
    res = subprocess.run(["bash", str(REPO / "data" / "get_VOT2018_data.sh"), str(tmp_path / "x")],
                         capture_output=True, text=True, timeout=60,
                         env=dict(env, VOT2018_BASE_URL=f"file://{tmp_path}/nowhere"))
    assert res.returncode == 1 and "cannot download" in res.stderr
