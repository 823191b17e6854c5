"""ImageNet VID preparation: parse the XML annotations, crop 511 patches of every track, write train/val json.

Ports `data/vid/parse_vid.py`, `par_crop.py` and `gen_json.py` of the original. Raw layout (ILSVRC2015 VID, with
the val snippets moved into the train folders as the original's readme says)::

    <data_dir>/ILSVRC2015/Annotations/VID/train/<subset>/<snippet>/<frame>.xml   subsets: ILSVRC2015_VID_train_000x, val
    <data_dir>/ILSVRC2015/Data/VID/train/<subset>/<snippet>/<frame>.JPEG

Outputs ``<data_dir>/vid.json`` (parsed annotations),
``<data_dir>/crop511/<subset>/<snippet>/<frame:06d>.<trackid:02d>.x.jpg`` and ``<data_dir>/train.json`` /
``val.json`` = ``{"<subset>/<snippet>": {"<trackid:02d>": {"<frame>": [x1, y1, x2, y2]}}}``.

As the original, a track keeps only frames in contiguous runs of at least two frames. Changes: when a track id has
several runs the original kept whichever came last (the json key is the track id, so runs overwrote each other);
here the longest run is kept (the first of equal ones), documented rather than accidental; the box of a frame is
the first object with the track id (the original kept the last: `continue` instead of `break`, reference.md
G.1.19); subsets are the folders found; finished crops are skipped on a rerun.
"""
from __future__ import annotations

import glob
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..crop import crop_like_siamfc, mean_color
from ..errors import DataError
from .common import atomic_imwrite, parallel_map, read_image_checked, read_json, require_dir, write_json

ANNO_SUBDIR = os.path.join("ILSVRC2015", "Annotations", "VID", "train")
DATA_SUBDIR = os.path.join("ILSVRC2015", "Data", "VID", "train")


def parse_frame_xml(path: str) -> dict[str, Any]:
    """One VID frame: {frame_sz [w, h], img_path '<frame>.JPEG', objs [{c, bbox, trackid, occ}]}."""
    try:
        root = ET.parse(path).getroot()
    except FileNotFoundError:
        raise DataError(f"{path}: annotation XML not found") from None
    except ET.ParseError as e:
        raise DataError(f"{path}: malformed XML ({e})") from None
    try:
        size = root.find("size")
        frame_sz = [int(size.find("width").text), int(size.find("height").text)]  # type: ignore[union-attr]
        objs = []
        for obj in root.findall("object"):
            box = obj.find("bndbox")
            occluded = obj.find("occluded")
            objs.append({
                "c": obj.find("name").text,  # type: ignore[union-attr]
                "bbox": [int(box.find(k).text) for k in ("xmin", "ymin", "xmax", "ymax")],  # type: ignore[union-attr]
                "trackid": int(obj.find("trackid").text),  # type: ignore[union-attr]
                "occ": int(occluded.text) if occluded is not None else 0,  # type: ignore[arg-type]
            })
    except (AttributeError, TypeError, ValueError):
        raise DataError(f"{path}: missing or non-numeric size/bndbox/trackid element") from None
    stem = os.path.splitext(os.path.basename(path))[0]
    return {"frame_sz": frame_sz, "img_path": stem + ".JPEG", "objs": objs}


def list_vid_snippets(data_dir: str) -> list[tuple[str, str]]:
    """(subset, snippet) of every VID snippet folder, sorted."""
    base = require_dir(os.path.join(data_dir, ANNO_SUBDIR), "ImageNet VID annotation folder")
    out = []
    for subset in sorted(d for d in os.listdir(base) if os.path.isdir(os.path.join(base, d))):
        folder = os.path.join(base, subset)
        out.extend((subset, v) for v in sorted(os.listdir(folder)) if os.path.isdir(os.path.join(folder, v)))
    if not out:
        raise DataError(f"{base}: no VID snippet folder found")
    return out


@dataclass(frozen=True)
class _SnippetTask:
    data_dir: str
    subset: str
    snippet: str


def _parse_snippet(task: _SnippetTask) -> dict[str, Any]:
    folder = os.path.join(task.data_dir, ANNO_SUBDIR, task.subset, task.snippet)
    xmls = sorted(glob.glob(os.path.join(folder, "*.xml")))
    return {"base_path": f"{task.subset}/{task.snippet}", "frame": [parse_frame_xml(x) for x in xmls]}


