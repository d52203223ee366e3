"""Fill gaps in LiDAR tiles: detect or read gaps, generate points, write LAS/LAZ with every original kept.

The generator is anything with ``generate(ctx, n, rng) -> (P, 3)`` world points over the gap's
box: the shipped model (:class:`pcgen.tasks.generators.ModelGenerator`) or a baseline
(:mod:`pcgen.tasks.baselines`). New points get the ASPRS ``synthetic`` flag and an extra-bytes
dimension (``generated`` by default: 1 new, 0 original; laspy already names the standard flag
bit ``synthetic``, so an extra-bytes ``synthetic`` would be unreadable by name), their other
attributes from one original point the originals around them pick (:mod:`pcgen.tasks.donors`;
``output.attributes``), and with K > 1 samples an ``uncertainty``
dimension: the mean distance from each point to the nearest point of the K - 1 other draws.
"""

from __future__ import annotations

import os
from pathlib import Path
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import shapely
from scipy.spatial import cKDTree
from shapely.geometry import Polygon

from pcgen.errors import ConfigError, InputError, OutputError
from pcgen.tasks.config_checks import COMBINE, check_fill_config
from pcgen.tasks.context import ContextConfig, GapContext, SortedCloud, build_context, draw_in_gap, window_index
from pcgen.tasks.gaps import Gap, GapConfig, detect_gaps, tile_footprint


@dataclass
class OutputConfig:
    class_code: int | None = None        # ASPRS class of new points; None: the donor's (``attributes``)
    attributes: str = "neighbours"       # who lends a new point its attributes: config_checks.ATTRIBUTE_DONORS
    generated_dim: str = "generated"      # extra bytes: 1 new, 0 original
    uncertainty_dim: str = "uncertainty"  # extra bytes (K > 1): metres between draws
    set_synthetic_flag: bool = True       # the LAS standard 'synthetic' classification bit


@dataclass
class FillConfig:
    """Everything ``pcgen fill`` reads from ``pcgen/conf/task/fill.yaml`` (overridable per run)."""

    gaps: GapConfig = field(default_factory=GapConfig)
    context: ContextConfig = field(default_factory=ContextConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    samples: int = 1  # a library call draws once; pcgen fill's config (fill.yaml) asks for 8
    combine: str = "consensus"  # how K > 1 draws become the written fill: consensus or medoid
    seed: int = 0


def load_fill_config(path: str | os.PathLike | None = None, overrides: Sequence[str] = (),
                     config_dir: str | os.PathLike | None = None) -> FillConfig:
    """Compose ``task/fill`` with a user's yaml over it, then Hydra-style ``key=value`` overrides.

    Args:
        path: a yaml file setting some of the keys (the rest keep the packaged values).
        overrides: e.g. ``["gaps.density_ratio=0.1", "samples=4"]``.
        config_dir: a user's config folder; its ``task/fill.yaml`` replaces the packaged one.
    Returns:
        The settings, typed and checked by :class:`FillConfig`.
    Raises:
        ConfigError: missing file, unknown key or wrongly typed value.
    """
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from pcgen.conf import compose

    composed = compose("task/fill", overrides, config_dir=config_dir, overlay=path or None)
    try:
        cfg = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(FillConfig), composed))
    except OmegaConfBaseException as exc:
        where = f" ({path} over the packaged task/fill)" if path else ""
        key = f"{exc.full_key}: " if getattr(exc, "full_key", None) else ""
        raise ConfigError(f"bad fill config{where}: {key}{str(exc).splitlines()[0]}") from None
    cfg.gaps.exclude_classes = list(cfg.gaps.exclude_classes)
    return cfg


@dataclass
class GapResult:
    """What happened in one gap (also the per-gap row of the JSON report)."""

    id: int
    area: float
    density: float
    n_context: int
    n_target: int
    n_generated: int


@dataclass
class FillResult:
    cloud: object  # pcgen.io.PointCloud: originals first, then new points
    n_original: int
    gaps: list[GapResult]


def check_samples(samples: int) -> int:
    if not isinstance(samples, (int, np.integer)) or samples <= 0:
        raise ConfigError(f"samples must be a positive integer, got {samples}")
    return int(samples)


