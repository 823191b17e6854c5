"""The faster data pipeline gives the same samples: hashes of the unoptimised code, region decoding against OpenCV,
the warp's source rectangle, and the shared decode of single-frame pairs."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import pytest
import torch
from sample_hashes import CASES, CONFIGS, REPO, digest, find_reference, make_data, sample_hashes, versions

from siammask.datasets import build_train_dataset, jpeg
from siammask.datasets.augmentation import Augmentation, warp_source_rect
from siammask.datasets.shared_batches import SharedBatchLoader
from siammask.utils.config import AugBranchConfig, load_config

HASHES = Path(__file__).parent / "data" / "sample_hashes.json"


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> str:
    return make_data(str(tmp_path_factory.mktemp("pipeline")))


def _reference() -> dict:
    refs = json.loads(HASHES.read_text())["references"]
    ref = find_reference(refs)
    if ref is None:
        made = [r["versions"] for r in refs]
        pytest.skip(f"{HASHES.name} was made with {made}, this is {versions()} (pixels may differ)")
    return ref["cases"]


def test_samples_equal_those_of_the_unoptimised_pipeline(data_root: str) -> None:
    """Every key of every sample hashes as the code before the speed-up made it (tests/sample_hashes.py)."""
    assert sample_hashes(data_root) == _reference()


def test_batches_equal_those_of_the_unoptimised_pipeline(data_root: str) -> None:
    ref = _reference()
    name, seed, epoch, count = CASES[0]
    ds = build_train_dataset(load_config(str(Path(REPO) / CONFIGS[name])), data_root, seed=seed)
    ds.set_epoch(epoch)
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(ds, range(count)), batch_size=8, num_workers=0)
    got = []
    for batch in loader:
        n = batch["template"].shape[0]
        got += [{k: digest(v[i].numpy()) for k, v in batch.items()} for i in range(n)]
    assert got == ref[f"{name}/{seed}/{epoch}"]


def test_region_and_whole_image_decoding_give_the_same_samples(data_root: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    if not jpeg.region_decoder_ok():
        pytest.skip("region decoder not built (bash make.sh) or not exact here")
    ds = build_train_dataset(load_config(str(Path(REPO) / CONFIGS["base"])), data_root, seed=11)
    fast = [ds.sample(i, 0) for i in range(40)]
    monkeypatch.setattr(jpeg, "_checked", False)  # this process: whole images through cv2
    monkeypatch.setattr(jpeg, "_check_pid", __import__("os").getpid())
    slow = [ds.sample(i, 0) for i in range(40)]
    for a, b in zip(fast, slow, strict=True):
        for key in a:
            assert np.array_equal(a[key], b[key]), key


def _photo_like(seed: int, shape: tuple[int, int]) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), shape[::-1], interpolation=cv2.INTER_CUBIC)
    return np.clip(base.astype(np.int16) + rng.integers(-30, 31, base.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("sampling", [None, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422,
                                      "gray", "progressive"])
def test_region_decode_equals_cv2_inside_the_rectangle(sampling) -> None:
    if jpeg._jpeg_region is None:
        pytest.skip("region decoder not built (bash make.sh)")
    image = _photo_like(1, (203, 190))
    params = [cv2.IMWRITE_JPEG_QUALITY, 90]
    if sampling == "gray":
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    elif sampling == "progressive":
        params += [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]
    elif sampling is not None:
        params += [cv2.IMWRITE_JPEG_SAMPLING_FACTOR, sampling]
    ok, data = cv2.imencode(".jpg", image, params)
    assert ok
    full = cv2.imdecode(data, cv2.IMREAD_COLOR)
    rng = np.random.default_rng(0)
    for _ in range(40):
        x0, y0 = (int(v) for v in rng.integers(-5, 180, 2))
        x1, y1 = x0 + int(rng.integers(1, 120)), y0 + int(rng.integers(1, 120))
        out = np.zeros_like(full)
        jpeg._decode_into(data, out, x0, y0, x1, y1)
        c0, r0, c1, r1 = max(x0, 0), max(y0, 0), min(x1, 190), min(y1, 203)
        assert np.array_equal(out[r0:r1, c0:c1], full[r0:r1, c0:c1]), (x0, y0, x1, y1)
    assert jpeg._jpeg_region.header(data) == (190, 203, 1 if sampling == "gray" else 3)
    with pytest.raises(ValueError, match="JPEG"):
        jpeg._jpeg_region.decode_region(b"\xff\xd8garbage", np.zeros(10, np.uint8), 0, 0, 1, 1)


@pytest.mark.parametrize("seed", range(6))
def test_warp_reads_only_its_source_rectangle(seed: int) -> None:
    """Pixels outside warp_source_rect do not change the warped crop (they may be stale in a region decode)."""
    image = _photo_like(seed, (511, 511))
    cfg = AugBranchConfig(shift=64, scale=0.18, blur=0.5, flip=0.5) if seed % 2 else AugBranchConfig(4, 0.05)
    aug = Augmentation(cfg, 255 if seed % 2 else 127)
    draws = aug.draw(image.shape, np.random.default_rng(seed))
    c0, r0, c1, r1 = warp_source_rect(*draws.crop)
    noisy = np.random.default_rng(99).integers(0, 256, image.shape, dtype=np.uint8)
    r0, c0 = max(r0, 0), max(c0, 0)
    noisy[r0:r1, c0:c1] = image[r0:r1, c0:c1]
    box = (200.0, 200.0, 300.0, 300.0)
    a, b = aug.apply(image, box, draws), aug.apply(noisy, box, draws)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.box, b.box)
    # and the rectangle is tight: garbage one pixel further inside does change the crop
    noisy[r0 + 2 + (r1 - r0) // 2, c0 + 2:c1 - 2] = 255 - noisy[r0 + 2 + (r1 - r0) // 2, c0 + 2:c1 - 2]
    assert not np.array_equal(aug.apply(noisy, box, draws).image, a.image)


def test_draw_then_apply_equals_call() -> None:
    image = _photo_like(5, (511, 511))
    aug = Augmentation(AugBranchConfig(shift=64, scale=0.18, blur=1.0, flip=0.5), 255)
    for seed in range(20):
        one = aug(image, (180.0, 190.0, 320.0, 330.0), np.random.default_rng(seed))
        rng = np.random.default_rng(seed)
        two = aug.apply(image, (180.0, 190.0, 320.0, 330.0), aug.draw(image.shape, rng))
        assert np.array_equal(one.image, two.image) and np.array_equal(one.box, two.box)
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    aug(image, (180.0, 190.0, 320.0, 330.0), rng_a)
    aug.draw(image.shape, rng_b)
    assert rng_a.random() == rng_b.random()  # the same number of draws


def test_truncated_and_missing_files_name_the_file(tmp_path: Path) -> None:
    ok, data = cv2.imencode(".jpg", _photo_like(0, (64, 64)))
    path = tmp_path / "cut.jpg"
    path.write_bytes(data.tobytes()[:-200])
    with pytest.raises(jpeg.DataError, match="cut.jpg: damaged JPEG: cut short"):
        jpeg.EncodedImage.read(str(path))
    with pytest.raises(jpeg.DataError, match="nothere.jpg: image listed"):
        jpeg.EncodedImage.read(str(tmp_path / "nothere.jpg"))
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8" + b"\x00" * 100 + b"\xff\xd9")
    with pytest.raises(jpeg.DataError, match="bad.jpg: damaged JPEG"):
        jpeg.EncodedImage.read(str(bad)).decode(0, 0, 10, 10)


def test_corrupt_data_inside_the_decoded_rectangle_names_the_file(tmp_path: Path) -> None:
    """Stray restart markers in the entropy data (end marker intact): the region decoder meets libjpeg's warning
    and the strict full decode names the file (cv2.imdecode would return a picture)."""
    ok, data = cv2.imencode(".jpg", _photo_like(1, (511, 511)), [cv2.IMWRITE_JPEG_QUALITY, 90])
    raw = bytearray(data.tobytes())
    raw[len(raw) // 2:len(raw) // 2 + 16] = b"\xff\xd5" * 8
    assert cv2.imdecode(np.frombuffer(bytes(raw), np.uint8), cv2.IMREAD_COLOR) is not None
    path = tmp_path / "corrupt.jpg"
    path.write_bytes(bytes(raw))
    with pytest.raises(jpeg.DataError, match="corrupt.jpg: damaged JPEG: Corrupt JPEG data"):
        jpeg.EncodedImage.read(str(path)).decode(0, 0, 511, 511)


@pytest.fixture
def fork_safe_opencv() -> Iterator[None]:
    """OpenCV without its thread pool while the test forks DataLoader workers: a child forked while a pool thread of
    this process holds OpenCV's mutex deadlocks in its first parallel OpenCV call (seen in cv2.compare)."""
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    yield
    cv2.setNumThreads(threads)


