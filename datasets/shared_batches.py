"""DataLoader batches through reused shared memory: workers write samples into a few fixed buffers in place, and
the main process hands out views of them.

PyTorch's default collate in a worker puts every batch in *new* shared memory, which the worker and then the main
process fault in page by page. A batch of 32 SiamMask samples is ~42 MB (the float32 search crops), and on
virtual machines a page fault can cost ~10 us, as much per sample as decoding its two JPEGs. Here each worker
owns ``prefetch_factor + 2`` batch buffers ("slots") in shared memory, made once (on first use) and sent to the main
process once; afterwards it sends only a small token per batch:

* worker side: the first batch of a worker goes the normal way (samples, then copied into a slot), which tells the
  worker the batch layout (keys, shapes, dtypes). From then on the DataLoader's fetcher calls the wrapped dataset's
  ``__getitems__``, which takes a free slot and has the dataset write each sample into its row of the slot
  (``getitem_into(index, {key: row})``, e.g. :meth:`SiamMaskDataset.getitem_into
  <datasets.siam_mask_dataset.SiamMaskDataset.getitem_into>`; through ``Subset`` chains); only the arrays the dataset
  did not write in place are copied there. A dataset without ``getitem_into`` is read with ``dataset[index]`` and
  copied in. A sample whose layout differs from the slot's sends the batch the copying way again;
* main side: the batch is a dict of tensors that are views of the slot's buffers, no copy. The slot goes back to
  its worker once no view of it (nor any tensor or array made from one) is alive anymore: the buffers' storage use
  counts (``torch._C._storage_Use_Count``) are recorded just before the views are made and compared at every
  ``next`` (before the next batch is pulled) and when an iteration ends. So a batch the caller keeps
  (``list(loader)``) keeps its slot, and is never overwritten; a worker that finds none of its slots free falls
  back to the default collate. Where that private function is missing, the batch is copied out and the slot freed
  at once, and with `pin_memory` it is copied to page-locked memory and freed at once.

The batches are the same tensors as the default collate's (same keys, shapes, dtypes and values). When a sample is
not a dict of numpy arrays / CPU tensors, or the batches are ragged, everything goes through the default collate.
The slot state lives in one object that serves as the collate function and is held by the dataset wrapper (fork
shares it; spawn pickles both in one message, which keeps them one object).

Usage::

    loader = SharedBatchLoader(dataset, batch_size=32, num_workers=2, ...)   # DataLoader arguments
    for batch in loader: ...
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, Subset, get_worker_info
from torch.utils.data._utils.collate import default_collate
from torch.utils.data._utils.pin_memory import pin_memory

from .siam_mask_dataset import tune_malloc

#: glibc's largest mmap threshold (64-bit): allocations below it come from the reused heap, not fresh pages.
MAX_MMAP_THRESHOLD = 32 << 20


@dataclass(frozen=True)
class _Token:
    """What a worker sends for a batch in buffer `slot`: its size, and the buffers themselves on first use."""

    slot: int
    size: int
    buffers: Optional[dict[str, torch.Tensor]] = None


class _SlotWriter:
    """A worker's slots: the collate function run in the workers, and the in-place filling of
    :class:`_InPlaceDataset` (picklable: the free flags are a shared tensor)."""

    def __init__(self, free: torch.Tensor, per_worker: int, batch_size: int) -> None:
        self.free, self.per_worker, self.batch_size = free, per_worker, batch_size
        self.buffers: dict[int, tuple[tuple, dict[str, torch.Tensor]]] = {}  # this worker's: slot -> (layout, ...)
        self.layout: Optional[tuple] = None  # of the last batch this worker put in a slot
        self.pid = -1

    def _this_process(self) -> None:
        if self.pid != os.getpid():  # a new worker process (a fork copies the parent's state)
            self.pid, self.buffers, self.layout = os.getpid(), {}, None

    def _take_slot(self, worker: int) -> Optional[int]:
        """A free slot of `worker`, now marked busy (only this worker takes its slots; the main process frees them)."""
        first = worker * self.per_worker
        slot = next((s for s in range(first, first + self.per_worker) if self.free[s]), None)
        if slot is not None:
            self.free[slot] = 0
        return slot

    def _slot_buffers(self, slot: int, layout: tuple) -> tuple[dict[str, torch.Tensor], bool]:
        """The buffers of `slot` for `layout` (made anew when the slot has none or another layout), and whether new."""
        known = self.buffers.get(slot)
        if known is not None and known[0] == layout:
            return known[1], False
        buffers = {k: torch.empty((self.batch_size, *shape), dtype=dtype).share_memory_() for k, shape, dtype in layout}
        self.buffers[slot] = (layout, buffers)
        return buffers, True

    def __call__(self, samples: Any) -> Any:
        """Collate: a token from :meth:`fill` passes through; samples are copied into a free slot, else
        default-collated."""
        if isinstance(samples, _Token):
            return samples
        info = get_worker_info()
        layout = _layout(samples)
        if info is None or layout is None or len(samples) > self.batch_size:
            return default_collate(samples)
        self._this_process()
        slot = self._take_slot(info.id)
        if slot is None:
            return default_collate(samples)
        buffers, fresh = self._slot_buffers(slot, layout)
        for k in buffers:
            out = buffers[k].numpy()
            for i, sample in enumerate(samples):
                value = sample[k]
                out[i] = value.numpy() if torch.is_tensor(value) else value
        self.layout = layout
        return _Token(slot, len(samples), buffers if fresh else None)

    def fill(self, dataset: Any, indices: Sequence[int]) -> Any:
        """The samples of `indices`, written in place into a free slot (a :class:`_Token`) once this worker knows the
        batch layout; else (no layout yet, no free slot, not in a worker, a sample of another layout) the list of
        samples, for :meth:`__call__`."""
        info = get_worker_info()
        self._this_process()
        layout = self.layout
        if info is None or layout is None or len(indices) > self.batch_size:
            return [dataset[i] for i in indices]
        slot = self._take_slot(info.id)
        if slot is None:
            return [dataset[i] for i in indices]
        try:
            buffers, fresh = self._slot_buffers(slot, layout)
            rows = {k: v.numpy() for k, v in buffers.items()}
            read = _sample_reader(dataset)
            samples: list[dict] = []
            for i, index in enumerate(indices):
                dest = {k: rows[k][i] for k in rows}
                sample = read(index, dest)
                samples.append(sample)
                if not _fits(sample, dest, buffers):  # keys, shapes and dtypes of the slot's layout
                    self.free[slot] = 1
                    kept = [{k: _own(v, rows) for k, v in got.items()} for got in samples]
                    return kept + [dataset[j] for j in indices[i + 1:]]
                for k, value in sample.items():
                    if not _is_array(value, dest[k]):
                        dest[k][...] = value.numpy() if torch.is_tensor(value) else value
        except BaseException:
            self.free[slot] = 1
            raise
        return _Token(slot, len(indices), buffers if fresh else None)


class _InPlaceDataset(Dataset):
    """The dataset the DataLoader sees: the caller's, plus a ``__getitems__`` that fills a slot in place."""

    def __init__(self, dataset: Any, writer: _SlotWriter) -> None:
        self.dataset, self.writer = dataset, writer

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        return self.dataset[index]

    def __getitems__(self, indices: list[int]) -> Any:
        """A batch for the collate function: a :class:`_Token` of a filled slot, or the list of samples."""
        return self.writer.fill(self.dataset, indices)


