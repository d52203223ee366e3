"""How much of a cut hole `pcgen fill --auto` finds, and how much intact ground it calls a gap.

    .venv/bin/python bench/gap_detection.py [--sizes 10 20] [--cuts 4] [--tile 50]

On whole files of the held-out sites (``datasets/fill_split.yaml``): square holes are cut at
random places inside each file's footprint; recall is the share of a hole's area covered by the
detected gaps, false area the detected area outside the holes over the footprint's area. The
same files uncut give the false area on intact data. Goal: recall ≥ 90%, false area ≤ 5%.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import box

HERE = Path(__file__).resolve().parent


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[10.0, 20.0])
    parser.add_argument("--cuts", type=int, default=4, help="holes per file and size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tile", type=float, default=0.0,
                        help="also cut each file into tiles of this side (as pcgen tile's cores) and "
                             "measure on every tile holding 500 points: a hole of each size at its centre")
    args = parser.parse_args(argv)

    import pcgen.io as pio
    from pcgen.tasks.gaps import GapConfig, detect_gaps, tile_footprint
    from pcgen.tasks.train_fill import read_split, site_path

    cfg = GapConfig()
    rng = np.random.default_rng(args.seed)
    print("| file | hole m | holes | recall ↑ | false area (cut) ↓ | false area (intact) ↓ |")
    print("|---|---:|---:|---:|---:|---:|")
    totals = {"recall": [], "false_cut": [], "false_intact": []}
    for name in read_split(HERE.parent / "datasets" / "fill_split.yaml")["heldout"]:
        cloud = pio.read(site_path(name))
        xyz = cloud.xyz
        cls = cloud.attributes.get("classification")
        foot = tile_footprint(xyz[:, :2], cfg.footprint_concavity)
        intact = shapely.unary_union([g.polygon for g in detect_gaps(xyz, cls, cfg, foot)])
        false_intact = intact.area / foot.area
        totals["false_intact"].append(false_intact)
        for size in args.sizes:
            inner = foot.buffer(-size)
            if inner.is_empty:
                continue
            rec, fa = [], []
            for _ in range(args.cuts):
                lo, hi = np.asarray(inner.bounds[:2]), np.asarray(inner.bounds[2:])
                for _ in range(100):
                    c = rng.uniform(lo, hi)
                    if inner.contains(shapely.Point(c)):
                        break
                hole = box(c[0] - size / 2, c[1] - size / 2, c[0] + size / 2, c[1] + size / 2)
                keep = ~shapely.contains_xy(hole, xyz[:, 0], xyz[:, 1])
                found = shapely.unary_union([g.polygon for g in detect_gaps(
                    xyz[keep], None if cls is None else np.asarray(cls)[keep], cfg, foot)])
                rec.append(found.intersection(hole).area / hole.area)
                fa.append(found.difference(hole).difference(intact).area / foot.area)
            totals["recall"] += rec
            totals["false_cut"] += fa
            print(f"| {Path(name).name} | {size:g} | {len(rec)} | {np.mean(rec):.1%} | {np.mean(fa):.2%} | "
                  f"{false_intact:.2%} |")
    print(f"| all | | {len(totals['recall'])} | {np.mean(totals['recall']):.1%} | "
          f"{np.mean(totals['false_cut']):.2%} | {np.mean(totals['false_intact']):.2%} |")
    if args.tile > 0:
        tiled(args, cfg)
    return 0


def tiled(args, cfg) -> None:
    """The same measures on tiles: each tile's cells are sized by its own density, not the file's."""
    import pcgen.io as pio
    from pcgen.tasks.gaps import detect_gaps, tile_footprint
    from pcgen.tasks.train_fill import read_split, site_path

    S = args.tile
    print(f"\n| file | tiles of {S:g} | recall ↑ (hole at each centre) | false area (intact tiles) ↓ |")
    print("|---|---:|---:|---:|")
    recall_all, flagged_all, area_all = [], 0.0, 0.0
    for name in read_split(HERE.parent / "datasets" / "fill_split.yaml")["heldout"]:
        cloud = pio.read(site_path(name))
        xyz, cls = cloud.xyz, cloud.attributes.get("classification")
        key = np.floor(xyz[:, :2] / S).astype(np.int64)
        _, tile_of, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
        rec, flagged, area = [], 0.0, 0.0
        for t in np.flatnonzero(counts >= 500):
            mine = tile_of.ravel() == t
            txyz, tcls = xyz[mine], None if cls is None else np.asarray(cls)[mine]
            foot = tile_footprint(txyz[:, :2], cfg.footprint_concavity)
            found = shapely.unary_union([g.polygon for g in detect_gaps(txyz, tcls, cfg, foot)])
            flagged, area = flagged + found.area, area + foot.area
            for size in args.sizes:
                c = np.asarray(foot.centroid.coords[0])
                hole = box(c[0] - size / 2, c[1] - size / 2, c[0] + size / 2, c[1] + size / 2)
                if not foot.buffer(-1.0).contains(hole):
                    continue
                keep = ~shapely.contains_xy(hole, txyz[:, 0], txyz[:, 1])
                got = shapely.unary_union([g.polygon for g in detect_gaps(
                    txyz[keep], None if tcls is None else tcls[keep], cfg, foot)])
                rec.append(got.intersection(hole).area / hole.area)
        recall_all += rec
        flagged_all, area_all = flagged_all + flagged, area_all + area
        print(f"| {Path(name).name} | {int((counts >= 500).sum())} | {np.mean(rec) if rec else float('nan'):.1%} "
              f"({len(rec)} holes) | {flagged / max(area, 1e-9):.2%} |")
    print(f"| all | | {np.mean(recall_all):.1%} ({len(recall_all)} holes) | {flagged_all / max(area_all, 1e-9):.2%} |")


if __name__ == "__main__":
    raise SystemExit(main())
