"""COPC: bounds/resolution queries through `pcgen.io.read` against a brute-force filter.

No shared file is COPC and no maintained Python library writes COPC (laspy reads only;
copclib's wheels lag Python releases), so `_write_copc` builds one at test time from a real
LAS 1.4 / PDRF 6 file: the octree (a random level of detail per point, its key from its
position) is ours, the LAZ chunks are lazrs', and the reader under test is laspy's
``CopcReader``, which checks the layout the COPC specification fixes.
"""

from __future__ import annotations

import struct

import laspy
import lazrs
import numpy as np
import pytest

import pcgen.io as pio
from pcgen import datadir
from pcgen.errors import ConfigError, InputError

SOURCE = "spanner_ALS_Clip.laz"  # 29,915 points, LAS 1.4 / PDRF 6, NAD83(2011) UTM 12N
LEVEL_SIZES = (2_000, 8_000)  # points on levels 0 and 1; the rest go to level 2


def _source() -> laspy.LasData:
    return laspy.read(datadir.data_dir() / "training" / SOURCE)


def _write_copc(path, las: laspy.LasData, seed: int = 0) -> dict:
    """Write ``las`` (PDRF 6-8, LAS 1.4) as a 3-level COPC file; returns the octree it used."""
    xyz = np.c_[las.x, las.y, las.z]
    lo, hi = xyz.min(axis=0), xyz.max(axis=0)
    halfsize = float((hi - lo).max()) / 2 + 1.0
    center = (lo + hi) / 2
    root_min = center - halfsize
    spacing = 2 * halfsize / 32
    level = np.full(len(xyz), 2)
    order = np.random.default_rng(seed).permutation(len(xyz))
    level[order[:LEVEL_SIZES[0]]] = 0
    level[order[LEVEL_SIZES[0]:sum(LEVEL_SIZES)]] = 1
    nodes = {}
    for d in range(3):
        side = 2 * halfsize / 2 ** d
        cell = np.clip(np.floor((xyz - root_min) / side).astype(int), 0, 2 ** d - 1)
        for idx in np.flatnonzero(level == d):
            nodes.setdefault((d, *cell[idx].tolist()), []).append(idx)
    keys = sorted(nodes)

    fmt = las.header.point_format
    header = laspy.LasHeader(version="1.4", point_format=fmt)
    header.scales, header.offsets = las.header.scales, las.header.offsets
    header.add_crs(las.header.parse_crs())
    laz_vlr = lazrs.LazVlr.new_for_compression(fmt.id, fmt.num_extra_bytes, True)
    header.vlrs.insert(0, laspy.VLR("copc", 1, "copc info", bytes(160)))
    header.vlrs.append(laspy.VLR("laszip encoded", 22204, "lazrs", laz_vlr.record_data()))
    header.are_points_compressed = True
    header.point_count = len(xyz)
    header.mins, header.maxs = lo, hi
    records = las.points.array
    with open(path, "w+b") as fh:
        header.write_to(fh)
        data_start = fh.tell()
        compressor = lazrs.LasZipCompressor(fh, laz_vlr)
        compressor.reserve_offset_to_chunk_table()
        for i, key in enumerate(keys):
            if i:
                compressor.finish_current_chunk()  # one LAZ chunk per node
            compressor.compress_many(records[nodes[key]].tobytes())
        compressor.done()
        fh.seek(data_start)
        chunks = lazrs.read_chunk_table(fh, laz_vlr)
        assert [c[0] for c in chunks] == [len(nodes[k]) for k in keys]
        offset, page = data_start + 8, b""
        for key, (count, size) in zip(keys, chunks):
            page += struct.pack("<4iQ2i", *key, offset, size, count)
            offset += size
        fh.seek(0, 2)
        evlr_start = fh.tell()
        fh.write(struct.pack("<H16sHQ32s", 0, b"copc", 1000, len(page), b"copc hierarchy"))
        fh.write(page)
        gps = las.points["gps_time"]
        info = struct.pack("<3d2d2Q2d", *center, halfsize, spacing, evlr_start + 60, len(page),
                           float(gps.min()), float(gps.max())) + bytes(88)
        header.vlrs[0] = laspy.VLR("copc", 1, "copc info", info)
        header.start_of_first_evlr, header.number_of_evlrs = evlr_start, 1
        fh.seek(0)
        header.write_to(fh, ensure_same_size=True)
    return {"keys": keys, "level": level, "root_min": root_min, "halfsize": halfsize,
            "spacing": spacing}


