"""A step-indexed sampler: which examples a batch holds depends only on (seed, batch number, rank).

Lightning restarts the dataloader iterator when it resumes mid-epoch, so a shuffling sampler
would replay the epoch from its start and a resumed run would see other batches than an
uninterrupted one. Deriving every position from the global batch number makes resume exact and
DDP sharding trivial (rank r takes the r-th slice of each global batch); it is also endless, so
``trainer.max_steps`` alone decides how long a run is.
"""

from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import Sampler


class StepSampler(Sampler[int]):
    """Yield dataset indices for global batches ``start_batch, start_batch + 1, ...`` forever.

    Each pass over the dataset is a fresh permutation seeded by ``(seed, pass number)``.

    Args:
        num_items: dataset length (> 0).
        batch_size: per-rank batch size.
        seed: base seed of the permutations.
        start_batch: first global batch to produce (the number already trained on).
        rank, world_size: this process's slice of each global batch.
        shuffle: False walks the dataset in order (validation-like use).
    """

    def __init__(self, num_items: int, batch_size: int, seed: int = 0, start_batch: int = 0,
                 rank: int = 0, world_size: int = 1, shuffle: bool = True):
        if num_items <= 0:
            raise ValueError("StepSampler needs a non-empty dataset")
        self.num_items = num_items
        self.batch_size = batch_size
        self.seed = seed
        self.start_batch = start_batch
        self.rank = rank
        self.world_size = world_size
        self.shuffle = shuffle
        self._perm_pass = -1
        self._perm: torch.Tensor | None = None

    def _permutation(self, pass_no: int) -> torch.Tensor:
        if pass_no != self._perm_pass:
            if self.shuffle:
                gen = torch.Generator().manual_seed(self.seed * 1_000_003 + pass_no)
                self._perm = torch.randperm(self.num_items, generator=gen)
            else:
                self._perm = torch.arange(self.num_items)
            self._perm_pass = pass_no
        return self._perm

    def index_at(self, position: int) -> int:
        """Dataset index of global sample ``position`` (0-based over the whole run)."""
        pass_no, offset = divmod(position, self.num_items)
        return int(self._permutation(pass_no)[offset])

    def __iter__(self) -> Iterator[int]:
        global_batch = self.batch_size * self.world_size
        batch = self.start_batch
        while True:
            base = batch * global_batch + self.rank * self.batch_size
            for j in range(self.batch_size):
                yield self.index_at(base + j)
            batch += 1
