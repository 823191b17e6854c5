"""One-pass (OPE) benchmark datasets: pysot's json layouts and GOT-10k's official folders, and their result files.

Ports the loaders of pysot's ``toolkit/datasets`` (``otb.py``, ``uav.py``, ``lasot.py``, ``got10k.py``) and the result
layout of pysot's ``tools/test.py`` (OPE branch):

* pysot json (``OTB100``, ``UAV123``, ``LaSOT``, the built-in ``SyntheticOPE``): ``<data_root>/<name>.json`` or
  ``<data_root>/<name>/<name>.json`` maps each video to ``video_dir``, ``init_rect``, ``img_names`` (relative to
  ``<data_root>/<name>/``), ``gt_rect`` (``x, y, w, h`` per frame) and ``attr`` (attribute names); LaSOT's json also
  has ``absent`` (per frame; pysot's benchmark keeps the frames where it is 1). Results:
  ``<result_dir>/<dataset>/<tracker>/<video>.txt``; for OTB100 pysot's alternative names (``jogging_1.txt``,
  ``basketball.txt``, ...) are read when ``<video>.txt`` is missing, as its ``OTBVideo.load_tracker``;
* GOT-10k (``GOT-10k`` = the val split, ``GOT-10k-test``): ``<data_root>/GOT-10k/<split>/list.txt`` and
  ``<split>/<seq>/00000001.jpg ...`` with ``groundtruth.txt`` (every frame for val, the first frame only for test),
  as the got10k toolkit reads them. Results: ``<result_dir>/<dataset>/<tracker>/<video>/<video>_001.txt`` plus
  ``<video>_time.txt`` (the layout GOT-10k's server and ``ExperimentGOT10k`` use).

Differences from pysot: a missing json, a video without a key, ``img_names`` and ``gt_rect`` of different lengths,
or a missing / short / unparsable result file raise one-line ``BenchmarkError`` / ``ResultError`` naming the file
(pysot printed the path and failed later on a ragged array); result lines may be separated by commas (pysot's only
form), tabs or spaces; images are not opened to read the frame size (the metrics do not need it). LaSOT's
``monkey-17`` results are cut to the ground-truth length as pysot does; any other over-long result is an error.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from .errors import BenchmarkError, ResultError

__all__ = ["OPESpec", "OPE_DATASETS", "OPEVideo", "OPEDataset", "load_ope_dataset", "ope_result_file",
           "ope_time_file", "read_ope_boxes", "load_ope_result", "list_ope_trackers", "got10k_root"]


@dataclass(frozen=True)
class OPESpec:
    """How a named OPE dataset is laid out and evaluated.

    Attributes:
        layout: ``"pysot"`` (``<name>.json`` + frames) or ``"got10k"`` (``list.txt`` + sequence folders).
        split: GOT-10k split folder (``val`` / ``test``).
        absent: the json has pysot's LaSOT ``absent`` list; only frames where it is 1 are scored.
        otb_names: also look for pysot's alternative OTB result names.
        ground_truth: every frame has ground truth (False: GOT-10k test, first frame only; evaluated by its server).
    """

    layout: str
    split: str = ""
    absent: bool = False
    otb_names: bool = False
    ground_truth: bool = True


#: The OPE datasets tools/test.py and tools/eval.py accept.
OPE_DATASETS: dict[str, OPESpec] = {
    "OTB100": OPESpec("pysot", otb_names=True),
    "UAV123": OPESpec("pysot"),
    "LaSOT": OPESpec("pysot", absent=True),
    "GOT-10k": OPESpec("got10k", split="val"),
    "GOT-10k-test": OPESpec("got10k", split="test", ground_truth=False),
    "SyntheticOPE": OPESpec("pysot"),
}

# pysot's OTBVideo.load_tracker: result names some published OTB results use when <video>.txt is missing
_OTB_ALT_NAMES = {"FleetFace": "fleetface", "Jogging-1": "jogging_1", "Jogging-2": "jogging_2",
                  "Skating2-1": "skating2_1", "Skating2-2": "skating2_2", "FaceOcc1": "faceocc1",
                  "FaceOcc2": "faceocc2", "Human4-2": "human4_2"}
_SEPARATORS = re.compile(r"[,\s]+")
_LASOT_CUT = "monkey-17"  # pysot cuts this video's results to the ground-truth length


@dataclass(frozen=True)
class OPEVideo:
    """One OPE sequence.

    Attributes:
        name: video name.
        img_paths: absolute frame paths, in order.
        gt: float64 ``(N, 4)`` ``x, y, w, h`` ground truth (``(1, 4)`` for GOT-10k test: the first frame only).
        attrs: attribute names of the video (pysot's ``attr``).
        absent: LaSOT's per-frame ``absent`` list as int8 ``(N,)`` (1 = scored), None for other datasets.
    """

    name: str
    img_paths: list[str]
    gt: np.ndarray
    attrs: tuple[str, ...] = ()
    absent: Optional[np.ndarray] = None

    def __len__(self) -> int:
        return len(self.img_paths)

    @property
    def init_box(self) -> np.ndarray:
        """The first frame's ground truth (4,) ``x, y, w, h``: what the one-pass run starts from."""
        return self.gt[0]


@dataclass(frozen=True)
class OPEDataset:
    """An OPE dataset: videos in file order, and pysot's attribute index.

    Attributes:
        name: the dataset name (a key of :data:`OPE_DATASETS`).
        spec: its layout.
        source: the json or the ``list.txt`` read.
        videos: video name -> video.
    """

    name: str
    spec: OPESpec
    source: Path
    videos: dict[str, OPEVideo] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.videos)

    def __iter__(self) -> Iterator[OPEVideo]:
        return iter(self.videos.values())

    def __getitem__(self, name: str) -> OPEVideo:
        return self.videos[name]

    @property
    def attributes(self) -> dict[str, list[str]]:
        """pysot's ``dataset.attr``: ``ALL`` -> every video, then each attribute (sorted) -> its videos."""
        out = {"ALL": list(self.videos)}
        for attr in sorted({a for v in self for a in v.attrs}):
            out[attr] = [v.name for v in self if attr in v.attrs]
        return out


