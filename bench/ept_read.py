#!/usr/bin/env python3
"""Whole-dataset EPT read: pcgen's `read_ept` against a plain laspy read of every node file.

Checks that the full read keeps every point exactly once (count against ``ept.json``, bytes
against the node files in the reader's node order) and prints both times and pcgen's
peak resident memory. Too slow for the test suite on a shared 2-core machine.

    python bench/ept_read.py [--workers N] [PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import time

import laspy

from pcgen import datadir
from pcgen.io.ept import EptDataset, read_ept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default=datadir.data_dir() / "training" / "hawaii_ept")
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()

    t = time.perf_counter()
    cloud = read_ept(args.path, workers=args.workers)
    t_pcgen = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    digest = hashlib.sha256(cloud.to_record().array.tobytes()).hexdigest()
    n = len(cloud)
    del cloud

    ds = EptDataset(args.path)
    t = time.perf_counter()
    ref, total = hashlib.sha256(), 0
    for node in ds.select():
        points = laspy.read(ds.node_path(node)).points.array
        total += len(points)
        ref.update(points.tobytes())
    t_laspy = time.perf_counter() - t
    ok = n == total == ds.points and digest == ref.hexdigest()
    print(f"{ds.path}: {n} points (ept.json {ds.points}), identical to the node files: {ok}")
    print(f"pcgen read_ept {t_pcgen:.1f} s ({n / t_pcgen / 1e6:.2f} M pt/s), peak RSS "
          f"{peak:.0f} MiB; laspy node by node {t_laspy:.1f} s (incl. hashing)")
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
