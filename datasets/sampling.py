"""Lazy, seeded pick schedule: which video sample (epoch, index) trains on, without a materialised pick list.

Ports the index space of the original `DataSets.shuffle` / `SubDataSet.shuffle` (datasets/siam_mask_dataset.py):
the original built, once per process, a pick list of ``num * epochs`` entries (12 million for the base recipe, in
every DataLoader worker and every rank). It was a stream of *rounds*; each round pools, for every sub-dataset,
``num_use`` video indices taken from shuffled full passes over its videos, and shuffles the pool; an epoch is the
next ``num`` entries of the stream.

This module keeps that distribution and computes any entry in O(1) from the seed: each shuffle is a keyed
pseudo-random permutation (a 4-round Feistel network with cycle walking), so nothing is stored, every process
agrees, and resuming at epoch k continues the same stream.
"""
from __future__ import annotations

import bisect
import functools
from dataclasses import dataclass
from typing import Sequence

_M64 = (1 << 64) - 1


def splitmix64(x: int) -> int:
    """The splitmix64 finaliser: a well-mixed 64-bit hash of a 64-bit integer."""
    z = (x + 0x9E3779B97F4A7C15) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def derive_key(*parts: int) -> int:
    """A 64-bit key from a sequence of integers (order matters)."""
    h = 0x243F6A8885A308D3
    for p in parts:
        h = splitmix64(h ^ (p & _M64))
    return h


@functools.lru_cache(maxsize=1024)
def _round_keys(key: int) -> tuple[int, int, int, int]:
    return key, splitmix64(key ^ 1), splitmix64(key ^ 2), splitmix64(key ^ 3)


@functools.lru_cache(maxsize=4096)
def derive_key_cached(*parts: int) -> int:
    """:func:`derive_key` with a small cache (a schedule asks for the same few keys again and again)."""
    return derive_key(*parts)


def permute(x: int, n: int, key: int) -> int:
    """Image of `x` under a keyed pseudo-random permutation of ``range(n)``.

    A balanced Feistel network on the smallest even number of bits covering n, cycle-walked back into range
    (expected fewer than 4 steps). For fixed (n, key) this is a bijection of range(n).
    """
    if not 0 <= x < n:
        raise IndexError(f"{x} is outside range({n})")
    if n == 1:
        return 0
    half = max(1, ((n - 1).bit_length() + 1) // 2)
    mask = (1 << half) - 1
    round_keys = _round_keys(key)
    while True:
        left, right = x >> half, x & mask
        for rk in round_keys:
            left, right = right, left ^ (splitmix64(right ^ rk) & mask)
        x = (left << half) | right
        if x < n:
            return x


@dataclass(frozen=True)
class PickSchedule:
    """Maps a global sample position to (sub-dataset, video) like the original's pick stream.

    Args:
        num_videos: videos per sub-dataset (each > 0).
        num_use: picks per sub-dataset per round (each > 0; more than num_videos repeats full shuffled passes).
        seed: the run's seed.
    """

    num_videos: tuple[int, ...]
    num_use: tuple[int, ...]
    seed: int

    def __post_init__(self) -> None:
        if len(self.num_videos) != len(self.num_use) or not self.num_videos:
            raise ValueError("num_videos and num_use must be non-empty and of equal length")
        if min(self.num_videos) <= 0 or min(self.num_use) <= 0:
            raise ValueError("every sub-dataset needs at least one video and num_use > 0")

    @property
    def round_length(self) -> int:
        """Entries per round: the sum of num_use."""
        return sum(self.num_use)

    def _offsets(self) -> list[int]:
        out = [0]
        for n in self.num_use:
            out.append(out[-1] + n)
        return out

    def pick(self, position: int) -> tuple[int, int]:
        """(sub-dataset index, video index) of the stream entry at `position` (>= 0)."""
        length = self.round_length
        rnd, offset = divmod(position, length)
        slot = permute(offset, length, derive_key_cached(self.seed, 0x706F6F6C, rnd))  # 'pool'
        offsets = self._offsets()
        k = bisect.bisect_right(offsets, slot) - 1
        j = slot - offsets[k]
        n = self.num_videos[k]
        full_pass, within = divmod(j, n)
        return k, permute(within, n, derive_key_cached(self.seed, 0x737562, k, rnd, full_pass))  # 'sub'

    def picks(self, positions: Sequence[int]) -> list[tuple[int, int]]:
        """`pick` for several positions."""
        return [self.pick(p) for p in positions]
