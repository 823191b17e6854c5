"""DAVIS-2016/2017 and YouTube-VOS: dataset layouts, and the official semi-supervised J and F metrics, vectorised.

Joined to tracking only by the result PNGs ``<result_dir>/<sequence>/<frame>.png`` (palette PNGs, pixel = object id).
The numbers are those of the official DAVIS toolkit (github davisvideochallenge/davis2017-evaluation, `davis2017/`
metrics.py, utils.py, evaluation.py, results.py):

* J (region similarity) = |R & G| / |R | G| per frame, 1 when both are empty;
* F (boundary F-measure): one-pixel boundaries of result and ground truth (`_seg2bmap`: a pixel differs from its east,
  south or south-east neighbour), each dilated by a disk of radius ceil(0.008 * image diagonal) (OpenCV dilation);
  precision = result boundary pixels within that distance of the ground-truth boundary / result boundary pixels,
  recall the other way; F = 2PR / (P + R), with the toolkit's rules for empty boundaries;
* per object: Mean = nanmean, Recall = fraction of frames > 0.5, Decay = mean of the first minus mean of the last of
  4 overlapping bins (`db_statistics`);
* the first and the last frame of every sequence are excluded; an object id absent from a result counts as an empty
  mask; ground-truth void pixels (255) are background, as the toolkit reads them; the number of objects of a sequence
  is the largest id of its first annotation;
* the J&F-Mean and every global column are means over all objects (not over sequences).

Deviations: a result PNG that is missing, unreadable, of another size, or holds an id above the sequence's objects is
a :class:`ResultError` naming the file (the toolkit printed a message and called ``sys.exit()``); the Decay bin
indices are computed in integers (the toolkit casts them to uint8, which wraps for sequences of more than 256 frames;
every DAVIS sequence is shorter, so the numbers are the same); ``DAVIS2016`` evaluates binary masks (every id > 0 is
the object), as the DAVIS-2016 benchmark.

The computation is exact but cheaper: the boundary dilation of each frame is done on the bounding box of the two
boundaries only (a dilation there only sees boundary pixels inside that box), so one DAVIS-2017 val evaluation takes
seconds.
"""
from __future__ import annotations

import glob
import json
import math
import os
import warnings
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Optional, Sequence

import cv2
import numpy as np

from ..utils.palette import read_index_png
from .errors import BenchmarkError, ResultError

__all__ = ["DAVIS_YEARS", "DAVIS_SPLITS", "DAVIS_MEASURES", "VOSSequence", "VOSObject", "davis_root",
           "load_davis", "load_ytb_vos", "disk", "seg2bmap", "db_eval_iou", "db_eval_boundary", "db_statistics",
           "ObjectScore", "VOSEvaluation", "evaluate_sequence", "evaluate_davis", "list_vos_trackers"]

DAVIS_YEARS = ("2016", "2017")
DAVIS_SPLITS = ("val", "train", "test-dev", "test-challenge")
DAVIS_RESOLUTION = "480p"
#: The official table's columns, in order.
DAVIS_MEASURES = ("J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay")
BOUND_TH = 0.008  # boundary tolerance as a fraction of the image diagonal (the toolkit's bound_th)
VOID_LABEL = 255
DECAY_BINS = 4
_CHUNK = 32  # frames per vectorised block (bounds the memory of long sequences)


# ----------------------------------------------------------------------------------------------- datasets
@dataclass
class VOSObject:
    """One object of a sequence: its id, and the first and last frame (indices into the sequence's frame list)."""

    obj_id: int
    start: int
    end: int
    init_anno: str  # the annotation PNG of its first frame


