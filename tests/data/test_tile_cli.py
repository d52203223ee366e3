"""`pcgen tile` end to end: outputs, parallel runs (processes, Dask), and every bad input
giving one line naming the problem, exit 2 and no output left behind."""

from __future__ import annotations

import json
import os
import shutil

import laspy
import numpy as np
import pytest

import pcgen.io as io
from pcgen import datadir
from pcgen.cli import main


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir())


def test_cli_writes_tiles_index_overview(tmp_path, capsys):
    src = datadir.lidar_file("MixedConifer.laz")
    out = tmp_path / "out"
    assert main(["tile", str(src), str(out), "--size", "30", "--buffer", "3",
                 "--ground-normalize", "--min-points", "10"]) == 0
    assert "tiles" in capsys.readouterr().out
    index = json.loads((out / "tile_index.geojson").read_text())
    assert index["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::26912"
    names = {f["properties"]["name"] for f in index["features"]}
    assert names == {p.name for p in out.glob("*.laz")}
    assert (out / "overview.png").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def _two_files(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("4_6_crop.las", "sample_c.las", "warsaw_small.las"):
        shutil.copy(datadir.lidar_file(name), folder / name)
    return folder


def _tile_bytes(out):
    return {p.name: io.read(p).to_record().array.tobytes() for p in sorted(out.glob("*.laz"))}


def test_process_pool_matches_serial(tmp_path):
    folder = _two_files(tmp_path)
    shutil.copy(datadir.lidar_file("MixedConifer.laz"), folder / "MixedConifer.laz")
    # decode LAZ here first: lazrs' thread pool in the parent must not deadlock the workers
    assert len(io.read(folder / "MixedConifer.laz")) == 37657
    assert main(["tile", str(folder), str(tmp_path / "a"), "--size", "50", "--buffer", "5"]) == 0
    assert main(["tile", str(folder), str(tmp_path / "b"), "--size", "50", "--buffer", "5",
                 "--workers", "2", "--no-overview"]) == 0
    a, b = _tile_bytes(tmp_path / "a"), _tile_bytes(tmp_path / "b")
    assert a == b and len(a) > 3


def test_dask_local_cluster_matches_serial(tmp_path):
    distributed = pytest.importorskip("distributed")
    folder = _two_files(tmp_path)
    assert main(["tile", str(folder), str(tmp_path / "a"), "--size", "50", "--buffer", "5",
                 "--no-overview"]) == 0
    with distributed.LocalCluster(n_workers=1, processes=False, threads_per_worker=2,
                                  dashboard_address=None) as cluster:
        assert main(["tile", str(folder), str(tmp_path / "b"), "--size", "50", "--buffer", "5",
                     "--no-overview", "--dask", cluster.scheduler_address]) == 0
    assert _tile_bytes(tmp_path / "a") == _tile_bytes(tmp_path / "b")


def test_dask_workers_read_and_write_the_users_paths(tmp_path, monkeypatch):
    """Relative paths were sent as typed, and a worker in another folder read a same-named file
    of its own (or none): tile and fill must give what they give without Dask."""
    distributed = pytest.importorskip("distributed")

    user, elsewhere = tmp_path / "user", tmp_path / "worker"
    user.mkdir(), elsewhere.mkdir()
    shutil.copy(datadir.lidar_file("Megaplot.laz"), user / "same.laz")
    shutil.copy(datadir.lidar_file("simple.las"), elsewhere / "same.laz")  # what the worker would find
    monkeypatch.chdir(elsewhere)
    with distributed.LocalCluster(n_workers=1, processes=True, threads_per_worker=1,
                                  dashboard_address=None) as cluster:
        monkeypatch.chdir(user)
        assert main(["tile", "same.laz", "local", "--size", "50", "--no-overview"]) == 0
        assert main(["tile", "same.laz", "dask", "--size", "50", "--no-overview",
                     "--dask", cluster.scheduler_address]) == 0
        tile = "local/" + sorted(p.name for p in (user / "local").glob("*.laz"))[0]
        assert main(["fill", tile, "f_local.laz", "--baseline", "mirror", "-q"]) == 0
        assert main(["fill", tile, "f_dask.laz", "--baseline", "mirror", "-q", "--dask",
                     cluster.scheduler_address]) == 0
    assert _tile_bytes(user / "local") == _tile_bytes(user / "dask")
    assert (user / "f_local.laz").read_bytes() == (user / "f_dask.laz").read_bytes()
    assert sorted(os.listdir(elsewhere)) == ["same.laz"]  # nothing written in the worker's folder


# -- bad input ----------------------------------------------------------------------------------
def _bad_file(tmp_path, kind):
    laz = datadir.lidar_file("Megaplot.laz").read_bytes()
    path = tmp_path / kind
    if kind == "truncated.laz":
        path.write_bytes(laz[: len(laz) // 2])
    elif kind == "corrupt.laz":
        path.write_bytes(laz[:3000] + bytes(b ^ 0xA5 for b in laz[3000:9000]) + laz[9000:])
    elif kind == "text.las":
        path.write_text("x y z\n1 2 3\n")
    elif kind == "empty.las":
        cloud = io.read(datadir.lidar_file("simple.las"))
        io.write(cloud.select(np.zeros(len(cloud), bool)), path)
    elif kind == "header_only.las":
        path.write_bytes(datadir.lidar_file("simple.las").read_bytes()[:300])
    elif kind == "undercounted.las":  # ten records the header does not count: read, they were lost
        data = bytearray(datadir.lidar_file("simple.las").read_bytes())
        data[107:111] = (1055).to_bytes(4, "little")
        path.write_bytes(bytes(data))
    elif kind == "own_buffer.las":  # a user's float dimension named like pcgen's buffer flag
        las = laspy.read(datadir.lidar_file("simple.las"))
        las.add_extra_dim(laspy.ExtraBytesParams("buffer", "f4"))
        las["buffer"] = np.full(len(las.points), 3.5, np.float32)
        las.write(path)
    return path


@pytest.mark.parametrize("kind, problem", [
    ("truncated.laz", "not a readable LAS/LAZ file"),
    ("corrupt.laz", "not a readable LAS/LAZ file"),
    ("text.las", "Invalid file signature"),
    ("empty.las", "contains no points"),
    ("header_only.las", "truncated: header says 1065 points, file holds 2"),
    ("own_buffer.las", "has a dimension 'buffer' of its own"),
    ("undercounted.las", "header says 1055 points but the file holds 1065 point records"),
])
def test_bad_input_files(tmp_path, capsys, kind, problem):
    bad = _bad_file(tmp_path, kind)
    good = datadir.lidar_file("warsaw_small.las")
    out = tmp_path / "out"
    # the good file first: a failure after some tiles were written must still leave nothing
    code = main(["tile", str(good), str(bad), str(out), "--size", "20", "--buffer", "2"])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pcgen tile: error: ")
    assert str(bad) in lines[0] and problem in lines[0]
    assert "Traceback" not in err
    assert not out.exists()
    assert _leftovers(tmp_path) == [kind]  # no output folder, no temporary folder


def _crafted_header(path, scales=(0.01, 0.01, 0.01), nan_bounds=False):
    """A small LAS written by laspy with the given scales; ``nan_bounds`` overwrites the
    header's bounding box with NaN after the points are written (laspy fills it on write)."""
    header = laspy.LasHeader(point_format=3, version="1.2")
    header.scales, header.offsets = np.array(scales, dtype=float), np.zeros(3)
    points = laspy.ScaleAwarePointRecord.zeros(50, header=header)
    for dim in ("X", "Y", "Z"):
        points.array[dim] = np.arange(50) * 100
    with np.errstate(all="ignore"), laspy.open(path, mode="w", header=header) as writer:
        writer.write_points(points)
        if nan_bounds:
            writer.header.mins = np.full(3, np.nan)
            writer.header.maxs = np.full(3, np.nan)
    return path


@pytest.mark.filterwarnings("error::RuntimeWarning")  # no NaN may reach the grid arithmetic
@pytest.mark.parametrize("craft, problem", [
    (dict(scales=(np.nan, 0.01, 0.01)), "header X scale nan is not a usable scale"),
    (dict(scales=(0.01, 0.0, 0.01)), "header Y scale 0.0 is not a usable scale"),
    (dict(nan_bounds=True), "header bounding box [nan, nan, nan, nan, nan, nan]"),
])
def test_bad_header_refused_before_anything_is_written(tmp_path, capsys, monkeypatch, craft,
                                                       problem):
    import pcgen.atomic

    bad = _crafted_header(tmp_path / "bad.las", **craft)
    before = bad.read_bytes()
    staged = []
    real = pcgen.atomic.atomic_dir
    monkeypatch.setattr(pcgen.atomic, "atomic_dir", lambda *a, **k: staged.append(a) or real(*a, **k))
    good = datadir.lidar_file("warsaw_small.las")
    out = tmp_path / "out"
    code = main(["tile", str(good), str(bad), str(out), "--size", "20", "--workers", "2"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith(f"pcgen tile: error: {bad}: ") and problem in err, err
    assert staged == []  # refused while reading headers: no staging folder was ever made
    assert _leftovers(tmp_path) == ["bad.las"]
    assert bad.read_bytes() == before


def test_ply_input_rejected(tmp_path, capsys):
    ply = tmp_path / "c.ply"
    io.write(io.read(datadir.lidar_file("simple.las")), ply)
    assert main(["tile", str(ply), str(tmp_path / "out")]) == 2
    assert "not a .las/.laz file" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("args, problem", [
    (["--size", "0"], "argument --size: must be >= 0.01"),
    (["--size", "-5"], "argument --size: must be >= 0.01"),
    (["--size", "0.0001"], "argument --size: must be >= 0.01"),
    (["--size", "nan"], "argument --size: must be a finite number"),
    (["--size", "10", "--buffer", "10"], "must be smaller than the tile size"),
    (["--size", "10", "--buffer", "25"], "must be smaller than the tile size"),
    (["--buffer", "-1"], "argument --buffer: must be >= 0"),
    (["--voxel", "0"], "argument --voxel: must be >= 1e-06"),
    (["--voxel", "1e-300"], "argument --voxel: must be >= 1e-06"),
    (["--workers", "0"], "argument --workers: must be >= 1"),
    (["--max-memory", "nan"], "argument --max-memory: must be a finite number"),
    (["--min-points", "-1"], "argument --min-points: must be >= 0"),
    (["--dask", "notanaddress"], "argument --dask: not a Dask scheduler address"),
])
def test_bad_options(tmp_path, capsys, args, problem):
    out = tmp_path / "out"
    code = main(["tile", str(datadir.lidar_file("simple.las")), str(out), *args])
    err = capsys.readouterr().err
    assert code == 2 and problem in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_unwritable_output(tmp_path, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    out = blocker / "tiles"
    assert main(["tile", str(datadir.lidar_file("simple.las")), str(out)]) == 2
    err = capsys.readouterr().err
    assert str(blocker) in err and len(err.strip().splitlines()) == 1
    assert blocker.read_text() == "not a folder"


def test_non_empty_output_needs_overwrite(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    src = str(datadir.lidar_file("warsaw_small.las"))
    assert main(["tile", src, str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert _leftovers(out) == ["keep.txt"]
    assert main(["tile", src, str(out), "--overwrite"]) == 0
    assert "keep.txt" in _leftovers(out) and (out / "keep.txt").read_text() == "mine"  # never pcgen's to remove


def test_missing_input(tmp_path, capsys):
    assert main(["tile", str(tmp_path / "nope.laz"), str(tmp_path / "out")]) == 2
    assert "nope.laz: file not found" in capsys.readouterr().err


def test_quiet_prints_nothing(tmp_path, capsys):
    assert main(["tile", str(datadir.lidar_file("simple.las")), str(tmp_path / "t"), "--size", "50",
                 "--no-overview", "-q"]) == 0
    assert capsys.readouterr() == ("", "") and len(list((tmp_path / "t").glob("*.laz"))) > 0


def test_bounds_tile_an_area_of_interest(tmp_path, capsys):
    """Only the box's points are tiled, its edges half-open as the tiles' cores are; an EPT dataset
    gives the same bytes as one job and as strips on two workers; an input it misses gives no tile."""
    ept = datadir.data_dir() / "training" / "hawaii_ept" / "ept.json"
    box = (202400.0, 2184400.0, 202600.0, 2184600.0)  # 4 x 4 tiles of 50 m
    text = ",".join(f"{v:g}" for v in box)
    assert main(["tile", str(ept), str(tmp_path / "a"), "--size", "50", "--bounds", text, "-q"]) == 0
    assert main(["tile", str(ept), str(tmp_path / "b"), "--size", "50", "--bounds", text, "--job-points",
                 "200000", "--workers", "2", "-q"]) == 0
    tiles = sorted(p.name for p in (tmp_path / "a").glob("*.laz"))
    assert len(tiles) == 16 and tiles == sorted(p.name for p in (tmp_path / "b").glob("*.laz"))
    assert all((tmp_path / "a" / n).read_bytes() == (tmp_path / "b" / n).read_bytes() for n in tiles)
    xyz = io.read(ept, bounds=box).xyz
    inside = (xyz[:, 0] < box[2]) & (xyz[:, 1] < box[3])
    index = json.loads((tmp_path / "a" / "tile_index.geojson").read_text())
    assert sum(f["properties"]["core_points"] for f in index["features"]) == inside.sum()
    # plain files: MixedConifer and Megaplot lie far apart; a box in the first skips the second
    conifer, megaplot = datadir.lidar_file("MixedConifer.laz"), datadir.lidar_file("Megaplot.laz")
    src = io.read(conifer).xyz
    lo = src.min(0)
    edges = [round(v, 2) for v in (lo[0] + 10, lo[1] + 10, lo[0] + 70, lo[1] + 70)]
    text = ",".join(f"{v:.2f}" for v in edges)
    assert main(["tile", str(conifer), str(megaplot), str(tmp_path / "c"), "--size", "30", "--buffer", "0",
                 "--bounds", text, "-q"]) == 0
    got = np.concatenate([io.read(p).xyz for p in (tmp_path / "c").glob("*.laz")])
    want = src[(src[:, 0] >= edges[0]) & (src[:, 0] < edges[2]) & (src[:, 1] >= edges[1]) & (src[:, 1] < edges[3])]
    assert len(got) == len(want) and np.array_equal(np.unique(got, axis=0), np.unique(want, axis=0))
    assert all(p.name.startswith("MixedConifer_") for p in (tmp_path / "c").glob("*.laz"))
    capsys.readouterr()
    assert main(["tile", str(conifer), str(megaplot), str(tmp_path / "d"), "--bounds", "0,0,1,1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "pcgen tile: error: bounds (0, 0, 1, 1) hold no point of the 2 inputs"
    assert not (tmp_path / "d").exists()
    assert main(["tile", str(conifer), str(tmp_path / "e"), "--bounds", "1,2,3"]) == 2
    assert "argument --bounds: wants XMIN,YMIN,XMAX,YMAX" in capsys.readouterr().err
