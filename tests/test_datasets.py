"""The training set: batch contract, anchor targets (against the original's conformance arrays), determinism,
pair-sampling rates, mask-label alignment, augmentation geometry and bad-input handling."""
from __future__ import annotations

import copy
import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from siammask.datasets import DataError, SiamMaskDataset, build_train_dataset
from siammask.datasets.anchor_target import AnchorTarget
from siammask.datasets.augmentation import Augmentation, _motion_blur
from siammask.datasets.prep import ytb_vos as ytb_prep
from siammask.datasets.sampling import PickSchedule, permute
from siammask.datasets.synthetic import write_det_dataset, write_raw_ytb_vos
from siammask.utils.config import AnchorsConfig, AnchorTargetConfig, AugBranchConfig, load_config

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "experiments" / "siammask_synthetic" / "config.json"
CONFIG_SHARP = REPO / "experiments" / "siammask_synthetic" / "config_sharp.json"

BATCH_TABLE = {  # docs/ARCHITECTURE.md, training batch (S = search size, s = response size)
    "template": (lambda S, s: (3, 127, 127), np.float32),
    "search": (lambda S, s: (3, S, S), np.float32),
    "label_cls": (lambda S, s: (5, s, s), np.int64),
    "label_loc": (lambda S, s: (4, 5, s, s), np.float32),
    "label_loc_weight": (lambda S, s: (5, s, s), np.float32),
    "label_mask": (lambda S, s: (1, S, S), np.float32),
    "label_mask_weight": (lambda S, s: (1, s, s), np.float32),
    "bbox": (lambda S, s: (4,), np.float32),
}