def draw_spread(draws: list[np.ndarray]) -> np.ndarray:
    """(P,) mean distance from each point of draw 0 to its nearest point in each other draw."""
    first = draws[0]
    if len(draws) == 1 or len(first) == 0:
        return np.zeros(len(first), np.float32)
    dists = []
    for other in draws[1:]:
        if len(other) == 0:
            continue
        d, _ = cKDTree(other).query(first, k=1)
        dists.append(d)
    return (np.mean(dists, axis=0) if dists else np.zeros(len(first))).astype(np.float32)


def representative(draws: list[np.ndarray]) -> int:
    """Index of the draw with the least mean Chamfer distance to the other draws (their medoid).

    With K draws of a gap, the medoid is the minimum-Bayes-risk pick under Chamfer: the draw
    most like what the generator would produce on average, so it is the one written, and the
    other draws only measure the uncertainty.
    """
    k = len(draws)
    if k < 3 or any(len(d) == 0 for d in draws):
        return 0
    trees = [cKDTree(d) for d in draws]
    cost = np.zeros((k, k))
    for i in range(k):
        for j in range(k):
            if i != j:
                cost[i, j] = trees[j].query(draws[i], k=1)[0].mean()
    return int(np.argmin((cost + cost.T).sum(1)))




def consensus(draws: list[np.ndarray], first: int, rounds: int = 3) -> np.ndarray:
    """(P, 3) draw ``first``'s points, each moved to the mean of the drawn points nearest it.

    The pooled points of all K draws are assigned to their nearest written point and each
    written point moves to the mean of its share, ``rounds`` times (Lloyd's k-means started
    from one draw). A single draw carries its own sampling noise (clumps and holes); the means
    sit where the draws agree, which is what Chamfer and the F-score reward, and each written
    point stays the one it started as, so it keeps that point's attributes. Written here
    rather than with ``scipy.cluster.vq.kmeans2``, which compares every point with every centre:
    a KD tree keeps a gap of tens of thousands of points fast.
    """
    centres = np.array(draws[first], dtype=np.float64)
    if len(centres) == 0:  # a gap too small to hold a point at the surrounding density
        return centres
    pooled = np.concatenate([d for d in draws if len(d)])
    if len(pooled) == len(centres):
        return centres
    for _ in range(rounds):
        owner = cKDTree(centres).query(pooled, k=1)[1]
        count = np.bincount(owner, minlength=len(centres))
        total = np.zeros_like(centres)
        np.add.at(total, owner, pooled)
        kept = count > 0  # a point no drawn point is nearest to stays where it is
        centres[kept] = total[kept] / count[kept, None]
    return centres


def combine_draws(draws: list[np.ndarray], how: str = "consensus",
                  inside: Polygon | None = None) -> tuple[np.ndarray, int]:
    """The points written for one gap from its K draws, and the index of the draw they come from.

    ``medoid`` writes the :func:`representative` draw as it is; ``consensus`` moves its points
    by :func:`consensus` over all draws, keeping a point where it was when its mean would
    leave ``inside`` (the gap's polygon, which need not be convex).
    """
    if how not in COMBINE:
        raise ConfigError(f"combine must be one of {', '.join(COMBINE)}, got {how!r}")
    if not draws:
        raise ValueError("combine_draws needs at least one draw")
    k = representative(draws)
    if how == "medoid" or len(draws) < 2:
        return draws[k], k
    pts = consensus(draws, k)
    if inside is not None and len(pts):
        out = ~shapely.contains_xy(inside, pts[:, 0], pts[:, 1])
        pts[out] = draws[k][out]
    return pts, k


