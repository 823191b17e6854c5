"""YouTube-VOS preparation: parse the instance masks, crop 511 patches + masks, write the training json.

Ports `data/ytb_vos/parse_ytb_vos.py`, `par_crop.py` and `gen_json.py` of the original. Raw layout (the official
train split)::

    <data_dir>/train/meta.json                       {"videos": {video: {"objects": {id: {"frames": [...]}}}}}
    <data_dir>/train/JPEGImages/<video>/<frame>.jpg
    <data_dir>/train/Annotations/<video>/<frame>.png  palette PNG, pixel value = instance id

Outputs::

    <data_dir>/instances_train.json, instances_val.json  per video, per instance: per-frame area / bbox (x, y, w, h)
    <data_dir>/crop511/train/<video>/<frame:06d>.<track:02d>.x.jpg and .m.png (mask threshold 0.2)
    <data_dir>/train.json                                {"train/<video>": {track: {frame: [x1, y1, x2, y2]}}}

As the original: an instance counts in a frame when it has more than 1000 pixels and an external contour of more
than two points; its box is the contour's (x, y, w + 1, h + 1); track ids enumerate the kept instances of a video;
the first 3000 videos form the train split. Changes: videos are taken in sorted order (not meta.json order) and
instances in increasing id order; a palette PNG is read as palette indices (the original read it with OpenCV as
grey levels, which only worked because it used the same reader everywhere); each frame is read once for all its
objects; finished crops are skipped on a rerun.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from ..crop import crop_like_siamfc, crop_mask_like_siamfc, mean_color
from ..errors import DataError
from .common import (
    MASK_PNG_PARAMS,
    all_exist,
    atomic_imwrite,
    parallel_map,
    read_image_checked,
    read_json,
    require_dir,
    write_json,
)

MIN_PIXELS = 1000  # the original's minimum instance area
MASK_THRESHOLD = 0.2  # YouTube-VOS mask crops are binarised at 0.2 (COCO: 0.5)
TRAIN_VIDEOS = 3000  # the original's split: the first 3000 videos train, the rest val


def read_label_png(path: str) -> np.ndarray:
    """Instance-id map of an annotation PNG: palette indices for a palette PNG, else the grey level.

    Raises:
        DataError: missing or undecodable file.
    """
    from PIL import Image, UnidentifiedImageError

    if not os.path.isfile(path):
        raise DataError(f"{path}: annotation PNG not found")
    try:
        with Image.open(path) as im:
            if im.mode in ("P", "L", "I", "I;16", "1"):
                return np.asarray(im).astype(np.int32)
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise DataError(f"{path}: cannot decode annotation PNG ({e})") from None
    return read_image_checked(path, cv2.IMREAD_GRAYSCALE).astype(np.int32)


def instance_boxes(label: np.ndarray, min_pixels: int = MIN_PIXELS) -> dict[int, dict[str, Any]]:
    """Kept instances of one label map: id -> {area, bbox [x, y, w, h] with the original's +1}."""
    out: dict[int, dict[str, Any]] = {}
    for instance in np.unique(label):
        if instance == 0:
            continue
        mask = (label == instance).astype(np.uint8)
        area = int(mask.sum())
        contours = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)[-2]
        polygons = [c.reshape(-1, 2) for c in contours if c.size > 4]
        if not polygons or area <= min_pixels:
            continue
        points = np.concatenate(polygons)
        x0, y0 = points.min(axis=0)
        x1, y1 = points.max(axis=0)
        out[int(instance)] = {"area": area, "bbox": [float(x0), float(y0), float(x1 - x0 + 1), float(y1 - y0 + 1)]}
    return out


@dataclass(frozen=True)
class _ParseTask:
    ann_dir: str
    video: str
    frames: tuple[str, ...]
    min_pixels: int


def _parse_video(task: _ParseTask) -> dict[str, list[dict[str, Any]]]:
    per_instance: dict[int, list[dict[str, Any]]] = {}
    for frame in task.frames:
        file_name = f"{task.video}/{frame}"
        label = read_label_png(os.path.join(task.ann_dir, file_name + ".png"))
        h, w = label.shape[:2]
        for instance, info in instance_boxes(label, task.min_pixels).items():
            per_instance.setdefault(instance, []).append(
                {"h": h, "w": w, "file_name": file_name, "id": instance, "area": info["area"], "bbox": info["bbox"]})
    return {str(i): per_instance[i] for i in sorted(per_instance)}