@pytest.fixture(scope="module")
def copc(tmp_path_factory):
    las = _source()
    path = tmp_path_factory.mktemp("copc") / "als.copc.laz"
    octree = _write_copc(path, las)
    return path, las, octree


def _sorted_rows(array: np.ndarray) -> np.ndarray:
    void = np.ascontiguousarray(array).view(np.dtype((np.void, array.dtype.itemsize)))
    return np.sort(void)


def test_generated_file_is_copc_and_whole_read_is_exact(copc, tmp_path):
    path, las, _ = copc
    assert pio.is_copc(path) and not pio.is_copc(datadir.data_dir() / "training" / SOURCE)
    whole = pio.read(path)  # no query: the plain LAZ path
    assert len(whole) == len(las.points)
    assert np.array_equal(_sorted_rows(whole.to_record().array), _sorted_rows(las.points.array))
    pio.write(whole, tmp_path / "copy.laz")  # laspy cannot write COPC VLRs: they are dropped
    assert pio.read(tmp_path / "copy.laz").to_record().array.tobytes() == \
        whole.to_record().array.tobytes()
    with pio.open_chunks(path, 10_000) as chunks:
        assert not any(v.user_id == "copc" for v in chunks.header.vlrs)
        assert sum(len(c) for c in chunks) == len(las.points)


@pytest.mark.parametrize("frac", [(0.0, 0.0, 0.3, 0.4), (0.25, 0.5, 0.75, 1.0), (0.6, 0.1, 0.61, 0.12)])
def test_bounds_query_matches_brute_force(copc, frac):
    path, las, _ = copc
    xyz = np.c_[las.x, las.y, las.z]
    lo, hi = xyz.min(axis=0), xyz.max(axis=0)
    box = (lo[0] + frac[0] * (hi[0] - lo[0]), lo[1] + frac[1] * (hi[1] - lo[1]),
           lo[0] + frac[2] * (hi[0] - lo[0]), lo[1] + frac[3] * (hi[1] - lo[1]))
    inside = (xyz[:, 0] >= box[0]) & (xyz[:, 0] <= box[2]) & \
        (xyz[:, 1] >= box[1]) & (xyz[:, 1] <= box[3])
    got = pio.read(path, bounds=box)
    assert len(got) == inside.sum() > 0
    assert np.array_equal(_sorted_rows(got.to_record().array),
                          _sorted_rows(las.points.array[inside]))
    assert got.crs == las.header.parse_crs()
    # the result is plain LAZ: no COPC VLR that would promise an octree it does not have
    assert not any(v.user_id == "copc" for v in got.header.vlrs)
    assert not any(v.user_id == "copc" for v in (got.header.evlrs or []))


def test_3d_bounds_filter_z(copc):
    path, las, _ = copc
    xyz = np.c_[las.x, las.y, las.z]
    lo, hi = xyz.min(axis=0), xyz.max(axis=0)
    zmid = float(np.median(xyz[:, 2]))
    box = (lo[0], lo[1], zmid, hi[0], hi[1], hi[2])
    got = pio.read(path, bounds=box)
    assert len(got) == int((xyz[:, 2] >= zmid).sum())
    assert got.xyz[:, 2].min() >= zmid


def test_resolution_keeps_only_the_needed_levels(copc):
    path, las, octree = copc
    spacing = octree["spacing"]
    level = octree["level"]
    # spacing itself: level 0 only; half of it: levels 0-1; a quarter: all three
    assert len(pio.read(path, resolution=spacing)) == int((level == 0).sum()) == LEVEL_SIZES[0]
    assert len(pio.read(path, resolution=spacing / 2)) == int((level <= 1).sum())
    assert len(pio.read(path, resolution=spacing / 4)) == len(las.points)


