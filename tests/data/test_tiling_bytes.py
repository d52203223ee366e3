"""Tiles are byte for byte what laspy's writer made before tiling wrote them itself.

`pcgen.data.tile_writer.TileWriter` serializes a file's tile header once and patches counts and
bounds per tile; these tests hold every output byte to the laspy-writer path it replaced.
"""

from __future__ import annotations

import hashlib

import laspy
import numpy as np
import pytest

from pcgen import datadir
from pcgen.data.tile_records import widen_records
from pcgen.data.tile_writer import TileWriter
from pcgen.data.tiling import TileOptions, _tile_header, tile_files
from pcgen.io.las import write_las_records

# SHA-256 over the sorted "<tile name> <SHA-256 of the tile>" lines of each run, computed with
# the laspy-writer tiling of commit 47e65de (laspy 2.7.0, lazrs 0.8.2). Together the cases cover
# LAS 1.1/1.2/1.4, point formats 1/3/6/8, extra-bytes dimensions with statistics, the added
# buffer dimension, multi-chunk LAZ tiles and lazrs' parallel coder (a 518 862-point tile).
# MixedConifer and the two-block file changed once since, inside the ExtraBytes VLR only: the
# file's own definitions (no_data, the second block's names) are kept where laspy rebuilt them.
# Files without a creation date (Megaplot.laz) are left out: laspy stamps today's date.
GOLDEN = [
    ("MixedConifer.laz", 20.0, 2.0, True, 25,
     "f448b826d5916940ea79c8c742d3527307e99cddeaf4bb435987c9deecd2675a"),
    ("las_with_several_extra_byte_bloc.laz", 100.0, 5.0, True, 13,
     "7dcd8f7e017f1069f27bb93ff873cef92175dc83f1c08cf69701600b779d4bfd"),
    ("test1_4.las", 50.0, 5.0, True, 11,
     "37dbff450daf1038835941fc9c3db54fc20aa3a87cfce9692a5b2dea8275ca97"),
    ("sample_c.las", 20.0, 0.0, False, 16,
     "5eabc8aabeeb1ce6398b4b255387280d0a0b0a61d06b5db73b8766e43ff34a6e"),
    ("autzen_trim.laz", 400.0, 0.0, True, 6,
     "ea4d3d40f82482cb2f9e9378b680ced5992b46dfef3f40085abdc362c7871081"),
    ("lone-star.laz", 1000.0, 0.0, True, 1,
     "244991aa3340cd0eed68d085d12462a438c4eecdfda6cb56eba95ac72a845bef"),
]


def _run_digest(folder) -> tuple[int, str]:
    tiles = sorted(p for p in folder.iterdir() if p.suffix in (".las", ".laz"))
    lines = "".join(f"{p.name} {hashlib.sha256(p.read_bytes()).hexdigest()}\n" for p in tiles)
    return len(tiles), hashlib.sha256(lines.encode()).hexdigest()


@pytest.mark.parametrize("name,size,buffer,compress,n_tiles,digest", GOLDEN,
                         ids=[g[0] for g in GOLDEN])
def test_tile_bytes_unchanged(tmp_path, name, size, buffer, compress, n_tiles, digest):
    out = tmp_path / "tiles"
    tile_files([datadir.data_dir() / "lidar" / name], out,
               TileOptions(size=size, buffer=buffer, compress=compress), overview=False)
    assert _run_digest(out) == (n_tiles, digest)


def test_spilled_tiles_have_the_same_bytes(tmp_path):
    name, size, buffer, compress, n_tiles, digest = GOLDEN[0]
    out = tmp_path / "tiles"
    tile_files([datadir.data_dir() / "lidar" / name], out,
               TileOptions(size=size, buffer=buffer, compress=compress, max_memory=1),
               overview=False)
    assert _run_digest(out) == (n_tiles, digest)


@pytest.mark.parametrize("path", datadir.lidar_files(), ids=lambda p: p.name)
@pytest.mark.parametrize("compress", [True, False], ids=["laz", "las"])
def test_tile_writer_matches_laspy_writer(tmp_path, path, compress):
    """Every shared file's header (versions, formats, VLRs, EVLRs, extra bytes) through both
    writers, on slices that differ in counts, bounds and returns."""
    las = laspy.read(path)
    header = _tile_header(las.header, with_buffer=True)
    rows = widen_records(las.points.array, header.point_format.dtype())
    rows["buffer"][::3] = 1
    writer = TileWriter(header, compress)
    for i, part in enumerate((rows[:1], rows[5:1500], rows[len(rows) // 2:len(rows) // 2 + 60_000])):
        ours, theirs = tmp_path / f"ours{i}", tmp_path / f"theirs{i}"
        writer.write(ours, part)
        write_las_records(theirs, header, [laspy.PackedPointRecord(part, header.point_format)],
                          compress=compress, laz_backend=laspy.LazBackend.Lazrs
                          if len(part) < 150_000 else None)
        assert ours.read_bytes() == theirs.read_bytes(), (path.name, i)
    back = laspy.read(tmp_path / "ours1")  # bytes: a file's own extra-bytes names may differ from laspy's
    assert back.points.array.tobytes() == rows[5:1500].tobytes()


@pytest.mark.parametrize("path", datadir.lidar_files(), ids=lambda p: p.name)
def test_tiles_written_together_match_tiles_written_alone(tmp_path, path):
    """write_many codes the one-chunk LAZ tiles of a batch as one parallel stream and cuts them
    apart; each file is still byte for byte what write makes of it alone (an empty tile and a
    tile of more than one chunk in the batch take write's own path)."""
    las = laspy.read(path)
    header = _tile_header(las.header, with_buffer=True)
    rows = widen_records(las.points.array, header.point_format.dtype())
    rows["buffer"][::5] = 1
    writer = TileWriter(header, compress=True)
    n = len(rows)
    parts = [rows[:1], rows[3:700], rows[0:0], rows[n // 3:n // 3 + 4000], rows[n // 2:n // 2 + 60_000],
             rows[-2500:]]
    writer.write_many([(tmp_path / f"many{i}.laz", p) for i, p in enumerate(parts)])
    for i, part in enumerate(parts):
        writer.write(tmp_path / f"one{i}.laz", part)
        assert (tmp_path / f"many{i}.laz").read_bytes() == (tmp_path / f"one{i}.laz").read_bytes(), (path.name, i)
    back = laspy.read(tmp_path / "many3.laz")
    assert back.points.array.tobytes() == rows[n // 3:n // 3 + 4000].tobytes()


def test_a_tile_that_cannot_be_written_is_named(tmp_path):
    from pcgen.data.tiling import tile_file
    from pcgen.errors import OutputError

    src = datadir.data_dir() / "lidar" / "MixedConifer.laz"
    options = TileOptions(size=20.0, buffer=0.0)
    (tmp_path / "first").mkdir()
    names = [t["name"] for t in tile_file(src, tmp_path / "first", options, None, "mc").tiles]
    (tmp_path / "first").rename(tmp_path / "second")
    blocked = tmp_path / "second" / names[len(names) // 2]
    blocked.unlink()
    blocked.mkdir()  # a folder where that tile goes
    with pytest.raises(OutputError, match="cannot write tile") as err:
        tile_file(src, tmp_path / "second", options, None, "mc")
    assert names[len(names) // 2] in str(err.value)
