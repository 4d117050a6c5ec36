"""The order of training items: a fresh permutation per epoch from (seed, epoch), shared by every
process, which takes its own share of it.

With ``world`` processes, process ``rank`` takes every ``world``-th item of the permutation from
position ``start + rank`` on, so the processes' batches at one step together are one contiguous slice
of the permutation (``batch_size * world`` items) and never overlap. One process reads the
permutation in order, as before. ``start`` (a multiple of ``batch_size * world``) resumes mid-epoch.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


class EpochSampler(Sampler[int]):
    def __init__(self, size: int, seed: int, rank: int = 0, world: int = 1) -> None:
        self.size = size
        self.seed = seed
        self.rank = rank
        self.world = world
        self.epoch = 0
        self.start = 0

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.size, generator=g)[self.start + self.rank :: self.world]
        yield from order[: len(self)].tolist()

    def __len__(self) -> int:
        return (self.size - self.start) // self.world  # every process the same number of items
