"""eval-fill's comparison against the strongest baseline and its per-site table, on hand-made rows."""

from __future__ import annotations

import pytest

from pcgen.tasks.eval_fill import compare, site_table, summarize

TAU = (0.5, 1.0, 2.0)


def _row(tile, cut, method, chamfer, f1, p95):
    return {"tile": tile, "cut": cut, "method": method, "chamfer": chamfer, "emd": chamfer,
            "fscore@0.5": f1 / 2, "fscore@1": f1, "fscore@2": 1.0, "p50_err": 0.1, "p95_err": p95,
            "density_err": 0.0}


def _site(tile, pcgen, mirror, hybrid):
    """Rows of one site: per cut the (chamfer, f1, p95) of each method."""
    rows = []
    for cut, values in enumerate(zip(pcgen, mirror, hybrid)):
        for method, (ch, f1, p95) in zip(("pcgen", "mirror", "hybrid"), values):
            rows.append(_row(tile, f"{tile}{cut}", method, ch, f1, p95))
    return rows


def test_compare_picks_the_strongest_baseline_and_counts_wins():
    rows = _site("a.laz", pcgen=[(1.0, 0.6, 1.0), (2.0, 0.5, 1.0), (0.5, 0.7, 1.0), (1.5, 0.4, 1.0)],
                 mirror=[(2.0, 0.5, 2.0)] * 4, hybrid=[(1.2, 0.5, 1.5), (1.8, 0.5, 1.5), (1.0, 0.5, 1.5),
                                                       (1.0, 0.5, 1.5)])
    c = compare(rows, bootstrap=200)
    assert c["baseline"] == "hybrid" and c["cuts"] == 4
    assert c["chamfer_ratio"] == pytest.approx(5.0 / 5.0)
    assert c["best_share"] == pytest.approx(0.5)  # cuts 0 and 2; hybrid wins 1 and 3
    assert c["chamfer_diff"] == pytest.approx(0.0)
    assert c["ci95"][0] < 0 < c["ci95"][1]


def test_site_table_has_one_row_per_site_with_the_goal_columns():
    rows = (_site("a.laz", [(1.0, 0.6, 1.0)] * 3, [(2.0, 0.5, 2.0)] * 3, [(1.25, 0.5, 1.5)] * 3)
            + _site("b.laz", [(3.0, 0.2, 0.5)] * 2, [(2.0, 0.3, 0.4)] * 2, [(2.5, 0.1, 0.9)] * 2))
    by_site = {}
    for tile in ("a.laz", "b.laz"):
        mine = [r for r in rows if r["tile"] == tile]
        by_site[tile] = {"summary": summarize(mine, TAU), "comparison": compare(mine, bootstrap=200)}
    by_site["c.laz"] = {"summary": {}, "comparison": None}  # a site without cuts has no row
    lines = site_table(by_site, TAU).splitlines()
    assert len(lines) == 4 and lines[0].startswith("| site | cuts | baseline | Chamfer ratio")
    assert r"\|Δp95\|" in lines[0]  # escaped, so the table keeps its columns
    assert lines[2] == ("| a.laz | 3 | hybrid | 0.800 | -0.250 to -0.250 | 100% | 0.600 / 0.500 | "
                        "1.000 / 1.500 |")
    assert lines[3] == ("| b.laz | 2 | mirror | 1.500 | +1.000 to +1.000 | 0% | 0.200 / 0.300 | "
                        "0.500 / 0.400 |")
    assert site_table({"c.laz": {"summary": {}, "comparison": None}}, TAU) == ""


def test_files_of_one_name_keep_their_own_rows(tmp_path):
    from pcgen import datadir
    from pcgen.tasks.eval_fill import load_tiles

    source = datadir.lidar_file("simple.las")
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "t.las").write_bytes(source.read_bytes())
    tiles, unit = load_tiles([tmp_path / "a" / "t.las", tmp_path / "b" / "t.las", source])
    assert unit == "m"  # no CRS: CRS units, taken as metres
    assert [name for name, _, _ in tiles] == ["t.las", "t-2.las", "simple.las"]


