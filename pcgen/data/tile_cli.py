"""`pcgen tile IN... OUT_DIR`: buffered square tiles, a GeoJSON tile index and a PNG overview."""

from __future__ import annotations

import argparse
import sys

from pcgen.data.tiling import TileOptions, tile_files
from pcgen.errors import ConfigError
from pcgen.options import (bounds_box, check_scale_out, dask_address, float_range, non_negative_float,
                           non_negative_int, positive_float, positive_int, workers)
from pcgen.outputs import check_output

# Tile names print corners to 3 decimals, and tile keys are int64 products of the two axes'
# tile counts: sides under a centimetre collide in names or overflow keys. Voxel keys fall
# back to per-axis indices but still need extent / voxel within int64.
TILE_SIZE = float_range(0.01, 1e9, name="tile size")
VOXEL = float_range(1e-6, 1e9, name="voxel size")
MEMORY = float_range(0.01, 4096.0, name="memory in GiB")  # under 10 MiB spills every chunk; 4 TiB+ is a typo


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="IN",
                        help="LAS/LAZ (COPC too) files, folders of them, or EPT datasets "
                             "(ept.json or its folder)")
    parser.add_argument("out_dir", metavar="OUT_DIR", help="output folder (created atomically)")
    parser.add_argument("--size", type=TILE_SIZE, default=50.0, help="tile side in file units (50)")
    parser.add_argument("--buffer", type=non_negative_float, default=5.0,
                        help="buffer width, written with buffer=1 (5; 0 for none)")
    parser.add_argument("--bounds", type=bounds_box, default=None, metavar="XMIN,YMIN,XMAX,YMAX",
                        help="tile only the points in this box (the data's CRS units); EPT datasets "
                             "and COPC files read only the nodes it meets")
    parser.add_argument("--ground-normalize", action="store_true",
                        help="replace Z by height above ground (class 2, else a low percentile)")
    parser.add_argument("--min-points", type=non_negative_int, default=0, metavar="K",
                        help="drop tiles whose core holds fewer than K points")
    parser.add_argument("--voxel", type=VOXEL, default=None, metavar="V",
                        help="thin to one point per V-sized voxel")
    parser.add_argument("--workers", type=workers, default=1, metavar="N",
                        help="processes, one file each (1)")
    parser.add_argument("--dask", type=dask_address, default=None, metavar="ADDRESS",
                        help="run files as tasks on this Dask scheduler (tcp://host:8786)")
    parser.add_argument("--chunk-size", type=positive_int, default=2_000_000,
                        help="points read per chunk (2000000)")
    parser.add_argument("--job-points", type=positive_int, default=20_000_000, metavar="N",
                        help="tile an EPT dataset or COPC file of more points as strips of "
                             "about N points, a job each (20000000)")
    parser.add_argument("--max-memory", type=MEMORY, default=2.0, metavar="GIB",
                        help="point records per file kept in memory before spilling to disk (2)")
    parser.add_argument("--las", action="store_true", help="write uncompressed .las tiles")
    parser.add_argument("--no-overview", action="store_true", help="skip overview.png")
    parser.add_argument("--overwrite", action="store_true",
                        help="write into a non-empty OUT_DIR, replacing only the files an earlier "
                             "pcgen tile wrote there (nothing else)")
    parser.add_argument("--quiet", "-q", action="store_true",
                        help="print nothing but errors (no progress bars, no summary)")


def run(args: argparse.Namespace) -> int:
    check_scale_out(args.workers, args.dask)
    if args.voxel is not None and args.voxel > args.size:
        raise ConfigError(f"--voxel {args.voxel:g} is larger than a tile (--size {args.size:g}): "
                          "each tile would keep a point or two")
    check_output(args.out_dir, args.inputs, folder=True, overwrite=args.overwrite,
                 overwrite_hint="--overwrite")
    options = TileOptions(size=args.size, buffer=args.buffer, min_points=args.min_points,
                          ground_normalize=args.ground_normalize, voxel=args.voxel,
                          chunk_size=args.chunk_size, job_points=args.job_points,
                          max_memory=int(args.max_memory * 1024 ** 3), compress=not args.las,
                          bounds=args.bounds)
    index = tile_files(args.inputs, args.out_dir, options, workers=args.workers,
                       dask_address=args.dask, overwrite=args.overwrite,
                       progress=not args.quiet and sys.stderr.isatty(), overview=not args.no_overview)
    feats = index["features"]
    points = sum(f["properties"]["core_points"] for f in feats)
    sources = index["properties"]["sources"]
    if not args.quiet:
        print(f"{len(feats)} tiles, {points} core points from {len(sources)} file(s) -> {args.out_dir}")
    return 0
