"""Time `pcgen augment --labels` making 100 synthetic 40 m tiles from real labelled tiles.

    .venv/bin/python bench/augment.py [--site training/lastools_fusa.laz] [--n 100] [--gap-fraction 0.5]

The site is cut into 40 m tiles by `pcgen tile` (not timed); then `pcgen augment` re-imagines a
box of each with the shipped gap model and writes labelled LAZ tiles. Prints the time per tile
and per 100 tiles next to the peer every augmentation job pays anyway, reading and writing the
same tiles, measured in the same run. The goal is under 5 minutes per 100 tiles on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--site", default="training/lastools_fusa.laz", help="relative to the data folder")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--gap-fraction", type=float, default=0.5)
    args = parser.parse_args(argv)

    import pcgen.io as pio
    from pcgen import datadir

    pcgen = [sys.executable, "-m", "pcgen.cli"]
    work = Path(tempfile.mkdtemp(prefix="pcgen-bench-augment-"))
    tiles = work / "tiles"
    subprocess.run([*pcgen, "tile", str(datadir.data_dir() / args.site), str(tiles), "--size", "40",
                    "--no-overview"], check=True, stderr=subprocess.DEVNULL)
    paths = sorted(tiles.glob("*.laz"))
    t = time.perf_counter()
    for i in range(args.n):
        pio.write(pio.read(paths[i % len(paths)]), work / "io.laz")
    io_s = time.perf_counter() - t
    t = time.perf_counter()
    subprocess.run([*pcgen, "augment", str(work / "aug"), "--n", str(args.n), "--condition", str(tiles),
                    "--labels", "--gap-fraction", str(args.gap_fraction)], check=True,
                   stderr=subprocess.DEVNULL)
    aug_s = time.perf_counter() - t
    man = json.loads((work / "aug" / "manifest.json").read_text())
    points = sum(s["points"] for s in man["tiles"])
    generated = sum(s["generated"] for s in man["tiles"])
    print(f"{args.n} labelled 40 m tiles of {args.site} ({points / args.n:.0f} points each, "
          f"{generated / args.n:.0f} generated): {aug_s:.1f} s = {aug_s / args.n:.2f} s per tile, "
          f"{aug_s / args.n * 100 / 60:.2f} min per 100 tiles (goal < 5); reading + writing the same "
          f"tiles {io_s:.1f} s, ratio {aug_s / max(io_s, 1e-9):.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