def conformance_dir() -> Path | None:
    env = os.environ.get("SIAMMASK_CONFORMANCE")
    for cand in ([Path(env)] if env else []) + [REPO.parent / "shared" / "conformance"]:
        if (cand / "anchors.npz").is_file():
            return cand
    return None


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A small built-in set: 4 ytb_vos videos x 10 frames (masks) and 8 det images (boxes)."""
    root = tmp_path_factory.mktemp("syn")
    ytb = str(root / "ytb_vos")
    write_raw_ytb_vos(ytb, num_videos=4, num_frames=10, seed=3)
    ytb_prep.parse_ytb_vos(ytb, progress=False)
    ytb_prep.crop_ytb_vos(ytb, progress=False)
    ytb_prep.gen_json_ytb_vos(ytb)
    write_det_dataset(str(root / "det"), num_images=8, seed=3)
    return str(root)


def config_dict(path: Path = CONFIG) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def dataset(data_root: str) -> SiamMaskDataset:
    return build_train_dataset(load_config(CONFIG), data_root, seed=7)


# ---------------------------------------------------------------------------------------------- batch contract
@pytest.mark.parametrize("config, search, size", [(CONFIG, 255, 25), (CONFIG_SHARP, 143, 3)])
def test_sample_shapes_and_dtypes(data_root: str, config: Path, search: int, size: int) -> None:
    ds = build_train_dataset(load_config(config), data_root, seed=0)
    for index in range(6):
        sample = ds[index]
        assert set(sample) == set(BATCH_TABLE)
        for key, (shape, dtype) in BATCH_TABLE.items():
            assert sample[key].shape == shape(search, size), key
            assert sample[key].dtype == dtype, key
        assert set(np.unique(sample["label_mask"])) <= {-1.0, 1.0}
        assert set(np.unique(sample["label_cls"])) <= {-1, 0, 1}
        assert set(np.unique(sample["label_mask_weight"])) <= {0.0, 1.0}
        assert np.isfinite(sample["label_loc"]).all()
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=3)))
    assert batch["search"].shape == (3, 3, search, search) and batch["label_cls"].dtype == torch.int64


def test_mask_weight_rules(dataset: SiamMaskDataset) -> None:
    """Mask weight only on positive pairs of mask datasets, exactly where a positive anchor exists."""
    seen = {"mask_pos": 0, "other": 0}
    for index in range(60):
        plan = dataset.plan(index)
        sample = dataset.sample(index)
        has_mask = dataset.subsets[plan.dataset].has_mask and not plan.negative
        if has_mask:
            expected = (sample["label_cls"] == 1).any(axis=0)
            assert np.array_equal(sample["label_mask_weight"][0] == 1, expected)
            seen["mask_pos"] += 1
        else:
            assert not sample["label_mask_weight"].any()
            assert (sample["label_mask"] == -1).all()
            seen["other"] += 1
        if plan.negative:
            assert not (sample["label_cls"] == 1).any() and not sample["label_loc_weight"].any()
    assert seen["mask_pos"] > 5 and seen["other"] > 5


# ---------------------------------------------------------------------------------------------- anchor targets
@pytest.fixture(scope="module")
def conformance() -> dict:
    folder = conformance_dir()
    if folder is None:
        pytest.skip("conformance arrays not found (set SIAMMASK_CONFORMANCE or put them in ../shared/conformance)")
    return dict(np.load(folder / "anchors.npz"))


def test_anchor_candidates_match_original(conformance: dict) -> None:
    at = AnchorTarget(AnchorTargetConfig(), AnchorsConfig(), 255, 25)
    for i, box in enumerate(conformance["target_box_x1y1x2y2"]):
        cand = at.candidates(box)
        assert np.array_equal(cand, conformance["label_candidates"][i])
        assert int((cand == 1).sum()) == conformance["n_pos_candidates"][i]
        assert int((cand == 0).sum()) == conformance["n_neg_candidates"][i]
        np.testing.assert_allclose(at.iou(box), conformance["iou"][i], rtol=0, atol=1e-6)
        np.testing.assert_allclose(at.delta(box), conformance["delta"][i], rtol=1e-6, atol=1e-6)


def test_sampled_anchor_labels_are_subsets_with_counts(conformance: dict) -> None:
    at = AnchorTarget(AnchorTargetConfig(), AnchorsConfig(), 255, 25)
    for i, box in enumerate(conformance["target_box_x1y1x2y2"]):
        cand = conformance["label_candidates"][i]
        for seed in range(3):
            t = at(box, False, np.random.default_rng(seed))
            assert np.all(cand[t.label_cls == 1] == 1) and np.all(cand[t.label_cls == 0] == 0)
            assert int((t.label_cls == 1).sum()) == conformance["n_pos_kept"][i]
            assert int((t.label_cls == 0).sum()) == conformance["n_neg_kept"][i]
            weights = t.label_loc_weight[t.label_cls == 1]
            np.testing.assert_allclose(weights, conformance["loc_weight_value"][i], rtol=1e-6)
            assert not t.label_loc_weight[t.label_cls != 1].any()
            np.testing.assert_allclose(t.label_loc, conformance["delta"][i], rtol=1e-6, atol=1e-6)
        # the original's own draw is a valid outcome too
        orig = conformance["sampled_label_cls"][i]
        assert int((orig == 1).sum()) == conformance["n_pos_kept"][i]


def test_anchor_targets_hand_computed() -> None:
    """Target = the 64x64 anchor at the centre cell: IoU 1 there, 56*64/(2*4096-56*64) = 0.78 one cell away,
    56*56/(8192-3136) = 0.62 diagonally, 0.6 (not > 0.6) two cells away, and < 0.6 for other aspect ratios."""
    at = AnchorTarget(AnchorTargetConfig(), AnchorsConfig(), 255, 25)
    box = (95.0, 95.0, 159.0, 159.0)  # anchor 2 (64 x 64) centred at (127, 127) = cell (12, 12)
    cand = at.candidates(box)
    pos = set(zip(*np.nonzero(cand == 1)))
    assert pos == {(2, r, c) for r in (11, 12, 13) for c in (11, 12, 13)}
    assert cand[2, 12, 14] == -1 and cand[1, 12, 12] == -1 and cand[3, 12, 12] == -1
    delta = at.delta(box)
    np.testing.assert_allclose(delta[:, 2, 12, 12], 0.0, atol=1e-7)
    np.testing.assert_allclose(delta[:, 2, 12, 13], [-8 / 64, 0.0, 0.0, 0.0], atol=1e-7)
    np.testing.assert_allclose(delta[2:, 0, 0, 0], [np.log(64 / 104), np.log(64 / 32)], rtol=1e-6)
    t = at(box, False, np.random.default_rng(0))
    assert int((t.label_cls == 1).sum()) == 9 and int((t.label_cls == 0).sum()) == 64 - 9
    np.testing.assert_allclose(t.label_loc_weight[t.label_cls == 1], 1 / (9 + 1e-6), rtol=1e-7)


def test_negative_pair_targets() -> None:
    at = AnchorTarget(AnchorTargetConfig(), AnchorsConfig(), 255, 25)
    t = at((0, 0, 10, 10), True, np.random.default_rng(1))
    a, r, c = np.nonzero(t.label_cls == 0)
    assert len(a) == 16 and (t.label_cls == 1).sum() == 0 and (t.label_cls == -1).sum() == 5 * 625 - 16
    assert r.min() >= 9 and r.max() <= 15 and c.min() >= 9 and c.max() <= 15
    assert not t.label_loc_weight.any() and not t.label_loc.any()


# ---------------------------------------------------------------------------------------------- determinism
def test_same_seed_epoch_index_same_sample(data_root: str, dataset: SiamMaskDataset) -> None:
    other = build_train_dataset(load_config(CONFIG), data_root, seed=7)
    for index in (0, 5, 17):
        a, b = dataset.sample(index, epoch=2), other.sample(index, epoch=2)
        for key in a:
            assert np.array_equal(a[key], b[key]), key
    different = build_train_dataset(load_config(CONFIG), data_root, seed=8)
    assert not np.array_equal(dataset.sample(3, 0)["search"], different.sample(3, 0)["search"])
    assert not np.array_equal(dataset.sample(3, 0)["search"], dataset.sample(3, 1)["search"])


def test_zero_and_two_workers_give_the_same_batches(data_root: str) -> None:
    ds = build_train_dataset(load_config(CONFIG), data_root, seed=5)
    ds.set_epoch(3)
    subset = torch.utils.data.Subset(ds, range(8))
    ref = list(torch.utils.data.DataLoader(subset, batch_size=4, num_workers=0))
    loader = torch.utils.data.DataLoader(subset, batch_size=4, num_workers=2, persistent_workers=True)
    got = list(loader)
    for b0, b2 in zip(ref, got):
        for key in b0:
            assert torch.equal(b0[key], b2[key]), key
    ds.set_epoch(4)  # reaches the persistent workers through shared memory
    again = list(loader)
    expected = [ds.sample(i, 4)["search"] for i in range(4)]
    assert np.array_equal(again[0]["search"].numpy(), np.stack(expected))


def test_set_epoch_reaches_a_spawned_persistent_worker(data_root: str) -> None:
    """The epoch lives in shared memory also for spawn workers (the dataset is pickled to them): a later set_epoch
    changes what the same worker makes."""
    ds = build_train_dataset(load_config(CONFIG), data_root, seed=5)
    ds.set_epoch(1)
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(ds, range(2)), batch_size=2, num_workers=1,
                                         persistent_workers=True, multiprocessing_context="spawn")
    first = next(iter(loader))
    ds.set_epoch(6)
    second = next(iter(loader))
    for epoch, batch in ((1, first), (6, second)):
        assert np.array_equal(batch["search"].numpy(), np.stack([ds.sample(i, epoch)["search"] for i in range(2)]))


def test_pick_schedule_is_lazy_and_balanced() -> None:
    for n in (1, 2, 7, 100, 1000):
        key = 12345 + n
        assert sorted(permute(i, n, key) for i in range(n)) == list(range(n))
    schedule = PickSchedule(num_videos=(5, 3), num_use=(12, 3), seed=0)
    picks = schedule.picks(range(15))  # one round
    first = [v for k, v in picks if k == 0]
    assert len(first) == 12 and len([1 for k, _ in picks if k == 1]) == 3
    counts = np.bincount(first, minlength=5)
    assert counts.min() >= 2 and counts.max() <= 3  # full shuffled passes, then a partial one
    assert sorted(v for k, v in picks if k == 1) == [0, 1, 2]
    assert schedule.picks(range(15, 30)) != picks  # the next round is reshuffled
    big = PickSchedule(num_videos=(3000, 117000), num_use=(200000, 117000), seed=1)
    k, v = big.pick(20 * 600000 - 1)  # the last sample of 20 epochs of the base recipe, computed on its own
    assert 0 <= v < (3000, 117000)[k]


def test_negative_and_gray_rates(dataset: SiamMaskDataset) -> None:
    n = 2000
    plans = [dataset.plan(i % len(dataset), epoch=i // len(dataset)) for i in range(n)]
    neg = np.mean([p.negative for p in plans])
    gray = np.mean([p.gray for p in plans])
    tol = 4 * np.sqrt(0.2 * 0.8 / n)
    assert abs(neg - 0.2) < tol and abs(gray - 0.25) < 4 * np.sqrt(0.25 * 0.75 / n)
    for p in plans:
        if not p.negative:
            assert p.search_dataset == p.dataset
            assert os.path.dirname(p.template.image_path) == os.path.dirname(p.search.image_path)
    search_sets = np.bincount([p.search_dataset for p in plans if p.negative], minlength=2)
    assert search_sets.min() > 0.3 * search_sets.sum()  # uniform over the two sub-datasets


def test_frame_range_is_respected(data_root: str) -> None:
    cfg = config_dict()
    cfg["train_datasets"]["datasets"]["ytb_vos"]["frame_range"] = 2
    cfg["train_datasets"]["augmentation"]["neg"] = 0.0
    ds = build_train_dataset(load_config(cfg), data_root, seed=0)
    ytb = ds.subsets[0]
    for i in range(300):
        plan = ds.plan(i)
        if plan.dataset != 0:
            continue
        t = int(os.path.basename(plan.template.image_path)[:6])
        s = int(os.path.basename(plan.search.image_path)[:6])
        assert abs(t - s) <= 2 * 5  # ytb frames are 5 apart: at most 2 list positions
    assert ytb.has_mask and not ds.subsets[1].has_mask


# ---------------------------------------------------------------------------------------------- geometry
def test_mask_label_aligned_with_target_box(dataset: SiamMaskDataset) -> None:
    checked = 0
    for index in range(120):
        plan = dataset.plan(index)
        if plan.negative or not dataset.subsets[plan.dataset].has_mask:
            continue
        sample = dataset.sample(index)
        ys, xs = np.nonzero(sample["label_mask"][0] > 0)
        assert len(xs) > 0
        mask_box = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        box = sample["bbox"]
        ix = max(0.0, min(box[2], mask_box[2]) - max(box[0], mask_box[0]))
        iy = max(0.0, min(box[3], mask_box[3]) - max(box[1], mask_box[1]))
        inter = ix * iy
        union = (box[2] - box[0]) * (box[3] - box[1]) + (mask_box[2] - mask_box[0]) * (
            mask_box[3] - mask_box[1]) - inter
        assert inter / union > 0.7, (index, box, mask_box)
        checked += 1
    assert checked >= 10


@pytest.mark.parametrize("seed", range(4))
def test_augmentation_maps_box_with_image(seed: int) -> None:
    """A white rectangle in a black 511 image lands on the returned box after scale + shift (+ flip)."""
    image = np.zeros((511, 511, 3), np.uint8)
    box = (200.0, 220.0, 300.0, 280.0)
    image[220:281, 200:301] = 255
    aug = Augmentation(AugBranchConfig(shift=64, scale=0.18, flip=0.5 if seed % 2 else 0.0), 255)
    out = aug(image, (box[0], box[1], box[2] + 1, box[3] + 1), np.random.default_rng(seed))
    grey = out.image.mean(axis=0)
    bright = grey > grey.min() + 0.5 * (grey.max() - grey.min())
    ys, xs = np.nonzero(bright)
    np.testing.assert_allclose([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], out.box, atol=1.5)


def test_blur_matches_original_cross_kernel() -> None:
    rng = np.random.default_rng(3)
    planes = rng.uniform(0, 255, (3, 64, 64)).astype(np.float32)
    for seed in range(40):
        r1, r2 = np.random.default_rng(seed), np.random.default_rng(seed)
        got = planes.copy()
        _motion_blur(got, r1)
        side = int(np.round(r2.standard_normal())) * 2 + 1
        if side < 0 or r2.random() < 0.5:
            assert np.array_equal(got, planes)
            continue
        side = min(side, 45)
        wx = r2.random()
        kernel = np.zeros((side, side))
        kernel[:, side // 2] += wx / side
        kernel[side // 2, :] += (1 - wx) / side
        ref = cv2.filter2D(planes.transpose(1, 2, 0).astype(np.float64), -1, kernel).transpose(2, 0, 1)
        np.testing.assert_allclose(got, ref, atol=2e-3)


# ---------------------------------------------------------------------------------------------- bad input
def _tiny_set(tmp: Path, data_root: str, videos: int = 4) -> tuple[Path, dict]:
    """Copy `videos` det crops into a fresh folder with its own json; returns (root, json data)."""
    src = json.loads(Path(data_root, "det", "train.json").read_text())
    root = tmp / "tiny"
    data = {}
    for video in sorted(src)[:videos]:
        shutil.copytree(Path(data_root, "det", "crop511", video), root / "crop511" / video)
        data[video] = src[video]
    (root / "train.json").write_text(json.dumps(data))
    return root, data


def _tiny_cfg(root: Path, skip_bad: bool = False) -> dict:
    cfg = config_dict()
    cfg["train_datasets"]["datasets"] = {"det": {"root": str(root / "crop511"), "anno": str(root / "train.json"),
                                                 "frame_range": 1}}
    cfg["train_datasets"]["skip_bad"] = skip_bad
    cfg["train_datasets"]["num"] = 40
    return cfg


def test_missing_crop_raises_and_skip_bad_replaces(tmp_path: Path, data_root: str) -> None:
    root, data = _tiny_set(tmp_path, data_root)
    victim = sorted(data)[0]
    for f in (root / "crop511" / victim).iterdir():
        f.unlink()
    ds = build_train_dataset(load_config(_tiny_cfg(root)), "/nonexistent", seed=0)
    errors = []
    for i in range(len(ds)):
        try:
            ds[i]
        except DataError as e:
            errors.append(str(e))
    assert errors and all(victim in e and "missing" in e and "\n" not in e for e in errors)

    good = build_train_dataset(load_config(_tiny_cfg(root, skip_bad=True)), "/nonexistent", seed=0)
    with_flag = build_train_dataset(load_config(_tiny_cfg(root)), "/nonexistent", seed=0, skip_bad=True)
    for i in range(len(good)):
        a, b = good[i], with_flag[i]
        assert a["template"].any() and np.array_equal(a["search"], b["search"])
    # every bad read counts, including bad replacements
    assert good.bad_count >= len(errors) and with_flag.bad_count == good.bad_count
    total = good.reset_bad_count()
    assert total >= len(errors) and good.bad_count == 0
    loader = torch.utils.data.DataLoader(good, batch_size=8, num_workers=2)
    batches = list(loader)  # the workers' counts reach this process
    assert good.bad_count == total and torch.equal(batches[0]["search"][0], torch.from_numpy(with_flag[0]["search"]))


def test_corrupt_jpeg_raises(tmp_path: Path, data_root: str) -> None:
    root, data = _tiny_set(tmp_path, data_root, videos=1)
    crop = next((root / "crop511").rglob("*.x.jpg"))
    raw = crop.read_bytes()
    crop.write_bytes(raw[: len(raw) // 2])
    ds = build_train_dataset(load_config(_tiny_cfg(root)), "/", seed=0)
    with pytest.raises(DataError, match=r"x\.jpg: damaged JPEG: cut short"):
        for i in range(len(ds)):
            ds[i]
    # corrupt entropy data (stray restart markers), end-of-image marker intact: cv2.imread decodes it with only a
    # libjpeg warning on stderr
    damaged = bytearray(raw)
    damaged[len(raw) // 2:len(raw) // 2 + 16] = b"\xff\xd5" * 8
    assert cv2.imdecode(np.frombuffer(bytes(damaged), np.uint8), cv2.IMREAD_COLOR) is not None
    crop.write_bytes(bytes(damaged))
    with pytest.raises(DataError, match=r"x\.jpg: damaged JPEG: Corrupt JPEG data"):
        for i in range(len(ds)):
            ds[i]
    crop.write_bytes(b"\xff\xd8 not a jpeg at all \xff\xd9")
    with pytest.raises(DataError, match=r"x\.jpg: damaged JPEG"):
        for i in range(len(ds)):
            ds[i]
    crop.write_bytes(b"neither a jpeg nor a png")
    with pytest.raises(DataError, match=r"x\.jpg: not an image OpenCV can decode"):
        for i in range(len(ds)):
            ds[i]
    for other in (root / "crop511").rglob("*.x.jpg"):
        other.write_bytes(b"")
    skipping = build_train_dataset(load_config(_tiny_cfg(root, skip_bad=True)), "/", seed=0)
    with pytest.raises(DataError, match="no readable replacement"):  # every sample is bad: fail, never zeros
        skipping[0]
    assert skipping.bad_count == 17


@pytest.mark.parametrize("mutate, message", [
    (lambda d, v: d[v]["00"].update({"000000": [1, 2, 3]}), "box must be"),
    (lambda d, v: d[v].update({"00": [1, 2, 3, 4]}), "must map frames to boxes"),
    (lambda d, v: d.update({v: "oops"}), "must map track ids"),
])
def test_malformed_json_raises_or_is_skipped(tmp_path: Path, data_root: str, mutate, message: str) -> None:
    root, data = _tiny_set(tmp_path, data_root)
    bad = copy.deepcopy(data)
    mutate(bad, sorted(bad)[0])
    (root / "train.json").write_text(json.dumps(bad))
    with pytest.raises(DataError, match=message) as err:
        build_train_dataset(load_config(_tiny_cfg(root)), "/", seed=0)
    assert "train.json" in str(err.value) and "\n" not in str(err.value)
    ds = build_train_dataset(load_config(_tiny_cfg(root, skip_bad=True)), "/", seed=0)
    assert ds.subsets[0].malformed >= 1 and ds[0]["template"].shape == (3, 127, 127)


def test_unreadable_json_and_missing_paths(tmp_path: Path, data_root: str) -> None:
    root, _ = _tiny_set(tmp_path, data_root, videos=1)
    (root / "train.json").write_text('{"a": {"00": {"000000": [1, 2, ')
    with pytest.raises(DataError, match="not valid JSON"):
        build_train_dataset(load_config(_tiny_cfg(root)), "/", seed=0)
    (root / "train.json").unlink()
    with pytest.raises(DataError, match="annotation json of dataset 'det' not found"):
        build_train_dataset(load_config(_tiny_cfg(root)), "/", seed=0)
    cfg = _tiny_cfg(root)
    cfg["train_datasets"]["datasets"]["det"]["root"] = "no/such/crop511"
    with pytest.raises(DataError, match="crop folder of dataset 'det' not found"):
        build_train_dataset(load_config(cfg), str(tmp_path), seed=0)


def test_zero_boxes_are_filtered(tmp_path: Path, data_root: str) -> None:
    root, data = _tiny_set(tmp_path, data_root, videos=2)
    first = sorted(data)[0]
    data[first] = {"00": {"000000": [10, 10, 10, 50], "frames": [0]}}  # zero width: the whole video goes
    (root / "train.json").write_text(json.dumps(data))
    ds = build_train_dataset(load_config(_tiny_cfg(root)), "/", seed=0)
    assert ds.subsets[0].videos == sorted(data)[1:]