def parse_vid(data_dir: str, num_workers: int = 0, progress: bool = True) -> str:
    """Step 1: every frame's objects -> `<data_dir>/vid.json` (a list per subset of snippets). Returns its path."""
    snippets = list_vid_snippets(data_dir)
    tasks = [_SnippetTask(data_dir, s, v) for s, v in snippets]
    parsed = parallel_map(_parse_snippet, tasks, num_workers, desc="parse vid", progress=progress)
    subsets: dict[str, list[dict[str, Any]]] = {}
    for (subset, _), video in zip(snippets, parsed):
        subsets.setdefault(subset, []).append(video)
    path = os.path.join(data_dir, "vid.json")
    write_json(path, [subsets[s] for s in sorted(subsets)], indent=None)
    print(f"vid: {len(parsed)} snippets parsed -> {path}")
    return path


@dataclass(frozen=True)
class _CropTask:
    data_dir: str
    video: dict[str, Any]
    crop_root: str
    instance_size: int


def _crop_snippet(task: _CropTask) -> int:
    base = task.video["base_path"]
    out_dir = os.path.join(task.crop_root, base)
    written = 0
    for frame in task.video["frame"]:
        number = int(os.path.splitext(frame["img_path"])[0])
        targets = [(obj, os.path.join(out_dir, f"{number:06d}.{obj['trackid']:02d}.x.jpg")) for obj in frame["objs"]]
        targets = [(obj, path) for obj, path in targets if not os.path.exists(path)]
        if not targets:
            continue
        os.makedirs(out_dir, exist_ok=True)
        image = read_image_checked(os.path.join(task.data_dir, DATA_SUBDIR, base, frame["img_path"]))
        avg = mean_color(image)
        for obj, path in targets:
            x1, y1, x2, y2 = obj["bbox"]
            crop = crop_like_siamfc(image, ((x1 + x2) / 2, (y1 + y2) / 2), (x2 - x1, y2 - y1), task.instance_size,
                                    border=avg)
            atomic_imwrite(path, crop)
            written += 1
    return written


def crop_vid(data_dir: str, instance_size: int = 511, num_workers: int = 0, progress: bool = True) -> str:
    """Step 2: crop every object of every frame listed in vid.json. Returns the crop folder."""
    vid = read_json(os.path.join(data_dir, "vid.json"), "vid.json (run the parse step)")
    crop_root = os.path.join(data_dir, f"crop{instance_size}")
    tasks = [_CropTask(data_dir, video, crop_root, instance_size) for subset in vid for video in subset]
    written = parallel_map(_crop_snippet, tasks, num_workers, desc="crop vid", progress=progress)
    print(f"vid: {sum(written)} crops written to {crop_root}")
    return crop_root


def longest_run(frame_ids: list[int]) -> list[int]:
    """The longest run of consecutive integers in sorted `frame_ids` with at least 2 entries (first of equals),
    or [] when every run is a single frame."""
    ids = np.asarray(sorted(frame_ids))
    runs = np.split(ids, np.flatnonzero(np.diff(ids) > 1) + 1) if len(ids) else []
    runs = [r for r in runs if len(r) > 1]
    if not runs:
        return []
    return [int(i) for i in max(runs, key=len)]


def snippet_tracks(video: dict[str, Any]) -> dict[str, dict[str, list[int]]]:
    """{trackid:02d: {frame stem: box}} of one parsed snippet (see module docstring for the run rule)."""
    frames = video["frame"]
    appearances: dict[int, list[int]] = {}
    for f, frame in enumerate(frames):
        for obj in frame["objs"]:
            ids = appearances.setdefault(obj["trackid"], [])
            if not ids or ids[-1] != f:
                ids.append(f)
    tracks = {}
    for trackid in sorted(appearances):
        run = longest_run(appearances[trackid])
        if not run:
            continue
        snippet = {}
        for f in run:
            obj = next(o for o in frames[f]["objs"] if o["trackid"] == trackid)
            snippet[os.path.splitext(frames[f]["img_path"])[0]] = obj["bbox"]
        tracks[f"{trackid:02d}"] = snippet
    return tracks


def gen_json_vid(data_dir: str) -> tuple[str, str]:
    """Step 3: `<data_dir>/train.json` (train subsets) and `val.json` (the val subset). Returns their paths."""
    vid = read_json(os.path.join(data_dir, "vid.json"), "vid.json (run the parse step)")
    snippets = {}
    for subset in vid:
        for video in subset:
            tracks = snippet_tracks(video)
            if tracks:
                snippets[video["base_path"]] = tracks
    train = {k: v for k, v in snippets.items() if "train" in k}
    val = {k: v for k, v in snippets.items() if "val" in k}
    train_path, val_path = os.path.join(data_dir, "train.json"), os.path.join(data_dir, "val.json")
    write_json(train_path, train)
    write_json(val_path, val)
    print(f"vid: {len(train)} train / {len(val)} val snippets -> {train_path}, {val_path}")
    return train_path, val_path