def test_cuts_asked_beyond_what_fits_give_the_cuts_that_fit():
    import time

    import numpy as np

    from pcgen.tasks.eval_fill import EvalConfig, cut_boxes

    g = np.arange(0.5, 30, 1.0)  # a 30 x 30 m grid, one point per m²
    xyz = np.c_[np.stack(np.meshgrid(g, g), -1).reshape(-1, 2), np.zeros(len(g) ** 2)]
    cfg = EvalConfig(cuts_per_tile=10 ** 12, gap_size=5.0, edge_margin=2.5, min_removed=10)
    start = time.perf_counter()
    cuts = cut_boxes("grid.laz", xyz, {}, cfg, np.random.default_rng(0))
    assert time.perf_counter() - start < 30  # 10^12 asked: was 2 * 10^13 draws
    assert 1 <= len(cuts) <= 25  # 25 m of room each way: at most 5 x 5 cuts of 5 m
    for i, a in enumerate(cuts):
        assert a.tile_xyz is xyz  # cuts share the tile: no copy of it each
        assert len(a.removed) == 25 and len(a.xyz) == len(xyz) - 25
        assert not any(a.polygon.intersects(b.polygon) for b in cuts[i + 1:])


def test_cuts_in_a_buffered_tile_stay_in_its_core(tmp_path):
    """A buffer is a neighbour's core: scored as truth it counted the same ground twice."""
    import numpy as np

    from pcgen import datadir
    from pcgen.data.tiling import TileOptions, tile_files
    from pcgen.tasks.eval_fill import EvalConfig, cut_boxes, load_tiles

    tile_files([datadir.lidar_file("MixedConifer.laz")], tmp_path / "t", TileOptions(size=40, buffer=8),
               overview=False)
    tiles, _ = load_tiles(sorted((tmp_path / "t").glob("*.laz")))
    cfg = EvalConfig(cuts_per_tile=4, gap_size=10.0)
    rng = np.random.default_rng(0)
    cuts = [c for name, xyz, attrs in tiles for c in cut_boxes(name, xyz, attrs, cfg, rng)]
    assert len(cuts) >= 8 and all("buffer" in attrs for _, _, attrs in tiles)
    for c in cuts:
        assert not np.asarray(c.tile_attributes["buffer"])[c.inside].any()


def test_a_cut_too_sparse_to_fill_from_is_left_out_not_the_run(tmp_path):
    import numpy as np

    from pcgen.tasks.baselines import MirrorFill
    from pcgen.tasks.eval_fill import EvalConfig, evaluate_fill

    rng = np.random.default_rng(0)
    dense = rng.uniform(0, 60, (20_000, 2))  # a 60 m square, with a corner left almost empty
    sparse = (dense[:, 0] > 30) & (dense[:, 1] > 30)
    keep = ~sparse | (rng.uniform(size=len(dense)) < 0.002)
    xy = dense[keep]
    xyz = np.c_[xy, rng.uniform(0, 1, len(xy))]
    cfg = EvalConfig(cuts_per_tile=6, gap_size=10.0, min_removed=1, seed=3)
    from pcgen.tasks.fill import FillConfig

    fcfg = FillConfig()
    fcfg.context.min_half_size = 8.0  # a window that stays in the empty corner
    fcfg.context.scale = 1.5
    rows, _, skipped = evaluate_fill([("corner.laz", xyz, {})], {"mirror": MirrorFill()}, cfg, fcfg)
    assert rows and skipped and all("points around it" in s for s in skipped)
    assert len({r["cut"] for r in rows}) + len(skipped) == 6
    for r in rows:  # each row says where its cut is: the centre of a 10 m box that removed points
        inside = (np.abs(xyz[:, 0] - r["x"]) <= 5) & (np.abs(xyz[:, 1] - r["y"]) <= 5)
        assert 5 <= r["x"] <= 55 and 5 <= r["y"] <= 55 and inside.sum() == r["n_true"]


