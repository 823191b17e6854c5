"""Built-in synthetic data: layout, determinism, the VOT benchmark format, and the tools that use it."""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from siammask.datasets import DataError, build_train_dataset
from siammask.datasets.synthetic import (
    make_builtin_data,
    random_contour,
    render_video,
    write_palette_png,
    write_raw_ytb_vos,
    write_vot_dataset,
)
from siammask.evaluation.vot import VOT_ATTRIBUTES as VOT_TAGS
from siammask.tools import make_synthetic_data, visualize_dataset
from siammask.utils.config import load_config

REPO = Path(__file__).resolve().parents[1]


def _tree_digest(folder: Path) -> str:
    h = hashlib.md5()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(folder)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def builtin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("builtin") / "synthetic"
    args = make_synthetic_data.get_args_parser().parse_args(["--out", str(root), "--size", "quick", "--no-progress"])
    make_synthetic_data.main(args)
    return root


def test_builtin_layout_matches_the_configs(builtin: Path) -> None:
    for rel in ("ytb_vos/train.json", "ytb_vos/train/meta.json", "det/train.json", "VOT2018/list.txt",
                "VOT2018.json", "builtin.json"):
        assert (builtin / rel).is_file(), rel
    assert not (builtin / "builtin.partial.json").exists()
    for config in ("config.json", "config_sharp.json"):
        cfg = load_config(REPO / "experiments" / "siammask_synthetic" / config)
        base = load_config(REPO / "experiments" / ("siammask_base" if config == "config.json" else "siammask_sharp")
                           / "config.json")
        assert cfg.loss == base.loss and cfg.anchors == base.anchors and cfg.lr == base.lr and cfg.hp == base.hp
        assert cfg.train_datasets.augmentation == base.train_datasets.augmentation
        assert cfg.train_datasets.search_size == base.train_datasets.search_size
        ds = build_train_dataset(cfg, str(builtin), seed=0)
        assert len(ds) == cfg.train_datasets.num and ds[0]["search"].shape[-1] == cfg.train_datasets.search_size
    ytb = json.loads((builtin / "ytb_vos" / "train.json").read_text())
    assert len(ytb) == 8 and all(k.startswith("train/syn") for k in ytb)


def test_builtin_is_not_regenerated(builtin: Path) -> None:
    stamp = (builtin / "builtin.json").stat().st_mtime_ns
    start = time.perf_counter()
    make_synthetic_data.main(make_synthetic_data.get_args_parser().parse_args(["--out", str(builtin)]))
    assert time.perf_counter() - start < 2.0 and (builtin / "builtin.json").stat().st_mtime_ns == stamp


def test_generation_is_deterministic(tmp_path: Path) -> None:
    write_raw_ytb_vos(str(tmp_path / "a"), num_videos=2, num_frames=4, seed=5)
    write_raw_ytb_vos(str(tmp_path / "b"), num_videos=2, num_frames=4, seed=5)
    write_raw_ytb_vos(str(tmp_path / "c"), num_videos=2, num_frames=4, seed=6)
    assert _tree_digest(tmp_path / "a") == _tree_digest(tmp_path / "b") != _tree_digest(tmp_path / "c")
    meta = json.loads((tmp_path / "a" / "train" / "meta.json").read_text())
    video = meta["videos"]["syn0000"]
    assert video["objects"]["1"]["frames"][:2] == ["00000", "00005"]
    png = tmp_path / "a" / "train" / "Annotations" / "syn0000" / "00000.png"
    from PIL import Image
    with Image.open(png) as im:
        assert im.mode == "P" and set(np.unique(np.asarray(im))) <= {0, 1, 2}