def fill_points(xyz: np.ndarray, gaps: Sequence[Gap], generator, *, attributes: dict | None = None,
                config: FillConfig | None = None, footprint: Polygon | None = None,
                progress: bool = False, desc: str = "gaps", workers: int = 1, spec: tuple | None = None):
    """Generate points for every gap (the array half of :func:`fill_cloud`).

    Gap ``i`` draws from its own random stream, ``(seed, i)``, so the fill is the same whether
    its gaps run one after another or spread over ``workers`` processes.

    Args:
        xyz: (N, 3) world coordinates.
        gaps: gaps to fill.
        generator: object with ``generate(ctx, n, rng)``.
        attributes: (N,) arrays given to generators through the context (classification, ...).
        workers: processes over the gaps; each builds the generator ``spec`` names
            (:func:`pcgen.tasks.generators.make_generator`) and reads the points from a
            memory-mapped copy in a temporary folder.
    Returns:
        (new (P, 3), source (P,) index of the original point each new point takes its attributes
        from (the point it was copied from, or the nearest one), uncertainty (P,) float32,
        list of GapResult).
    Raises:
        InputError: a gap has too few points around it.
        ConfigError: a setting out of range (:func:`pcgen.tasks.config_checks.check_fill_config`).
    """
    from tqdm.auto import tqdm


    cfg = config or FillConfig()
    check_samples(cfg.samples)
    check_fill_config(cfg)  # a FillConfig built or changed in Python never met the command line's checks
    bar = tqdm(total=len(gaps), desc=desc, unit="gap", disable=not progress, leave=False)
    try:
        if workers > 1 and spec is not None and len(gaps) > 1:
            parts = _fill_in_processes(xyz, list(enumerate(gaps)), spec, attributes, cfg,
                                       footprint, workers, bar)
        else:
            cloud = SortedCloud(xyz, None) if len(gaps) else None
            parts = []
            for i, gap in enumerate(gaps):
                parts.append(_fill_gap(xyz, cloud, i, gap, generator, attributes, cfg, footprint))
                bar.update()
    finally:
        bar.close()
    results = [p[3] for p in parts]
    parts = [p for p in parts if len(p[0])]
    if not parts:
        return np.zeros((0, 3)), np.zeros(0, np.int64), np.zeros(0, np.float32), results
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]), results)


def _fill_gap(xyz, cloud, i: int, gap: Gap, generator, attributes, cfg: FillConfig, footprint):
    """(new points, their source indices, their uncertainty, GapResult) of gap ``i``."""
    rng = np.random.default_rng([cfg.seed, i])
    ctx = build_context(xyz, gap.polygon, cfg.context, attributes=attributes, footprint=footprint,
                        rng=rng, gap_id=gap.id, cloud=cloud)
    draws = [draw_in_gap(generator, ctx, rng) for _ in range(cfg.samples)]
    pts, k = combine_draws([d[0] for d in draws], cfg.combine, ctx.polygon)
    made_from = draws[k][1]
    src, unc = np.zeros(0, np.int64), np.zeros(0, np.float32)
    if len(pts):
        unc = draw_spread([pts] + [d[0] for j, d in enumerate(draws) if j != k])
        src = attribute_sources(cfg, xyz, cloud, ctx, attributes, pts, made_from)
    return pts, src, unc, GapResult(id=gap.id, area=round(gap.area, 3), density=round(ctx.density, 4),
                                    n_context=len(ctx.index), n_target=ctx.n_target, n_generated=len(pts))


