"""Format writers of the built-in synthetic data: rendered videos written in the public datasets' raw layouts.

One function per layout, each taking an output folder and a seed (more layouts, e.g. benchmark sets, go here too):

* :func:`write_raw_ytb_vos`: YouTube-VOS train layout (JPEG frames, palette PNG instance masks, meta.json); the
  `datasets.prep.ytb_vos` steps turn it into crop511 + train.json;
* :func:`write_det_dataset`: ImageNet-DET layout (JPEGs + XML boxes), then crop511 + train.json (box-only);
* :func:`write_vot_dataset`: a VOT2018-style benchmark (color/ frames, rotated-box groundtruth.txt, per-frame
  attribute .tag files, list.txt) and its pysot json;

The same call writes byte-identical files.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import cv2
import numpy as np

from ...evaluation.vot import VOT_ATTRIBUTES
from ...utils.io import atomic_write_image, atomic_write_text
from ...utils.palette import write_palette_png
from ..prep import det as det_prep
from ..prep.common import parallel_map, write_json
from ..prep.vot import create_vot_json
from .scene import FRAME_SIZE, render_video


@dataclass(frozen=True)
class _YtbTask:
    out_dir: str
    video: str
    seed: tuple[int, ...]
    num_frames: int
    frame_size: tuple[int, int]


def _write_ytb_video(task: _YtbTask) -> dict[str, dict[str, object]]:
    rng = np.random.default_rng(list(task.seed) + [1])
    num_objects = 1 + int(rng.random() < 0.4)
    video = render_video(task.seed, task.num_frames, task.frame_size, num_objects)
    img_dir = os.path.join(task.out_dir, "train", "JPEGImages", task.video)
    ann_dir = os.path.join(task.out_dir, "train", "Annotations", task.video)
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(ann_dir, exist_ok=True)
    frames_of: dict[str, list[str]] = {str(i + 1): [] for i in range(num_objects)}
    for t, (frame, masks) in enumerate(zip(video.frames, video.masks)):
        name = f"{5 * t:05d}"  # YouTube-VOS annotates every 5th frame
        atomic_write_image(os.path.join(img_dir, name + ".jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 92])
        label = np.zeros(frame.shape[:2], np.uint8)
        for i, m in enumerate(masks):
            label[m] = i + 1
            if m.any():
                frames_of[str(i + 1)].append(name)
        write_palette_png(os.path.join(ann_dir, name + ".png"), label)
    return {"objects": {k: {"category": "synthetic", "frames": v} for k, v in frames_of.items()}}


def write_raw_ytb_vos(out_dir: str, num_videos: int = 8, num_frames: int = 20,
                      frame_size: tuple[int, int] = FRAME_SIZE, seed: int = 0, num_workers: int = 0,
                      progress: bool = False) -> str:
    """Write a raw YouTube-VOS-layout train split (input of `data/ytb_vos` / :mod:`datasets.prep.ytb_vos`).

    Layout: ``<out_dir>/train/JPEGImages/<video>/<00000>.jpg`` (frames numbered 0, 5, 10, ...),
    ``<out_dir>/train/Annotations/<video>/<00000>.png`` (palette PNG, index = object id, 0 = background) and
    ``<out_dir>/train/meta.json`` (``{"videos": {video: {"objects": {id: {"category", "frames"}}}}}``).
    Videos hold one or two annotated objects; occluders are not annotated (their pixels are background).

    Returns:
        `out_dir`.
    """
    tasks = [_YtbTask(out_dir, f"syn{i:04d}", (seed, 0x797462, i), num_frames, tuple(frame_size))
             for i in range(num_videos)]
    metas = parallel_map(_write_ytb_video, tasks, num_workers, desc="render ytb_vos", progress=progress)
    write_json(os.path.join(out_dir, "train", "meta.json"),
               {"videos": {t.video: m for t, m in zip(tasks, metas)}}, indent=None)
    return out_dir


def _det_xml(filename: str, width: int, height: int, boxes: list[list[int]]) -> str:
    objects = "".join(
        f"<object><name>n00000000</name><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin><xmax>{b[2]}</xmax>"
        f"<ymax>{b[3]}</ymax></bndbox></object>" for b in boxes)
    return (f"<annotation><folder>synthetic</folder><filename>{filename}</filename><size><width>{width}</width>"
            f"<height>{height}</height></size>{objects}</annotation>\n")


@dataclass(frozen=True)
class _DetTask:
    out_dir: str
    subset: str
    name: str
    seed: tuple[int, ...]
    frame_size: tuple[int, int]


def _write_det_image(task: _DetTask) -> None:
    rng = np.random.default_rng(list(task.seed))
    video = render_video(task.seed, 1, task.frame_size, num_objects=1 + int(rng.integers(3)), occluder=False)
    frame, masks = video.frames[0], video.masks[0]
    boxes = []
    for m in masks:
        ys, xs = np.nonzero(m)
        if len(xs) >= 50:
            boxes.append([int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())])
    img_path = os.path.join(task.out_dir, det_prep.DATA_SUBDIR, task.subset, task.name + ".JPEG")
    xml_path = os.path.join(task.out_dir, det_prep.ANNO_SUBDIR, task.subset, task.name + ".xml")
    os.makedirs(os.path.dirname(img_path), exist_ok=True)
    os.makedirs(os.path.dirname(xml_path), exist_ok=True)
    atomic_write_image(img_path, frame, [cv2.IMWRITE_JPEG_QUALITY, 92])
    atomic_write_text(xml_path, _det_xml(task.name, frame.shape[1], frame.shape[0], boxes))


def write_det_dataset(out_dir: str, num_images: int = 16, frame_size: tuple[int, int] = FRAME_SIZE, seed: int = 0,
                      num_workers: int = 0, progress: bool = False) -> str:
    """A box-only DET-style set: raw ``<out_dir>/ILSVRC2015/{Data,Annotations}/DET/train/...`` images and XML,
    then (through :mod:`datasets.prep.det`) ``<out_dir>/crop511/...`` and ``<out_dir>/train.json``.

    Returns:
        `out_dir`.
    """
    tasks = [_DetTask(out_dir, "synthetic_train_0000", f"syn_det_{i:06d}", (seed, 0x646574, i), tuple(frame_size))
             for i in range(num_images)]
    parallel_map(_write_det_image, tasks, num_workers, desc="render det", progress=progress)
    det_prep.crop_det(out_dir, num_workers=num_workers, progress=progress)
    det_prep.gen_json_det(out_dir)
    return out_dir


def _vot_polygon(points: np.ndarray) -> list[float]:
    """Rotated bounding box of outline points as 8 values x1, y1, ..., x4, y4 (VOT2018 groundtruth)."""
    corners = cv2.boxPoints(cv2.minAreaRect(points.astype(np.float32)))
    return [float(v) for v in corners.reshape(-1)]


@dataclass(frozen=True)
class _VotTask:
    dataset_dir: str
    video: str
    seed: tuple[int, ...]
    num_frames: int
    frame_size: tuple[int, int]


def _write_vot_video(task: _VotTask) -> None:
    video = render_video(task.seed, task.num_frames, task.frame_size, num_objects=1)
    folder = os.path.join(task.dataset_dir, task.video)
    os.makedirs(os.path.join(folder, "color"), exist_ok=True)
    for t, frame in enumerate(video.frames):
        atomic_write_image(os.path.join(folder, "color", f"{t + 1:08d}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 92])
    lines = [",".join(f"{v:.2f}" for v in _vot_polygon(polys[0])) for polys in video.polygons]
    atomic_write_text(os.path.join(folder, "groundtruth.txt"), "\n".join(lines) + "\n")
    for tag in VOT_ATTRIBUTES:
        atomic_write_text(os.path.join(folder, f"{tag}.tag"), "\n".join(str(v) for v in video.tags[tag]) + "\n")


def write_vot_dataset(data_root: str, name: str = "VOT2018", num_videos: int = 4, num_frames: int = 40,
                      frame_size: tuple[int, int] = FRAME_SIZE, seed: int = 0, num_workers: int = 0,
                      progress: bool = False) -> str:
    """A VOT2018-style benchmark of single-target videos.

    Writes ``<data_root>/<name>/<video>/color/00000001.jpg ...``, ``groundtruth.txt`` (rotated boxes, 8 values per
    line), one ``<attribute>.tag`` per VOT attribute, ``<data_root>/<name>/list.txt`` and the pysot json
    ``<data_root>/<name>.json`` (img_names relative to ``<data_root>/<name>/``, e.g. "vot0000/color/00000001.jpg").

    Returns:
        the dataset folder ``<data_root>/<name>``.
    """
    dataset_dir = os.path.join(data_root, name)
    tasks = [_VotTask(dataset_dir, f"vot{i:04d}", (seed, 0x766F74, i), num_frames, tuple(frame_size))
             for i in range(num_videos)]
    parallel_map(_write_vot_video, tasks, num_workers, desc=f"render {name}", progress=progress)
    atomic_write_text(os.path.join(dataset_dir, "list.txt"), "\n".join(t.video for t in tasks) + "\n")
    write_json(os.path.join(data_root, f"{name}.json"), create_vot_json(dataset_dir), indent=None)
    return dataset_dir