def _sample_reader(dataset: Any) -> Callable[[int, dict[str, np.ndarray]], Any]:
    """``read(index, dest)``: sample `index` of `dataset`, through the innermost dataset's ``getitem_into(i, dest)``
    (``Subset`` indices mapped) where it has one, else ``dataset[index]``."""
    inner, chain = dataset, []
    while isinstance(inner, Subset):
        chain.append(inner.indices)
        inner = inner.dataset
    into = getattr(inner, "getitem_into", None)
    if not callable(into):
        return lambda index, dest: dataset[index]

    def read(index: int, dest: dict[str, np.ndarray]) -> Any:
        for indices in chain:
            index = indices[index]
        return into(index, dest)
    return read


def _fits(sample: Any, dest: dict[str, np.ndarray], buffers: dict[str, torch.Tensor]) -> bool:
    """Whether `sample` has the slot's layout: the keys of `dest` in order, each value a numpy array / CPU tensor of
    its row's shape and dtype (a cheap per-sample check; the layout itself comes from :func:`_layout`)."""
    if not isinstance(sample, dict) or len(sample) != len(dest):
        return False
    for (key, value), (want, row) in zip(sample.items(), dest.items()):
        if key != want:
            return False
        if isinstance(value, np.ndarray):
            if value.shape != row.shape or value.dtype != row.dtype:
                return False
        elif not (torch.is_tensor(value) and value.device.type == "cpu" and tuple(value.shape) == row.shape
                  and value.dtype == buffers[key].dtype):
            return False
    return True


def _is_array(value: Any, dest: np.ndarray) -> bool:
    """Whether `value` (array or tensor) is `dest` itself: the same memory, shape and element type, contiguous."""
    if value is dest:
        return True
    if torch.is_tensor(value):
        return (value.device.type == "cpu" and value.is_contiguous() and value.data_ptr() == dest.ctypes.data
                and tuple(value.shape) == dest.shape and value.element_size() == dest.itemsize)
    return (isinstance(value, np.ndarray) and value.ctypes.data == dest.ctypes.data and value.shape == dest.shape
            and value.strides == dest.strides and value.dtype == dest.dtype)


def _own(value: Any, rows: dict[str, np.ndarray]) -> Any:
    """`value`, copied when it may lie in a slot's buffers `rows` (a slot given back)."""
    array = value.detach().numpy() if torch.is_tensor(value) and value.device.type == "cpu" else value
    if isinstance(array, np.ndarray) and any(np.may_share_memory(array, r) for r in rows.values()):
        return value.clone() if torch.is_tensor(value) else array.copy()
    return value


