"""ImageNet DET preparation: crop 511 patches of every object, write train.json (boxes only, no masks).

Ports `data/det/par_crop.py` and `gen_json.py` of the original. Raw layout (ILSVRC2015 DET train)::

    <data_dir>/ILSVRC2015/Annotations/DET/train/<subset>/[<synset>/]<image>.xml
    <data_dir>/ILSVRC2015/Data/DET/train/<subset>/[<synset>/]<image>.JPEG

Outputs ``<data_dir>/crop511/<subset>/<image>/000000.<object:02d>.x.jpg`` and ``<data_dir>/train.json`` =
``{"<subset>/<image>": {"<object:02d>": {"000000": [xmin, ymin, xmax, ymax]}}}``. As the original: the crop uses the
box centre and size (xmax - xmin, ymax - ymin); ILSVRC2013_train keeps its images one folder deeper. Changes: the
subsets are the folders found (the original hard-coded 19 names), the image path is derived by path components
(the original replaced the substring 'xml' anywhere in the path), finished crops are skipped on a rerun.
"""
from __future__ import annotations

import glob
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from ..crop import crop_like_siamfc, mean_color
from ..errors import DataError
from .common import atomic_imwrite, parallel_map, read_image_checked, require_dir, write_json

ANNO_SUBDIR = os.path.join("ILSVRC2015", "Annotations", "DET", "train")
DATA_SUBDIR = os.path.join("ILSVRC2015", "Data", "DET", "train")


def parse_xml_boxes(path: str) -> list[list[int]]:
    """[xmin, ymin, xmax, ymax] of every <object> of an ILSVRC annotation file.

    Raises:
        DataError: the file is missing, not XML, or an object lacks a numeric bndbox.
    """
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError:
        raise DataError(f"{path}: annotation XML not found") from None
    except ET.ParseError as e:
        raise DataError(f"{path}: malformed XML ({e})") from None
    boxes = []
    for obj in root.findall("object"):
        box = obj.find("bndbox")
        try:
            boxes.append([int(box.find(k).text) for k in ("xmin", "ymin", "xmax", "ymax")])  # type: ignore[union-attr]
        except (AttributeError, TypeError, ValueError):
            raise DataError(f"{path}: an <object> has no numeric bndbox xmin/ymin/xmax/ymax") from None
    return boxes


def list_det_xmls(data_dir: str) -> list[tuple[str, str]]:
    """(subset, xml path) of every DET train annotation, subsets and files sorted."""
    base = require_dir(os.path.join(data_dir, ANNO_SUBDIR), "ImageNet DET annotation folder")
    out = []
    for subset in sorted(d for d in os.listdir(base) if os.path.isdir(os.path.join(base, d))):
        folder = os.path.join(base, subset)
        xmls = sorted(glob.glob(os.path.join(folder, "*.xml")) + glob.glob(os.path.join(folder, "*", "*.xml")))
        out.extend((subset, x) for x in xmls)
    if not out:
        raise DataError(f"{base}: no DET annotation XML found")
    return out


def image_path_for(data_dir: str, xml_path: str) -> str:
    """The JPEG of an annotation XML: Annotations/... -> Data/..., .xml -> .JPEG."""
    rel = os.path.relpath(xml_path, os.path.join(data_dir, ANNO_SUBDIR))
    return os.path.join(data_dir, DATA_SUBDIR, os.path.splitext(rel)[0] + ".JPEG")


@dataclass(frozen=True)
class _CropTask:
    data_dir: str
    subset: str
    xml_path: str
    crop_root: str
    instance_size: int


def _crop_xml(task: _CropTask) -> int:
    stem = os.path.splitext(os.path.basename(task.xml_path))[0]
    out_dir = os.path.join(task.crop_root, task.subset, stem)
    boxes = parse_xml_boxes(task.xml_path)
    todo = [(box, os.path.join(out_dir, f"{0:06d}.{i:02d}.x.jpg")) for i, box in enumerate(boxes)]
    todo = [(box, path) for box, path in todo if not os.path.exists(path)]
    if not todo:
        return 0
    os.makedirs(out_dir, exist_ok=True)
    image = read_image_checked(image_path_for(task.data_dir, task.xml_path))
    avg = mean_color(image)
    for (x1, y1, x2, y2), path in todo:
        crop = crop_like_siamfc(image, ((x1 + x2) / 2, (y1 + y2) / 2), (x2 - x1, y2 - y1), task.instance_size,
                                border=avg)
        atomic_imwrite(path, crop)
    return len(todo)


def crop_det(data_dir: str, instance_size: int = 511, num_workers: int = 0, progress: bool = True) -> str:
    """Crop every object of every DET train image. Returns the crop folder."""
    crop_root = os.path.join(data_dir, f"crop{instance_size}")
    tasks = [_CropTask(data_dir, subset, xml, crop_root, instance_size) for subset, xml in list_det_xmls(data_dir)]
    written = parallel_map(_crop_xml, tasks, num_workers, desc="crop det", progress=progress)
    print(f"det: {sum(written)} crops written to {crop_root}")
    return crop_root


def gen_json_det(data_dir: str) -> str:
    """`<data_dir>/train.json`. Returns its path."""
    js: dict[str, dict[str, dict[str, list[int]]]] = {}
    for subset, xml in list_det_xmls(data_dir):
        boxes = parse_xml_boxes(xml)
        if boxes:
            video = f"{subset}/{os.path.splitext(os.path.basename(xml))[0]}"
            js[video] = {f"{i:02d}": {"000000": box} for i, box in enumerate(boxes)}
    path = os.path.join(data_dir, "train.json")
    write_json(path, js)
    print(f"det: {len(js)} images -> {path}")
    return path
