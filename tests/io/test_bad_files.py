"""Corrupt, truncated and fake LAS/LAZ files raise one InputError naming the file."""

from __future__ import annotations

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