def _layout(samples: list[Any]) -> Optional[tuple]:
    """((key, shape, torch dtype), ...) shared by all samples, or None (not dicts of CPU arrays, or ragged)."""
    first = samples[0] if samples else None
    if not isinstance(first, dict) or not first:
        return None
    layout = []
    for key, value in first.items():
        if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
            dtype = torch.from_numpy(np.empty(0, dtype=value.dtype)).dtype
        elif torch.is_tensor(value) and value.device.type == "cpu":
            dtype = value.dtype
        else:
            return None
        layout.append((key, tuple(value.shape), dtype))
    for sample in samples[1:]:
        if not isinstance(sample, dict) or list(sample) != list(first):
            return None
        for (key, shape, _), value in zip(layout, sample.values()):
            same_kind = isinstance(value, type(first[key])) and value.dtype == first[key].dtype
            if not same_kind or tuple(value.shape) != shape:
                return None
    return tuple(layout)


def _storage_use_count(tensor: torch.Tensor) -> int:
    """References to `tensor`'s storage (each tensor, view or storage object made from it holds one)."""
    return _USE_COUNT(tensor.untyped_storage()._cdata)


_USE_COUNT: Optional[Callable[[int], int]] = getattr(torch._C, "_storage_Use_Count", None)


class SharedBatchLoader:
    """A DataLoader whose worker batches are written in place into reused shared-memory buffers (module docstring).

    Takes DataLoader's arguments (``collate_fn`` must be left unset); with ``num_workers=0`` it is a plain DataLoader.
    The main process's glibc mmap threshold is raised to :data:`MAX_MMAP_THRESHOLD` so that batches copied out
    (`pin_memory`, or the default collate's fallback) reuse freed heap memory instead of fresh pages.
    """

    def __init__(self, dataset: Any, batch_size: int = 1, num_workers: int = 0, prefetch_factor: Optional[int] = None,
                 pin_memory: bool = False, **kwargs: Any) -> None:
        if "collate_fn" in kwargs:
            raise ValueError("SharedBatchLoader uses its own collate_fn")
        self._dataset = dataset
        self.slots: dict[int, dict[str, torch.Tensor]] = {}  # slot -> its buffers, as the main process knows them
        #: slots whose batch may still be in use: slot -> [(buffer, storage use count before the views were made)]
        self.held: dict[int, list[tuple[torch.Tensor, int]]] = {}
        self.pin_memory = bool(pin_memory) and num_workers > 0
        collate: Callable[[Any], Any] = default_collate
        loaded = dataset
        if num_workers > 0:
            per_worker = (prefetch_factor or 2) + 2  # the batch the caller holds, and the one given back at next()
            self.free = torch.ones(num_workers * per_worker, dtype=torch.uint8).share_memory_()
            writer = _SlotWriter(self.free, per_worker, batch_size)
            collate = writer
            if not isinstance(dataset, IterableDataset):
                loaded = _InPlaceDataset(dataset, writer)
            tune_malloc(MAX_MMAP_THRESHOLD, 4 * MAX_MMAP_THRESHOLD)
        self.loader = DataLoader(loaded, batch_size=batch_size, num_workers=num_workers, collate_fn=collate,
                                 prefetch_factor=prefetch_factor, pin_memory=bool(pin_memory) and num_workers == 0,
                                 **kwargs)

    def __len__(self) -> int:
        return len(self.loader)

    @property
    def dataset(self) -> Any:
        """The caller's dataset."""
        return self._dataset

    @property
    def sampler(self) -> Any:
        return self.loader.sampler

    def release(self) -> int:
        """Give back to their workers the held slots whose batches are no longer referenced; returns how many."""
        done = [slot for slot, tracked in self.held.items()
                if all(_storage_use_count(buffer) <= count for buffer, count in tracked)]
        for slot in done:
            del self.held[slot]
            self.free[slot] = 1
        return len(done)

    def _batch(self, token: _Token) -> dict[str, torch.Tensor]:
        """The batch in `token`'s slot: views of it (slot held), or with pin_memory / no use counts, a copy."""
        if token.buffers is not None:
            self.slots[token.slot] = token.buffers
        buffers = self.slots[token.slot]
        if self.pin_memory:  # page-locked copies (PyTorch caches page-locked memory)
            batch = {k: v[:token.size].pin_memory() for k, v in buffers.items()}
        elif _USE_COUNT is None:
            batch = {k: v[:token.size].clone() for k, v in buffers.items()}
        else:
            self.held[token.slot] = [(v, _storage_use_count(v)) for v in buffers.values()]
            return {k: v[:token.size] for k, v in buffers.items()}
        self.free[token.slot] = 1
        return batch

    def __iter__(self) -> Iterator[Any]:
        batch: Any = None
        self.release()
        batches = iter(self.loader)
        try:
            while True:
                self.release()  # before the next batch: its worker may be waiting for a slot
                try:
                    item = next(batches)
                except StopIteration:
                    return
                if isinstance(item, _Token):
                    batch = self._batch(item)
                else:
                    batch = pin_memory(item) if self.pin_memory else item
                del item
                yield batch
                batch = None
        finally:
            batch = None  # noqa: F841 (drop this frame's reference before looking)
            self.release()
