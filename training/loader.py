"""The training loader of one epoch: a DistributedSampler (also for one process, so 1 and N processes take the same
order) whose ``set_epoch`` is called every epoch, per-rank batches, the last partial batch dropped, and the first
batches skipped when a run resumes inside an epoch. Worker batches come through reused shared-memory buffers
(:class:`~datasets.shared_batches.SharedBatchLoader`: the same batches, without faulting in fresh memory for each).
"""
from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import Dataset, DistributedSampler, Sampler

from ..datasets.shared_batches import SharedBatchLoader
from ..utils.runtime import Runtime, worker_init_fn


class _SkipSampler(Sampler[int]):
    """Yields a base sampler's indices after dropping the first `skip` (resuming in the middle of an epoch)."""

    def __init__(self, base: DistributedSampler, skip: int) -> None:
        self.base, self.skip = base, skip

    def __iter__(self) -> Iterator[int]:
        for i, index in enumerate(self.base):
            if i >= self.skip:
                yield index

    def __len__(self) -> int:
        return max(len(self.base) - self.skip, 0)


def steps_per_epoch(dataset_len: int, batch: int, world_size: int) -> int:
    """Iterations per epoch and rank: ``len // (batch * world)`` (the Ascend port's ``num_per_epoch``)."""
    return (dataset_len // world_size) // batch


def build_train_loader(dataset: Dataset, batch: int, workers: int, runtime: Runtime, epoch: int, seed: int,
                       skip_batches: int = 0) -> SharedBatchLoader:
    """The loader of one epoch: rank `r` of `w` takes samples r, r+w, r+2w, ... of the epoch, in batches of `batch`.

    The dataset is deterministic per (seed, epoch, index) and its ``set_epoch`` is called here, so the sample order is
    already random and the sampler does not shuffle again; its ``set_epoch`` is still called every epoch. With
    `skip_batches` the first batches of this rank are left out (resume in the middle of an epoch).
    """
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(epoch)
    sampler: Sampler[int] = DistributedSampler(dataset, num_replicas=runtime.world_size, rank=runtime.rank,
                                               shuffle=False, seed=seed, drop_last=True)
    sampler.set_epoch(epoch)
    if skip_batches:
        sampler = _SkipSampler(sampler, skip_batches * batch)
    generator = torch.Generator()
    generator.manual_seed(seed * 1000 + epoch * 100 + runtime.rank)
    return SharedBatchLoader(dataset, batch_size=batch, sampler=sampler, num_workers=workers, drop_last=True,
                             pin_memory=runtime.device.type == "cuda",
                             worker_init_fn=worker_init_fn if workers else None, generator=generator)
