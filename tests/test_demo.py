"""tools/demo.py headless: video file and image folder inputs, box and mask init, several objects, errors."""
from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from tracking_helpers import small_sharp_model

from siammask.utils.palette import read_index_png

ROOT = Path(__file__).resolve().parents[1]
CONFIG = str(ROOT / "experiments" / "siammask_sharp" / "config_davis.json")
FRAMES = 6


def _frames() -> list[np.ndarray]:
    rng = np.random.default_rng(5)
    base = cv2.resize(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8), (160, 120), interpolation=cv2.INTER_CUBIC)
    out = []
    for i in range(FRAMES):
        im = base.copy()
        cv2.ellipse(im, (45 + 3 * i, 60), (16, 10), 0, 0, 360, (30, 200, 240), -1)
        cv2.rectangle(im, (100, 20 + 2 * i), (125, 45 + 2 * i), (200, 40, 40), -1)
        out.append(im)
    return out


@pytest.fixture(scope="module")
def demo_setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("demo")
    frames = _frames()
    video = str(root / "clip.mp4")
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"mp4v"), 10, (160, 120))
    for im in frames:
        writer.write(im)
    writer.release()
    folder = root / "frames"
    folder.mkdir()
    for i, im in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:05d}.jpg"), im)
    mask = np.zeros((120, 160), np.uint8)
    cv2.ellipse(mask, (45, 60), (16, 10), 0, 0, 360, 1, -1)
    mask[20:46, 100:126] = 2
    cv2.imwrite(str(root / "init.png"), mask)
    ckpt = str(root / "SiamMask_tiny.pth")
    torch.save(small_sharp_model().state_dict(), ckpt)
    return {"root": str(root), "video": video, "folder": str(folder), "mask": str(root / "init.png"), "ckpt": ckpt}


def _run(setup: dict[str, str], *argv: str) -> int:
    from siammask.tools import demo

    args = demo.get_args_parser().parse_args(["--resume", setup["ckpt"], "--config", CONFIG, "--no-display",
                                              "--device", "cpu", *argv])
    return demo.main(args)


def test_demo_video_two_boxes_writes_mp4_pngs_json(demo_setup: dict[str, str], capsys: pytest.CaptureFixture) -> None:
    out = os.path.join(demo_setup["root"], "out_video")
    assert _run(demo_setup, "--input", demo_setup["video"], "--init", "29,50,32,20", "--init", "100,20,26,26",
                "--output", out) == 0
    assert "SiamMask Time:" in capsys.readouterr().out
    cap = cv2.VideoCapture(os.path.join(out, "overlay.mp4"))
    count = 0
    while cap.read()[0]:
        count += 1
    assert count == FRAMES
    pngs = sorted(os.listdir(os.path.join(out, "masks")))
    assert len(pngs) == FRAMES
    first = read_index_png(os.path.join(out, "masks", pngs[0]))  # palette PNG: the index map
    assert first.shape == (120, 160) and set(np.unique(first)) == {0, 1, 2}  # the filled init boxes
    data = json.loads(Path(out, "tracks.json").read_text())
    assert data["num_frames"] == FRAMES and data["num_objects"] == 2
    assert data["frames"][0]["objects"][0]["box"] == [29.0, 50.0, 32.0, 20.0]
    for frame in data["frames"][1:]:
        assert [o["id"] for o in frame["objects"]] == [1, 2]
        for obj in frame["objects"]:
            assert len(obj["box"]) == 4 and np.asarray(obj["polygon"]).shape == (4, 2)
            assert isinstance(obj["lost"], bool) and 0.0 <= obj["score"] <= 1.0
    assert not [f for f in os.listdir(out) if f.startswith(".")]  # no partial files left


def test_demo_folder_with_mask_init(demo_setup: dict[str, str], capsys: pytest.CaptureFixture) -> None:
    out = os.path.join(demo_setup["root"], "out_mask")
    assert _run(demo_setup, "--input", demo_setup["folder"], "--init-mask", demo_setup["mask"], "--output", out,
                "--max-frames", "3") == 0
    data = json.loads(Path(out, "tracks.json").read_text())
    assert data["num_frames"] == 3 and data["num_objects"] == 2
    # boxes from cv2.boundingRect of each label
    assert data["frames"][0]["objects"][1]["box"] == [100.0, 20.0, 26.0, 26.0]
    init = read_index_png(os.path.join(out, "masks", "00000.png"))
    np.testing.assert_array_equal(init, cv2.imread(demo_setup["mask"], cv2.IMREAD_UNCHANGED))
    assert sorted(os.listdir(os.path.join(out, "masks"))) == ["00000.png", "00001.png", "00002.png"]


@pytest.mark.parametrize("argv, message", [
    (["--input", "/no/such/folder", "--init", "1,2,3,4"], "no such folder"),
    (["--input", "VIDEO", "--init", "1,2,3"], "x,y,w,h"),
    (["--input", "VIDEO", "--init", "1,2,-3,4"], "positive"),
    (["--input", "VIDEO"], "no --init"),
    (["--input", "VIDEO", "--init-mask", "/no/mask.png"], "no such file"),
])
def test_demo_errors_are_one_line(demo_setup: dict[str, str], capsys: pytest.CaptureFixture, argv: list[str],
                                  message: str) -> None:
    argv = [demo_setup["video"] if a == "VIDEO" else a for a in argv]
    assert _run(demo_setup, *argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and message in err
