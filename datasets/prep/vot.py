"""pysot-style VOT metadata json from sequence folders.

Ports `data/create_json.py` of the original (run there as ``python create_json.py VOT2018`` through `fire`). Layout::

    <dataset_dir>/list.txt                        one sequence name per line
    <dataset_dir>/<video>/groundtruth.txt         per frame: x,y,w,h or x1,y1,...,x4,y4 (commas or whitespace)
    <dataset_dir>/<video>/color/*.jpg  or  <video>/*.jpg
    <dataset_dir>/<video>/<tag>.tag (VOT2017+) or <tag>.label (VOT2016), one 0/1 per frame, possibly short

Result ``{video: {video_dir, init_rect, img_names, gt_rect, width, height, camera_motion, illum_change,
motion_change, size_change, occlusion}}`` with `img_names` relative to the dataset folder
(``<video>/color/00000001.jpg``). Tag lists are padded with 0 to the number of groundtruth lines. Changes: the tags
are written for every dataset (the original only for names VOT2016/2018/2019) and a missing tag file gives all
zeros (the original gave an empty list).
"""
from __future__ import annotations

import glob
import os
import re
from typing import Any

import cv2

from ...evaluation.vot import VOT_ATTRIBUTES
from ..errors import DataError
from .common import require_dir, require_file

VOT_TAGS = VOT_ATTRIBUTES  # the per-frame tag files, declared in evaluation.vot


def _read_numbers(path: str) -> list[list[float]]:
    rows = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rows.append([float(v) for v in re.split(r"[,\s]+", line)])
            except ValueError:
                raise DataError(f"{path}: line {lineno} is not a list of numbers") from None
    return rows


def _read_tag(folder: str, tag: str, length: int) -> list[int]:
    for ext in (".tag", ".label"):
        path = os.path.join(folder, tag + ext)
        if os.path.isfile(path):
            values = [int(float(v[0])) for v in _read_numbers(path)]
            return (values + [0] * length)[:length]
    return [0] * length


def create_vot_json(dataset_dir: str) -> dict[str, dict[str, Any]]:
    """Metadata of every sequence listed in `<dataset_dir>/list.txt` (see module docstring).

    Raises:
        DataError: list.txt, a sequence folder, its groundtruth or its images are missing.
    """
    list_path = require_file(os.path.join(dataset_dir, "list.txt"), "sequence list")
    with open(list_path, encoding="utf-8") as f:
        videos = [line.strip() for line in f if line.strip()]
    meta: dict[str, dict[str, Any]] = {}
    for video in videos:
        folder = require_dir(os.path.join(dataset_dir, video), f"sequence '{video}' listed in {list_path}")
        gt = _read_numbers(require_file(os.path.join(folder, "groundtruth.txt"), "groundtruth"))
        if not gt:
            raise DataError(f"{os.path.join(folder, 'groundtruth.txt')}: empty groundtruth")
        images = sorted(glob.glob(os.path.join(folder, "color", "*.jpg"))) or sorted(
            glob.glob(os.path.join(folder, "*.jpg")))
        if not images:
            raise DataError(f"{folder}: no .jpg frames (looked in color/ and the folder itself)")
        first = cv2.imread(images[0])
        if first is None:
            raise DataError(f"{images[0]}: cannot decode image")
        entry: dict[str, Any] = {
            "video_dir": video,
            "init_rect": gt[0],
            "img_names": [os.path.relpath(p, dataset_dir).replace(os.sep, "/") for p in images],
            "gt_rect": gt,
            "width": int(first.shape[1]),
            "height": int(first.shape[0]),
        }
        for tag in VOT_TAGS:
            entry[tag] = _read_tag(folder, tag, len(gt))
        meta[video] = entry
    return meta
