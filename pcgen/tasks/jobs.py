"""One fill job per file, run in this process, a process pool, or on a Dask cluster.

A job is plain data (paths, generator spec, config) so it pickles to any worker; each worker
builds its generator once (:func:`pcgen.tasks.generators.make_generator`).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from pcgen.data.tile_inputs import unique_stems
from pcgen.errors import InputError, OutputError
from pcgen.inputs import input_kind, list_inputs
from pcgen.io import SUFFIXES
from pcgen.io.las import LAS_SUFFIXES, check_las_output
from pcgen.tasks.fill import FillConfig, fill_cloud, find_gaps, mask_gaps


@dataclass
class FillJob:
    """Fill one file. ``mask`` is a GeoJSON path or None (automatic detection)."""

    src: str
    dst: str
    generator: tuple
    config: FillConfig
    mask: str | None = None
    gaps_report: str | None = None
    mask_must_hit: bool = True
    progress: bool = False
    gaps_only: bool = False  # detect and report, write no LAS
    gap_workers: int = 1  # processes over this file's gaps (one big file on several cores)
    png: str | None = None  # where to draw the filled file (pcgen.tasks.fill_render)
    bounds: tuple | None = None  # read, fill and write only the points in this box (pcgen.io.read)

    def absolute(self) -> "FillJob":
        """The same job with every path absolute, as a Dask worker (whose folder is not the
        user's) must receive it: it read a same-named file of its own folder, or wrote there."""
        def absolute(path):
            return None if path is None else os.path.abspath(path)

        spec = self.generator
        if spec[0] == "model" and spec[1] is not None:
            spec = (spec[0], absolute(spec[1]), *spec[2:])
        return replace(self, src=absolute(self.src), dst=absolute(self.dst), generator=spec,
                                   mask=absolute(self.mask), gaps_report=absolute(self.gaps_report),
                                   png=absolute(self.png))


@dataclass
class JobResult:
    src: str
    dst: str | None
    n_original: int = 0
    n_generated: int = 0
    gaps: list = field(default_factory=list)
    skipped: str | None = None


def run_job(job: FillJob) -> JobResult:
    """Read, find gaps, report them, fill, write atomically. IN is only ever read.

    A problem with the data (a gap with nothing around it...) names the file it is in.
    """
    try:
        return _run_job(job)
    except InputError as exc:
        if exc.path is None:
            raise InputError(str(exc), job.src) from None
        raise


def _run_job(job: FillJob) -> JobResult:
    import pcgen.io as pio
    from pcgen.data.tile_index import tile_core
    from pcgen.io.bounds import BoundsMiss, in_tile_box, parse_bounds
    from pcgen.tasks.gaps import MIN_TILE_POINTS, tile_footprint
    from pcgen.tasks.generators import make_generator
    from pcgen.tasks.masks import MaskMiss, read_mask

    generator = None if job.gaps_only else make_generator(job.generator)
    try:
        cloud = pio.read(job.src, bounds=job.bounds)
    except BoundsMiss as exc:
        if job.mask_must_hit:  # the one input: the box is wrong
            raise
        return JobResult(job.src, None, 0, skipped=exc.message)  # one tile of many, outside the box
    if job.bounds is not None:  # half-open in x and y, as pcgen tile --bounds keeps the same box
        cloud = cloud.select(in_tile_box(cloud.xyz, *parse_bounds(job.bounds)))
    if len(cloud) < MIN_TILE_POINTS:
        raise InputError(f"{len(cloud)} points: nothing around any gap", job.src)
    if job.mask:
        footprint = tile_footprint(cloud.xyz[:, :2], job.config.gaps.footprint_concavity)
        try:
            polygons = read_mask(job.mask, crs=cloud.crs, footprint=footprint,
                                 drop_outside=not job.mask_must_hit)
        except MaskMiss as exc:
            if job.mask_must_hit:
                raise
            return JobResult(job.src, None, len(cloud), skipped=exc.message)
        gaps = mask_gaps(cloud, polygons)
    else:
        gaps = find_gaps(cloud, job.config)
    if job.gaps_only:
        if job.gaps_report:  # None: the mask is this report already (it is left as it is)
            _write_report(job.gaps_report, gaps, cloud.crs)
        return JobResult(job.src, None, len(cloud), gaps=[{"id": g.id, "area": round(g.area, 3)} for g in gaps])
    result = fill_cloud(cloud, gaps, generator, job.config, progress=job.progress,
                        desc=Path(job.src).name, core=tile_core(job.src, cloud),
                        workers=job.gap_workers, spec=job.generator)
    pio.write(result.cloud, job.dst)
    if job.gaps_report:  # written after the fill succeeds: a failed run leaves nothing behind
        measured = {r.id: r.density for r in result.gaps}  # a mask's gaps: the window's density
        gaps = [g if g.density_around == g.density_around else
                replace(g, density_around=measured.get(g.id, g.density_around)) for g in gaps]
        _write_report(job.gaps_report, gaps, cloud.crs)
    if job.png:
        from pcgen.data.tile_inputs import source_name
        from pcgen.io.crs import unit_symbol
        from pcgen.tasks.fill_render import render_fill

        render_fill(result.cloud.xyz, result.n_original, [g.polygon for g in gaps], job.png,
                    source_name(job.src), unit=unit_symbol(cloud.crs) if cloud.crs is not None else "units")
    return JobResult(job.src, job.dst, result.n_original, len(result.cloud) - result.n_original,
                     [asdict(g) for g in result.gaps])


def _write_report(path, gaps, crs) -> None:
    from pcgen.atomic import atomic_path
    from pcgen.tasks.gaps import gaps_to_geojson

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(gaps_to_geojson(gaps, crs), indent=1))