@dataclass
class VOSSequence:
    """A VOS sequence: frames (names without extension), their JPEGs and the annotation PNGs that exist.

    Attributes:
        anno_paths: frame name -> annotation PNG (DAVIS val: every frame; YouTube-VOS valid: first frames only).
        objects: the objects to track; DAVIS: ids of the first annotation, all from frame 0 to the last frame;
            YouTube-VOS: meta.json's objects with their own first and last frames.
    """

    name: str
    frames: list[str]
    image_paths: list[str]
    anno_paths: dict[str, str]
    objects: list[VOSObject] = field(default_factory=list)
    per_object_frames: bool = False  # YouTube-VOS: objects have their own first/last frames

    @property
    def fully_annotated(self) -> bool:
        """Ground truth for every frame (the mIoU of test.py and the J/F evaluation need it)."""
        return all(f in self.anno_paths for f in self.frames)


def davis_root(data_root: str) -> str:
    """The DAVIS folder under `data_root` (``<data_root>/DAVIS``, or `data_root` itself when it holds ImageSets/)."""
    for cand in (os.path.join(data_root, "DAVIS"), data_root):
        if os.path.isdir(os.path.join(cand, "ImageSets")):
            return cand
    raise BenchmarkError(f"{os.path.join(data_root, 'DAVIS')}: no DAVIS dataset here (expected ImageSets/, "
                         f"JPEGImages/{DAVIS_RESOLUTION}/ and Annotations/{DAVIS_RESOLUTION}/)")


def read_labels(path: str, error: type = BenchmarkError) -> np.ndarray:
    """An annotation or result PNG as an (H, W) uint8 index map."""
    labels = read_index_png(path, error=error)
    if labels.dtype != np.uint8:
        if labels.max(initial=0) > 255:
            raise error(f"{path}: ids above 255")
        labels = labels.astype(np.uint8)
    return labels


def load_davis(data_root: str, year: str = "2017", split: str = "val",
               sequences: Optional[Sequence[str]] = None, binary: Optional[bool] = None) -> list[VOSSequence]:
    """The sequences of ``ImageSets/<year>/<split>.txt`` (test splits: ``ImageSets/2017/<split>.txt``).

    Args:
        binary: treat every id > 0 as one object (default: year 2016).

    Raises:
        BenchmarkError: missing list, sequence folder, frames or first annotation (named).
    """
    root = davis_root(data_root)
    year = str(year)
    if year not in DAVIS_YEARS or split not in DAVIS_SPLITS:
        raise BenchmarkError(f"DAVIS {year} {split}: unknown year or split (years {DAVIS_YEARS}, splits "
                             f"{DAVIS_SPLITS})")
    list_year = year if split in ("val", "train") else "2017"
    list_path = os.path.join(root, "ImageSets", list_year, f"{split}.txt")
    if not os.path.isfile(list_path):
        raise BenchmarkError(f"{list_path}: sequence list not found")
    with open(list_path, encoding="utf-8") as f:
        names = [line.strip() for line in f if line.strip()]
    if sequences:
        unknown = [s for s in sequences if s not in names]
        if unknown:
            raise BenchmarkError(f"{list_path}: has no sequence {unknown[0]!r}")
        names = [n for n in names if n in sequences]
    binary = (year == "2016") if binary is None else binary
    out = []
    for name in names:
        img_dir = os.path.join(root, "JPEGImages", DAVIS_RESOLUTION, name)
        images = sorted(glob.glob(os.path.join(glob.escape(img_dir), "*.jpg")))
        if not images:
            raise BenchmarkError(f"{img_dir}: no frames (*.jpg) for sequence {name}")
        frames = [os.path.splitext(os.path.basename(p))[0] for p in images]
        anno_dir = os.path.join(root, "Annotations", DAVIS_RESOLUTION, name)
        annos = {os.path.splitext(os.path.basename(p))[0]: p
                 for p in sorted(glob.glob(os.path.join(glob.escape(anno_dir), "*.png")))}
        if frames[0] not in annos:
            raise BenchmarkError(f"{os.path.join(anno_dir, frames[0] + '.png')}: first-frame annotation not found")
        first = read_labels(annos[frames[0]])
        first = np.where(first == VOID_LABEL, 0, first)
        ids = [1] if binary and first.any() else [int(v) for v in np.unique(first) if v != 0]
        objects = [VOSObject(i, 0, len(frames) - 1, annos[frames[0]]) for i in ids]
        out.append(VOSSequence(name, frames, images, annos, objects))
    return out


