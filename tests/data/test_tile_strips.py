"""An EPT dataset over ``job_points`` tiles as strips of columns, with the bytes of one job."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

import pcgen.io as pio
from pcgen import datadir
from pcgen.data.tile_strips import MIN_COLUMNS, Strip, plan_strips
from pcgen.data.tiling import TileOptions, tile_files
from pcgen.errors import ConfigError

EPT = datadir.data_dir() / "training" / "hawaii_ept"


def _shallow(tmp_path, depth: int = 1):
    """The shared dataset cut below ``depth``: a smaller valid EPT (node files symlinked)."""
    root = tmp_path / "ds"
    (root / "ept-hierarchy").mkdir(parents=True)
    (root / "ept-data").mkdir()
    hierarchy = {k: v for k, v in json.loads((EPT / "ept-hierarchy" / "0-0-0-0.json").read_text())
                 .items() if int(k.split("-")[0]) <= depth}
    meta = json.loads((EPT / "ept.json").read_text())
    meta["points"] = sum(hierarchy.values())
    (root / "ept.json").write_text(json.dumps(meta))
    (root / "ept-hierarchy" / "0-0-0-0.json").write_text(json.dumps(hierarchy))
    for name in hierarchy:
        (root / "ept-data" / f"{name}.laz").symlink_to(EPT / "ept-data" / f"{name}.laz")
    return root / "ept.json", meta["points"]


def _digest(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob("*.laz")}


def test_the_shared_dataset_splits_in_two_at_its_middle_column():
    # 14.1 M points in two strips of about 7 M: the balanced cut is the column at x = 202450
    left, right = plan_strips(EPT, 50.0, 7_100_000, False)
    assert (left.lo, left.hi, right.lo, right.hi) == (None, 4049, 4049, None)
    # each reads one more column beyond its cut, all of y: 201998-202500 and 202400-203002
    assert left.box == (201998.0, 2183998.0, 202500.0, 2185002.0)
    assert right.box == (202400.0, 2183998.0, 203002.0, 2185002.0)
    strips = plan_strips(EPT, 50.0, 3_000_000, False)
    assert len(strips) == 5 and strips[0].lo is None and strips[-1].hi is None
    assert all(a.hi == b.lo for a, b in zip(strips, strips[1:]))
    assert all(s.hi - s.lo >= MIN_COLUMNS for s in strips[1:-1])
    # the strips hold about equal shares of the points (read from the node files' records)
    x = pio.read(EPT, resolution=8.0).xyz[:, 0]  # the shallow nodes: a thin, even sample
    shares = [s.owns(np.floor(x / 50.0).astype(np.int64)).mean() for s in strips]
    assert sum(shares) == pytest.approx(1.0)
    assert max(shares) < 0.3 and min(shares) > 0.1


def test_one_job_when_small_normalized_or_not_ept(tmp_path):
    assert plan_strips(EPT, 50.0, 20_000_000, False) == [None]  # 14.1 M points: one job
    assert plan_strips(EPT, 50.0, 1_000_000, True) == [None]  # one ground surface for all
    assert plan_strips(datadir.data_dir() / "lidar" / "Megaplot.laz", 1.0, 1, False) == [None]
    # no strip narrower than MIN_COLUMNS: a 1004 m wide dataset in 400 m tiles is one job
    assert plan_strips(EPT, 400.0, 1, False) == [None]


def test_a_strip_owns_its_columns_and_reads_one_more_on_each_side():
    ix, box = np.arange(-3, 4), (0.0, 0.0, 1.0, 1.0)
    assert Strip(-1, 2, box).owns(ix).tolist() == [False, False, True, True, True, False, False]
    assert Strip(-1, 2, box).reads(ix).tolist() == [False, True, True, True, True, True, False]
    assert Strip(None, 0, box).owns(ix).tolist() == [True, True, True, False, False, False, False]
    assert Strip(1, None, box).reads(ix).tolist() == [False, False, False, True, True, True, True]


@pytest.mark.parametrize("workers", [1, 2])
def test_strips_write_the_bytes_of_one_job(tmp_path, workers):
    path, points = _shallow(tmp_path)  # 303 732 points, 1 km wide
    options = dict(size=100.0, buffer=10.0, voxel=0.5, min_points=200)
    one = tile_files([path], tmp_path / "one", TileOptions(**options), overview=False)
    # 12 columns of 100 m: 3 strips, the middle one with a neighbour column on each side
    assert [s.lo for s in plan_strips(path, 100.0, 100_000, False)] == [None, 2023, 2027]
    split = tile_files([path], tmp_path / "split", TileOptions(**options, job_points=100_000),
                       workers=workers, overview=False)
    assert _digest(tmp_path / "split") == _digest(tmp_path / "one")
    assert len(_digest(tmp_path / "one")) == len(one["features"]) > 40
    assert split["features"] == one["features"]
    # each point counted once: the strips' own columns, not the neighbours read for buffers
    assert split["properties"]["sources"] == one["properties"]["sources"]
    source = one["properties"]["sources"][0]
    assert source["points"] == points
    assert source["thinned_points"] > 0 and source["dropped_tiles"] > 0


def test_chunks_by_bounds_need_an_ept_dataset():
    with pytest.raises(ConfigError, match="need an EPT dataset or a COPC file"):
        with pio.open_chunks(datadir.data_dir() / "lidar" / "Megaplot.laz", bounds=(0, 0, 1, 1)):
            pass
