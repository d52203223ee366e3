"""Corrupt, truncated and fake LAS/LAZ files raise one InputError naming the file."""

from __future__ import annotations

import re

import pytest

import pcgen.io as io
from pcgen import datadir
from pcgen.errors import InputError


def _make(tmp_path, kind):
    laz = datadir.lidar_file("Megaplot.laz").read_bytes()
    las = datadir.lidar_file("simple.las").read_bytes()
    data = {
        "truncated.laz": laz[: len(laz) // 2],
        "header_only.laz": laz[:120],
        "truncated.las": las[: len(las) // 2],
        "text.las": b"x,y,z\n1,2,3\n",
        "corrupt.laz": laz[:3000] + bytes(b ^ 0xA5 for b in laz[3000:9000]) + laz[9000:],
    }[kind]
    path = tmp_path / kind
    path.write_bytes(data)
    return path


KINDS = ["truncated.laz", "header_only.laz", "truncated.las", "text.las", "corrupt.laz"]
# files laspy reads on without a word: records the header does not count (dropped), and the
# extended VLRs of a LAS 1.4 file cut off by an interrupted copy (read as none)
SILENT = {"undercounted.las": "header says 1055 points but the file holds 1065 point records",
          "undercounted.laz": "header says 40000 points but the file holds at least 50001 point records",
          "evlrs_cut.las": "its 1 extended VLR(s) from byte 32305 run past the end of the file (32325 bytes)"}


def _silent(tmp_path, kind):
    import struct

    import laspy

    path = tmp_path / kind
    if kind == "evlrs_cut.las":
        las = laspy.read(datadir.lidar_file("test1_4.las"))
        las.evlrs = laspy.vlrs.vlrlist.VLRList([laspy.VLR("pcgen", 1, "a note", b"x" * 100)])
        las.write(tmp_path / "whole.las")
        data = (tmp_path / "whole.las").read_bytes()
        path.write_bytes(data[:32305 + 20])  # the points whole, the EVLR's header cut
        return path
    source = {"undercounted.las": "simple.las", "undercounted.laz": "Megaplot.laz"}[kind]
    data = bytearray(datadir.lidar_file(source).read_bytes())
    count = struct.unpack_from("<I", data, 107)[0]  # legacy point count (LAS 1.2)
    struct.pack_into("<I", data, 107, count - 10 if kind.endswith(".las") else 40000)
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("kind", sorted(SILENT))
def test_records_the_header_does_not_describe_are_refused(tmp_path, kind):
    path = _silent(tmp_path, kind)
    with pytest.raises(InputError, match=re.escape(SILENT[kind])) as err:
        io.read(path)
    assert err.value.path == str(path) and "\n" not in str(err.value)
    with pytest.raises(InputError, match=re.escape(SILENT[kind])):
        with io.open_chunks(path, 5000) as chunks:
            for _ in chunks:
                pass


@pytest.mark.parametrize("kind", KINDS)
def test_read_raises_input_error(tmp_path, kind):
    path = _make(tmp_path, kind)
    with pytest.raises(InputError) as err:
        io.read(path)
    assert err.value.path == str(path)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("kind", KINDS)
def test_chunks_raise_input_error(tmp_path, kind):
    path = _make(tmp_path, kind)
    with pytest.raises(InputError):
        with io.open_chunks(path, 5000) as chunks:
            for _ in chunks:
                pass


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        io.read(tmp_path / "nope.laz")
