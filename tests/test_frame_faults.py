"""Damaged and missing frames, and two runs into one result folder (issue: reliability items 7 and 12).

A JPEG cut in half or with corrupt entropy data decodes with ``cv2.imread`` (libjpeg only warns on stderr, without
the file name); the strict reader refuses it naming the file, test.py stops with exit 2 unless --skip-bad-frames.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from tracking_helpers import small_sharp_model

from siammask.utils import images
from siammask.utils.errors import OutputError
from siammask.utils.images import ImageDecodeError, decode_image
from siammask.utils.io import OutputLock

ROOT = Path(__file__).resolve().parents[1]
CONFIG = str(ROOT / "experiments" / "siammask_sharp" / "config_vot.json")


def _photo(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8)
    return cv2.add(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC), rng.integers(0, 30, (h, w, 3), np.uint8))


def _encode(image: np.ndarray, *params: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", image, list(params))
    assert ok
    return buf.tobytes()


def _damage(data: bytes) -> bytes:
    """Stray restart markers in the middle of the entropy-coded data; the end-of-image marker stays."""
    out = bytearray(data)
    out[len(data) // 2:len(data) // 2 + 16] = b"\xff\xd5" * 8
    return bytes(out)


@pytest.mark.parametrize("params", [
    (cv2.IMWRITE_JPEG_QUALITY, 90),
    (cv2.IMWRITE_JPEG_QUALITY, 95, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444),
    (cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422),
    (cv2.IMWRITE_JPEG_PROGRESSIVE, 1),
])
def test_strict_decode_gives_imreads_pixels(params: tuple[int, ...]) -> None:
    data = _encode(_photo(), *params)
    buf = np.frombuffer(data, np.uint8)
    assert np.array_equal(decode_image(data), cv2.imdecode(buf, cv2.IMREAD_COLOR))
    assert np.array_equal(decode_image(data, cv2.IMREAD_GRAYSCALE), cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE))
    gray = _encode(cv2.cvtColor(_photo(), cv2.COLOR_BGR2GRAY), *params)
    assert np.array_equal(decode_image(gray), cv2.imdecode(np.frombuffer(gray, np.uint8), cv2.IMREAD_COLOR))


def _with_exif_orientation(data: bytes, orientation: int, order: str) -> bytes:
    """The JPEG with an APP1 Exif segment whose IFD0 holds one tag: orientation (0x0112, SHORT)."""
    import struct

    fmt = ">" if order == "MM" else "<"
    tiff = order.encode() + struct.pack(fmt + "HI", 42, 8) + struct.pack(fmt + "H", 1)
    tiff += struct.pack(fmt + "HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(fmt + "I", 0)
    segment = b"Exif\x00\x00" + tiff
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(segment) + 2) + segment + data[2:]


@pytest.mark.parametrize("orientation", [1, 3, 6, 8])
@pytest.mark.parametrize("order", ["MM", "II"])
def test_exif_orientation_is_applied_as_imread_does(orientation: int, order: str) -> None:
    data = _with_exif_orientation(_encode(_photo(60, 100)), orientation, order)
    expected = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)  # OpenCV rotates by the tag
    assert expected.shape[:2] == ((100, 60) if orientation in (6, 8) else (60, 100))
    assert images.exif_orientation(data) == orientation
    assert np.array_equal(decode_image(data), expected)


def test_damaged_files_are_refused_where_imread_decodes_them() -> None:
    data = _encode(_photo(), cv2.IMWRITE_JPEG_QUALITY, 90)
    cut, corrupt = data[: len(data) // 2], _damage(data)
    # what cv2.imread does with corrupt data: a picture, and a warning on stderr (some OpenCV builds do the same
    # with a file cut short)
    assert cv2.imdecode(np.frombuffer(corrupt, np.uint8), cv2.IMREAD_COLOR) is not None
    with pytest.raises(ImageDecodeError, match="cut short"):
        decode_image(cut)
    with pytest.raises(ImageDecodeError, match="damaged JPEG: Corrupt JPEG data"):
        decode_image(corrupt)
    assert decode_image(corrupt, strict=False).shape == (96, 128, 3)
    ok, png = cv2.imencode(".png", _photo())
    with pytest.raises(ImageDecodeError, match="damaged PNG: cut short"):
        decode_image(png.tobytes()[:-40])
    with pytest.raises(ImageDecodeError, match="empty image file"):
        decode_image(b"")


def test_without_simplejpeg_a_cut_jpeg_is_still_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(images, "simplejpeg", None)
    data = _encode(_photo())
    assert np.array_equal(decode_image(data), cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR))
    with pytest.raises(ImageDecodeError, match="cut short"):
        decode_image(data[:-100])


# ---------------------------------------------------------------------------------------------- tools/test.py
@pytest.fixture()
def vot_setup(tmp_path: Path) -> dict[str, str]:
    """A 2-video, 8-frame synthetic VOT2018 and a sharp-model checkpoint."""
    from siammask.datasets.synthetic import write_vot_dataset

    data = str(tmp_path / "data")
    write_vot_dataset(data, name="VOT2018", num_videos=2, num_frames=8, frame_size=(160, 120), seed=0)
    ckpt = str(tmp_path / "tiny.pth")
    torch.save(small_sharp_model().state_dict(), ckpt)
    return {"root": str(tmp_path), "data": data, "ckpt": ckpt}


def _args(setup: dict[str, str], *extra: str) -> argparse.Namespace:
    from siammask.tools.test import get_args_parser

    return get_args_parser().parse_args(["--config", CONFIG, "--resume", setup["ckpt"], "--data-root", setup["data"],
                                         "--result-dir", os.path.join(setup["root"], "results"), "--device", "cpu",
                                         "--tracker-name", "T", *extra])


def _frames(setup: dict[str, str], video: str) -> list[Path]:
    folder = Path(setup["data"]) / "VOT2018" / video
    return sorted(p for p in folder.rglob("*.jpg"))


def _error_line(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]  # beside the progress bar
    assert len(errors) == 1 and err.endswith(errors[0])
    return errors[0]


def test_damaged_frame_stops_test_py_naming_it_or_is_skipped(vot_setup: dict[str, str],
                                                             capsys: pytest.CaptureFixture) -> None:
    from siammask.tools import test as test_tool

    victim = _frames(vot_setup, "vot0001")[4]
    victim.write_bytes(_damage(victim.read_bytes()))
    assert test_tool.main(_args(vot_setup)) == 2
    err = _error_line(capsys)
    assert err.startswith(f"error: {victim}: damaged JPEG")

    assert test_tool.main(_args(vot_setup, "--skip-bad-frames")) == 0
    out = capsys.readouterr().out
    assert "Skipped 1 damaged frame" in out and str(victim) in out
    result = Path(vot_setup["root"]) / "results" / "VOT2018" / "T" / "baseline" / "vot0001" / "vot0001_001.txt"
    assert len(result.read_text().splitlines()) == 8
    assert not (result.parents[2] / ".lock").exists()  # released after the run


def test_missing_frames_are_found_before_the_model_loads(vot_setup: dict[str, str], capsys: pytest.CaptureFixture,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from siammask.tools import test as test_tool

    def no_model(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model was loaded before the input was checked")

    monkeypatch.setattr(test_tool, "build_tracker", no_model)
    frames = _frames(vot_setup, "vot0001")
    frames[-1].unlink()
    assert test_tool.main(_args(vot_setup)) == 2
    assert f"video vot0001: frame {frames[-1]} does not exist" in _error_line(capsys)
    for f in frames[:-1]:
        f.unlink()
    frames[0].parent.rmdir()
    assert test_tool.main(_args(vot_setup)) == 2
    assert f"frame folder {frames[0].parent} does not exist" in _error_line(capsys)


def test_second_run_into_the_same_tracker_folder_is_refused(vot_setup: dict[str, str], capsys: pytest.CaptureFixture,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from siammask.tools import test as test_tool

    folder = Path(vot_setup["root"]) / "results" / "VOT2018" / "T"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        folder.mkdir(parents=True)
        (folder / ".lock").write_text(f"{holder.pid} {os.uname().nodename}\n")
        monkeypatch.setattr(test_tool, "build_tracker", lambda *a, **k: (_ for _ in ()).throw(AssertionError()))
        assert test_tool.main(_args(vot_setup)) == 2
        err = _error_line(capsys)
        assert f"pid {holder.pid}" in err and str(folder / ".lock") in err
    finally:
        holder.kill()
        holder.wait()
    # the holder is gone: its lock is stale and taken over
    monkeypatch.undo()
    assert test_tool.main(_args(vot_setup, "--video", "vot0000")) == 0
    assert not (folder / ".lock").exists()


def test_output_lock_unit(tmp_path: Path) -> None:
    with OutputLock(tmp_path / "out", "--result-dir") as lock:
        pid, host = Path(lock.path).read_text().split()
        assert int(pid) == os.getpid()
        with pytest.raises(OutputError, match=r"--result-dir .*out: pid \d+ on .* is writing here"):
            OutputLock(tmp_path / "out", "--result-dir").acquire()
    assert not (tmp_path / "out" / ".lock").exists()


# ---------------------------------------------------------------------------------------------- tools/demo.py
@pytest.fixture()
def demo_setup(tmp_path: Path) -> dict[str, str]:
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(5):
        im = _photo(120, 160, seed=1)
        cv2.ellipse(im, (45 + 3 * i, 60), (16, 10), 0, 0, 360, (30, 200, 240), -1)
        cv2.imwrite(str(folder / f"{i:05d}.jpg"), im)
    ckpt = str(tmp_path / "tiny.pth")
    torch.save(small_sharp_model().state_dict(), ckpt)
    return {"root": str(tmp_path), "folder": str(folder), "ckpt": ckpt}


def _demo(setup: dict[str, str], *argv: str) -> int:
    from siammask.tools import demo

    config = str(ROOT / "experiments" / "siammask_sharp" / "config_davis.json")
    return demo.main(demo.get_args_parser().parse_args(["--resume", setup["ckpt"], "--config", config,
                                                        "--no-display", "--device", "cpu", "--input",
                                                        setup["folder"], *argv]))


def test_demo_init_outside_the_frame_creates_nothing(demo_setup: dict[str, str], capsys: pytest.CaptureFixture,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from siammask.tools import demo

    monkeypatch.setattr(demo, "build_tracker", lambda *a, **k: (_ for _ in ()).throw(AssertionError()))
    out = Path(demo_setup["root"]) / "out"
    assert _demo(demo_setup, "--init", "500,20,30,30", "--output", str(out)) == 2
    assert "--init 500,20,30,30: the box lies outside the first frame (160x120)" in _error_line(capsys)
    assert not out.exists()


def test_demo_damaged_frame_named_no_partial_video_or_skipped(demo_setup: dict[str, str],
                                                               capsys: pytest.CaptureFixture) -> None:
    victim = Path(demo_setup["folder"]) / "00003.jpg"
    victim.write_bytes(_damage(victim.read_bytes()))
    out = Path(demo_setup["root"]) / "out"
    assert _demo(demo_setup, "--init", "29,50,32,20", "--output", str(out)) == 2
    assert _error_line(capsys).startswith(f"error: {victim}: damaged JPEG")
    assert not (out / ".overlay.partial.mp4").exists() and not (out / "tracks.json").exists()
    assert not (out / "overlay.mp4").exists()

    assert _demo(demo_setup, "--init", "29,50,32,20", "--output", str(out)) == 2  # again: still nothing half-written
    assert _demo(demo_setup, "--init", "29,50,32,20", "--output", str(out), "--skip-bad-frames") == 0
    captured = capsys.readouterr()
    assert "Skipped 1 damaged frame" in captured.out
    assert "SiamMask:" in captured.err and "5/5" not in captured.err and "4/5" in captured.err  # the progress bar
    import json

    tracks = json.loads((out / "tracks.json").read_text())
    assert tracks["num_frames"] == 4 and [fr["name"] for fr in tracks["frames"]] == ["00000", "00001", "00002",
                                                                                     "00004"]
    assert len(tracks["skipped_frames"]) == 1 and str(victim) in tracks["skipped_frames"][0]
    assert (out / "overlay.mp4").is_file() and not (out / ".overlay.partial.mp4").exists()


def test_demo_non_finite_boxes_are_null_and_lost() -> None:
    from siammask.tools.demo import _object_json
    from siammask.tracker import TrackResult

    fields = {f: None for f in TrackResult.__dataclass_fields__}
    good = TrackResult(**{**fields, "box": np.array([1.0, 2.0, 3.0, 4.0]), "polygon": np.zeros((4, 2)),
                          "score": 0.9, "lost": False})
    bad = TrackResult(**{**fields, "box": np.array([np.nan, 2.0, 3.0, 4.0]), "polygon": np.full((4, 2), np.inf),
                         "score": float("nan"), "lost": False})
    assert _object_json(0, good) == {"id": 1, "box": [1.0, 2.0, 3.0, 4.0], "polygon": [[0.0, 0.0]] * 4,
                                     "score": 0.9, "lost": False}
    assert _object_json(1, bad) == {"id": 2, "box": None, "polygon": None, "score": 0.0, "lost": True}


@pytest.mark.parametrize("flags, message", [
    (["--max-frames", "-1"], "--max-frames must be >= 0 (0 = all), got -1"),
    (["--fps", "-5"], "--fps must be >= 0 (0 = the video's, else 25), got -5.0"),
    (["--lost-threshold", "2"], "--lost-threshold is a score in [0, 1], got 2.0"),
    (["--lost-threshold", "nan"], "--lost-threshold is a score in [0, 1], got nan"),
])
def test_demo_bad_numeric_flags(demo_setup: dict[str, str], capsys: pytest.CaptureFixture, flags: list[str],
                                message: str) -> None:
    out = Path(demo_setup["root"]) / "out"
    assert _demo(demo_setup, "--init", "29,50,32,20", "--output", str(out), *flags) == 2
    assert _error_line(capsys) == f"error: {message}"
    assert not out.exists()
