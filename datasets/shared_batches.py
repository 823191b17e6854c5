"""DataLoader batches through reused shared memory: workers fill a few fixed buffers, the main process copies out.

PyTorch's default collate in a worker puts every batch in *new* shared memory, which the worker and then the main
process fault in page by page. A batch of 32 SiamMask samples is ~42 MB (the float32 search crops), and on
virtual machines a page fault can cost ~10 us, as much per sample as decoding its two JPEGs. Here each worker
owns ``prefetch_factor + 1`` batch buffers in shared memory, made once (on first use) and sent to the main process
once; afterwards a worker copies a batch's samples into a free buffer of its own and sends only a small token, and
the main process copies the batch out into ordinary (reused) memory and frees the buffer. The batches are the
same tensors as the default collate's (same keys, shapes, dtypes and values), and each one is the caller's own
memory, so keeping batches (``list(loader)``) is safe. When a worker finds no free buffer, or a sample is not a
dict of numpy arrays / tensors, it falls back to the default collate.

Usage::

    loader = SharedBatchLoader(dataset, batch_size=32, num_workers=2, ...)   # DataLoader arguments
    for batch in loader: ...
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterator, Optional

import numpy as np
import torch
from torch.utils.data import DataLoader, get_worker_info
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


class _SlotCollate:
    """The collate function run in the workers (picklable: the free flags are a shared tensor)."""

    def __init__(self, free: torch.Tensor, per_worker: int, batch_size: int) -> None:
        self.free, self.per_worker, self.batch_size = free, per_worker, batch_size
        self.buffers: dict[int, tuple[tuple, dict[str, torch.Tensor]]] = {}  # this worker's: slot -> (layout, ...)
        self.pid = -1

    def __call__(self, samples: list[Any]) -> Any:
        info = get_worker_info()
        layout = _layout(samples)
        if info is None or layout is None or len(samples) > self.batch_size:
            return default_collate(samples)
        if self.pid != os.getpid():  # a new worker process (a fork copies the parent's dict)
            self.pid, self.buffers = os.getpid(), {}
        first = info.id * self.per_worker
        slot = next((s for s in range(first, first + self.per_worker) if self.free[s]), None)
        if slot is None:
            return default_collate(samples)
        self.free[slot] = 0  # only this worker takes its slots; the main process frees them after copying out
        known = self.buffers.get(slot)
        fresh = known is None or known[0] != layout
        if fresh:
            buffers = {k: torch.empty((self.batch_size, *shape), dtype=dtype).share_memory_()
                       for k, shape, dtype in layout}
            self.buffers[slot] = (layout, buffers)
        else:
            buffers = known[1]
        for k in buffers:
            out = buffers[k].numpy()
            for i, sample in enumerate(samples):
                value = sample[k]
                out[i] = value.numpy() if torch.is_tensor(value) else value
        return _Token(slot, len(samples), buffers if fresh else None)


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


class SharedBatchLoader:
    """A DataLoader whose worker batches travel through reused shared-memory buffers (module docstring).

    Takes DataLoader's arguments (``collate_fn`` must be left unset); with ``num_workers=0`` it is a plain DataLoader.
    The main process's glibc mmap threshold is raised to :data:`MAX_MMAP_THRESHOLD` so that the copied-out batches
    reuse freed heap memory instead of fresh pages.
    """

    def __init__(self, dataset: Any, batch_size: int = 1, num_workers: int = 0, prefetch_factor: Optional[int] = None,
                 pin_memory: bool = False, **kwargs: Any) -> None:
        if "collate_fn" in kwargs:
            raise ValueError("SharedBatchLoader uses its own collate_fn")
        self.slots: dict[int, dict[str, torch.Tensor]] = {}
        self.pin_memory = bool(pin_memory) and num_workers > 0
        collate = default_collate
        if num_workers > 0:
            per_worker = (prefetch_factor or 2) + 1
            self.free = torch.ones(num_workers * per_worker, dtype=torch.uint8).share_memory_()
            collate = _SlotCollate(self.free, per_worker, batch_size)
            tune_malloc(MAX_MMAP_THRESHOLD, 4 * MAX_MMAP_THRESHOLD)
        self.loader = DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=collate,
                                 prefetch_factor=prefetch_factor, pin_memory=bool(pin_memory) and num_workers == 0,
                                 **kwargs)

    def __len__(self) -> int:
        return len(self.loader)

    @property
    def dataset(self) -> Any:
        return self.loader.dataset

    @property
    def sampler(self) -> Any:
        return self.loader.sampler

    def __iter__(self) -> Iterator[Any]:
        for item in self.loader:
            if not isinstance(item, _Token):
                yield pin_memory(item) if self.pin_memory else item
                continue
            if item.buffers is not None:
                self.slots[item.slot] = item.buffers
            buffers = self.slots[item.slot]
            if self.pin_memory:  # page-locked copies (PyTorch caches page-locked memory)
                batch = {k: v[:item.size].pin_memory() for k, v in buffers.items()}
            else:
                batch = {k: v[:item.size].clone() for k, v in buffers.items()}
            self.free[item.slot] = 1
            yield batch