def expand_inputs(src: str | os.PathLike, dst: str | os.PathLike) -> list[tuple[Path, Path]]:
    """(input, output) file pairs for a file, a folder of LAS/LAZ, an EPT dataset, or a tile index
    (expanded by `pcgen.inputs.list_inputs`).

    A file (LAS/LAZ, COPC, or another format `pcgen.io` reads) or an EPT dataset is one input,
    with ``dst`` its output file. For folders and indexes ``dst`` is a folder and outputs keep
    the input names (``<stem>-2`` and on where names repeat, as ``pcgen tile`` names them);
    only LAS/LAZ files are listed there, since every output is LAS/LAZ.

    Raises:
        InputError: missing input, empty folder/index; OutputError: an output would replace its input.
    """
    src, dst = Path(src), Path(dst)
    kind = input_kind(src)
    if kind in ("file", "ept"):
        pairs = [(list_inputs([src], suffixes=SUFFIXES)[0], dst)]
    else:
        files = list_inputs([src])
        if dst.suffix.lower() in LAS_SUFFIXES:
            raise OutputError("several inputs need an output folder, not a file", dst)
        # files of one name from several folders (a tile index) get <stem>-2, -3...
        pairs = [(f, dst / (stem + f.suffix)) for f, stem in zip(files, unique_stems(files))]
    for a, b in pairs:
        if b.exists() and b.resolve() == a.resolve():
            raise OutputError("output would overwrite its input; pick another name", b)
        if b.suffix.lower() not in LAS_SUFFIXES:
            raise OutputError("output must end in .las or .laz", b)
        check_las_output(b)
    return pairs


def run_jobs(jobs: list[FillJob], workers: int = 1, dask_address: str | None = None,
             progress: bool = True) -> list[JobResult]:
    """Run jobs locally (``workers`` processes) or on the Dask scheduler at ``dask_address``,
    through `pcgen.dispatch.run_all`; results in job order.

    Errors raised in workers reach the caller unchanged (PcgenError pickles), so the CLI
    reports them as one line.
    """
    from tqdm.auto import tqdm

    from pcgen.dispatch import run_all

    if dask_address:
        jobs = [job.absolute() for job in jobs]
    bar = tqdm(total=len(jobs), desc="files", unit="file", disable=not progress or len(jobs) < 2)
    try:
        return run_all(run_job, jobs, workers=workers, dask_address=dask_address,
                       on_done=lambda i, result: bar.update(), preload=["pcgen.tasks.jobs"])
    finally:
        bar.close()