def test_written_query_result_reads_back(copc, tmp_path):
    path, _, _ = copc
    got = pio.read(path, resolution=1e9)
    pio.write(got, tmp_path / "q.laz")
    back = pio.read(tmp_path / "q.laz")
    assert not pio.is_copc(tmp_path / "q.laz")
    assert back.to_record().array.tobytes() == got.to_record().array.tobytes()


def test_errors(copc, tmp_path):
    path, las, _ = copc
    with pytest.raises(InputError, match="miss the data"):
        pio.read(path, bounds=(0, 0, 1, 1))
    with pytest.raises(ConfigError, match="bounds must be"):
        pio.read(path, bounds=(0, 1, 2))
    with pytest.raises(ConfigError, match="resolution must be a finite number > 0"):
        pio.read(path, resolution=0)
    plain = datadir.data_dir() / "training" / SOURCE
    with pytest.raises(ConfigError, match="needs an octree"):
        pio.read(plain, resolution=1.0)
    broken = tmp_path / "broken.copc.laz"
    broken.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(InputError, match="broken.copc.laz"):
        pio.read(broken, bounds=(las.x.min(), las.y.min(), las.x.max(), las.y.max()))


def test_bounds_crop_plain_files_too(copc):
    _, las, _ = copc
    plain = datadir.data_dir() / "training" / SOURCE
    box = (float(np.median(las.x)), float(las.y.min()), float(las.x.max()), float(np.median(las.y)))
    inside = (las.x >= box[0]) & (las.x <= box[2]) & (las.y >= box[1]) & (las.y <= box[3])
    got = pio.read(plain, bounds=box)
    assert len(got) == int(inside.sum()) > 0
    assert got.to_record().array.tobytes() == las.points.array[np.asarray(inside)].tobytes()
    with pytest.raises(InputError, match="miss the data"):
        pio.read(plain, bounds=(0, 0, 1, 1))


def test_tile_a_copc_file(copc, tmp_path):
    from pcgen.data.tiling import TileOptions, tile_files

    path, las, _ = copc
    out = tmp_path / "tiles"
    index = tile_files([path], out, TileOptions(size=10, buffer=0), overview=False)
    tiles = [laspy.read(out / f["properties"]["name"]) for f in index["features"]]
    assert len(tiles) >= 9
    for tile in tiles:  # plain LAZ tiles: no COPC info VLR or hierarchy EVLR carried over
        assert not any(v.user_id == "copc" for v in [*tile.header.vlrs, *tile.header.evlrs])
    rows = np.concatenate([t.points.array for t in tiles])
    assert np.array_equal(_sorted_rows(rows), _sorted_rows(las.points.array))
    # named after the file without ".copc": a tile is plain LAZ, not part of an octree
    assert all(f["properties"]["name"].startswith("als_") for f in index["features"])


def test_an_output_named_copc_is_refused_before_anything_is_written(copc, tmp_path):
    from pcgen.cli import main
    from pcgen.errors import OutputError

    path, las, _ = copc
    cloud = pio.read(path, bounds=(las.x.min(), las.y.min(), las.x.min() + 5, las.y.min() + 5))
    with pytest.raises(OutputError, match="not COPC; name the output part.laz"):
        pio.write(cloud, tmp_path / "part.copc.laz")
    assert main(["fill", str(path), str(tmp_path / "filled.COPC.LAZ"), "--baseline", "mirror"]) == 2
    assert list(tmp_path.iterdir()) == []


def test_filling_a_folder_names_the_output_of_a_copc_file_laz(copc, tmp_path):
    import os

    from pcgen.cli import main

    path, las, _ = copc
    src = tmp_path / "in"
    src.mkdir()
    os.symlink(path, src / path.name)
    assert main(["fill", str(src), str(tmp_path / "out"), "--baseline", "mirror", "--quiet"]) == 0
    (out,) = (tmp_path / "out").glob("*.laz")
    assert out.name == "als.laz" and not pio.is_copc(out)
    assert len(pio.read(out)) >= len(las.points)


