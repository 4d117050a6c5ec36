"""The order of training items: a fresh permutation per epoch from (seed, epoch), shared by every
process, which takes its own share of it.

With ``world`` processes, process ``rank`` takes every ``world``-th item of the permutation from
position ``start + rank`` on, so the processes' batches at one step together are one contiguous slice
of the permutation (``batch_size * world`` items) and never overlap. One process reads the
permutation in order, as before. ``start`` (a multiple of ``batch_size * world``) resumes mid-epoch.

Length bucketing (``buckets`` > 1, with the items' lengths): the permutation's full batches are taken
``buckets`` at a time, sorted by length within that run and cut into batches again, and the batches'
order is shuffled. A batch then holds clips of similar length and pads little (a batch is padded to its
longest clip), while every item is still seen once per epoch and the order stays a pure function of
(seed, epoch), so that resume and several processes work as without it.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Sampler


class EpochSampler(Sampler[int]):
    def __init__(
        self, size: int, seed: int, rank: int = 0, world: int = 1, *, batch_size: int = 1, buckets: int = 0
    ) -> None:
        self.size = size
        self.seed = seed
        self.rank = rank
        self.world = world
        self.batch_size = batch_size
        self.buckets = buckets
        self.lengths: np.ndarray | None = None  # the items' lengths this epoch (bucketing needs them)
        self.epoch = 0
        self.start = 0

    def order(self) -> torch.Tensor:
        """This epoch's order of all items (every process the same)."""
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.size, generator=g)
        if self.buckets <= 1 or self.lengths is None:
            return order
        if len(self.lengths) != self.size:
            raise ValueError(f"{len(self.lengths)} lengths for {self.size} items")
        step = self.batch_size * self.world
        full = self.size // step * step  # items past the last full batch are left out as before
        lengths = torch.as_tensor(np.asarray(self.lengths, dtype=np.int64))
        run = step * self.buckets
        batches = []
        for begin in range(0, full, run):
            part = order[begin : min(begin + run, full)]
            part = part[torch.argsort(lengths[part], stable=True)]
            batches.extend(part.split(step))
        shuffled = [batches[i] for i in torch.randperm(len(batches), generator=g).tolist()]
        return torch.cat([*shuffled, order[full:]])

    def __iter__(self) -> Iterator[int]:
        order = self.order()[self.start + self.rank :: self.world]
        yield from order[: len(self)].tolist()

    def __len__(self) -> int:
        return (self.size - self.start) // self.world  # every process the same number of items
