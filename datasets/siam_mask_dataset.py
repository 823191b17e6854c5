"""The SiamMask training set: template/search pairs from crop511 sub-datasets with anchor and mask labels.

Ports `DataSets.__getitem__` of the original `datasets/siam_mask_dataset.py`:

* grey with probability `gray` (both branches), negative pair with probability `neg`;
* negative pair: the template is a random target of the picked video, the search a random target of a random
  video of a uniformly chosen sub-dataset (of the same sub-dataset with probability `inner_neg`);
* positive pair: see :meth:`SubDataset.positive_pair`;
* the target box in a crop511 image is the annotated size scaled to the 127-pixel context, centred;
* template and search are augmented (:mod:`datasets.augmentation`), anchor targets computed
  (:mod:`datasets.anchor_target`); the search mask is read only for positive pairs of mask datasets and becomes the
  ±1 label ``(mask > 0.5) * 2 - 1``; `label_mask_weight` is 1 at cells with a positive anchor for those pairs, else 0.

What changed (reference.md G.1.15, G.2.11, users.md item 6):

* every sample's randomness comes from ``np.random.default_rng([seed, epoch, index])``: the same sample for any
  worker count, rank split or resume; the pick of the video is computed lazily (:mod:`datasets.sampling`) instead of
  a ``num * epochs`` pick list in every process;
* a missing crop, a corrupt image or a malformed json raises :class:`DataError` naming the file; with `skip_bad`
  the sample is replaced by another deterministic one, a warning is logged and :attr:`bad_count` counts it;
* the epoch and the bad-sample counters live in a small shared-memory tensor (one counter slot per process, so no
  lock is needed and it works with fork and spawn workers): :meth:`set_epoch` reaches persistent workers and the
  training loop reads the count of all workers;
* speed: on first use in a process (main or DataLoader worker) the dataset, on Linux/glibc, raises malloc's mmap
  and trim thresholds (8 MB / 64 MB) so that the few large per-sample buffers (decoded 511 images, float crops) are
  recycled instead of being mapped and page-faulted afresh for every sample, which cost about as much as decoding
  the JPEGs (`tune_malloc=False` turns it off);
* speed: a sample makes all its random draws first (template and search augmentation, anchor subsampling: none
  depends on pixels, and the order is the original's), then decodes only the rows and columns of each crop511 JPEG
  that its warp reads (:mod:`datasets.jpeg`), once for both crops when template and search are the same image
  (single-frame tracks: DET, COCO), and the mask PNG's rows only down to the last one the search warp reads
  (:mod:`datasets.masks`). The samples are bit-identical to decoding whole images
  (tests/test_data_pipeline.py compares them with hashes made by the code before this change);
* speed: :meth:`SiamMaskDataset.getitem_into` writes a sample's large arrays (template, search, label_mask) straight
  into given arrays, e.g. a row of a DataLoader worker's shared batch buffer
  (:class:`~datasets.shared_batches.SharedBatchLoader`), instead of into new memory that is then copied there, and
  writes their final values with streaming stores (:mod:`datasets.row_writes`: such rows are never in the cache);
  the values are those of ``dataset[index]``.
"""
from __future__ import annotations

import ctypes
import dataclasses
import json
import logging
import os
import sys
from dataclasses import dataclass
from typing import Optional, Union

import cv2
import numpy as np
import torch.utils.data

from ..utils.config import AnchorsConfig, Config, DatasetsConfig, response_size
from .anchor_target import AnchorTarget
from .augmentation import Augmentation, fits_output, warp_source_rect
from .crop import target_box_in_crop
from .errors import DataError
from .jpeg import EncodedImage
from .masks import EncodedMask
from .row_writes import fill_into, mask_label_into
from .sampling import PickSchedule
from .sub_dataset import ImageAnno, SubDataset

MAX_REPLACEMENTS = 16  # tries to find a readable replacement sample before giving up (skip_bad)
COUNTER_SLOTS = 256  # bad-sample counters: one for the main process, one per DataLoader worker (id mod 255)


@dataclass(frozen=True)
class SamplePlan:
    """The cheap part of a sample: what pair it is, before any image is read."""

    dataset: int  # index of the template's sub-dataset
    video: int  # the picked video of that sub-dataset
    negative: bool
    gray: bool
    template: ImageAnno
    search: ImageAnno
    search_dataset: int  # sub-dataset of the search image (differs from `dataset` only for negative pairs)