def test_tiling_a_copc_file_in_strips_writes_the_bytes_of_one_job(copc, tmp_path):
    import hashlib

    from pcgen.data.tile_strips import plan_strips
    from pcgen.data.tiling import TileOptions, tile_files

    path, las, _ = copc  # 27 x 26 m: 14 columns of 2 m tiles
    options = dict(size=2.0, buffer=0.5, voxel=0.1, min_points=20)
    strips = plan_strips(path, 2.0, 10_000, False)
    assert len(strips) == 3 and strips[1].hi - strips[1].lo >= 4
    one = tile_files([path], tmp_path / "one", TileOptions(**options), overview=False)
    split = tile_files([path], tmp_path / "split", TileOptions(**options, job_points=10_000),
                       overview=False)

    def digest(folder):
        return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob("*.laz")}

    assert digest(tmp_path / "split") == digest(tmp_path / "one")
    assert len(digest(tmp_path / "one")) == len(one["features"]) > 100
    assert split["features"] == one["features"]
    assert split["properties"]["sources"] == one["properties"]["sources"]
    assert one["properties"]["sources"][0]["points"] == len(las.points)


def test_a_strip_over_no_points_is_an_empty_job(copc, tmp_path):
    from pcgen.data.tile_strips import Strip
    from pcgen.data.tiling import FileResult, TileOptions, tile_file

    path, las, _ = copc
    x, y = float(np.median(las.x)) + 0.0003, float(np.median(las.y)) + 0.0003
    box = (x, y, x + 0.0004, y + 0.0004)  # inside the data's extent, holding no point
    assert not ((las.x >= box[0]) & (las.x <= box[2]) & (las.y >= box[1]) & (las.y <= box[3])).any()
    col = int(np.floor(x / 2.0))
    empty = tile_file(path, tmp_path, TileOptions(size=2.0, buffer=0.5),
                      strip=Strip(col, col + 1, box))
    assert (empty.points, empty.tiles, list(tmp_path.iterdir())) == (0, [], [])
    # merged with a strip that read points, the empty one adds nothing
    other = FileResult(source=empty.source, points=5, crs="EPSG:1", counts=np.ones((2, 2)),
                       zmax=np.zeros((2, 2)))
    merged = FileResult.merge([empty, other])
    assert (merged.points, merged.crs, int(merged.counts.sum())) == (5, "EPSG:1", 4)


def test_tiling_a_copc_file_whose_octree_lies_past_the_end_names_it(copc, tmp_path):
    import struct

    from pcgen.data.tiling import TileOptions, tile_files

    path, _, _ = copc
    data = bytearray(path.read_bytes())
    at = 375 + 54 + 40  # LAS 1.4 header, the COPC info VLR's header, centre/halfsize/spacing
    assert struct.unpack_from("<Q", data, at)[0] < len(data)  # the root hierarchy page offset
    struct.pack_into("<Q", data, at, 10 ** 15)
    bad = tmp_path / "bad.copc.laz"
    bad.write_bytes(bytes(data))
    with pytest.raises(InputError, match="bad.copc.laz.*not a readable COPC file"):
        tile_files([bad], tmp_path / "tiles", TileOptions(size=10, buffer=0), overview=False)
    assert not (tmp_path / "tiles").exists()


def test_a_resolution_given_as_text_reaches_the_reader_as_a_number(copc):
    path, las, _ = copc
    assert len(pio.read(path, resolution="2")) == len(pio.read(path, resolution=2.0)) > 0


def test_a_copc_file_cut_off_in_its_hierarchy_is_named_even_read_whole(copc, tmp_path):
    """An interrupted download keeps every point but loses the octree at the end: the whole
    read (which never needs the octree) read it as a good file."""
    path, _, _ = copc
    cut = tmp_path / "cut.copc.laz"
    cut.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(InputError, match=r"cut.copc.laz: truncated: its 1 extended VLR\(s\) from byte \d+ run past"):
        pio.read(cut)
    with pytest.raises(InputError, match="truncated"):
        with pio.open_chunks(cut, 10_000) as chunks:
            list(chunks)
