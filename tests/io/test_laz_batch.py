"""Decoding many LAZ files in one parallel call gives the bytes laspy gives file by file."""

from __future__ import annotations

import laspy
import lazrs
import numpy as np
import pytest

from pcgen import datadir
from pcgen.io.laz_batch import decode_many, parse_laz

NODES = datadir.data_dir() / "training" / "hawaii_ept" / "ept-data"
# one-chunk nodes and a two-chunk one (85 574 points: a full 50 000 chunk and a short last one)
NAMES = ["0-0-0-0", "1-0-0-0", "3-0-0-4", "4-0-1-8"]


def test_a_batch_decodes_to_laspys_bytes_file_by_file():
    files = [parse_laz((NODES / f"{n}.laz").read_bytes()) for n in NAMES]
    assert [len(f.table) for f in files] == [1, 1, 2, 1]
    assert files[2].table[0][0] == 50_000 and files[2].table[1][0] == 35_574
    got = decode_many(files)
    assert [len(a) for a in got] == [38716, 1648, 85574, 18850]
    for name, rows in zip(NAMES, got):
        ref = laspy.read(NODES / f"{name}.laz").points.array
        assert rows.dtype == ref.dtype and rows.tobytes() == ref.tobytes()
    assert "LasZipVlr" not in [type(v).__name__ for v in files[0].header.vlrs]


def test_a_broken_or_uncompressed_file_is_refused(tmp_path):
    data = (NODES / "3-0-0-4.laz").read_bytes()
    with pytest.raises((ValueError, lazrs.LazrsError)):  # its chunk table, at the end, is gone
        parse_laz(data[:len(data) // 2])
    las = tmp_path / "plain.las"
    laspy.read(NODES / "4-0-1-8.laz").write(las)
    with pytest.raises(ValueError, match="not a LAZ file"):
        parse_laz(las.read_bytes())
    assert decode_many([]) == []


def test_files_coded_differently_are_not_mixed(tmp_path):
    other = tmp_path / "other.laz"
    las = laspy.read(NODES / "4-0-1-8.laz")
    las.write(other)  # the same points, coded by laspy with its own LAZ settings
    a, b = parse_laz((NODES / "1-0-0-0.laz").read_bytes()), parse_laz(other.read_bytes())
    if a.vlr == b.vlr:
        pytest.skip("laspy wrote the same LAZ settings")
    with pytest.raises(ValueError, match="share one LAZ VLR"):
        decode_many([a, b])
    assert np.array_equal(decode_many([b])[0], las.points.array)
