"""StepSampler: batches depend only on (seed, batch number, rank), which makes resume and DDP exact."""

from __future__ import annotations

import itertools

from pcgen.train.sampler import StepSampler


def _take(sampler, n):
    return list(itertools.islice(iter(sampler), n))


def test_passes_are_permutations_and_differ():
    s = StepSampler(10, batch_size=5, seed=3)
    first, second = _take(s, 20)[:10], _take(s, 20)[10:]
    assert sorted(first) == sorted(second) == list(range(10))
    assert first != second  # a fresh permutation per pass


def test_start_batch_continues_the_same_stream():
    full = _take(StepSampler(7, batch_size=3, seed=1), 30)
    resumed = _take(StepSampler(7, batch_size=3, seed=1, start_batch=4), 18)
    assert resumed == full[12:30]


def test_ranks_split_each_global_batch():
    single = _take(StepSampler(12, batch_size=4, seed=0), 24)
    r0 = _take(StepSampler(12, batch_size=2, seed=0, rank=0, world_size=2), 12)
    r1 = _take(StepSampler(12, batch_size=2, seed=0, rank=1, world_size=2), 12)
    for b in range(6):
        assert r0[2 * b:2 * b + 2] + r1[2 * b:2 * b + 2] == single[4 * b:4 * b + 4]


def test_unshuffled_walks_in_order():
    assert _take(StepSampler(4, batch_size=2, shuffle=False), 6) == [0, 1, 2, 3, 0, 1]


def test_pass_indexed_redraws_per_pass_and_reaches_wrapped_datasets():
    from torch.utils.data import Subset

    from pcgen.train.sampler import PassIndexed

    class Draws:
        epoch = 0

        def set_epoch(self, e):
            self.epoch = e

        def __len__(self):
            return 3

        def __getitem__(self, i):
            return (i, self.epoch)

    data = PassIndexed(Subset(Draws(), [2, 0, 1]))
    sampler = StepSampler(3, batch_size=3, seed=0, encode_pass=True)
    got = [data[v] for v in _take(sampler, 9)]
    assert sorted(got[:3]) == [(0, 0), (1, 0), (2, 0)]
    assert sorted(got[3:6]) == [(0, 1), (1, 1), (2, 1)]
    assert sorted(got[6:]) == [(0, 2), (1, 2), (2, 2)]