def test_scenes_vary_and_objects_move() -> None:
    contours = [random_contour(np.random.default_rng(s)) for s in range(12)]
    assert {len(c) for c in contours} > {64}  # smooth outlines (ellipses, blobs) and polygons
    for c in contours:
        assert np.isclose(np.abs(c).max(axis=0), 1).all()
    video = render_video([1, 2], num_frames=12, num_objects=2, occluder=True)
    assert len(video.frames) == 12 and video.frames[0].shape == (240, 320, 3)
    centres = [np.argwhere(m[0]).mean(axis=0) for m in video.masks if m[0].any()]
    assert np.linalg.norm(centres[-1] - centres[0]) > 3  # the target moves
    areas = [int(m[0].sum()) for m in video.masks]
    assert max(areas) > 400 and not np.all(np.array(areas) == areas[0])
    assert not np.array_equal(video.frames[0], video.frames[1])
    for masks in video.masks:  # visible masks never overlap
        assert not (masks[0] & masks[1]).any()


def test_vot_dataset_format(tmp_path: Path) -> None:
    folder = Path(write_vot_dataset(str(tmp_path), num_videos=2, num_frames=8, seed=3))
    assert folder == tmp_path / "VOT2018"
    meta = json.loads((tmp_path / "VOT2018.json").read_text())
    assert sorted(meta) == (folder / "list.txt").read_text().split()
    for video, entry in meta.items():
        assert entry["video_dir"] == video and entry["width"] == 320 and entry["height"] == 240
        assert len(entry["img_names"]) == len(entry["gt_rect"]) == 8
        for name in entry["img_names"]:
            assert name.startswith(f"{video}/color/") and (folder / name).is_file()
        for tag in VOT_TAGS:
            assert len(entry[tag]) == 8 and set(entry[tag]) <= {0, 1}
        gt = np.array(entry["gt_rect"])
        assert gt.shape == (8, 8)
        lines = (folder / video / "groundtruth.txt").read_text().split()
        assert np.allclose(np.array([[float(v) for v in line.split(",")] for line in lines]), gt)
        # the rotated box covers the target: its centre lies on the object's pixels in the first frame
        img = cv2.imread(str(folder / entry["img_names"][0]))
        cx, cy = gt[0, 0::2].mean(), gt[0, 1::2].mean()
        assert 0 <= cx < img.shape[1] and 0 <= cy < img.shape[0]


def test_visualize_dataset_writes_png(builtin: Path, tmp_path: Path) -> None:
    out = tmp_path / "pairs.png"
    args = visualize_dataset.get_args_parser().parse_args(
        ["--data-root", str(builtin), "--out", str(out), "--num", "3"])
    visualize_dataset.main(args)
    image = cv2.imread(str(out))
    assert image is not None and image.shape[0] >= 2 * 255 and image.shape[1] >= 2 * (127 + 255)


def test_builtin_refuses_foreign_data_and_regenerates_its_own(tmp_path: Path) -> None:
    (tmp_path / "ytb_vos").mkdir()
    with pytest.raises(DataError, match="not made by make_builtin_data"):
        make_builtin_data(str(tmp_path))
    assert (tmp_path / "ytb_vos").is_dir()
    root = tmp_path / "mine"
    root.mkdir()
    (root / "builtin.partial.json").write_text(json.dumps({"size": "other"}))  # an interrupted other request
    (root / "det").mkdir()
    (root / "det" / "stale.txt").write_text("x")
    make_builtin_data(str(root), "quick", seed=1)
    assert not (root / "det" / "stale.txt").exists() and json.loads((root / "builtin.json").read_text())["seed"] == 1


def test_palette_png_round_trips_indices_and_voc_colours(tmp_path: Path) -> None:
    from PIL import Image

    label = np.zeros((6, 8), np.uint8)
    label[1:3, 2:5], label[4:, 6:] = 1, 2
    path = tmp_path / "m.png"
    write_palette_png(str(path), label)
    with Image.open(path) as im:
        assert im.mode == "P"
        np.testing.assert_array_equal(np.asarray(im), label)
        palette = im.getpalette()
    # PASCAL VOC colours by bit interleaving: 0 black, 1 (128, 0, 0), 2 (0, 128, 0), 3 (128, 128, 0)
    assert palette[:12] == [0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0]
    assert [p.name for p in tmp_path.iterdir()] == ["m.png"]  # no temporary left
