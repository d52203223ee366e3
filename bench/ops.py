"""Benchmark pcgen.ops (Chamfer, kNN) against the peers a user would otherwise reach for.

    python bench/ops.py            # full table (a few minutes on 2 cores)
    python bench/ops.py --quick    # the headline cases, under a minute

Peers, all measured in the same run: naive torch (``torch.cdist`` + min/topk), scipy's
cKDTree (``workers=-1``), open3d's ``compute_point_cloud_distance`` (multi-threaded k-d tree,
forward only, called once per direction and cloud), and KeOps when ``pykeops`` is importable.
Times are the best of a few repeats (wall clock). "peak MB" is the largest increase of the
process's resident set (``/proc/self/statm``, sampled every millisecond by a watcher thread)
during one separate call, after ``malloc_trim`` returned freed heap pages to the OS, so it counts
torch's, open3d's and scipy's native allocations alike (a lower bound: pages an allocator keeps
cached from earlier calls are not counted again).
Ratios compare against pcgen in the same run. The EMD table comes from ``bench/emd.py``
(``run(quick)``) when that file exists.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import importlib.util
import os
import threading
import time
from pathlib import Path

import numpy as np
import torch

from pcgen.ops import _ext, chamfer, knn

PAGE = os.sysconf("SC_PAGE_SIZE")


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * PAGE


def _trim() -> None:
    """Hand freed heap pages back to the OS so the next peak counts them again (glibc)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def peak_mb(fn) -> float:
    """Largest resident-set increase (MB) while ``fn()`` runs."""
    gc.collect()
    _trim()
    base = _rss()
    peak = [base]
    done = threading.Event()

    def watch():
        while not done.is_set():
            peak[0] = max(peak[0], _rss())
            time.sleep(0.001)

    th = threading.Thread(target=watch, daemon=True)
    th.start()
    try:
        fn()
    finally:
        done.set()
        th.join()
    peak[0] = max(peak[0], _rss())
    return (peak[0] - base) / 2**20


def best_time(fn, repeats: int) -> float:
    fn()  # warm-up (thread pools, caches)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


# ---------------------------------------------------------------- chamfer implementations

def pcgen_fwd(x, y):
    with torch.no_grad():
        return chamfer(x, y).loss


def pcgen_fwdbwd(x, y):
    x = x.detach().requires_grad_()
    y = y.detach().requires_grad_()
    chamfer(x, y).loss.backward()


def naive_fwd(x, y):
    with torch.no_grad():
        d = torch.cdist(x, y) ** 2
        return (d.min(2).values.mean(1) + d.min(1).values.mean(1)).mean()


def naive_fwdbwd(x, y):
    x = x.detach().requires_grad_()
    y = y.detach().requires_grad_()
    d = torch.cdist(x, y) ** 2
    (d.min(2).values.mean(1) + d.min(1).values.mean(1)).mean().backward()


def open3d_fwd(clouds):
    total = 0.0
    for a, b in clouds:
        total += (np.asarray(a.compute_point_cloud_distance(b)) ** 2).mean()
        total += (np.asarray(b.compute_point_cloud_distance(a)) ** 2).mean()
    return total / len(clouds)


def ckdtree_fwd(arrays):
    from scipy.spatial import cKDTree

    total = 0.0
    for a, b in arrays:
        total += (cKDTree(b).query(a, k=1, workers=-1)[0] ** 2).mean()
        total += (cKDTree(a).query(b, k=1, workers=-1)[0] ** 2).mean()
    return total / len(arrays)


def keops_fns():
    if importlib.util.find_spec("pykeops") is None:
        return None
    from pykeops.torch import LazyTensor

    def nn_sq(a, b):
        d = ((LazyTensor(a[:, :, None, :]) - LazyTensor(b[:, None, :, :])) ** 2).sum(-1)
        idx = d.argmin(dim=2).squeeze(-1)  # (B, N)
        nb = b.gather(1, idx[..., None].expand(-1, -1, b.shape[-1]))
        return ((a - nb) ** 2).sum(-1)

    def fwd(x, y):
        with torch.no_grad():
            return (nn_sq(x, y).mean(1) + nn_sq(y, x).mean(1)).mean()

    def fwdbwd(x, y):
        x = x.detach().requires_grad_()
        y = y.detach().requires_grad_()
        (nn_sq(x, y).mean(1) + nn_sq(y, x).mean(1)).mean().backward()

    return fwd, fwdbwd