def parse_ytb_vos(data_dir: str, num_train: int = TRAIN_VIDEOS, min_pixels: int = MIN_PIXELS, num_workers: int = 0,
                  progress: bool = True) -> tuple[str, str]:
    """Step 1: instance boxes of every annotated frame -> instances_train.json and instances_val.json.

    Returns:
        the two json paths.
    """
    train_dir = require_dir(os.path.join(data_dir, "train"), "YouTube-VOS train folder")
    ann_dir = require_dir(os.path.join(train_dir, "Annotations"), "YouTube-VOS Annotations folder")
    meta_path = os.path.join(train_dir, "meta.json")
    meta = read_json(meta_path, "YouTube-VOS meta.json")
    if not isinstance(meta, dict) or not isinstance(meta.get("videos"), dict):
        raise DataError(f"{meta_path}: missing the 'videos' object")
    tasks = []
    for video in sorted(meta["videos"]):
        objects = meta["videos"][video].get("objects") if isinstance(meta["videos"][video], dict) else None
        if not isinstance(objects, dict):
            raise DataError(f"{meta_path}: video '{video}' has no 'objects' object")
        frames: set[str] = set()
        for obj_id, obj in objects.items():
            if not isinstance(obj, dict) or not isinstance(obj.get("frames"), list):
                raise DataError(f"{meta_path}: video '{video}' object '{obj_id}' has no 'frames' list")
            frames.update(str(f) for f in obj["frames"])
        tasks.append(_ParseTask(ann_dir, video, tuple(sorted(frames)), min_pixels))
    results = parallel_map(_parse_video, tasks, num_workers, desc="parse ytb_vos", progress=progress)
    videos = {t.video: r for t, r in zip(tasks, results)}
    items = list(videos.items())
    train_path = os.path.join(data_dir, "instances_train.json")
    val_path = os.path.join(data_dir, "instances_val.json")
    write_json(train_path, dict(items[:num_train]), indent=None)
    write_json(val_path, dict(items[num_train:]), indent=None)
    n_obj = sum(len(v) for v in videos.values())
    n_ann = sum(len(a) for v in videos.values() for a in v.values())
    print(f"ytb_vos: {len(videos)} videos, {n_obj} objects, {n_ann} annotations "
          f"({min(num_train, len(items))} train / {max(len(items) - num_train, 0)} val)")
    return train_path, val_path


def _corners(bbox_xywh: list[float]) -> list[float]:
    """The original's gen_json / par_crop conversion: x2 = x + w, y2 = y + h (w already carries the +1)."""
    x, y, w, h = bbox_xywh
    return [x, y, x + w, y + h]


@dataclass(frozen=True)
class _CropTask:
    img_dir: str
    ann_dir: str
    crop_dir: str
    video: str
    objects: tuple[tuple[int, int, tuple[tuple[str, tuple[float, ...]], ...]], ...]  # (track, id, ((file, bbox),))
    instance_size: int


def _crop_video(task: _CropTask) -> int:
    by_frame: dict[str, list[tuple[int, int, tuple[float, ...]]]] = {}
    for track, instance, frames in task.objects:
        for file_name, bbox in frames:
            by_frame.setdefault(file_name, []).append((track, instance, bbox))
    out_dir = os.path.join(task.crop_dir, task.video)
    os.makedirs(out_dir, exist_ok=True)
    written = 0
    for file_name, objs in by_frame.items():
        frame = int(file_name.split("/")[-1])
        targets = [(os.path.join(out_dir, f"{frame:06d}.{track:02d}.x.jpg"),
                    os.path.join(out_dir, f"{frame:06d}.{track:02d}.m.png"), instance, bbox)
                   for track, instance, bbox in objs]
        targets = [t for t in targets if not all_exist(t[:2])]
        if not targets:
            continue
        image = read_image_checked(os.path.join(task.img_dir, file_name + ".jpg"))
        label = read_label_png(os.path.join(task.ann_dir, file_name + ".png"))
        avg = mean_color(image)
        for x_path, m_path, instance, bbox in targets:
            x1, y1, x2, y2 = _corners(list(bbox))
            center, size = ((x1 + x2) / 2, (y1 + y2) / 2), (x2 - x1, y2 - y1)
            if not os.path.exists(x_path):
                atomic_imwrite(x_path, crop_like_siamfc(image, center, size, task.instance_size, border=avg))
                written += 1
            if not os.path.exists(m_path):
                atomic_imwrite(m_path, crop_mask_like_siamfc(label == instance, center, size, MASK_THRESHOLD,
                                                             task.instance_size), MASK_PNG_PARAMS)
                written += 1
    return written


def crop_ytb_vos(data_dir: str, instance_size: int = 511, num_workers: int = 0, progress: bool = True) -> str:
    """Step 2: crop every object of every frame of instances_train.json. Returns the crop folder."""
    instances = read_json(os.path.join(data_dir, "instances_train.json"), "instances_train.json (run the parse step)")
    img_dir = require_dir(os.path.join(data_dir, "train", "JPEGImages"), "YouTube-VOS JPEGImages folder")
    ann_dir = require_dir(os.path.join(data_dir, "train", "Annotations"), "YouTube-VOS Annotations folder")
    crop_dir = os.path.join(data_dir, f"crop{instance_size}", "train")
    tasks = []
    for video, objects in instances.items():
        objs = tuple((track, int(obj_id), tuple((a["file_name"], tuple(a["bbox"])) for a in anns))
                     for track, (obj_id, anns) in enumerate(objects.items()))
        tasks.append(_CropTask(img_dir, ann_dir, crop_dir, video, objs, instance_size))
    written = parallel_map(_crop_video, tasks, num_workers, desc="crop ytb_vos", progress=progress)
    print(f"ytb_vos: {sum(written)} files written to {crop_dir}")
    return crop_dir


def gen_json_ytb_vos(data_dir: str) -> str:
    """Step 3: train.json ({"train/<video>": {"NN": {"FFFFFF": [x1, y1, x2, y2]}}}). Returns its path."""
    instances = read_json(os.path.join(data_dir, "instances_train.json"), "instances_train.json (run the parse step)")
    snippets: dict[str, dict[str, dict[str, list[float]]]] = {}
    for video, objects in instances.items():
        tracks = {}
        for track, anns in enumerate(objects.values()):
            tracks[f"{track:02d}"] = {f"{int(a['file_name'].split('/')[-1]):06d}": _corners(a["bbox"]) for a in anns}
        snippets[f"train/{video}"] = tracks
    path = os.path.join(data_dir, "train.json")
    write_json(path, snippets)
    print(f"ytb_vos: {len(snippets)} videos -> {path}")
    return path
