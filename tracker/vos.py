"""The semi-supervised VOS protocol (DAVIS-2016/2017, YouTube-VOS) on top of :class:`SiamMaskTracker`.

Ports `track_vos` and `MultiBatchIouMeter` of the original `tools/test.py` (reference.md E.8):

* every object is initialised on its first frame from `cv2.boundingRect` of its first-frame mask (centre x + w/2,
  y + h/2, size w, h; original: ``x, y, w, h = cv2.boundingRect((mask).astype(np.uint8))`` /
  ``cx, cy = x + w/2, y + h/2`` in `track_vos`), and tracked independently up to its last frame; on its first frame
  its "prediction" is the annotation mask itself (``pred_masks[obj_id, f, :, :] = mask`` with
  ``mask = annos_init[obj_id] == o_id``), outside its frames it is -1 (``np.zeros(...) - 1``);
* DAVIS: all objects start on frame 0 and end on the last frame; the objects are the non-zero ids of the first
  annotation (``np.unique(annos[0])``); DAVIS-2016 binarises the annotations (``(anno > 0)``, one object);
  YouTube-VOS: meta.json's objects with their own first and last frames, initialised from their first annotation;
* the per-object probability maps are merged as the original's `--save_mask` block does:
  ``pred_mask_final = (np.argmax(pred_mask_final, axis=0).astype('uint8') + 1) *
  (np.max(pred_mask_final, axis=0) > state['p'].seg_thr)`` -- argmax over objects (the first object wins a tie),
  background where the maximum is not above `seg_thr`;
* `MultiBatchIouMeter(thrs=np.arange(0.3, 0.5, 0.05))`: per threshold and object the mean IoU of the merged label
  map with the ground truth over frames 1 .. N-2 (DAVIS) or start+1 .. end-2 (YouTube-VOS: the original's
  ``range(start[id] + 1, end[id] - 1)``), an empty union counting 1;
* speed = (frames - 1) x objects / tracking time (the original's ``f * len(object_ids) / toc``).

Differences: the objects of a frame are tracked in one network call (`track_many`; per-object results are the same as
tracking them one after another); the merged label carries the object's own id (the original wrote position + 1,
the same for the usual ids 1..K); masks are merged frame by frame instead of holding an (objects, frames, H, W)
float64 array; an object whose first-frame mask is empty is never initialised (the original crashed on a 0-size box).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import numpy as np

from ..evaluation.davis import VOSSequence, read_labels
from ..utils.bbox import mask_to_xywh

#: The original test.py's `thrs` (np.arange(0.3, 0.5, 0.05)).
MIOU_THRESHOLDS = (0.30, 0.35, 0.40, 0.45)

FrameCallback = Callable[[int, str, np.ndarray, np.ndarray], None]


def merge_object_masks(probs: Sequence[Optional[np.ndarray]], ids: Sequence[int],
                       shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Argmax over objects of their probability maps.

    Args:
        probs: per object an (H, W) map or None (object not active on this frame: the original's -1).
        ids: the label of each object.

    Returns:
        best_id (H, W) uint8 (label of the first object with the largest value, 0 where none is active) and
        best_prob (H, W) float32 (that value, -1 where none is active). The label map at a threshold is
        ``np.where(best_prob > thr, best_id, 0)``.
    """
    best_id = np.zeros(shape, np.uint8)
    best_prob = np.full(shape, -1.0, np.float32)
    for prob, obj_id in zip(probs, ids):
        if prob is None:
            continue
        better = prob > best_prob  # strict: an earlier object keeps a tie, as np.argmax
        best_prob[better] = prob[better]
        best_id[better] = obj_id
    return best_id, best_prob


def labels_at(best_id: np.ndarray, best_prob: np.ndarray, thr: float) -> np.ndarray:
    """The merged (H, W) uint8 label map at threshold `thr` (background where the best value is not above it)."""
    return np.where(best_prob > thr, best_id, 0).astype(np.uint8)


@dataclass
class VOSSequenceResult:
    """Outcome of one sequence: object ids, timing and (with full ground truth) the mIoU per object and threshold."""

    name: str
    object_ids: list[int]
    time_s: float
    fps: float
    thresholds: tuple[float, ...] = MIOU_THRESHOLDS
    miou: Optional[np.ndarray] = None  # (objects, thresholds)
    skipped: list[int] = field(default_factory=list)  # objects whose first mask was empty


def _read_frame(path: str) -> np.ndarray:
    from ..evaluation.errors import BenchmarkError
    from ..utils.io import read_image

    return read_image(path, error=BenchmarkError)


