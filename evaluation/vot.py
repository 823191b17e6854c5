"""VOT dataset metadata: the json written by ``data/create_json.py`` / shipped as ``VOT2016.json``, ``VOT2018.json``.

Ports ``VOTDataset`` / ``VOTVideo`` of SiamMask's ``utils/pysot/datasets/vot.py`` (pysot-toolkit). The json maps each
video name to ``video_dir``, ``init_rect``, ``img_names`` (relative to ``<data_root>/<name>/``), ``gt_rect``
(8-value polygons or 4-value ``x, y, w, h`` rectangles), ``width``, ``height`` and the per-frame 0/1 attribute lists
``camera_motion``, ``illum_change``, ``motion_change``, ``size_change``, ``occlusion``.

Differences from pysot: the json is looked up as ``<data_root>/<name>.json`` (the original's layout) and then
``<data_root>/<name>/<name>.json`` (pysot's); a missing or malformed json raises ``BenchmarkError`` with one line saying
where it looked and how to get one (the original printed wget hints and called ``exit()``). Attribute lists shorter
than the sequence (or empty) are padded with 0. The ``empty`` tag marks the frames where none of the five
attributes is set; pysot computes it with ``np.all(..., axis=1)`` over the tag lists (one flag per *tag*, not per
frame, and ``select_tag`` then ignores the frame range), which is not what the VOT toolkit's "empty" means.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import BenchmarkError

__all__ = ["VOT_ATTRIBUTES", "VOT_DATASETS", "VOT_TAGS", "VOTVideo", "VOTDataset", "find_dataset_json",
           "load_vot_dataset"]

#: The VOT datasets the tools accept (EAO intervals in eao.EAO_INTERVALS; the original knew only these three).
VOT_DATASETS = ("VOT2016", "VOT2018", "VOT2019")
#: Per-frame attribute tags of a VOT sequence (``<tag>.tag`` / ``<tag>.label`` files, keys of the dataset json).
VOT_ATTRIBUTES = ("camera_motion", "illum_change", "motion_change", "size_change", "occlusion")
VOT_TAGS = ("all",) + VOT_ATTRIBUTES + ("empty",)
_REQUIRED_KEYS = ("img_names", "gt_rect", "width", "height")


@dataclass(frozen=True)
class VOTVideo:
    """One VOT sequence.

    Attributes:
        name: video name (the json key).
        img_paths: absolute image paths, one per frame.
        gt: float64 ground truth ``(N, 8)`` polygons or ``(N, 4)`` ``x, y, w, h`` rectangles.
        width: image width in pixels.
        height: image height in pixels.
        tags: tag name -> int ``(N,)`` 0/1 array; ``all``, the five VOT attributes and ``empty``.
        init_rect: the json's ``init_rect`` (empty when absent).
    """

    name: str
    img_paths: list[str]
    gt: np.ndarray
    width: int
    height: int
    tags: dict[str, np.ndarray]
    init_rect: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.gt)

    def gt_traj(self) -> list[list[float]]:
        """The ground truth as a list of regions (the form ``vot_overlap_traj`` and pysot use)."""
        return self.gt.tolist()


@dataclass(frozen=True)
class VOTDataset:
    """A VOT dataset: videos in json order.

    Attributes:
        name: ``VOT2016``, ``VOT2018``, ...
        json_path: the metadata file read.
        root: the sequence folder ``<data_root>/<name>`` the image names are relative to.
        videos: video name -> ``VOTVideo``.
    """

    name: str
    json_path: Path
    root: Path
    videos: dict[str, VOTVideo]

    def __len__(self) -> int:
        return len(self.videos)

    def __iter__(self) -> Iterator[VOTVideo]:
        return iter(self.videos.values())

    def __getitem__(self, name: str) -> VOTVideo:
        return self.videos[name]

    @property
    def tag_names(self) -> tuple[str, ...]:
        """The tags every video carries."""
        return VOT_TAGS


def find_dataset_json(name: str, data_root: str | Path) -> Path:
    """The metadata json of dataset ``name``: ``<data_root>/<name>.json`` or ``<data_root>/<name>/<name>.json``.

    Raises:
        BenchmarkError: neither exists (the message says where it looked and how to get one).
    """
    root = Path(data_root)
    candidates = [root / f"{name}.json", root / name / f"{name}.json"]
    for path in candidates:
        if path.is_file():
            return path
    hint = ("get it with `bash data/get_VOT2018_data.sh`" if name == "VOT2018" else
            f"download {name} and its json into {root}/")
    raise BenchmarkError(
        f"no metadata json for {name}: looked for {candidates[0]} and {candidates[1]}; {hint}, build one from "
        f"sequence folders with `python data/create_json.py {name}`, or generate the built-in synthetic set with "
        "`python tools/make_synthetic_data.py` (and pass its --data-root)")


def _tag(values: object, count: int, where: str) -> np.ndarray:
    """A per-frame 0/1 attribute list padded with 0 (or cut) to ``count`` frames."""
    if values is None:
        values = []
    if not isinstance(values, list):
        raise BenchmarkError(f"{where}: expected a list of per-frame 0/1 values")
    try:
        arr = np.asarray(values, dtype=np.float64).astype(np.int64)
    except (TypeError, ValueError) as exc:
        raise BenchmarkError(f"{where}: expected a list of per-frame 0/1 values ({exc})") from None
    if arr.ndim != 1:
        raise BenchmarkError(f"{where}: expected a flat list of per-frame 0/1 values")
    out = np.zeros(count, np.int64)
    n = min(count, len(arr))
    out[:n] = arr[:n]
    return out


def _ground_truth(rects: object, where: str) -> np.ndarray:
    """``gt_rect`` as an ``(N, 8)`` or ``(N, 4)`` float64 array (rectangles become polygons when both forms occur)."""
    if not isinstance(rects, list) or not rects:
        raise BenchmarkError(f"{where}: expected a non-empty list of regions")
    try:
        regions = [[float(v) for v in r] for r in rects]
    except (TypeError, ValueError) as exc:
        raise BenchmarkError(f"{where}: regions must be lists of numbers ({exc})") from None
    lengths = {len(r) for r in regions}
    if lengths == {4}:
        return np.asarray(regions, dtype=np.float64)
    if not lengths <= {4, 8}:
        raise BenchmarkError(f"{where}: regions must have 8 (polygon) or 4 (x, y, w, h) values, found lengths "
                           f"{sorted(lengths)}")
    polygons = [r if len(r) == 8 else [r[0], r[1], r[0] + r[2], r[1], r[0] + r[2], r[1] + r[3], r[0], r[1] + r[3]]
                for r in regions]
    return np.asarray(polygons, dtype=np.float64)


def load_vot_dataset(name: str, data_root: str | Path) -> VOTDataset:
    """Read the metadata of VOT dataset ``name`` under ``data_root`` (see the module docstring for the layout).

    Args:
        name: dataset name, e.g. ``VOT2018``.
        data_root: the data root (``data/`` by default in the tools).

    Returns:
        The dataset; images are not opened.

    Raises:
        BenchmarkError: missing json, invalid json, or a video lacking a key / with inconsistent lengths.
    """
    path = find_dataset_json(name, data_root)
    try:
        with open(path, encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BenchmarkError(f"{path}: cannot read the dataset json ({exc})") from None
    if not isinstance(meta, dict) or not meta:
        raise BenchmarkError(f"{path}: expected an object mapping video names to their metadata")
    seq_root = (Path(data_root) / name).resolve()
    videos: dict[str, VOTVideo] = {}
    for video, info in meta.items():
        where = f"{path}: video '{video}'"
        if not isinstance(info, dict):
            raise BenchmarkError(f"{where}: expected an object")
        missing = [k for k in _REQUIRED_KEYS if k not in info]
        if missing:
            raise BenchmarkError(f"{where} lacks key '{missing[0]}' (is this a pysot/SiamMask VOT json? rebuild it "
                                 f"with "
                               f"`python data/create_json.py {name}`)")
        gt = _ground_truth(info["gt_rect"], f"{where} gt_rect")
        count = len(gt)
        img_names = info["img_names"]
        if not isinstance(img_names, list) or len(img_names) != count:
            raise BenchmarkError(f"{where}: img_names has {len(img_names) if isinstance(img_names, list) else 'no'} "
                               f"entries but gt_rect has {count}")
        try:
            width, height = int(info["width"]), int(info["height"])
        except (TypeError, ValueError):
            raise BenchmarkError(f"{where}: width/height must be integers") from None
        tags = {"all": np.ones(count, np.int64)}
        for attr in VOT_ATTRIBUTES:
            tags[attr] = _tag(info.get(attr), count, f"{where} {attr}")
        tags["empty"] = (np.sum([tags[a] for a in VOT_ATTRIBUTES], axis=0) == 0).astype(np.int64)
        init_rect = info.get("init_rect") or []
        videos[video] = VOTVideo(
            name=video,
            img_paths=[str(seq_root / n) for n in img_names],
            gt=gt,
            width=width,
            height=height,
            tags=tags,
            init_rect=[float(v) for v in init_rect],
        )
    return VOTDataset(name=name, json_path=path, root=seq_root, videos=videos)
