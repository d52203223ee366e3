"""EMD benchmark: pcgen's auction against scipy's exact assignment and geomloss' Sinkhorn.

At B=8, N=M=2048 (``--quick``: B=2, N=1024) on two kinds of pairs:
  * real LiDAR patches: 2048 nearest points around random centers in the shared sample files,
    read with ``pcgen.io.read`` and normalized to the unit sphere, each paired with another patch
    of the same file;
  * random clouds: uniform in the unit ball.
For every method it reports the batch time, the speed ratio against scipy's exact assignment
measured in the same run, and the relative error of the cost against the exact one (mean and max
over the batch). geomloss' value is its Sinkhorn loss times 2 (its p=2 cost is |x-y|^2 / 2), with
the tensorized backend (KeOps, for its "online" one, is not installed here).

    python bench/emd.py [--quick]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from pcgen.ops.emd import emd


def lidar_patches(count: int, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` pairs of n-point patches from the shared LiDAR files, unit-sphere normalized."""
    from scipy.spatial import cKDTree

    from pcgen import datadir, io as pio

    names = ["Megaplot.laz", "MixedConifer.laz", "Topography.laz", "autzen_trim.laz",
             "las_with_several_extra_byte_bloc.laz", "4_6_crop.las", "sample_c.las", "lone-star.laz"]
    rng = np.random.default_rng(seed)
    xs, ys = [], []
    for k in range(count):
        xyz = pio.read(datadir.lidar_file(names[k % len(names)])).xyz
        tree = cKDTree(xyz)
        pair = []
        for _ in range(2):
            center = xyz[rng.integers(len(xyz))]
            _, idx = tree.query(center, n)
            p = xyz[idx] - xyz[idx].mean(0)
            pair.append(p / np.linalg.norm(p, axis=1).max())
        xs.append(pair[0])
        ys.append(pair[1])
    return torch.from_numpy(np.stack(xs)).float(), torch.from_numpy(np.stack(ys)).float()


def random_clouds(count: int, n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)

    def ball():
        d = torch.randn(count, n, 3, generator=g)
        return d / d.norm(dim=-1, keepdim=True) * torch.rand(count, n, 1, generator=g) ** (1 / 3)

    return ball(), ball()


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def _geomloss(x, y, blur, scaling):
    from geomloss import SamplesLoss

    loss = SamplesLoss("sinkhorn", p=2, blur=blur, scaling=scaling, backend="tensorized")
    return 2 * loss(x, y)


def bench_case(name: str, x: torch.Tensor, y: torch.Tensor, quick: bool) -> list[dict]:
    exact, t_exact = _timed(lambda: emd(x, y, method="exact").double())
    rows = [{"case": name, "method": "scipy exact (linear_sum_assignment)", "time_s": t_exact,
             "speedup_vs_exact": 1.0, "err_mean": 0.0, "err_max": 0.0}]

    def add(method, fn):
        cost, t = _timed(fn)
        rel = (cost.detach().double() - exact) / exact
        rows.append({"case": name, "method": method, "time_s": t, "speedup_vs_exact": t_exact / t,
                     "err_mean": float(rel.abs().mean()), "err_max": float(rel.abs().max()),
                     "bias_mean": float(rel.mean())})

    emd(x[:1, :64], y[:1, :64])  # load the extension outside the timings
    for tol in (1e-2, 1e-1):
        add(f"pcgen auction tol={tol:g}", lambda: emd(x, y, eps=tol))
    settings = [(0.05, 0.5)] if quick else [(0.05, 0.5), (0.01, 0.5)]
    for blur, scaling in settings:
        add(f"geomloss sinkhorn blur={blur} scaling={scaling}", lambda: _geomloss(x, y, blur, scaling))
    return rows


def run(quick: bool = False) -> list[dict]:
    """Run the benchmark, print its table, return its rows."""
    B, N = (2, 1024) if quick else (8, 2048)
    rows = []
    rows += bench_case(f"lidar patches B={B} N={N}", *lidar_patches(B, N), quick)
    rows += bench_case(f"random ball B={B} N={N}", *random_clouds(B, N), quick)
    print(f"{'case':<26} {'method':<42} {'time s':>8} {'x exact':>8} {'err mean':>9} {'err max':>9}")
    for r in rows:
        print(f"{r['case']:<26} {r['method']:<42} {r['time_s']:8.3f} {r['speedup_vs_exact']:8.1f} "
              f"{100 * r['err_mean']:8.3f}% {100 * r['err_max']:8.3f}%")
    return rows


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="B=2, N=1024, fewer settings")
    run(ap.parse_args().quick)
