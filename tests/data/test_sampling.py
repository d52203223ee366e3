"""The one fixed-size resampler: exact counts, no repeats unless too few rows, all rows kept then."""

from __future__ import annotations

import numpy as np
import pytest

from pcgen.data.sampling import resample_index
from pcgen.errors import ShapeError


@pytest.mark.parametrize("n, count", [(10, 4), (10, 10), (50_000, 30_000)])
def test_enough_rows_is_a_subset_without_repeats(n, count):
    idx = resample_index(n, count, np.random.default_rng(0))
    assert idx.shape == (count,) and idx.dtype == np.int64
    assert len(np.unique(idx)) == count and idx.min() >= 0 and idx.max() < n
    # the same draw as numpy's subset without replacement, so existing seeds keep their samples
    assert np.array_equal(idx, np.random.default_rng(0).choice(n, count, replace=False))


def test_too_few_rows_keeps_every_row_then_repeats():
    idx = resample_index(10, 25, np.random.default_rng(0))
    assert idx.shape == (25,)
    assert sorted(idx[:10].tolist()) == list(range(10))  # each row once, shuffled
    assert idx[10:].min() >= 0 and idx[10:].max() < 10
    assert np.array_equal(np.bincount(idx, minlength=10) >= 1, np.ones(10, bool))


def test_indices_select_rows_and_are_seeded():
    pts = np.arange(30, dtype=np.float32).reshape(10, 3)
    a = pts[resample_index(len(pts), 25, np.random.default_rng(3))]
    b = pts[resample_index(len(pts), 25, np.random.default_rng(3))]
    assert np.array_equal(a, b) and {tuple(r) for r in a.tolist()} == {tuple(r) for r in pts.tolist()}


def test_empty_and_negative():
    assert resample_index(0, 0, np.random.default_rng(0)).shape == (0,)
    assert resample_index(5, 0, np.random.default_rng(0)).shape == (0,)
    with pytest.raises(ShapeError, match="empty"):
        resample_index(0, 3, np.random.default_rng(0))
    with pytest.raises(ShapeError):
        resample_index(5, -1, np.random.default_rng(0))
    with pytest.raises(ShapeError, match="whole numbers"):
        resample_index(5, 2.5, np.random.default_rng(0))  # gave 2 indices
    assert resample_index(np.int64(5), 3.0, np.random.default_rng(0)).shape == (3,)
