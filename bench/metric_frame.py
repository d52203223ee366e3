"""Can MMD / COV / 1-NNA tell a copy machine from a generator? The metre frame against the unit frame.

    OMP_NUM_THREADS=1 .venv/bin/python bench/metric_frame.py [--tile-size 40] [--points 2048] [--seeds 0]

For each (training site, held-out site) pair of ``datasets/fill_split.yaml``: both files are cut
into whole ``--tile-size`` squares of ``--points`` points (:class:`pcgen.metrics.MetricFrame`).
The training site's tiles are split at random into halves A and B; G is one jittered copy of
every A tile (resampled with replacement, N(0, 0.25 m) on each axis: what ``eval-augment``
calls the jitter baseline). G is scored against

* (a) B, the training site's held-back half: a copy machine should look good here;
* (b) as many tiles of the held-out site: it should look bad here (it never saw that site);
* (c) A, its own sources: 1-NNA near 0 is the signature of copies.

in two frames built from the same squares and the same point subsets: ``metres`` (x, y from the
tile centre, z above the tile's ground, nothing rescaled) and ``unit`` (each tile normalized into
[-1, 1]^3, what ``eval-augment`` reported before). A metric "can tell" when (b) is far from (a).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
PAIRS = [("training/lastools_fusa.laz", "training/pyfor_test.laz"),
         ("lidar/Topography.laz", "training/lastools_lake.laz")]
SIGMA = 0.25  # m, as pcgen.tasks.eval_augment_cli.JITTER_SIGMA


def site_tiles(name: str, frame, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(metre-frame tiles, unit-frame tiles) of one site: the same squares and point subsets."""
    import pcgen.io as pio
    from pcgen.tasks.augment import metric_tiles
    from pcgen.tasks.train_fill import site_path

    cloud = pio.read(site_path(name))
    cls = cloud.attributes.get("classification")
    metres = metric_tiles(cloud.xyz, frame, np.random.default_rng(seed), cls, above_ground=True)
    raw = metric_tiles(cloud.xyz, frame, np.random.default_rng(seed), cls, above_ground=False)
    return np.stack(metres), np.stack(raw)


def score(gen: np.ndarray, ref: np.ndarray, frame, metres: bool) -> dict:
    import torch

    from pcgen.metrics import evaluate_sets

    kw = {"normalize": "none", "jsd_bounds": frame.bounds()} if metres else {"normalize": "box"}
    r = evaluate_sets(torch.as_tensor(gen), torch.as_tensor(ref), metrics=("chamfer",), **kw)
    return {"1nna": r["chamfer"]["1nna"], "mmd": r["chamfer"]["mmd"], "cov": r["chamfer"]["cov"], "jsd": r["jsd"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tile-size", type=float, default=40.0)
    parser.add_argument("--points", type=int, default=2048)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="splits of the training tiles")
    args = parser.parse_args(argv)

    import torch

    from pcgen.metrics import MetricFrame
    from pcgen.tasks.train_fill import read_split

    torch.set_num_threads(1)
    split = read_split(HERE.parent / "datasets" / "fill_split.yaml")
    frame = MetricFrame(tile_size=args.tile_size, points=args.points)
    print(f"{args.tile_size:g} m tiles, {args.points} points each, jitter sigma {SIGMA} m, Chamfer distance; "
          "1-NNA: 0.5 = indistinguishable, 1.0 = separated, ~0 = copies of the reference\n")
    print("| train → held-out | seed | tiles G/B/H | comparison | 1-NNA metres | 1-NNA unit | "
          "MMD-CD metres (m²) | MMD-CD unit | COV metres | COV unit | JSD metres | JSD unit |")
    print("|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    t0 = time.perf_counter()
    for train_site, held_site in PAIRS:
        assert train_site in split["train"] and held_site in split["heldout"], (train_site, held_site)
        tm, tu = site_tiles(train_site, frame, 0)
        hm, hu = site_tiles(held_site, frame, 1)
        for seed in args.seeds:
            rng = np.random.default_rng(seed)
            perm = rng.permutation(len(tm))
            a, b = perm[: len(tm) // 2], perm[len(tm) // 2:]
            h = rng.permutation(len(hm))[: len(b)]
            # one jittered copy per A tile; the same resampling and noise in both frames
            idx = np.stack([rng.choice(args.points, args.points) for _ in a])
            noise = rng.normal(0, SIGMA, (len(a), args.points, 3)).astype(np.float32)
            gm = np.take_along_axis(tm[a], idx[..., None], 1) + noise
            gu = np.take_along_axis(tu[a], idx[..., None], 1) + noise
            rows = {"(a) vs held-back half B": (tm[b], tu[b]),
                    "(b) vs held-out site H": (hm[h], hu[h]),
                    "(c) vs its sources A": (tm[a], tu[a])}
            for label, (rm, ru) in rows.items():
                m, u = score(gm, rm, frame, True), score(gu, ru, frame, False)
                print(f"| {Path(train_site).stem} → {Path(held_site).stem} | {seed} | {len(a)}/{len(b)}/{len(h)} "
                      f"| {label} | {m['1nna']:.3f} | {u['1nna']:.3f} | {m['mmd']:.3f} | {u['mmd']:.4f} "
                      f"| {m['cov']:.2f} | {u['cov']:.2f} | {m['jsd']:.3f} | {u['jsd']:.3f} |", flush=True)
    print(f"\n{time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
