"""Streaming-store writes of batch rows (datasets/row_writes.py, datasets/_stream.c): numpy's values at every
alignment and length, with and without the extension, and the augmentation path that uses them."""
from __future__ import annotations

import numpy as np
import pytest

from siammask.datasets import row_writes
from siammask.datasets.augmentation import Augmentation
from siammask.utils.config import AugBranchConfig

LENGTHS = [0, 1, 3, 15, 16, 17, 33, 1000, 255 * 255]


@pytest.fixture(params=["stream", "numpy"])
def writer(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "stream":
        if row_writes._stream is None:
            pytest.skip("datasets._stream not built (bash make.sh)")
        monkeypatch.setattr(row_writes, "STREAMING", True)
    else:
        monkeypatch.setattr(row_writes, "STREAMING", False)
    return request.param


def _dst(n: int, skew: int) -> tuple[np.ndarray, np.ndarray]:
    """A float32 view of n values starting `skew` floats into a sentinel-filled buffer (every 16-byte alignment)."""
    buf = np.full(n + 8, 7.25, dtype=np.float32)
    return buf, buf[skew:skew + n]


@pytest.mark.parametrize("n", LENGTHS)
@pytest.mark.parametrize("skew", [0, 1, 2, 3])
def test_subtract_and_label_give_numpys_values(writer: str, n: int, skew: int) -> None:
    src = np.random.default_rng(n + skew).integers(0, 256, n, dtype=np.uint8)
    src[: min(n, 4)] = [0, 127, 128, 255][: min(n, 4)]  # the label's edges
    for value in (0.0, -3.7, 12.125):
        buf, dst = _dst(n, skew)
        row_writes.subtract_into(src, value, dst)
        assert np.array_equal(dst, src.astype(np.float32) - np.float32(value))
        assert (buf[:skew] == 7.25).all() and (buf[skew + n:] == 7.25).all()  # nothing written outside
    buf, dst = _dst(n, skew)
    row_writes.mask_label_into(src, dst)
    assert np.array_equal(dst, np.where(src > 127, 1.0, -1.0).astype(np.float32))
    assert (buf[:skew] == 7.25).all() and (buf[skew + n:] == 7.25).all()
    buf, dst = _dst(n, skew)
    row_writes.fill_into(dst, -1.0)
    assert (dst == -1).all() and (buf[:skew] == 7.25).all() and (buf[skew + n:] == 7.25).all()


def test_two_dimensional_planes(writer: str) -> None:
    """(H, W) planes, the shape the augmentation passes: the same values as the flat case."""
    src = np.random.default_rng(0).integers(0, 256, (31, 29), dtype=np.uint8)
    dst = np.zeros((2, 31, 29), dtype=np.float32)[1]
    row_writes.subtract_into(src, 1.5, dst)
    assert np.array_equal(dst, src.astype(np.float32) - np.float32(1.5))


def test_mismatched_buffers_fall_back_or_fail() -> None:
    """A non-contiguous destination takes numpy's path (same values); the extension refuses a size mismatch."""
    src = np.arange(64, dtype=np.uint8).reshape(8, 8)
    dst = np.zeros((8, 16), dtype=np.float32)[:, ::2]
    row_writes.subtract_into(src, 2.0, dst)
    assert np.array_equal(dst, src - np.float32(2.0))
    if row_writes._stream is not None:
        with pytest.raises(ValueError, match="one aligned float32 per byte"):
            row_writes._stream.subtract(src, np.zeros(63, np.float32), 0.0)


@pytest.mark.parametrize("gray", [False, True])
def test_augmentation_into_a_row_equals_scratch(writer: str, gray: bool) -> None:
    """No blur / resize / flip: the crop written into a batch row (streaming) equals the one made in new memory."""
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (511, 511, 3), dtype=np.uint8)
    aug = Augmentation(AugBranchConfig(shift=64, scale=0.18), 255)
    draws = aug.draw(image.shape, np.random.default_rng(1))
    want = aug.apply(image, (180.0, 190.0, 320.0, 330.0), draws, gray=gray)
    rows = np.zeros((2, 3, 255, 255), dtype=np.float32)
    got = aug.apply(image, (180.0, 190.0, 320.0, 330.0), draws, gray=gray, out=rows[1])
    assert np.shares_memory(got.image, rows) and np.array_equal(got.image, want.image)
    assert not rows[0].any()
