"""Operations on raw LAS point records (numpy structured rows in the file's own layout).

Tiling moves points as raw bytes so untouched points leave bit-identical; these helpers
decode the few fields tiling needs and gather, join and widen records without a per-field copy.
"""

from __future__ import annotations

import laspy
import numpy as np


def decode_coords(rows: np.ndarray, scales, offsets, axes=(0, 1)) -> list[np.ndarray]:
    names = ("X", "Y", "Z")
    return [rows[names[a]] * scales[a] + offsets[a] for a in axes]


def decode_classification(rows: np.ndarray, fmt: laspy.PointFormat) -> np.ndarray:
    record = laspy.PackedPointRecord(rows, fmt)
    return np.asarray(record["classification"])


def take_records(rows: np.ndarray, index) -> np.ndarray:
    """``rows[index]`` through a void view: numpy gathers odd-sized packed records ~10x
    faster as opaque bytes than field by field."""
    void = np.dtype((np.void, rows.dtype.itemsize))
    return np.ascontiguousarray(rows).view(void)[index].view(rows.dtype)


def concat_records(core: np.ndarray, bands: list[np.ndarray]) -> np.ndarray:
    if not bands:
        return core
    void = np.dtype((np.void, core.dtype.itemsize))
    return np.concatenate([np.ascontiguousarray(a).view(void) for a in (core, *bands)]).view(
        core.dtype)


def widen_records(rows: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Source records in the tile layout (source fields + a trailing u1 ``buffer`` = 0).

    Done once per chunk so tiles are written without another copy of their core points.
    LAS puts extra bytes after the standard fields, so the source bytes are a prefix of each
    widened record: one block copy, where laspy's ``PackedPointRecord.from_point_record``
    copies (and for bit fields unpacks and repacks) dimension by dimension.
    """
    if rows.dtype == dtype:
        return rows
    out = np.zeros(len(rows), dtype=dtype)
    src = np.ascontiguousarray(rows)
    out.view(np.uint8).reshape(len(rows), dtype.itemsize)[:, :rows.dtype.itemsize] = \
        src.view(np.uint8).reshape(len(rows), rows.dtype.itemsize)
    return out


def decoded_bounds(rows: np.ndarray, scales, offsets) -> list[float]:
    """``[xmin, ymin, zmin, xmax, ymax, zmax]`` of the decoded coordinates of non-empty
    ``rows``, from the integer extremes: decoding is monotonic, so this equals the extremes of
    the decoded points without decoding them all."""
    lo, hi = [], []
    for a, name in enumerate(("X", "Y", "Z")):
        v = rows[name]
        ends = (v.min() * scales[a] + offsets[a], v.max() * scales[a] + offsets[a])
        lo.append(float(min(ends)))
        hi.append(float(max(ends)))
    return lo + hi