# ---------------------------------------------------------------- cases

class Table:
    def __init__(self):
        self.rows = []

    def add(self, case, method, fwd=None, fwdbwd=None, mem=None, note=""):
        self.rows.append((case, method, fwd, fwdbwd, mem, note))

    def print(self):
        fmt = "{:<34} {:<22} {:>10} {:>13} {:>9}  {}"
        print(fmt.format("case", "method", "fwd ms", "fwd+bwd ms", "peak MB", "note"))
        for case, method, f, fb, m, note in self.rows:
            print(fmt.format(case, method, "-" if f is None else f"{f * 1e3:.1f}",
                             "-" if fb is None else f"{fb * 1e3:.1f}",
                             "-" if m is None else f"{m:.0f}", note))

    def get(self, case, method, col):
        for row in self.rows:
            if row[0] == case and row[1] == method:
                return row[2 if col == "fwd" else 3]
        return None


def chamfer_case(table, name, x, y, repeats, naive=True, memory=True):
    import open3d as o3d

    B = x.shape[0]
    o3d_clouds = [(o3d.geometry.PointCloud(o3d.utility.Vector3dVector(x[b].double().numpy())),
                   o3d.geometry.PointCloud(o3d.utility.Vector3dVector(y[b].double().numpy())))
                  for b in range(B)]
    arrays = [(x[b].double().numpy(), y[b].double().numpy()) for b in range(B)]
    table.add(name, "pcgen", best_time(lambda: pcgen_fwd(x, y), repeats),
              best_time(lambda: pcgen_fwdbwd(x, y), repeats),
              peak_mb(lambda: pcgen_fwdbwd(x, y)) if memory else None,
              "" if _ext.has_op("knn") else "REFERENCE (pcgen._C not built)")
    if naive:
        table.add(name, "naive torch", best_time(lambda: naive_fwd(x, y), repeats),
                  best_time(lambda: naive_fwdbwd(x, y), repeats),
                  peak_mb(lambda: naive_fwdbwd(x, y)) if memory else None, "cdist + min")
    else:
        dense = B * x.shape[1] * y.shape[1] * 4 / 2**30
        table.add(name, "naive torch", note=f"skipped: dense matrix alone {dense:.0f} GiB")
    table.add(name, "open3d", best_time(lambda: open3d_fwd(o3d_clouds), repeats), None,
              peak_mb(lambda: open3d_fwd(o3d_clouds)) if memory else None, "forward only")
    table.add(name, "scipy cKDTree", best_time(lambda: ckdtree_fwd(arrays), repeats), None,
              peak_mb(lambda: ckdtree_fwd(arrays)) if memory else None, "forward only")
    keops = keops_fns()
    if keops is not None and B * x.shape[1] * y.shape[1] > 2**26:
        table.add(name, "KeOps", note="skipped: its brute force takes about a minute at this size")
    elif keops is not None:
        table.add(name, "KeOps", best_time(lambda: keops[0](x, y), repeats),
                  best_time(lambda: keops[1](x, y), repeats), None, "argmin + gather")
    # agreement, so a fast wrong answer cannot pass
    ours = float(pcgen_fwd(x, y))
    theirs = float(ckdtree_fwd(arrays))
    assert abs(ours - theirs) <= 1e-4 * abs(theirs), (ours, theirs)


def knn_case(table, name, x, y, k, repeats):
    from scipy.spatial import cKDTree

    def ours():
        with torch.no_grad():
            return knn(x, y, k)

    def ours_bwd():
        a = x.detach().requires_grad_()
        b = y.detach().requires_grad_()
        knn(a, b, k).dists.sum().backward()

    def naive():
        with torch.no_grad():
            return (torch.cdist(x, y) ** 2).topk(k, dim=-1, largest=False)

    def naive_bwd():
        a = x.detach().requires_grad_()
        b = y.detach().requires_grad_()
        (torch.cdist(a, b) ** 2).topk(k, dim=-1, largest=False).values.sum().backward()

    arrays = [(x[b].double().numpy(), y[b].double().numpy()) for b in range(x.shape[0])]

    def kd():
        return [cKDTree(b).query(a, k=k, workers=-1) for a, b in arrays]

    table.add(name, "pcgen", best_time(ours, repeats), best_time(ours_bwd, repeats),
              peak_mb(ours_bwd))
    if x.shape[1] * y.shape[1] * x.shape[0] <= 2**28:
        table.add(name, "naive torch", best_time(naive, repeats), best_time(naive_bwd, repeats),
                  peak_mb(naive_bwd), "cdist + topk")
    table.add(name, "scipy cKDTree", best_time(kd, repeats), None, peak_mb(kd), "forward only")