class SiamMaskDataset(torch.utils.data.Dataset):
    """Training pairs with labels; one item is the dict of the training-batch table of docs/ARCHITECTURE.md.

    Args:
        cfg: the `train_datasets` (or `val_datasets`) block.
        data_root: folder relative dataset paths are resolved against.
        anchors_cfg: the config's `anchors` block.
        seed: the run's seed (>= 0); with the epoch and index it decides every sample.
        skip_bad: replace unreadable samples instead of raising (default: cfg.skip_bad).
        logger: where to log (default: logger 'global').
        tune_malloc: on first use in a process, tune glibc malloc for large per-sample buffers (see module doc).
    """

    def __init__(self, cfg: DatasetsConfig, data_root: str, anchors_cfg: AnchorsConfig, seed: int = 0,
                 skip_bad: Optional[bool] = None, logger: Optional[logging.Logger] = None,
                 tune_malloc: bool = True) -> None:
        super().__init__()
        self.cfg = cfg
        self.tune_malloc = tune_malloc
        self.logger = logger or logging.getLogger("global")
        self.seed = int(seed)
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.skip_bad = cfg.skip_bad if skip_bad is None else bool(skip_bad)
        expected = response_size(cfg.search_size, cfg.template_size, anchors_cfg.stride, cfg.base_size)
        if cfg.size != expected:
            raise DataError(f"dataset config: size {cfg.size} != (search_size - template_size) / stride + 1 + "
                               f"base_size = {expected}")
        if not cfg.datasets:
            raise DataError("dataset config: 'datasets' is empty")
        self.subsets: list[SubDataset] = []
        start = 0
        for name, sub_cfg in cfg.datasets.items():
            subset = SubDataset(name, sub_cfg, data_root, skip_bad=self.skip_bad, logger=self.logger)
            subset.log(start)
            start += subset.num
            self.subsets.append(subset)
        self.schedule = PickSchedule(tuple(s.num for s in self.subsets), tuple(s.num_use for s in self.subsets),
                                     self.seed)
        self.num = cfg.num if cfg.num > 0 else self.schedule.round_length
        aug = cfg.augmentation
        self.template_aug = Augmentation(aug.template, cfg.template_size)
        self.search_aug = Augmentation(aug.search, cfg.search_size)
        self.anchor_target = AnchorTarget.for_crops(cfg.anchor_target, anchors_cfg, cfg.search_size, cfg.template_size,
                                                   cfg.base_size)
        # [0] = epoch, [1:] = bad-sample counts per process; shared with DataLoader workers (fork or spawn)
        self._shared = torch.zeros(1 + COUNTER_SLOTS, dtype=torch.int64).share_memory_()
        self._setup_pid = -1  # process that ran _process_setup (DataLoader workers are new processes)
        self.logger.info("dataset informations: \n%s", json.dumps({
            "template": cfg.template_size, "search": cfg.search_size, "size": cfg.size, "gray": aug.gray,
            "neg": aug.neg, "inner_neg": aug.inner_neg, "anchor_target": dataclasses.asdict(cfg.anchor_target),
            "num": self.num, "seed": self.seed, "skip_bad": self.skip_bad}, indent=4))

    # ------------------------------------------------------------------ epoch and counters
    def __len__(self) -> int:
        return self.num

    @property
    def epoch(self) -> int:
        return int(self._shared_view()[0])

    def _shared_view(self) -> np.ndarray:
        """A numpy view of the shared counters (reading a tensor element costs ~30 us, a numpy one ~0.1 us), made
        once per process: a spawned worker unpickles the tensor onto the same shared memory, but a pickled view
        would be a copy, so each process makes its own."""
        view = self.__dict__.get("_shared_np")
        if view is None or view[0] != os.getpid():
            view = self.__dict__["_shared_np"] = (os.getpid(), self._shared.numpy())
        return view[1]

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose samples the indices address (shared with DataLoader workers)."""
        self._shared[0] = int(epoch)

    @property
    def bad_count(self) -> int:
        """Bad reads (each replaced by another sample) since the last :meth:`reset_bad_count`, counted over this
        process and its DataLoader workers (each rank counts its own)."""
        return int(self._shared[1:].sum())

    def reset_bad_count(self) -> int:
        """Zero the counters and return the old total (call at epoch end, when no worker is busy, to report)."""
        old = self.bad_count
        self._shared[1:] = 0
        return old

    # ------------------------------------------------------------------ sampling
    def plan(self, index: int, epoch: Optional[int] = None) -> SamplePlan:
        """The pair sample (epoch, index) uses, without reading images (cheap; same draws as :meth:`sample`)."""
        epoch = self.epoch if epoch is None else epoch
        rng = self._rng(epoch, index)
        return self._plan(epoch, index, rng)

    def _rng(self, epoch: int, index: int) -> np.random.Generator:
        if not 0 <= index < self.num:
            raise IndexError(f"sample index {index} out of range({self.num})")
        return np.random.default_rng([self.seed, epoch, index])

    def _plan(self, epoch: int, index: int, rng: np.random.Generator) -> SamplePlan:
        k, video = self.schedule.pick(epoch * self.num + index)
        subset = self.subsets[k]
        aug = self.cfg.augmentation
        gray = bool(aug.gray and aug.gray > rng.random())
        negative = bool(aug.neg and aug.neg > rng.random())
        search_k = k
        if negative:
            template = subset.random_target(video, rng)
            if aug.inner_neg and aug.inner_neg > rng.random():
                search = subset.random_target(-1, rng)
            else:
                search_k = int(rng.integers(len(self.subsets)))
                search = self.subsets[search_k].random_target(-1, rng)
        else:
            template, search = subset.positive_pair(video, rng)
        return SamplePlan(k, video, negative, gray, template, search, search_k)

    def sample(self, index: int, epoch: Optional[int] = None, with_template_box: bool = False,
               out: Optional[dict[str, np.ndarray]] = None) -> dict[str, np.ndarray]:
        """Sample (epoch, index) without skip_bad handling (raises :class:`DataError` on bad input).

        `with_template_box` adds "template_bbox" (4,) float32, the target in the template (for visualisation).
        `out` maps keys to arrays to write the sample's "template", "search" and "label_mask" into (each used when it
        has the key's shape and dtype, is C-contiguous and writeable; the returned dict then holds that array); the
        other keys are made in new memory. The values do not depend on `out`.
        """
        dest = out or {}
        epoch = self.epoch if epoch is None else epoch
        rng = self._rng(epoch, index)
        plan = self._plan(epoch, index, rng)
        cfg = self.cfg
        template_image = EncodedImage.read(plan.template.image_path, "template")
        shared = plan.search.image_path == plan.template.image_path  # single-frame tracks (det, coco)
        search_image = template_image if shared else EncodedImage.read(plan.search.image_path, "search")
        with_mask = self.subsets[plan.dataset].has_mask and not plan.negative
        mask_file = EncodedMask.read(plan.search.mask_path) if with_mask else None
        template_box = target_box_in_crop(plan.template.size_wh, template_image.shape, cfg.template_size)
        search_box = target_box_in_crop(plan.search.size_wh, search_image.shape, cfg.template_size)
        # every random draw first (none depends on pixels), in the original's order: template, search, anchors
        template_draws = self.template_aug.draw(template_image.shape, rng)
        search_draws = self.search_aug.draw(search_image.shape, rng)
        targets = self.anchor_target(self.search_aug.target_box(search_box, search_draws), plan.negative, rng)
        mask = None
        if mask_file is not None:  # the rows down to the last one the search warp reads
            mask = mask_file.decode(warp_source_rect(*search_draws.crop)[3])
        template_pixels: Union[np.ndarray, EncodedImage] = template_image
        search_pixels: Union[np.ndarray, EncodedImage] = search_image
        if shared:  # one decode of the rows and columns both crops read
            t = warp_source_rect(*template_draws.crop)
            u = warp_source_rect(*search_draws.crop)
            template_pixels = search_pixels = template_image.decode(
                min(t[0], u[0]), min(t[1], u[1]), max(t[2], u[2]), max(t[3], u[3]))
        template = self.template_aug.apply(template_pixels, template_box, template_draws, gray=plan.gray,
                                           out=dest.get("template"))
        search = self.search_aug.apply(search_pixels, search_box, search_draws, gray=plan.gray, mask=mask,
                                       out=dest.get("search"))
        size = cfg.size
        label_mask = _label_mask(search.mask, cfg.search_size, dest.get("label_mask"))
        if search.mask is not None:
            mask_weight = (targets.label_cls.max(axis=0) == 1).astype(np.float32)[None]
        else:
            mask_weight = np.zeros((1, size, size), dtype=np.float32)
        result = {
            "template": template.image,
            "search": search.image,
            "label_cls": targets.label_cls,
            "label_loc": targets.label_loc,
            "label_loc_weight": targets.label_loc_weight,
            "label_mask": label_mask,
            "label_mask_weight": mask_weight,
            "bbox": search.box.astype(np.float32),
        }
        if with_template_box:
            result["template_bbox"] = template.box.astype(np.float32)
        return result

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        """Sample `index` of the current epoch (skip_bad: a deterministic replacement for an unreadable one)."""
        return self._get(index, None)

    def getitem_into(self, index: int, out: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``self[index]``, writing "template", "search" and "label_mask" into the arrays of `out` (see
        :meth:`sample`; e.g. one row of a shared batch buffer, the sample's shape and dtype). Returns the sample: its
        values equal ``self[index]``'s, and the arrays that fit are those of `out` (a replacement sample, with
        skip_bad, overwrites what a failed one wrote)."""
        return self._get(index, out)

    def _get(self, index: int, out: Optional[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """:meth:`__getitem__` and :meth:`getitem_into`: the sample, or with skip_bad its replacement."""
        if self._setup_pid != os.getpid():
            self._process_setup()
        epoch = self.epoch
        try:
            return self.sample(index, epoch, out=out)
        except DataError as first:
            if not self.skip_bad:
                raise
            error: DataError = first
        for attempt in range(1, MAX_REPLACEMENTS + 1):
            self._count_bad(error, index, epoch)
            replacement = int(np.random.default_rng([self.seed, epoch, index, attempt]).integers(self.num))
            try:
                return self.sample(replacement, epoch, out=out)
            except DataError as e:
                error = e
        self._count_bad(error, index, epoch)
        raise DataError(f"sample {index} of epoch {epoch}: no readable replacement in {MAX_REPLACEMENTS} tries "
                           f"(last: {error})")

    def _count_bad(self, error: DataError, index: int, epoch: int) -> None:
        worker = torch.utils.data.get_worker_info()
        slot = 1 if worker is None else 2 + worker.id % (COUNTER_SLOTS - 1)
        self._shared[slot] += 1
        self.logger.warning("skipping bad sample %d of epoch %d: %s", index, epoch, error)

    def _process_setup(self) -> None:
        """Once per process (DataLoader workers are new processes): the malloc tuning of the module docstring.

        OpenCV's thread count is deliberately not changed here: `cv2.setNumThreads` in a forked worker whose parent
        already used OpenCV's thread pool deadlocks (OpenCV 5.0). A training script that wants single-threaded
        OpenCV in its workers calls ``cv2.setNumThreads(1)`` in the main process before starting them.
        """
        self._setup_pid = os.getpid()
        cv2.ocl.setUseOpenCL(False)
        if self.tune_malloc:
            tune_malloc()


def _label_mask(mask: Optional[np.ndarray], search_size: int, dest: Optional[np.ndarray]) -> np.ndarray:
    """(1, S, S) float32 mask label: +1 / -1 from the warped uint8 `mask`, all -1 without one; written into `dest`
    when it fits (:func:`~datasets.augmentation.fits_output`)."""
    shape = (1, search_size, search_size)
    into = fits_output(dest, shape)  # the caller's row: streaming stores (datasets.row_writes)
    label = dest if into else np.empty(shape, dtype=np.float32)
    if mask is None:
        fill_into(label, -1.0, stream=into)
    else:
        mask_label_into(mask, label[0], stream=into)
    return label


def tune_malloc(mmap_threshold: int = 8 << 20, trim_threshold: int = 64 << 20, heap_only: bool = False) -> bool:
    """Keep glibc from mmapping (and page-faulting) every buffer above 128 KB afresh: serve allocations below
    `mmap_threshold` from the heap and keep up to `trim_threshold` of freed heap. `heap_only` serves every size from
    the heap (no mmap at all), for a training process whose large tensors (activations, batches) come and go every
    step. Returns False where unsupported (not Linux, not glibc)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold, m_mmap_max = -1, -3, -4  # <malloc.h>
    ok = bool(mallopt(m_mmap_threshold, min(mmap_threshold, 32 << 20))) and bool(mallopt(m_trim_threshold,
                                                                                        trim_threshold))
    if heap_only:
        ok = bool(mallopt(m_mmap_max, 0)) and ok
    return ok


def build_train_dataset(cfg: Union[Config, DatasetsConfig], data_root: str = "data",
                        anchors_cfg: Optional[AnchorsConfig] = None, seed: int = 0, skip_bad: Optional[bool] = None,
                        logger: Optional[logging.Logger] = None) -> SiamMaskDataset:
    """The training set of an experiment.

    Args:
        cfg: a whole :class:`Config` (uses `train_datasets` and `anchors`) or a :class:`DatasetsConfig`.
        data_root: folder relative dataset paths are resolved against (`--data-root`).
        anchors_cfg: anchors; default: the Config's, or the original defaults for a bare DatasetsConfig.
        seed: the run's seed.
        skip_bad: replace unreadable samples (with a warning and a count) instead of raising; default from config.
        logger: where to log.

    Raises:
        DataError: the config has no train_datasets, or a sub-dataset is missing or malformed.
    """
    if isinstance(cfg, Config):
        if cfg.train_datasets is None:
            raise DataError(f"{cfg.source}: the config has no 'train_datasets' block")
        anchors_cfg = anchors_cfg or cfg.anchors
        cfg = cfg.train_datasets
    return SiamMaskDataset(cfg, os.fspath(data_root), anchors_cfg or AnchorsConfig(), seed=seed, skip_bad=skip_bad,
                           logger=logger)