def _fill_in_processes(xyz, numbered_gaps, spec, attributes, cfg, footprint, workers, bar) -> list:
    """:func:`_fill_gap` over ``(i, gap)`` pairs in a pool, in order; about four batches per
    worker keep both busy when gaps differ in size."""
    import shutil
    import tempfile

    from pcgen.dispatch import run_all

    folder = Path(tempfile.mkdtemp(prefix="pcgen-fill-"))
    try:
        try:
            np.save(folder / "xyz.npy", np.ascontiguousarray(xyz, dtype=np.float64))
            for name, values in (attributes or {}).items():
                np.save(folder / f"attr-{name}.npy", np.asarray(values))
        except OSError as exc:
            raise OutputError(f"cannot share the points with the worker processes ({exc.strerror or exc}); "
                              "free space there or set TMPDIR, or fill with -j 1", folder) from None
        size = max(1, -(-len(numbered_gaps) // (4 * workers)))
        batches = [numbered_gaps[k:k + size] for k in range(0, len(numbered_gaps), size)]
        jobs = [(str(folder), spec, batch, cfg, footprint) for batch in batches]
        done = run_all(_fill_batch, jobs, workers=workers, preload=["pcgen.tasks.fill"],
                       on_done=lambda k, result: bar.update(len(result)))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return [part for batch in done for part in batch]


_POINTS: dict = {}  # per worker process: the points of the fill it serves, read once


def _fill_batch(job) -> list:
    """Worker entry of :func:`_fill_in_processes`."""
    from pcgen.tasks.generators import make_generator

    folder, spec, batch, cfg, footprint = job
    if folder not in _POINTS:
        xyz = np.load(Path(folder) / "xyz.npy", mmap_mode="r")
        attrs = {f.stem[len("attr-"):]: np.load(f, mmap_mode="r") for f in Path(folder).glob("attr-*.npy")}
        _POINTS.clear()
        _POINTS[folder] = (xyz, attrs, SortedCloud(xyz, None))
    xyz, attrs, cloud = _POINTS[folder]
    generator = make_generator(spec)
    return [_fill_gap(xyz, cloud, i, gap, generator, attrs, cfg, footprint) for i, gap in batch]


def attribute_sources(cfg: FillConfig, xyz, cloud, ctx: GapContext, attributes, pts: np.ndarray,
                      made_from) -> np.ndarray:
    """(P,) index (into the tile) of the original that lends each of ``pts`` its attributes, by
    ``cfg.output.attributes``: the originals around it pick (``neighbours``), or the point it was
    made from (``source``: ``made_from`` indexes the context; the nearest original for
    generators that say nothing)."""
    if cfg.output.attributes == "neighbours":
        return _neighbour_donors(xyz, cloud, ctx, attributes, pts)
    return ctx.index[made_from] if made_from is not None else _nearest_source(ctx, pts)


def _neighbour_donors(xyz, cloud, ctx: GapContext, attributes, pts: np.ndarray) -> np.ndarray:
    """Index (into the tile) of the original that lends each new point its attributes: every
    original point of the gap's window votes (:func:`pcgen.tasks.donors.attribute_donors`), not
    only the thinned subset the generator read; heights are taken above the gap frame's ground."""
    from pcgen.tasks.donors import attribute_donors
    from pcgen.tasks.frame import GroundSurface, ground_points

    near = window_index(xyz, ctx.window, cloud)
    cls = (attributes or {}).get("classification")
    ground = GroundSurface.of(ground_points(ctx.xyz, ctx.attributes.get("classification")))
    donors = attribute_donors(np.asarray(xyz[near], dtype=np.float64),
                              None if cls is None else np.asarray(cls)[near], ground, pts)
    return near[donors]


def _nearest_source(ctx: GapContext, pts: np.ndarray) -> np.ndarray:
    """Index (into the tile) of each new point's nearest context point, for attribute imputation
    by generators that do not copy points (the copying ones say where each point came from)."""
    _, j = cKDTree(ctx.xyz).query(pts, k=1)
    return ctx.index[j]


def fill_cloud(cloud, gaps: Sequence[Gap], generator, config: FillConfig | None = None,
               progress: bool = False, desc: str = "gaps", core=None, workers: int = 1,
               spec: tuple | None = None) -> FillResult:
    """Fill ``gaps`` in a :class:`pcgen.io.PointCloud`; originals stay first and untouched.

    ``core``: ``(buffer dimension, core bounds)`` of a tile (`pcgen.data.tile_index.tile_core`):
    each new point's buffer flag then says where it landed, not where its source was.
    ``workers`` processes fill the gaps, each with the generator ``spec`` names (see
    :func:`fill_points`); the output is the same for any number.

    Returns:
        A :class:`FillResult` whose cloud holds N originals then P new points, plus the
        ``generated`` (and with K > 1 ``uncertainty``) extra-bytes dimensions.
    """
    from pcgen.io import concat

    cfg = config or FillConfig()
    check_samples(cfg.samples)
    check_fill_config(cfg)
    code = cfg.output.class_code
    if code is not None and cloud.header is not None and "classification" in cloud.attributes:
        from pcgen.io.cloud import check_fits

        try:  # before the fill: the write would refuse it after every gap was filled
            check_fits("classification", np.array([code]), cloud.header.point_format)
        except ConfigError:
            raise ConfigError(f"output.class_code (--class-code) {code} does not fit the classification of "
                              f"LAS point format {cloud.header.point_format.id} (0..31; formats 6-10 "
                              "store 0..255)") from None
    xyz = cloud.xyz
    attrs = {k: cloud.attributes[k] for k in ("classification", "return_number", "number_of_returns")
             if k in cloud.attributes}
    footprint = tile_footprint(xyz[:, :2], cfg.gaps.footprint_concavity)
    new_xyz, src, unc, results = fill_points(xyz, gaps, generator, attributes=attrs, config=cfg,
                                             footprint=footprint, progress=progress, desc=desc,
                                             workers=workers, spec=spec)
    out_cfg = cfg.output
    for name in (out_cfg.generated_dim, out_cfg.uncertainty_dim):
        if name in cloud.attributes:
            raise InputError(f"the file already has a dimension {name!r}; pick another name "
                             "in the fill config (output.*_dim)")
    n = len(cloud)
    if len(new_xyz):
        extra = cloud.select(src)
        extra.xyz = new_xyz
        if out_cfg.class_code is not None and "classification" in extra.attributes:
            extra.attributes["classification"] = np.full(len(new_xyz), out_cfg.class_code,
                                                         dtype=extra.attributes["classification"].dtype)
        if core is not None and core[0] in extra.attributes:
            xmin, ymin, xmax, ymax = core[1]
            x, y = new_xyz[:, 0], new_xyz[:, 1]
            in_core = (x >= xmin) & (x < xmax) & (y >= ymin) & (y < ymax)
            extra.attributes[core[0]] = (~in_core).astype(extra.attributes[core[0]].dtype)
        if out_cfg.set_synthetic_flag and "synthetic" in extra.attributes:
            extra.attributes["synthetic"] = np.ones(len(new_xyz), dtype=extra.attributes["synthetic"].dtype)
        merged = concat([cloud, extra])
    else:
        merged = concat([cloud])
    flag = np.zeros(len(merged), np.uint8)
    flag[n:] = 1
    if out_cfg.set_synthetic_flag and "synthetic" not in merged.attributes:
        merged.attributes["synthetic"] = flag.copy()  # a PLY/XYZ cloud: LAS output gets the standard bit
    merged.add_extra_dimension(out_cfg.generated_dim, np.uint8, flag, FILLED_MARK)
    if cfg.samples > 1:
        u = np.zeros(len(merged), np.float32)
        u[n:] = unc
        merged.add_extra_dimension(out_cfg.uncertainty_dim, np.float32, u, "pcgen: spread of K draws")
    return FillResult(cloud=merged, n_original=n, gaps=results)


FILLED_MARK = "pcgen: 1 generated, 0 original"  # the description of the generated flag


def is_filled_file(path) -> bool:
    """Whether ``path`` is a LAS/LAZ file `fill_cloud`'s output was written to (it carries the
    generated flag described by :data:`FILLED_MARK`): the one kind of file ``pcgen fill
    --overwrite`` may replace."""
    import laspy

    try:
        with laspy.open(path) as reader:
            return any(d.description == FILLED_MARK for d in reader.header.point_format.extra_dimensions)
    except Exception:  # noqa: BLE001 - anything unreadable is not ours
        return False


def mask_gaps(cloud, polygons: Sequence[Polygon]) -> list[Gap]:
    """User-drawn polygons as :class:`Gap` objects (density is measured later, per window).

    Raises:
        ConfigError: a polygon that is not a valid shapely Polygon (a self-crossing bow-tie,
            an empty one), which would fail deep in the geometry library mid-fill.
    """
    for i, p in enumerate(polygons):
        if not isinstance(p, Polygon) or p.is_empty or not p.is_valid or not p.area > 0:
            why = shapely.is_valid_reason(p) if isinstance(p, Polygon) and not p.is_empty else "empty or not a Polygon"
            raise ConfigError(f"gap polygon {i} cannot be filled: {why}")
    return [Gap(id=i, polygon=p, density_around=float("nan"), n_cells=0, properties={"source": "mask"})
            for i, p in enumerate(polygons)]


def find_gaps(cloud, config: FillConfig) -> list[Gap]:
    """Automatic detection on a cloud (classification used for the excluded classes)."""
    cls = cloud.attributes["classification"] if "classification" in cloud.attributes else None
    return detect_gaps(cloud.xyz, cls, config.gaps)

