"""Built-in OPE benchmark ``SyntheticOPE``: single-target videos in pysot's OTB-style json layout.

New (the original had no built-in data). Rendered by :func:`datasets.synthetic.scene.render_video` (one annotated
object, occluders, pans, illumination drift); written as

* ``<data_root>/SyntheticOPE/<video>/img/0001.jpg ...`` and ``groundtruth_rect.txt`` (OTB's raw layout: one integer
  ``x,y,w,h`` line per frame);
* ``<data_root>/SyntheticOPE/SyntheticOPE.json`` (pysot's layout): per video ``video_dir``, ``init_rect``,
  ``img_names`` (relative to ``<data_root>/SyntheticOPE/``), ``gt_rect`` and ``attr``.

The ground truth is the axis-aligned box of the object's whole outline (occluded parts included, as OTB annotates),
clipped to the frame and rounded to integer pixels. Attributes, OTB-style codes from the renderer's per-frame tags,
set when the tag holds on at least :data:`ATTRIBUTE_MIN_FRACTION` of the frames: ``IV`` (illumination change),
``SV`` (size change), ``OCC`` (occlusion), ``CM`` (camera motion, UAV123's code), ``MC`` (motion change, not an OTB
code); ``OV`` (out of view) when the outline leaves the frame on some frame. Everything is a pure function of the
seed.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import cv2
import numpy as np

from ...utils.io import atomic_write_image, atomic_write_json, atomic_write_text
from ..prep.common import parallel_map
from .scene import FRAME_SIZE, render_video

OPE_NAME = "SyntheticOPE"
OPE_SIZES = {"quick": {"ope_videos": 3, "ope_frames": 60}, "large": {"ope_videos": 8, "ope_frames": 150}}
#: Tag -> attribute code of the json's ``attr`` lists.
ATTRIBUTE_CODES = {"illum_change": "IV", "size_change": "SV", "occlusion": "OCC", "camera_motion": "CM",
                   "motion_change": "MC"}
ATTRIBUTE_MIN_FRACTION = 0.1
JPEG_QUALITY = 92


def outline_box(points: np.ndarray, frame_size: tuple[int, int]) -> tuple[list[int], bool]:
    """Integer ``x, y, w, h`` of outline `points` (N, 2) clipped to the frame, and whether it was clipped.

    A box clipped to nothing is ``[0, 0, 0, 0]`` (OTB's absent-frame convention).
    """
    width, height = frame_size
    x1, y1 = float(points[:, 0].min()), float(points[:, 1].min())
    x2, y2 = float(points[:, 0].max()), float(points[:, 1].max())
    clipped = x1 < 0 or y1 < 0 or x2 > width or y2 > height
    ix1, iy1 = int(round(min(max(x1, 0.0), width))), int(round(min(max(y1, 0.0), height)))
    ix2, iy2 = int(round(min(max(x2, 0.0), width))), int(round(min(max(y2, 0.0), height)))
    if ix2 <= ix1 or iy2 <= iy1:
        return [0, 0, 0, 0], True
    return [ix1, iy1, ix2 - ix1, iy2 - iy1], clipped


@dataclass(frozen=True)
class _OPETask:
    dataset_dir: str
    video: str
    seed: tuple[int, ...]
    num_frames: int
    frame_size: tuple[int, int]


def _write_ope_video(task: _OPETask) -> dict[str, object]:
    video = render_video(task.seed, task.num_frames, task.frame_size, num_objects=1)
    img_dir = os.path.join(task.dataset_dir, task.video, "img")
    img_names, boxes, out_of_view = [], [], False
    for t, (frame, polys) in enumerate(zip(video.frames, video.polygons)):
        name = f"{t + 1:04d}.jpg"
        atomic_write_image(os.path.join(img_dir, name), frame, (cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY))
        img_names.append(f"{task.video}/img/{name}")
        box, clipped = outline_box(polys[0], task.frame_size)
        boxes.append(box)
        out_of_view |= clipped
    atomic_write_text(os.path.join(task.dataset_dir, task.video, "groundtruth_rect.txt"),
                      "".join(",".join(str(v) for v in b) + "\n" for b in boxes))
    attrs = [code for tag, code in ATTRIBUTE_CODES.items()
             if np.mean(video.tags[tag]) >= ATTRIBUTE_MIN_FRACTION] + (["OV"] if out_of_view else [])
    return {"video_dir": task.video, "init_rect": boxes[0], "img_names": img_names, "gt_rect": boxes,
            "attr": sorted(attrs)}


def write_ope_dataset(data_root: str, num_videos: int = 3, num_frames: int = 60,
                      frame_size: tuple[int, int] = FRAME_SIZE, seed: int = 0, num_workers: int = 0,
                      progress: bool = False, name: str = OPE_NAME) -> str:
    """Write the OPE benchmark (module docstring) under ``<data_root>/<name>``; returns that folder."""
    dataset_dir = os.path.join(data_root, name)
    tasks = [_OPETask(dataset_dir, f"ope{i:04d}", (seed, 0x6F7065, i), num_frames, tuple(frame_size))
             for i in range(num_videos)]
    metas = parallel_map(_write_ope_video, tasks, num_workers, desc=f"render {name}", progress=progress)
    atomic_write_json(os.path.join(dataset_dir, f"{name}.json"), {t.video: m for t, m in zip(tasks, metas)},
                      indent=None)
    return dataset_dir


@dataclass(frozen=True)
class _Got10kTask:
    split_dir: str
    video: str
    seed: tuple[int, ...]
    num_frames: int
    frame_size: tuple[int, int]
    ground_truth: bool


def _write_got10k_video(task: _Got10kTask) -> None:
    video = render_video(task.seed, task.num_frames, task.frame_size, num_objects=1)
    folder = os.path.join(task.split_dir, task.video)
    boxes, covers, cut = [], [], []
    for t, (frame, polys, masks) in enumerate(zip(video.frames, video.polygons, video.masks)):
        atomic_write_image(os.path.join(folder, f"{t + 1:08d}.jpg"), frame, (cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY))
        box, clipped = outline_box(polys[0], task.frame_size)
        boxes.append(box)
        full = np.zeros(frame.shape[:2], np.uint8)
        cv2.fillPoly(full, [np.round(polys[0]).astype(np.int32)], 1)
        ratio = float(masks[0].sum()) / max(float(full.sum()), 1.0)
        covers.append(int(np.clip(np.ceil(8 * ratio - 1e-9), 0, 8)))
        cut.append(int(clipped))
    rows = boxes if task.ground_truth else boxes[:1]
    atomic_write_text(os.path.join(folder, "groundtruth.txt"),
                      "".join(",".join(f"{float(v):.4f}" for v in b) + "\n" for b in rows))
    if task.ground_truth:
        width, height = task.frame_size
        atomic_write_text(os.path.join(folder, "meta_info.ini"),
                          f"[METAINFO]\nobject_class: synthetic\nmotion_class: synthetic\nmajor_class: synthetic\n"
                          f"root_class: synthetic\nmotion_adverb: synthetic\nresolution: ({width}, {height})\n")
        atomic_write_text(os.path.join(folder, "cover.label"), "".join(f"{c}\n" for c in covers))
        atomic_write_text(os.path.join(folder, "absence.label"), "".join(f"{int(c == 0)}\n" for c in covers))
        atomic_write_text(os.path.join(folder, "cut_by_image.label"), "".join(f"{c}\n" for c in cut))


def write_got10k_dataset(data_root: str, split: str = "val", num_videos: int = 2, num_frames: int = 20,
                         frame_size: tuple[int, int] = FRAME_SIZE, seed: int = 0) -> str:
    """A GOT-10k-layout split under ``<data_root>/GOT-10k/<split>`` (not part of the built-in data; for tests).

    Writes ``list.txt`` and per sequence ``GOT-10k_<Split>_00000N/00000001.jpg ...``, ``groundtruth.txt``
    (``x,y,w,h`` per frame; the first frame only for ``test``) and, except for ``test``, ``meta_info.ini``
    (``[METAINFO]`` + ``key: value`` lines with ``resolution: (W, H)``), ``cover.label`` (0-8: eighths of the outline
    that are visible, rounded up), ``absence.label`` (cover 0) and ``cut_by_image.label`` (outline leaves the frame):
    the files the got10k toolkit reads. Returns the split folder.
    """
    split_dir = os.path.join(data_root, "GOT-10k", split)
    split_id = sum(ord(c) for c in split)
    tasks = [_Got10kTask(split_dir, f"GOT-10k_{split.capitalize()}_{i + 1:06d}", (seed, 0x676F74, split_id, i),
                         num_frames,
                         tuple(frame_size), split != "test") for i in range(num_videos)]
    for task in tasks:
        _write_got10k_video(task)
    atomic_write_text(os.path.join(split_dir, "list.txt"), "\n".join(t.video for t in tasks) + "\n")
    return split_dir