def lidar_pair(n_max=None):
    """Two interleaved halves of a real forest plot (Megaplot.laz), centred, float32."""
    from pcgen import datadir
    from pcgen.io import read

    xyz = read(datadir.lidar_file("Megaplot.laz")).xyz
    xyz = xyz - xyz.mean(0)
    if n_max:
        xyz = xyz[: 2 * n_max]
    t = torch.from_numpy(xyz).float()
    return t[None, ::2].contiguous(), t[None, 1::2].contiguous()


def goals(table, quick):
    lines = []

    def ratio(case, a, b, col_a, col_b=None):
        ta = table.get(case, a, col_a)
        tb = table.get(case, b, col_b or col_a)
        return None if ta is None or tb is None else tb / ta

    c8 = "chamfer B=8 N=M=2048"
    r = ratio(c8, "pcgen", "naive torch", "fwdbwd")
    lines.append(("chamfer B=8 N=2048 fwd+bwd vs naive torch", r, ">= 10x", r is not None and r >= 10))
    r = ratio(c8, "pcgen", "open3d", "fwd")
    lines.append(("chamfer B=8 N=2048 fwd vs open3d", r, ">= 1x", r is not None and r >= 1))
    c100 = "chamfer B=1 N=M=100k"
    r = ratio(c100, "pcgen", "open3d", "fwd")
    lines.append(("chamfer B=1 N=100k fwd vs open3d", r, ">= 1x", r is not None and r >= 1))
    t_ours = table.get(c100, "pcgen", "fwdbwd")
    t_o3d = table.get(c100, "open3d", "fwd")
    r = None if not (t_ours and t_o3d) else t_o3d / t_ours
    lines.append(("chamfer B=1 N=100k fwd+bwd vs open3d fwd", r, "> 0.5x", r is not None and r > 0.5))
    print("\nGoals (speed-up of pcgen over the peer, same run):")
    for what, r, want, ok in lines:
        print(f"  {what:<44} {'n/a' if r is None else f'{r:6.2f}x':>8}  goal {want:<7} "
              f"{'PASS' if ok else 'MISS'}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="headline cases only, under a minute")
    ap.add_argument("--no-emd", action="store_true", help="skip bench/emd.py")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, pcgen._C "
          f"{'built' if _ext.has_op('knn') else 'NOT built (references)'}")
    reps = 3 if args.quick else 5
    table = Table()
    x, y = torch.rand(8, 2048, 3), torch.rand(8, 2048, 3)
    chamfer_case(table, "chamfer B=8 N=M=2048", x, y, reps)
    x, y = torch.rand(1, 100_000, 3), torch.rand(1, 100_000, 3)
    chamfer_case(table, "chamfer B=1 N=M=100k", x, y, 2 if args.quick else 3, naive=False,
                 memory=not args.quick)
    if not args.quick:
        x, y = torch.rand(32, 1024, 3), torch.rand(32, 1024, 3)
        chamfer_case(table, "chamfer B=32 N=M=1024", x, y, reps)
        a, b = lidar_pair()
        chamfer_case(table, f"chamfer LiDAR Megaplot {a.shape[1] // 1000}k", a, b, reps, naive=False)
        x = torch.rand(1, 200_000, 3)
        y = torch.rand(1, 200_000, 3)
        chamfer_case(table, "chamfer B=1 N=M=200k", x, y, 2, naive=False)
        knn_case(table, "knn k=16 B=8 N=M=2048", torch.rand(8, 2048, 3), torch.rand(8, 2048, 3), 16,
                 reps)
        knn_case(table, "knn k=16 B=1 N=M=200k", torch.rand(1, 200_000, 3),
                 torch.rand(1, 200_000, 3), 16, 2)
        knn_case(table, "knn k=20 D=64 B=8 N=1024 (DGCNN)", torch.randn(8, 1024, 64),
                 torch.randn(8, 1024, 64), 20, reps)
    table.print()
    goals(table, args.quick)
    emd_bench = Path(__file__).with_name("emd.py")
    if emd_bench.exists() and not args.no_emd:
        spec = importlib.util.spec_from_file_location("bench_emd", emd_bench)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        print("\nEMD (bench/emd.py):")
        mod.run(args.quick)


if __name__ == "__main__":
    main()