def _base_set(data_root: str, seed: int = 4):
    return build_train_dataset(load_config(str(Path(REPO) / CONFIGS["base"])), data_root, seed=seed)


def _assert_same_batch(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for key in a:
        assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), key


def _rows(sample: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Destination arrays like one row of a shared batch buffer (rows 1 of zeroed (2, ...) arrays)."""
    return {k: np.zeros((2, *v.shape), dtype=v.dtype)[1] for k, v in sample.items()}


def test_getitem_into_writes_the_sample_in_place(data_root: str) -> None:
    """getitem_into gives dataset[i]'s values, with template, search and label_mask in the given arrays, for a
    positive pair with a mask, a negative pair, a grey pair and a pair without mask (det)."""
    ds = _base_set(data_root)
    plans = [ds.plan(i) for i in range(24)]
    picks = {"mask": lambda p: ds.subsets[p.dataset].has_mask and not p.negative, "negative": lambda p: p.negative,
             "gray": lambda p: p.gray, "no mask": lambda p: not ds.subsets[p.dataset].has_mask and not p.negative}
    indices = {name: next(i for i, p in enumerate(plans) if pick(p)) for name, pick in picks.items()}
    for name, i in indices.items():
        want = ds[i]
        out = _rows(want)
        got = ds.getitem_into(i, out)
        assert list(got) == list(want), name
        for key in want:
            assert got[key].dtype == want[key].dtype and np.array_equal(got[key], want[key]), (name, key)
        for key in ("template", "search", "label_mask"):
            assert np.shares_memory(got[key], out[key]), (name, key)
    # destinations that do not fit are ignored; the values stay the same
    want = ds[indices["mask"]]
    odd = {"template": np.zeros((3, 127, 127), np.float64), "search": np.zeros((3, 255, 255), np.float32)[:, ::-1],
           "label_mask": np.zeros((1, 255, 254), np.float32)}
    got = ds.getitem_into(indices["mask"], odd)
    for key in want:
        assert np.array_equal(got[key], want[key]), key
    assert not any(np.shares_memory(got[k], odd[k]) for k in odd)


@pytest.mark.parametrize("flip", [0.0, 1.0])
def test_augmentation_writes_into_out(flip: float) -> None:
    image = _photo_like(2, (511, 511))
    aug = Augmentation(AugBranchConfig(shift=64, scale=0.18, blur=1.0, resize=True, flip=flip), 255)
    mask = np.where(_photo_like(3, (511, 511))[..., 0] > 128, 255, 0).astype(np.uint8)
    for seed in range(4):
        draws = aug.draw(image.shape, np.random.default_rng(seed))
        want = aug.apply(image, (180.0, 190.0, 320.0, 330.0), draws, gray=seed == 1, mask=mask)
        out = np.full((3, 255, 255), 7.0, dtype=np.float32)
        got = aug.apply(image, (180.0, 190.0, 320.0, 330.0), draws, gray=seed == 1, mask=mask, out=out)
        assert got.image is out and np.array_equal(out, want.image)
        assert np.array_equal(got.mask, want.mask) and np.array_equal(got.box, want.box)


@pytest.mark.usefixtures("fork_safe_opencv")
def test_shared_batch_loader_gives_the_default_batches(data_root: str) -> None:
    """Same batches as the default collate with 0 workers over two passes of persistent workers, with a partial
    last batch; kept batches (``list(loader)``) never alias one another and are never overwritten."""
    subset = torch.utils.data.Subset(_base_set(data_root), range(21))
    ref = list(torch.utils.data.DataLoader(subset, batch_size=4, num_workers=0))
    loader = SharedBatchLoader(subset, batch_size=4, num_workers=2, persistent_workers=True, prefetch_factor=1)
    kept = []
    for _ in range(2):
        got = list(loader)
        assert len(got) == len(ref) == 6 and got[-1]["search"].shape[0] == 1
        for a, b in zip(ref, got, strict=True):
            _assert_same_batch(a, b)
        kept += got
    pointers = {b[k].data_ptr() for b in kept for k in b}
    assert len(pointers) == len(kept) * len(ref[0])  # no kept batch aliases another one
    for a, b in zip(ref + ref, kept, strict=True):  # after both passes: nothing was written over
        _assert_same_batch(a, b)
    assert len(loader) == 6 and loader.dataset is subset
    assert 2 <= len(loader.slots) <= 2 * 3  # buffers sent once per slot (3 per worker: prefetch_factor + 2)
    del got, kept, b
    loader.release()
    assert not loader.held  # dropped batches give their slots back


class _CountingInto(torch.utils.data.Dataset):
    """A dataset's getitem_into, counting (in shared memory) the samples written in place."""

    def __init__(self, dataset: torch.utils.data.Dataset) -> None:
        self.dataset = dataset
        self.in_place = torch.zeros(1, dtype=torch.int64).share_memory_()

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        return self.dataset[i]

    def getitem_into(self, i: int, out: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        sample = self.dataset.getitem_into(i, out)
        self.in_place += all(np.shares_memory(sample[k], out[k]) for k in ("template", "search", "label_mask"))
        return sample


@pytest.mark.skipif(not hasattr(torch._C, "_storage_Use_Count"), reason="batches are copied out here")
@pytest.mark.usefixtures("fork_safe_opencv")
def test_shared_batch_loader_reuses_the_slots_of_dropped_batches(data_root: str) -> None:
    """Dropped batches give their slots back (few distinct buffers over many batches, samples written in place
    through a Subset); the batches (and a tensor and an array derived from two of them) that are kept keep theirs
    until the end, equal to the reference."""
    ds = _CountingInto(_base_set(data_root, seed=7))
    subset = torch.utils.data.Subset(torch.utils.data.Subset(ds, range(5, 61)), range(3, 51))  # 48 samples
    ref = list(torch.utils.data.DataLoader(subset, batch_size=4, num_workers=0))
    loader = SharedBatchLoader(subset, batch_size=4, num_workers=2, persistent_workers=True, prefetch_factor=1)
    slots = 2 * 3
    for _ in range(2):
        pointers, kept = set(), {}
        for i, batch in enumerate(loader):
            _assert_same_batch(ref[i], batch)
            assert batch["search"].data_ptr() in {b["search"].data_ptr() for b in loader.slots.values()}  # a view
            assert batch["search"].data_ptr() not in {b["search"].data_ptr() for b in kept.values()}
            pointers.add(batch["search"].data_ptr())
            if i in (1, 6):
                kept[i] = batch
        assert len(pointers) <= slots < len(ref) == 12
        for i, batch in kept.items():
            _assert_same_batch(ref[i], batch)
        derived = (kept[1]["search"][2:], kept[6]["label_mask"].numpy())
        del kept, batch
        for i, batch in enumerate(loader):  # the slots of the derived views stay held, the others come back
            _assert_same_batch(ref[i], batch)
            assert len(loader.held) <= 2 + 2
        assert torch.equal(derived[0], ref[1]["search"][2:]) and np.array_equal(derived[1], ref[6]["label_mask"])
        del derived, batch
    loader.release()
    assert not loader.held
    assert int(ds.in_place) >= 4 * len(ref) - 2 * 4  # all but each worker's first batch (per process) in place


class _NoInto(torch.utils.data.Dataset):
    def __init__(self, dataset: torch.utils.data.Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> dict[str, np.ndarray]:
        return self.dataset[i]


@pytest.mark.usefixtures("fork_safe_opencv")
def test_shared_batch_loader_without_getitem_into(data_root: str) -> None:
    """A dataset without getitem_into: its samples are copied into the slots, the same batches."""
    subset = torch.utils.data.Subset(_NoInto(_base_set(data_root)), range(21))
    ref = list(torch.utils.data.DataLoader(subset, batch_size=4, num_workers=0))
    loader = SharedBatchLoader(subset, batch_size=4, num_workers=2, persistent_workers=True, prefetch_factor=1)
    for _ in range(2):
        for a, b in zip(ref, loader, strict=True):
            _assert_same_batch(a, b)
    assert loader.slots


class _Tuples(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 6

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        return np.full((2, 3), i, dtype=np.float32), i


def test_shared_batch_loader_falls_back_to_the_default_collate() -> None:
    got = list(SharedBatchLoader(_Tuples(), batch_size=4, num_workers=2))
    assert [b[1].tolist() for b in got] == [[0, 1, 2, 3], [4, 5]]
    assert torch.equal(got[1][0], torch.tensor([4.0, 5.0]).reshape(2, 1, 1).expand(2, 2, 3))
    with pytest.raises(ValueError, match="collate_fn"):
        SharedBatchLoader(_Tuples(), collate_fn=list)
