"""Benchmark `pcgen fill` stages on a real file, as ratios to reading + writing the same file.

    .venv/bin/python bench/fill.py [--file Topography.laz] [--ckpt CKPT] [--repeat 3]

The peer is the I/O any fill must do anyway (read the LAZ, write it back), measured in the same
run, so the ratios mean the same on a fast or a busy machine. Stages: gap detection, and filling
a 20 m hole (plus the detected gaps) with each generator (gaps and points per second).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from shapely.geometry import Point


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--file", default="Topography.laz")
    parser.add_argument("--ckpt", default=None, help="conditional checkpoint (default: the shipped one, if present)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    import torch

    import pcgen.io as pio
    from pcgen import datadir
    from pcgen.tasks.baselines import HybridFill, MirrorFill, SurfaceFill
    from pcgen.tasks.fill import FillConfig, fill_cloud, find_gaps, mask_gaps
    from pcgen.tasks.generators import DEFAULT_CHECKPOINT, load_generator

    torch.set_num_threads(2)
    path = datadir.lidar_file(args.file)
    out = Path(tempfile.mkdtemp()) / "out.laz"
    cloud = pio.read(path)
    io_s = best_of(lambda: pio.write(pio.read(path), out), args.repeat)
    cfg = FillConfig()
    detect_s = best_of(lambda: find_gaps(cloud, cfg), args.repeat)
    centre = cloud.xyz[:, :2].mean(0)
    hole = np.hypot(*(cloud.xyz[:, :2] - centre).T) <= 10.0
    holed = cloud.select(~hole)
    gaps = mask_gaps(holed, [Point(centre).buffer(10.0)]) + find_gaps(holed, cfg)
    for i, g in enumerate(gaps):
        g.id = i
    generators = {"mirror": MirrorFill(), "hybrid": HybridFill(), "surface": SurfaceFill()}
    ckpt = Path(args.ckpt) if args.ckpt else DEFAULT_CHECKPOINT
    if ckpt.is_file():
        generators["pcgen"] = load_generator(ckpt)
    print(f"{path.name}: {len(cloud)} points; peer = read + write LAZ: {io_s * 1e3:.0f} ms")
    print(f"gap detection: {detect_s * 1e3:.0f} ms = {detect_s / io_s:.2f}x peer ({len(find_gaps(cloud, cfg))} gaps)")
    for name, gen in generators.items():
        added = []

        def run():
            added.append(len(fill_cloud(holed, gaps, gen, cfg).cloud) - len(holed))

        s = best_of(run, args.repeat)
        pts = statistics.median(added)
        print(f"fill {len(gaps)} gaps with {name}: {s * 1e3:.0f} ms = {s / io_s:.2f}x peer, "
              f"{len(gaps) / s:.1f} gaps/s, {pts / s:,.0f} points/s ({pts} points added)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