def load_ytb_vos(data_root: str, split: str = "valid") -> list[VOSSequence]:
    """YouTube-VOS ``<data_root>/ytb_vos/<split>/`` (or `data_root` itself): meta.json, JPEGImages/, Annotations/.

    As the original loader: a video's frames are the sorted union of its objects' frames; each object starts at its
    first listed frame (initialised from that frame's annotation) and ends at its last.
    """
    base = os.path.join(data_root, "ytb_vos", split)
    if not os.path.isfile(os.path.join(base, "meta.json")) and os.path.isfile(os.path.join(data_root, "meta.json")):
        base = data_root
    meta_path = os.path.join(base, "meta.json")
    if not os.path.isfile(meta_path):
        raise BenchmarkError(f"{meta_path}: YouTube-VOS meta.json not found")
    try:
        with open(meta_path, encoding="utf-8") as f:
            videos = json.load(f)["videos"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise BenchmarkError(f"{meta_path}: not a YouTube-VOS meta.json ({type(e).__name__}: {e})") from None
    out = []
    for name in sorted(videos):
        objs = videos[name].get("objects", {})
        frames = sorted({fr for o in objs.values() for fr in o["frames"]})
        if not frames:
            continue
        anno_dir = os.path.join(base, "Annotations", name)
        annos = {os.path.splitext(os.path.basename(p))[0]: p
                 for p in sorted(glob.glob(os.path.join(glob.escape(anno_dir), "*.png")))}
        images = [os.path.join(base, "JPEGImages", name, fr + ".jpg") for fr in frames]
        objects = []
        for key in sorted(objs, key=int):
            obj_frames = objs[key]["frames"]
            first = obj_frames[0]
            init = os.path.join(anno_dir, first + ".png")
            objects.append(VOSObject(int(key), frames.index(first), frames.index(obj_frames[-1]), init))
        out.append(VOSSequence(name, frames, images, annos, objects, per_object_frames=True))
    return out


# ----------------------------------------------------------------------------------------------- metrics

#: VOS dataset name -> (loader kind, DAVIS year, split, binary masks: DAVIS-2016 evaluates foreground vs background)
VOS_DATASETS_SPEC = {"DAVIS2016": ("davis", "2016", "val", True), "DAVIS2017": ("davis", "2017", "val", False),
                     "DAVIS2017TEST": ("davis", "2017", "test-dev", False), "ytb_vos": ("ytb", "", "valid", False)}
VOS_DATASETS = tuple(VOS_DATASETS_SPEC)
#: The VOS datasets with public ground truth, which eval.py and tune_vos.py score.
DAVIS_DATASETS = ("DAVIS2016", "DAVIS2017")


def load_vos_dataset(name: str, data_root: str) -> list[VOSSequence]:
    """The sequences of a VOS dataset name (DAVIS2016, DAVIS2017, DAVIS2017TEST, ytb_vos) under `data_root`."""
    kind, year, split, _ = VOS_DATASETS_SPEC[name]
    if kind == "ytb":
        return load_ytb_vos(data_root, split)
    test_root = os.path.join(data_root, "DAVIS2017TEST")  # the original's folder of the test-dev split
    if split == "test-dev" and os.path.isdir(os.path.join(test_root, "ImageSets")):
        data_root = test_root
    return load_davis(data_root, year, split)


def is_binary_dataset(name: str) -> bool:
    """True where the dataset's masks are evaluated as foreground vs background (DAVIS-2016)."""
    return VOS_DATASETS_SPEC[name][3]


def disk(radius: float) -> np.ndarray:
    """scikit-image's ``morphology.disk``: (2r+1)^2 uint8 with 1 where x^2 + y^2 <= r^2."""
    r = int(radius)
    grid = np.arange(-r, r + 1)
    xx, yy = np.meshgrid(grid, grid)
    return (xx ** 2 + yy ** 2 <= radius ** 2).astype(np.uint8)


def bound_pixels(shape: tuple[int, int], bound_th: float = BOUND_TH) -> float:
    """Boundary tolerance in pixels: `bound_th` itself when >= 1, else ceil(bound_th * diagonal)."""
    return bound_th if bound_th >= 1 else math.ceil(bound_th * math.hypot(shape[0], shape[1]))


def seg2bmap(seg: np.ndarray) -> np.ndarray:
    """One-pixel boundaries of binary masks (..., H, W): the toolkit's ``_seg2bmap`` (boundary offset towards the
    origin: a pixel differs from its east, south or south-east neighbour; last row/column against their neighbour
    along the edge; the bottom-right pixel never)."""
    seg = np.asarray(seg, dtype=bool)
    b = np.zeros_like(seg)
    here = seg[..., :-1, :-1]
    b[..., :-1, :-1] = (here ^ seg[..., :-1, 1:]) | (here ^ seg[..., 1:, :-1]) | (here ^ seg[..., 1:, 1:])
    b[..., -1, :-1] = seg[..., -1, :-1] ^ seg[..., -1, 1:]
    b[..., :-1, -1] = seg[..., :-1, -1] ^ seg[..., 1:, -1]
    return b


def db_eval_iou(annotation: np.ndarray, segmentation: np.ndarray) -> np.ndarray:
    """J per frame of binary masks (..., H, W): |A & S| / |A | S|, 1 where the union is empty. Returns (...,)."""
    a = np.asarray(annotation, dtype=bool)
    s = np.asarray(segmentation, dtype=bool)
    if a.shape != s.shape:
        raise ValueError(f"annotation {a.shape} and segmentation {s.shape} differ in shape")
    inter = np.count_nonzero(a & s, axis=(-2, -1))
    union = np.count_nonzero(a | s, axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        j = inter / union
    return np.where(union == 0, 1.0, j)


def _f_from_boundaries(fg_b: np.ndarray, gt_b: np.ndarray, kernel: np.ndarray) -> float:
    n_fg = int(np.count_nonzero(fg_b))
    n_gt = int(np.count_nonzero(gt_b))
    if n_fg == 0 and n_gt > 0:
        precision, recall = 1.0, 0.0
    elif n_fg > 0 and n_gt == 0:
        precision, recall = 0.0, 1.0
    elif n_fg == 0 and n_gt == 0:
        precision, recall = 1.0, 1.0
    else:
        either = fg_b | gt_b
        rows = np.flatnonzero(either.any(axis=1))
        cols = np.flatnonzero(either.any(axis=0))
        window = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        fg_c = fg_b[window].view(np.uint8)
        gt_c = gt_b[window].view(np.uint8)
        fg_dil = cv2.dilate(fg_c, kernel)
        gt_dil = cv2.dilate(gt_c, kernel)
        precision = np.count_nonzero(fg_c & gt_dil) / float(n_fg)
        recall = np.count_nonzero(gt_c & fg_dil) / float(n_gt)
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def db_eval_boundary(annotation: np.ndarray, segmentation: np.ndarray, bound_th: float = BOUND_TH) -> np.ndarray:
    """F per frame of binary masks (T, H, W) or (H, W) (the toolkit's ``db_eval_boundary``). Returns (T,) or ()."""
    a = np.asarray(annotation, dtype=bool)
    s = np.asarray(segmentation, dtype=bool)
    if a.shape != s.shape:
        raise ValueError(f"annotation {a.shape} and segmentation {s.shape} differ in shape")
    single = a.ndim == 2
    if single:
        a, s = a[None], s[None]
    height, width = a.shape[-2:]
    kernel = disk(bound_pixels((height, width), bound_th))
    out = np.ones(a.shape[0], dtype=np.float64)  # both masks empty: F = 1
    for lo in range(0, a.shape[0], _CHUNK):
        ga, sa = a[lo:lo + _CHUNK], s[lo:lo + _CHUNK]
        occupied = ga.any(axis=0) | sa.any(axis=0)
        rows = np.flatnonzero(occupied.any(axis=1))
        if rows.size == 0:
            continue
        cols = np.flatnonzero(occupied.any(axis=0))
        # Every boundary pixel lies in the masks' box grown by one pixel (zero rows/columns around it give the same
        # boundaries as the whole frame; at the frame's edge the crop's edge is the frame's), so crop to it.
        win = (slice(None), slice(max(rows[0] - 1, 0), min(rows[-1] + 2, height)),
               slice(max(cols[0] - 1, 0), min(cols[-1] + 2, width)))
        fg_b = seg2bmap(sa[win])
        gt_b = seg2bmap(ga[win])
        for t in range(fg_b.shape[0]):
            out[lo + t] = _f_from_boundaries(fg_b[t], gt_b[t], kernel)
    return out[0] if single else out


def db_statistics(per_frame: np.ndarray) -> tuple[float, float, float]:
    """(Mean, Recall, Decay) of per-frame values (the toolkit's ``db_statistics``).

    Mean = nanmean; Recall = nanmean(values > 0.5); Decay = nanmean(bin 0) - nanmean(bin 3), bins
    values[ids[i] : ids[i+1] + 1] with ids = round(linspace(1, N, 5) + 1e-10) - 1 (the bins share their ends).
    """
    v = np.asarray(per_frame, dtype=np.float64)
    with warnings.catch_warnings():  # an empty bin gives NaN, as the toolkit
        warnings.simplefilter("ignore", category=RuntimeWarning)
        mean = float(np.nanmean(v))
        recall = float(np.nanmean(v > 0.5))
        ids = (np.round(np.linspace(1, len(v), DECAY_BINS + 1) + 1e-10) - 1).astype(np.int64)
        bins = [v[ids[i]:ids[i + 1] + 1] for i in range(DECAY_BINS)]
        decay = float(np.nanmean(bins[0]) - np.nanmean(bins[DECAY_BINS - 1]))
    return mean, recall, decay


# ----------------------------------------------------------------------------------------------- evaluation
@dataclass
class ObjectScore:
    """J and F of one object (`<sequence>_<k>`) over the evaluated frames, and their statistics."""

    name: str
    j: np.ndarray
    f: np.ndarray

    def stats(self) -> dict[str, float]:
        jm, jr, jd = db_statistics(self.j)
        fm, fr, fd = db_statistics(self.f)
        return {"J-Mean": jm, "J-Recall": jr, "J-Decay": jd, "F-Mean": fm, "F-Recall": fr, "F-Decay": fd}


@dataclass
class VOSEvaluation:
    """One tracker's evaluation: per-object scores in sequence order, and the global table row."""

    tracker: str
    objects: dict[str, ObjectScore]

    def summary(self) -> dict[str, float]:
        """The official global measures: means over all objects (J&F-Mean = (J-Mean + F-Mean) / 2)."""
        per = [o.stats() for o in self.objects.values()]
        out = {key: float(np.mean([p[key] for p in per])) if per else float("nan") for key in DAVIS_MEASURES[1:]}
        return {"J&F-Mean": (out["J-Mean"] + out["F-Mean"]) / 2, **out}

    def to_json(self) -> dict[str, object]:
        """Global measures plus ``per_object`` -> {name: {J-Mean, F-Mean}}."""
        per = {name: {"J-Mean": o.stats()["J-Mean"], "F-Mean": o.stats()["F-Mean"]} for name, o in self.objects.items()}
        return {**self.summary(), "per_object": per}


def evaluate_sequence(gt: np.ndarray, res: np.ndarray, num_objects: int,
                      bound_th: float = BOUND_TH) -> tuple[np.ndarray, np.ndarray]:
    """J and F of every object of one sequence.

    Args:
        gt: (T, H, W) uint8 ground-truth ids (already without first/last frame, void already 0).
        res: (T, H, W) uint8 result ids.
        num_objects: K; object k (1..K) is ``gt == k`` / ``res == k`` (an id missing from `res` is empty).

    Returns:
        J, F: (K, T) float64.
    """
    j = np.zeros((num_objects, gt.shape[0]))
    f = np.zeros((num_objects, gt.shape[0]))
    for k in range(1, num_objects + 1):
        g = gt == k
        r = res == k
        j[k - 1] = db_eval_iou(g, r)
        f[k - 1] = db_eval_boundary(g, r, bound_th)
    return j, f


def _evaluate_one(args: tuple[VOSSequence, str, bool, float]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    seq, result_dir, binary, bound_th = args
    frames = seq.frames[1:-1]
    missing = [f for f in seq.frames if f not in seq.anno_paths]
    if missing:
        raise BenchmarkError(f"{seq.name}: no annotation for frame {missing[0]} (the evaluation needs every frame)")
    first = read_labels(seq.anno_paths[seq.frames[0]])
    first = np.where(first == VOID_LABEL, 0, first)
    num_objects = (1 if first.any() else 0) if binary else int(first.max(initial=0))
    shape = first.shape
    gt = np.empty((len(frames), *shape), np.uint8)
    res = np.empty((len(frames), *shape), np.uint8)
    for t, fr in enumerate(frames):
        g = read_labels(seq.anno_paths[fr])
        if g.shape != shape:
            raise BenchmarkError(f"{seq.anno_paths[fr]}: size {g.shape[1]}x{g.shape[0]} differs from the first "
                                 f"annotation's {shape[1]}x{shape[0]}")
        g = np.where(g == VOID_LABEL, 0, g)
        path = os.path.join(result_dir, seq.name, fr + ".png")
        r = read_labels(path, error=ResultError)
        if r.shape != shape:
            raise ResultError(f"{path}: size {r.shape[1]}x{r.shape[0]} differs from the annotation's "
                              f"{shape[1]}x{shape[0]}")
        if binary:
            g, r = (g > 0).astype(np.uint8), (r > 0).astype(np.uint8)
        elif int(r.max(initial=0)) > num_objects:
            raise ResultError(f"{path}: object id {int(r.max())} but sequence {seq.name} has {num_objects} "
                              f"object{'s' if num_objects != 1 else ''}")
        gt[t], res[t] = g, r
    j, f = evaluate_sequence(gt, res, num_objects, bound_th)
    return [(f"{seq.name}_{k + 1}", j[k], f[k]) for k in range(num_objects)]


def evaluate_davis(sequences: Sequence[VOSSequence], result_dir: str, tracker: str = "", binary: bool = False,
                   workers: int = 1, bound_th: float = BOUND_TH) -> VOSEvaluation:
    """Evaluate the result PNGs ``<result_dir>/<sequence>/<frame>.png`` of every sequence.

    Args:
        binary: DAVIS-2016: ground truth and results are binarised (id > 0).
        workers: processes, one sequence each.

    Raises:
        ResultError: a result PNG missing, unreadable, of another size, or with an id above the sequence's objects.
    """
    if not os.path.isdir(result_dir):
        raise ResultError(f"{result_dir}: result folder not found")
    jobs = [(seq, result_dir, binary, bound_th) for seq in sequences]
    if workers > 1 and len(jobs) > 1:
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(min(workers, len(jobs))) as pool:
            parts = pool.map(_evaluate_one, jobs, chunksize=1)
    else:
        parts = [_evaluate_one(job) for job in jobs]
    objects = {name: ObjectScore(name, j, f) for part in parts for name, j, f in part}
    return VOSEvaluation(tracker or os.path.basename(os.path.normpath(result_dir)), objects)


def list_vos_trackers(result_dir: str, prefix: str = "") -> list[str]:
    """Tracker folders in `result_dir` whose name starts with `prefix` (sorted)."""
    if not os.path.isdir(result_dir):
        raise ResultError(f"{result_dir}: result folder not found")
    names = sorted(d for d in os.listdir(result_dir)
                   if d.startswith(prefix) and os.path.isdir(os.path.join(result_dir, d)))
    if not names:
        raise ResultError(f"{result_dir}: no tracker folder" + (f" starting with {prefix!r}" if prefix else ""))
    return names


def format_vos_table(evals: Iterable[VOSEvaluation]) -> str:
    """The official global table: one row per tracker, the DAVIS_MEASURES columns (%.3f)."""
    evals = list(evals)
    width = max([len(e.tracker) for e in evals] + [12]) + 2
    header = f"|{'Tracker':^{width}}|" + "".join(f"{m:^10}|" for m in DAVIS_MEASURES)
    bar = "-" * len(header)
    lines = [bar, header, bar]
    for e in evals:
        s = e.summary()
        lines.append(f"|{e.tracker:^{width}}|" + "".join(f"{s[m]:^10.3f}|" for m in DAVIS_MEASURES))
    lines.append(bar)
    return "\n".join(lines)


def format_object_table(ev: VOSEvaluation) -> str:
    """The official per-sequence table of one tracker: Sequence, J-Mean, F-Mean per object."""
    width = max([len(n) for n in ev.objects] + [10]) + 2
    header = f"|{'Sequence':^{width}}|{'J-Mean':^10}|{'F-Mean':^10}|"
    bar = "-" * len(header)
    lines = [f"{ev.tracker}:", bar, header, bar]
    for name, o in ev.objects.items():
        s = o.stats()
        lines.append(f"|{name:^{width}}|{s['J-Mean']:^10.3f}|{s['F-Mean']:^10.3f}|")
    lines.append(bar)
    return "\n".join(lines)


def to_json(evals: Iterable[VOSEvaluation]) -> dict[str, Mapping[str, object]]:
    """tracker -> its :meth:`VOSEvaluation.to_json`."""
    return {e.tracker: e.to_json() for e in evals}


class FrameScorer:
    """J and F of a sequence's label maps at several thresholds, fed one frame at a time (no frames kept).

    For tuning: `add(f, {thr: labels})` for every frame; frames 0 and N-1 are ignored, as the evaluation does.
    """

    def __init__(self, seq: VOSSequence, thresholds: Sequence[float], binary: bool = False,
                 bound_th: float = BOUND_TH) -> None:
        first = read_labels(seq.anno_paths[seq.frames[0]])
        first = np.where(first == VOID_LABEL, 0, first)
        self.seq = seq
        self.binary = binary
        self.bound_th = bound_th
        self.thresholds = [float(t) for t in thresholds]
        self.num_objects = (1 if first.any() else 0) if binary else int(first.max(initial=0))
        self.j: list[list[np.ndarray]] = [[] for _ in self.thresholds]
        self.f: list[list[np.ndarray]] = [[] for _ in self.thresholds]

    def add(self, index: int, labels_by_thr: Sequence[np.ndarray]) -> None:
        """Score frame `index` (labels per threshold, in the order of `thresholds`)."""
        if not 1 <= index <= len(self.seq.frames) - 2:
            return
        gt = read_labels(self.seq.anno_paths[self.seq.frames[index]])
        gt = np.where(gt == VOID_LABEL, 0, gt)
        if self.binary:
            gt = (gt > 0).astype(np.uint8)
        for t, lab in enumerate(labels_by_thr):
            lab = (lab > 0).astype(np.uint8) if self.binary else lab
            j, f = evaluate_sequence(gt[None], lab[None], self.num_objects, self.bound_th)
            self.j[t].append(j[:, 0])
            self.f[t].append(f[:, 0])

    def object_stats(self) -> list[dict[str, dict[str, float]]]:
        """Per threshold: {"<seq>_<k>": ObjectScore.stats()}."""
        out = []
        for t in range(len(self.thresholds)):
            j = np.stack(self.j[t], axis=1) if self.j[t] else np.zeros((self.num_objects, 0))
            f = np.stack(self.f[t], axis=1) if self.f[t] else np.zeros((self.num_objects, 0))
            out.append({f"{self.seq.name}_{k + 1}": ObjectScore(f"{self.seq.name}_{k + 1}", j[k], f[k]).stats()
                        for k in range(self.num_objects)})
        return out