def _spec(name: str) -> OPESpec:
    if name not in OPE_DATASETS:
        raise BenchmarkError(f"unknown OPE dataset {name!r}; choose one of {', '.join(OPE_DATASETS)}")
    return OPE_DATASETS[name]


def _boxes(rows: object, where: str) -> np.ndarray:
    """A list of ``x, y, w, h`` rows as float64 ``(N, 4)`` (NaN allowed: UAV123 marks absent frames so)."""
    if not isinstance(rows, list) or not rows:
        raise BenchmarkError(f"{where}: expected a non-empty list of [x, y, w, h] boxes")
    try:
        arr = np.asarray([[float(v) for v in r] for r in rows], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise BenchmarkError(f"{where}: boxes must be lists of 4 numbers ({exc})") from None
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise BenchmarkError(f"{where}: boxes must be lists of 4 numbers (x, y, w, h)")
    return arr


def _find_json(name: str, data_root: Path) -> Path:
    """``<data_root>/<name>.json`` or (pysot's place) ``<data_root>/<name>/<name>.json``."""
    candidates = [data_root / f"{name}.json", data_root / name / f"{name}.json"]
    for path in candidates:
        if path.is_file():
            return path
    hint = ("generate the built-in data with `python tools/make_synthetic_data.py` and pass its --data-root"
            if name == "SyntheticOPE" else f"put pysot's {name}.json beside the {name}/ frames")
    raise BenchmarkError(f"no metadata json for {name}: looked for {candidates[0]} and {candidates[1]}; {hint}")


def _load_pysot(name: str, spec: OPESpec, data_root: Path) -> OPEDataset:
    path = _find_json(name, data_root)
    try:
        with open(path, encoding="utf-8") as f:
            meta = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BenchmarkError(f"{path}: cannot read the dataset json ({exc})") from None
    if not isinstance(meta, dict) or not meta:
        raise BenchmarkError(f"{path}: expected an object mapping video names to their metadata")
    seq_root = (data_root / name).resolve()
    required = ("img_names", "gt_rect") + (("absent",) if spec.absent else ())
    videos: dict[str, OPEVideo] = {}
    for video, info in meta.items():
        where = f"{path}: video '{video}'"
        if not isinstance(info, dict):
            raise BenchmarkError(f"{where}: expected an object")
        missing = [k for k in required if k not in info]
        if missing:
            raise BenchmarkError(f"{where} lacks key '{missing[0]}' (expected pysot's {name}.json layout)")
        gt = _boxes(info["gt_rect"], f"{where} gt_rect")
        img_names = info["img_names"]
        if not isinstance(img_names, list) or len(img_names) != len(gt):
            count = len(img_names) if isinstance(img_names, list) else "no"
            raise BenchmarkError(f"{where}: img_names has {count} entries but gt_rect has {len(gt)}")
        attrs = info.get("attr") or []
        if not isinstance(attrs, list) or not all(isinstance(a, str) for a in attrs):
            raise BenchmarkError(f"{where}: attr must be a list of attribute names")
        absent = None
        if spec.absent:
            try:
                absent = np.asarray(info["absent"], dtype=np.float64).astype(np.int8)
            except (TypeError, ValueError) as exc:
                raise BenchmarkError(f"{where} absent: expected per-frame 0/1 values ({exc})") from None
            if absent.shape != (len(gt),):
                raise BenchmarkError(f"{where}: absent has {absent.size} values but gt_rect has {len(gt)}")
        videos[video] = OPEVideo(name=video, img_paths=[str(seq_root / n) for n in img_names], gt=gt,
                                 attrs=tuple(attrs), absent=absent)
    return OPEDataset(name=name, spec=spec, source=path, videos=videos)


def got10k_root(data_root: str | Path, split: str) -> Path:
    """``<data_root>/GOT-10k/<split>``: the folder holding ``list.txt`` and the sequence folders."""
    return Path(data_root) / "GOT-10k" / split


def _read_text_boxes(path: Path, what: str) -> np.ndarray:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BenchmarkError(f"{path}: {what} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BenchmarkError(f"{path}: cannot read {what} ({exc})") from None
    rows = []
    for i, line in enumerate(text.strip().splitlines()):
        try:
            values = [float(v) for v in _SEPARATORS.split(line.strip()) if v]
        except ValueError:
            raise BenchmarkError(f"{path}:{i + 1}: cannot read {line.strip()[:40]!r} as x,y,w,h") from None
        if len(values) != 4:
            raise BenchmarkError(f"{path}:{i + 1}: {len(values)} values; expected 4 (x,y,w,h)")
        rows.append(values)
    if not rows:
        raise BenchmarkError(f"{path}: {what} is empty")
    return np.asarray(rows, dtype=np.float64)


def _load_got10k(name: str, spec: OPESpec, data_root: Path) -> OPEDataset:
    root = got10k_root(data_root, spec.split)
    list_file = root / "list.txt"
    if not list_file.is_file():
        raise BenchmarkError(f"{list_file}: not found (GOT-10k's {spec.split} split: <data-root>/GOT-10k/"
                             f"{spec.split}/list.txt and one folder per sequence)")
    names = [s.strip() for s in list_file.read_text(encoding="utf-8").splitlines() if s.strip()]
    if not names:
        raise BenchmarkError(f"{list_file}: lists no sequences")
    videos: dict[str, OPEVideo] = {}
    for seq in names:
        folder = root / seq
        if not folder.is_dir():
            raise BenchmarkError(f"{folder}: sequence folder listed in {list_file} not found")
        frames = sorted(str(p.resolve()) for p in folder.glob("*.jpg"))
        if not frames:
            raise BenchmarkError(f"{folder}: no .jpg frames")
        gt = _read_text_boxes(folder / "groundtruth.txt", "ground truth")
        if len(gt) != len(frames) and (spec.ground_truth or len(gt) != 1):
            raise BenchmarkError(f"{folder / 'groundtruth.txt'}: {len(gt)} boxes for {len(frames)} frames")
        videos[seq] = OPEVideo(name=seq, img_paths=frames, gt=gt)
    return OPEDataset(name=name, spec=spec, source=list_file, videos=videos)


def load_ope_dataset(name: str, data_root: str | Path) -> OPEDataset:
    """Read OPE dataset ``name`` under ``data_root`` (layouts in the module docstring); images are not opened.

    Raises:
        BenchmarkError: unknown name, missing json / list.txt / sequence folder, or malformed metadata.
    """
    spec = _spec(name)
    root = Path(data_root)
    return _load_pysot(name, spec, root) if spec.layout == "pysot" else _load_got10k(name, spec, root)


# ----------------------------------------------------------------------------------------------- result files
def ope_result_file(result_root: str | Path, tracker: str, video: str, layout: str) -> Path:
    """Where tools/test.py writes (and tools/eval.py reads) one video's boxes.

    Args:
        result_root: ``<result_dir>/<dataset>``.
        layout: ``"pysot"`` -> ``<tracker>/<video>.txt``; ``"got10k"`` -> ``<tracker>/<video>/<video>_001.txt``.
    """
    base = Path(result_root) / tracker
    return base / video / f"{video}_001.txt" if layout == "got10k" else base / f"{video}.txt"


def ope_time_file(result_root: str | Path, tracker: str, video: str) -> Path:
    """GOT-10k's per-frame times ``<tracker>/<video>/<video>_time.txt`` (seconds, one line per frame)."""
    return Path(result_root) / tracker / video / f"{video}_time.txt"


def _candidates(result_root: Path, tracker: str, video: str, spec: OPESpec) -> list[Path]:
    first = ope_result_file(result_root, tracker, video, spec.layout)
    if not spec.otb_names:
        return [first]
    alt = _OTB_ALT_NAMES.get(video, video[:1].lower() + video[1:])
    return [first, result_root / tracker / f"{alt}.txt"]


def read_ope_boxes(path: str | Path) -> np.ndarray:
    """Read a result file: one ``x,y,w,h`` line per frame (commas, tabs or spaces) -> float64 ``(N, 4)``.

    Raises:
        ResultError: unreadable file or a line that is not 4 numbers.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultError(f"{path}: cannot read ({exc.__class__.__name__}: {exc})") from None
    rows = []
    for i, line in enumerate(text.rstrip().splitlines() if text.strip() else []):
        try:
            values = [float(v) for v in _SEPARATORS.split(line.strip()) if v]
        except ValueError:
            raise ResultError(f"{path}:{i + 1}: cannot read {line.strip()[:40]!r} as x,y,w,h") from None
        if len(values) != 4:
            raise ResultError(f"{path}:{i + 1}: {len(values)} values; expected 4 (x,y,w,h)")
        rows.append(values)
    return np.asarray(rows, dtype=np.float64).reshape(-1, 4)


def load_ope_result(result_root: str | Path, tracker: str, video: OPEVideo, dataset: OPEDataset) -> np.ndarray:
    """One tracker's boxes for one video, checked against the ground-truth length.

    Returns:
        float64 ``(N, 4)`` with N = the video's ground-truth rows.

    Raises:
        ResultError: the file is missing (naming the tracker and video), unreadable, or has another line count.
    """
    root = Path(result_root)
    paths = _candidates(root, tracker, video.name, dataset.spec)
    path = next((p for p in paths if p.is_file()), None)
    if path is None:
        raise ResultError(f"{paths[0]}: missing (tracker '{tracker}' has no result for video '{video.name}')")
    boxes = read_ope_boxes(path)
    n = len(video.gt)
    if dataset.spec.absent and video.name == _LASOT_CUT:
        boxes = boxes[:n]
    if len(boxes) != n:
        state = "truncated" if len(boxes) < n else "too long"
        raise ResultError(f"{path}: {state}: {len(boxes)} lines for {n} frames")
    return boxes


def list_ope_trackers(result_root: str | Path, prefix: str = "") -> list[str]:
    """Tracker folders in ``result_root`` (= ``<result_dir>/<dataset>``) starting with ``prefix``, sorted.

    Raises:
        ResultError: ``result_root`` is not a folder or holds no matching tracker folder.
    """
    root = Path(result_root)
    if not root.is_dir():
        raise ResultError(f"{root}: result folder not found (pass the folder holding <tracker>/<video>.txt)")
    names = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name.startswith(prefix))
    if not names:
        what = f"starting with '{prefix}'" if prefix else "at all"
        raise ResultError(f"{root}: no tracker folders {what} (expected <tracker>/<video>.txt)")
    return names