def test_a_tile_too_sparse_for_any_cut_is_named_not_dropped_silently(tmp_path):
    import json

    import numpy as np

    from pcgen.tasks.baselines import MirrorFill
    from pcgen.tasks.eval_fill import EvalConfig, run_evaluation
    from pcgen.tasks.fill import FillConfig

    rng = np.random.default_rng(0)
    dense = np.c_[rng.uniform(0, 60, (20_000, 2)), rng.uniform(0, 1, 20_000)]  # 5.6 points/m²
    sparse = np.c_[rng.uniform(0, 60, (1_800, 2)), rng.uniform(0, 1, 1_800)]   # 0.5: 12 in a 5 m cut
    cfg = EvalConfig(cuts_per_tile=3, gap_size=5.0, min_removed=40, seed=0)
    run_evaluation([("dense.laz", dense, {}), ("sparse.laz", sparse, {})], tmp_path / "ev",
                   {"mirror": MirrorFill()}, cfg, FillConfig())
    report = json.loads((tmp_path / "ev" / "eval_fill.json").read_text())
    assert report["unscored_tiles"] == ["sparse.laz"]
    assert {r["tile"] for r in report["cuts"]} == {"dense.laz"}
    md = (tmp_path / "ev" / "eval_fill.md").read_text()
    assert "1 tile(s) left out, no 5 m cut in them removes 40 points" in md and "sparse.laz" in md


def test_repeated_thresholds_make_one_column():
    import argparse

    from pcgen.tasks.eval_fill_cli import eval_config

    args = argparse.Namespace(cuts=None, gap_size=None, tau="1,1,0.5", seed=None, samples=None)
    assert eval_config(args, 8).tau == [0.5, 1.0]  # "1,1" gave two F@1m columns


def test_a_survey_in_feet_is_scored_in_feet(tmp_path):
    """autzen_trim.laz is in Oregon Lambert feet: its tables said "m" for distances in feet."""
    import json

    from pcgen import datadir
    from pcgen.cli import main

    out = tmp_path / "e"
    assert main(["eval-fill", str(datadir.lidar_file("autzen_trim.laz")), "--no-model", "--cuts", "2",
                 "--samples", "1", "--out", str(out), "--quiet"]) == 0
    md = (out / "eval_fill.md").read_text()
    assert md.startswith("Gap filling on 1 held-out tiles, 10 ft square cuts")
    assert "| method | cuts | Chamfer ft ↓ | EMD ft ↓ | F@0.5ft ↑ | F@1ft ↑ |" in md
    assert r"\|Δdensity\| /ft² ↓" in md and " m ↓" not in md
    assert json.loads((out / "eval_fill.json").read_text())["config"]["unit"] == "ft"


def test_heights_in_a_file_without_a_ground_class_are_above_its_filtered_ground():
    """Without class 2 the heights of |Δp50| and |Δp95| were measured from z = 0."""
    import numpy as np
    from shapely.geometry import box

    from pcgen.tasks.eval_fill import EvalConfig, _ground_near

    from .test_gap_frame import crowned_slope

    xyz, n_ground = crowned_slope(np.random.default_rng(0))
    cfg = EvalConfig(gap_size=10.0)
    ground = _ground_near(xyz, None, box(15, 25, 25, 35), cfg)  # a cut under the large crown
    assert len(ground) > 50
    np.testing.assert_allclose(ground[:, 2], 100 + 0.3 * ground[:, 0], atol=1e-9)  # on the plane, no crown
    cls = np.r_[np.full(n_ground, 2), np.full(len(xyz) - n_ground, 5)]
    classed = _ground_near(xyz, cls, box(15, 25, 25, 35), cfg)
    near = np.abs(xyz[:n_ground, :2] - [20, 30]).max(1) < 30
    np.testing.assert_array_equal(classed, xyz[:n_ground][near])  # class 2, as before