def run_vos_sequence(tracker: Any, seq: VOSSequence, *, binary: bool = False, init_from_mask: bool = False,
                     thresholds: Sequence[float] = MIOU_THRESHOLDS, on_frame: Optional[FrameCallback] = None,
                     image_reader: Callable[[str], np.ndarray] = _read_frame,
                     clock: Callable[[], float] = time.perf_counter) -> VOSSequenceResult:
    """Track every object of a VOS sequence (see the module docstring).

    Args:
        tracker: a SiamMaskTracker in mask mode (`init_cxcywh`, `init_mask`, `track_many`; results carry `.mask`).
        binary: DAVIS-2016: one object, the union of all ids.
        init_from_mask: initialise with `tracker.init_mask(frame, mask)` instead of the original's bounding-box rule.
        on_frame: called per frame with (index, frame name, best_id, best_prob) (:func:`merge_object_masks`).
        image_reader: path -> BGR uint8 frame.
    """
    objects = list(seq.objects)
    ids = [o.obj_id for o in objects]
    init_cache: dict[str, np.ndarray] = {}

    def init_labels(path: str) -> np.ndarray:
        if path not in init_cache:
            labels = read_labels(path)
            init_cache[path] = (labels > 0).astype(np.uint8) if binary else labels
        return init_cache[path]

    gt_ok = seq.fully_annotated
    n = len(seq.frames)
    inter = {(k, t): [] for k in range(len(objects)) for t in range(len(thresholds))}
    states: dict[int, Any] = {}
    skipped: list[int] = []
    toc = 0.0
    for f, (name, path) in enumerate(zip(seq.frames, seq.image_paths)):
        im = image_reader(path)
        tic = clock()
        probs: list[Optional[np.ndarray]] = [None] * len(objects)
        for k, obj in enumerate(objects):  # objects starting here
            if obj.start != f:
                continue
            mask = init_labels(obj.init_anno) == (1 if binary else obj.obj_id)
            if not mask.any():
                skipped.append(obj.obj_id)
                continue
            if init_from_mask:
                states[k] = tracker.init_mask(im, mask)
            else:
                x, y, w, h = mask_to_xywh(mask)
                states[k] = tracker.init_cxcywh(im, (x + w / 2, y + h / 2, w, h))
            probs[k] = mask.astype(np.float32)
        active = [k for k in states if objects[k].start < f <= objects[k].end]
        if active:
            results = tracker.track_many([states[k] for k in active], im)
            for k, res in zip(active, results):
                probs[k] = res.mask
        for k in [k for k in states if f >= objects[k].end]:
            del states[k]
        toc += clock() - tic
        best_id, best_prob = merge_object_masks(probs, ids, im.shape[:2])
        if gt_ok:
            _add_iou(inter, objects, f, n, seq.anno_paths[name], best_id, best_prob, thresholds, binary,
                     seq.per_object_frames)
        if on_frame is not None:
            on_frame(f, name, best_id, best_prob)
    miou = None
    if gt_ok:
        miou = np.array([[np.mean(inter[(k, t)]) if inter[(k, t)] else np.nan for t in range(len(thresholds))]
                         for k in range(len(objects))], dtype=np.float32).reshape(len(objects), len(thresholds))
    fps = (n - 1) * len(objects) / toc if toc > 0 else float("inf")
    return VOSSequenceResult(seq.name, ids, toc, fps, tuple(float(t) for t in thresholds), miou, skipped)


def _add_iou(inter: dict, objects: Sequence[Any], f: int, n: int, anno_path: str, best_id: np.ndarray,
             best_prob: np.ndarray, thresholds: Sequence[float], binary: bool, per_object: bool) -> None:
    """MultiBatchIouMeter, one frame at a time (per object: its frames start+1 .. end-2; DAVIS: 1 .. N-2)."""
    gt = None
    for k, obj in enumerate(objects):
        first, last = (obj.start + 1, obj.end - 2) if per_object else (1, n - 2)
        if not first <= f <= last:
            continue
        if gt is None:
            gt = read_labels(anno_path)
            if binary:
                gt = (gt > 0).astype(np.uint8)
        target = gt == (1 if binary else obj.obj_id)
        for t, thr in enumerate(thresholds):
            pred = (best_prob > thr) & (best_id == obj.obj_id)
            union = np.count_nonzero(pred | target)
            inter[(k, t)].append(np.count_nonzero(pred & target) / union if union else 1.0)
