"""Crop511 masks decoded only down to the rows a crop reads (datasets/masks.py, datasets/_png_rows.c): the pixels of
OpenCV's whole-file decode in those rows, for every mask format, with and without the row decoder; damaged files
refused by name."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from siammask.datasets import masks
from siammask.datasets.errors import DataError


def _mask(height: int = 61, width: int = 47, seed: int = 0) -> np.ndarray:
    """A blobby 0/255 object mask."""
    rng = np.random.default_rng(seed)
    smooth = cv2.resize(rng.standard_normal((6, 5)).astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    return np.where(smooth > 0.2, 255, 0).astype(np.uint8)


def _files(tmp_path: Path) -> dict[str, Path]:
    m = _mask()
    grey = np.clip(m.astype(np.int16) - np.arange(m.shape[1]) * 3, 0, 255).astype(np.uint8)  # 0 / values > 0
    images = {"bilevel": (m, [cv2.IMWRITE_PNG_BILEVEL, 1]), "8-bit": (m, []), "8-bit grey": (grey, []),
              "8-bit level 9": (m, [cv2.IMWRITE_PNG_COMPRESSION, 9]), "16-bit": (m.astype(np.uint16) * 257, []),
              "colour": (cv2.merge([m, m // 2, m]), []), "jpeg": (m, None)}
    paths = {}
    for name, (image, params) in images.items():
        path = tmp_path / (name.replace(" ", "_") + (".jpg" if params is None else ".png"))
        ok, data = cv2.imencode(path.suffix, image, params or [])
        assert ok
        path.write_bytes(data.tobytes())
        paths[name] = path
    return paths


@pytest.fixture(params=["row decoder", "whole file"])
def decoder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "row decoder":
        if not masks.png_rows_ok():
            pytest.skip("datasets._png_rows not built (bash make.sh) or not exact here")
    else:
        monkeypatch.setenv("SIAMMASK_PNG_ROWS", "0")
        monkeypatch.setattr(masks, "_checked", None)
        assert not masks.png_rows_ok()
    return request.param


def test_rows_equal_opencvs_whole_decode(tmp_path: Path, decoder: str) -> None:
    for name, path in _files(tmp_path).items():
        want = cv2.compare(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE), 0, cv2.CMP_GT)
        mask = masks.EncodedMask.read(str(path))
        assert np.array_equal(mask.full(), want), name
        for rows in (0, 1, 17, want.shape[0], 1000):
            got = mask.decode(rows)
            assert got.shape == want.shape and got.dtype == np.uint8, name
            assert np.array_equal(got[:rows], want[:rows]), (name, rows)


def test_the_row_decoder_stops_at_the_rows_asked(tmp_path: Path) -> None:
    """Rows below the ones asked for are not decoded: the buffer keeps what a previous decode left there."""
    if not masks.png_rows_ok():
        pytest.skip("datasets._png_rows not built (bash make.sh) or not exact here")
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    cv2.imwrite(str(first), np.full((61, 47), 255, np.uint8))
    cv2.imwrite(str(second), np.zeros((61, 47), np.uint8))
    masks.EncodedMask.read(str(first)).decode(61)
    got = masks.EncodedMask.read(str(second)).decode(20)
    assert not got[:20].any() and got[20:].all()


@pytest.mark.parametrize("where", ["header", "first rows"])
def test_a_damaged_mask_is_refused_by_name(tmp_path: Path, decoder: str, where: str) -> None:
    path = tmp_path / "000000.00.m.png"
    ok, data = cv2.imencode(".png", _mask(seed=3))
    raw = bytearray(data.tobytes())
    idat = raw.index(b"IDAT")
    raw[20 if where == "header" else idat + 8] ^= 0x55  # IHDR width / the start of the compressed rows
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="000000.00.m.png"):
        masks.EncodedMask.read(str(path)).decode(5)


def test_crc_check_covers_every_chunk() -> None:
    ok, data = cv2.imencode(".png", _mask())
    assert masks._crcs_ok(data)
    for pos in (16, len(data) // 2, len(data) - 5):  # IHDR, IDAT, IEND's CRC
        bad = data.copy()
        bad[pos] ^= 1
        assert not masks._crcs_ok(bad), pos
    assert not masks._crcs_ok(data[:-12])  # no IEND