def test_the_class_a_fill_writes_is_scored_against_the_nearest_true_point(topo):
    """Four 10 m cuts of Topography.laz filled by the hybrid copy: the class each new point gets
    (as pcgen fill writes it) matches the nearest removed point's class on 77.6% of points per cut
    when the copied point lends it and 80.6% when the originals around it pick the donor.
    A file without classes gets no class column."""
    import numpy as np

    from pcgen.tasks.baselines import HybridFill
    from pcgen.tasks.eval_fill import EvalConfig, evaluate_fill, markdown_table
    from pcgen.tasks.fill import FillConfig, OutputConfig

    tiles = [("Topography.laz", topo.xyz, {"classification": np.asarray(topo.attributes["classification"])})]
    cfg = EvalConfig(cuts_per_tile=4, gap_size=10.0, seed=1)
    mean = {}
    for mode in ("source", "neighbours"):
        rows, _, _ = evaluate_fill(tiles, {"hybrid": HybridFill()}, cfg, FillConfig(output=OutputConfig(attributes=mode)))
        assert len(rows) == 4 and all(0 <= r["same_class"] <= 1 for r in rows)
        mean[mode] = summarize(rows, cfg.tau)["hybrid"]["same_class"]
        assert "same class ↑" in markdown_table(summarize(rows, cfg.tau), cfg.tau)
    assert (round(mean["source"], 3), round(mean["neighbours"], 3)) == (0.776, 0.806)
    bare = [("bare.laz", topo.xyz, {})]
    rows, _, _ = evaluate_fill(bare, {"hybrid": HybridFill()}, EvalConfig(cuts_per_tile=1, gap_size=10.0, seed=1))
    assert "same_class" not in rows[0] and "same class" not in markdown_table(summarize(rows, cfg.tau), cfg.tau)


def test_cuts_spread_over_processes_give_the_same_rows(topo):
    """Four 10 m cuts of Topography.laz, the shipped model (a spec each worker builds) and the
    hybrid copy, two draws each: the rows of two worker processes are those of one process,
    value for value, and so is the cut kept for the picture."""
    import numpy as np

    from pcgen.tasks.eval_fill import EvalConfig, cut_jobs, evaluate_fill
    from pcgen.tasks.fill import FillConfig

    tiles = [("Topography.laz", topo.xyz, {"classification": np.asarray(topo.attributes["classification"])})]
    gens = {"pcgen": ("model", None, None), "hybrid": ("hybrid",)}
    cfg = EvalConfig(cuts_per_tile=4, gap_size=10.0, seed=2, samples=2)
    one, ex1, _ = evaluate_fill(tiles, gens, cfg)
    two, ex2, _ = evaluate_fill(tiles, gens, cfg, workers=2)
    assert len(one) == 8 and [(r["cut"], r["method"]) for r in one] == [(r["cut"], r["method"]) for r in two]
    for a, b in zip(one, two):
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert ex1[0]["cut"].polygon.equals_exact(ex2[0]["cut"].polygon, 0)
    for name in gens:
        np.testing.assert_array_equal(ex1[0]["fills"][name], ex2[0]["fills"][name])
    # each job holds one tile's run of cuts, and a tile is split over the workers (on Dask,
    # into runs of at most DASK_RUN cuts)
    from pcgen.tasks.eval_fill import cut_boxes

    cuts = cut_boxes("t", topo.xyz, {}, cfg, np.random.default_rng(0))
    jobs = cut_jobs(cuts, gens, cfg, FillConfig(), workers=3)
    assert [[i for i, _, _ in j.cuts] for j in jobs] == [[0, 1], [2], [3]]
    assert [[i for i, _, _ in j.cuts] for j in cut_jobs(cuts, gens, cfg, FillConfig(), 1, run=3)] == [[0, 1], [2, 3]]


def test_cuts_on_a_dask_cluster_give_the_same_rows(topo):
    """The same four cuts with the hybrid copy on a Dask cluster: the rows of one process, and
    the test process keeps its torch threads (an in-process worker shares them)."""
    import numpy as np
    import torch
    from distributed import LocalCluster

    from pcgen.tasks.eval_fill import EvalConfig, evaluate_fill

    tiles = [("Topography.laz", topo.xyz, {})]
    cfg = EvalConfig(cuts_per_tile=4, gap_size=10.0, seed=2, samples=2)
    one, _, _ = evaluate_fill(tiles, {"hybrid": ("hybrid",)}, cfg)
    threads = torch.get_num_threads()
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        dask, _, _ = evaluate_fill(tiles, {"hybrid": ("hybrid",)}, cfg, dask_address=cluster.scheduler_address)
    assert torch.get_num_threads() == threads
    assert len(dask) == 4
    for a, b in zip(one, dask):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
