"""How much of a cut hole `pcgen fill --auto` finds, and how much intact ground it calls a gap.

    .venv/bin/python bench/gap_detection.py [--sizes 10 20] [--cuts 4]

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
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
