"""COCO preparation: crop 511 patches (+ masks) of every annotated object, write the per-subset json.

Ports `data/coco/par_crop.py` and `gen_json.py` of the original. Raw layout::

    <data_dir>/annotations/instances_<subset>.json   (train2017, val2017)
    <data_dir>/<subset>/<file_name>

Outputs ``<data_dir>/crop511/<subset>/<image stem>/000000.<ann:02d>.x.jpg`` (+ ``.m.png``, threshold 0.5) and
``<data_dir>/<subset>.json`` = ``{"<subset>/<image stem>": {"<ann:02d>": {"000000": [x, y, x+w-1, y+h-1]}}}``.
As the original: the track id is the annotation's index in the image (crowd annotations included), boxes with
w <= 0 or h <= 0 are skipped, the crop uses the centre of [x, y, x+w-1, y+h-1] and size (w, h). Changes: masks come
from pycocotools' mask functions in the workers (no module-global COCO object), images without a valid box are
left out of the json (the original wrote an empty entry), finished crops are skipped on a rerun.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ..crop import crop_like_siamfc, crop_mask_like_siamfc, mean_color
from ..errors import DataError
from .common import MASK_PNG_PARAMS, atomic_imwrite, parallel_map, read_image_checked, require_file, write_json

SUBSETS = ("val2017", "train2017")
MASK_THRESHOLD = 0.5


def load_coco(data_dir: str, subset: str) -> Any:
    """pycocotools COCO object of `<data_dir>/annotations/instances_<subset>.json` (DataError when missing)."""
    from pycocotools.coco import COCO

    path = require_file(os.path.join(data_dir, "annotations", f"instances_{subset}.json"),
                        f"COCO annotation file for {subset}")
    try:
        return COCO(path)
    except (ValueError, KeyError, TypeError, AssertionError) as e:
        raise DataError(f"{path}: malformed COCO annotation file ({type(e).__name__}: {e})") from None


def ann_to_mask(ann: dict[str, Any], height: int, width: int) -> np.ndarray:
    """Binary (H, W) uint8 mask of a COCO annotation (polygons, RLE or uncompressed RLE)."""
    from pycocotools import mask as mask_utils

    segm = ann["segmentation"]
    if isinstance(segm, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(segm, height, width))
    elif isinstance(segm.get("counts"), list):
        rle = mask_utils.frPyObjects(segm, height, width)
    else:
        rle = segm
    with warnings.catch_warnings():  # pycocotools' own numpy-2 DeprecationWarning (copy keyword), harmless
        warnings.simplefilter("ignore", DeprecationWarning)
        return mask_utils.decode(rle)


def _valid_box(ann: dict[str, Any]) -> list[float] | None:
    """[x1, y1, x2, y2] = [x, y, x+w-1, y+h-1] of an annotation, or None when w or h <= 0."""
    x, y, w, h = ann["bbox"]
    if w <= 0 or h <= 0:
        return None
    return [x, y, x + w - 1, y + h - 1]


@dataclass(frozen=True)
class _CropTask:
    image_path: str
    out_dir: str
    height: int
    width: int
    anns: tuple[dict[str, Any], ...]
    instance_size: int
    enable_mask: bool


def _crop_image(task: _CropTask) -> int:
    targets = []
    for track, ann in enumerate(task.anns):
        box = _valid_box(ann)
        if box is None:
            continue
        x_path = os.path.join(task.out_dir, f"{0:06d}.{track:02d}.x.jpg")
        m_path = os.path.join(task.out_dir, f"{0:06d}.{track:02d}.m.png")
        targets.append((ann, box, x_path, m_path))
    targets = [t for t in targets if not os.path.exists(t[2]) or (task.enable_mask and not os.path.exists(t[3]))]
    if not targets:
        return 0
    os.makedirs(task.out_dir, exist_ok=True)
    image = read_image_checked(task.image_path)
    avg = mean_color(image)
    written = 0
    for ann, (x1, y1, x2, y2), x_path, m_path in targets:
        center, size = ((x1 + x2) / 2, (y1 + y2) / 2), (x2 - x1 + 1, y2 - y1 + 1)
        if not os.path.exists(x_path):
            atomic_imwrite(x_path, crop_like_siamfc(image, center, size, task.instance_size, border=avg))
            written += 1
        if task.enable_mask and not os.path.exists(m_path):
            mask = ann_to_mask(ann, task.height, task.width)
            atomic_imwrite(m_path, crop_mask_like_siamfc(mask, center, size, MASK_THRESHOLD, task.instance_size),
                           MASK_PNG_PARAMS)
            written += 1
    return written


def crop_coco(data_dir: str, subsets: Sequence[str] = SUBSETS, instance_size: int = 511, enable_mask: bool = True,
              num_workers: int = 0, progress: bool = True) -> str:
    """Crop every annotated object of every image of `subsets`. Returns the crop folder."""
    crop_root = os.path.join(data_dir, f"crop{instance_size}")
    for subset in subsets:
        coco = load_coco(data_dir, subset)
        tasks = []
        for img_id in coco.imgs:
            img = coco.imgs[img_id]
            anns = tuple(coco.loadAnns(coco.getAnnIds(imgIds=img_id, iscrowd=None)))
            stem = os.path.splitext(os.path.basename(img["file_name"]))[0]
            tasks.append(_CropTask(os.path.join(data_dir, subset, img["file_name"]),
                                   os.path.join(crop_root, subset, stem), int(img["height"]), int(img["width"]),
                                   anns, instance_size, enable_mask))
        written = parallel_map(_crop_image, tasks, num_workers, desc=f"crop coco {subset}", progress=progress)
        print(f"coco {subset}: {sum(written)} files written")
    return crop_root


def gen_json_coco(data_dir: str, subsets: Sequence[str] = SUBSETS) -> list[str]:
    """`<data_dir>/<subset>.json` for each subset. Returns their paths."""
    paths = []
    for subset in subsets:
        coco = load_coco(data_dir, subset)
        dataset: dict[str, dict[str, dict[str, list[float]]]] = {}
        for img_id in coco.imgs:
            img = coco.imgs[img_id]
            stem = os.path.splitext(os.path.basename(img["file_name"]))[0]
            tracks = {}
            for track, ann in enumerate(coco.loadAnns(coco.getAnnIds(imgIds=img_id, iscrowd=None))):
                box = _valid_box(ann)
                if box is not None:
                    tracks[f"{track:02d}"] = {"000000": box}
            if tracks:
                dataset[f"{subset}/{stem}"] = tracks
        path = os.path.join(data_dir, f"{subset}.json")
        write_json(path, dataset)
        print(f"coco {subset}: {len(dataset)} images -> {path}")
        paths.append(path)
    return paths
