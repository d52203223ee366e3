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
from torch.utils.data import Dataset, Sampler


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
        encode_pass: yield ``pass * num_items + index`` instead of ``index``, for a
            :class:`PassIndexed` dataset that redraws its random choices (point sampling,
            augmentation, gaps) on every pass.
    """

    def __init__(self, num_items: int, batch_size: int, seed: int = 0, start_batch: int = 0,
                 rank: int = 0, world_size: int = 1, shuffle: bool = True,
                 encode_pass: bool = False):
        if num_items <= 0:
            raise ValueError("StepSampler needs a non-empty dataset")
        self.num_items = num_items
        self.batch_size = batch_size
        self.seed = seed
        self.start_batch = start_batch
        self.rank = rank
        self.world_size = world_size
        self.shuffle = shuffle
        self.encode_pass = encode_pass
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
        index = int(self._permutation(pass_no)[offset])
        return pass_no * self.num_items + index if self.encode_pass else index

    def __iter__(self) -> Iterator[int]:
        global_batch = self.batch_size * self.world_size
        batch = self.start_batch
        while True:
            base = batch * global_batch + self.rank * self.batch_size
            for j in range(self.batch_size):
                yield self.index_at(base + j)
            batch += 1


def set_epoch(dataset: Dataset, epoch: int) -> None:
    """Call ``set_epoch`` on ``dataset`` and on every dataset it wraps (Subset, GapDataset, ...)."""
    seen = set()
    while dataset is not None and id(dataset) not in seen:
        seen.add(id(dataset))
        if hasattr(dataset, "set_epoch"):
            dataset.set_epoch(epoch)
        dataset = getattr(dataset, "dataset", None) or getattr(dataset, "tile_dataset", None)


class PassIndexed(Dataset):
    """Wrap a dataset so index ``pass * len + i`` means item ``i`` as drawn in pass ``pass``.

    Lightning only tells samplers about epochs, and an endless sampler has none; encoding the
    pass in the index reaches the dataset in whichever worker process loads the item, so random
    point sampling, augmentation and gaps change every pass yet stay a function of the index.
    """

    def __init__(self, dataset: Dataset):
        self.dataset = dataset
        self._pass = -1

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, virtual_index: int):
        pass_no, index = divmod(int(virtual_index), len(self.dataset))
        if pass_no != self._pass:
            set_epoch(self.dataset, pass_no)
            self._pass = pass_no
        return self.dataset[index]
