"""Gap-filling evaluation against ground truth: cut known boxes out of held-out real tiles, fill, compare.

Every generator (the model and the baselines) fills the same cuts with the same point budget
(the surrounding density × the gap area), and is compared with the points that were removed:

* Chamfer distance (metres): mean nearest-neighbour distance generated → true plus true → generated,
  halved (so it reads as "typical error");
* EMD (metres): mean matched distance of an optimal one-to-one matching (auction solver) between
  equal-size random subsets of both sets;
* F-score at τ (metres): precision = share of generated points within τ of a true point, recall
  the converse, F = 2PR / (P + R);
* vegetation structure: height above the local ground (interpolated from the surrounding class-2
  points; in a file without a ground class, from the lowest returns the gap frame keeps,
  :func:`pcgen.tasks.frame.filtered_lowest`) p50 / p95, and points per m², each as absolute
  error against the truth;
* in a classified file, the share of new points whose class (from the original that lends it,
  ``output.attributes``: :func:`pcgen.tasks.fill.attribute_sources`, as ``pcgen fill`` writes it)
  is the class of the true point nearest to them;
* with K > 1 draws, the Spearman correlation, pooled over every cut, between a point's
  uncertainty (its mean distance to the other draws, as ``pcgen fill --samples K`` writes it)
  and its distance to the nearest true point.

:func:`compare` puts the model against the strongest baseline: the share of cuts it is best on
and a bootstrap 95% interval of its mean Chamfer difference.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree
from shapely.geometry import box as shapely_box

from pcgen.errors import InputError
from pcgen.tasks.context import build_context, draw_in_gap
from pcgen.tasks.fill import FillConfig, attribute_sources, combine_draws, draw_spread
from pcgen.tasks.frame import GroundSurface, filtered_lowest
from pcgen.tasks.gaps import MIN_TILE_POINTS, tile_footprint


@dataclass
class EvalConfig:
    """Cuts and metric settings of ``pcgen eval-fill`` (its command-line options)."""

    cuts_per_tile: int = 2
    gap_size: float = 10.0        # side of the square cut, CRS units
    edge_margin: float = 4.0      # cuts stay this far inside the tile's bounds
    min_removed: int = 40         # cuts removing fewer true points are redrawn
    tau: list[float] = field(default_factory=lambda: [0.5, 1.0, 2.0])
    emd_points: int = 512         # subset size for EMD
    ground_class: int = 2
    seed: int = 0
    samples: int = 1              # K draws per cut and method; K > 1 scores the uncertainty
    bootstrap: int = 2000         # resamples of the cuts for the interval of a Chamfer difference
    unit: str = "m"               # the files' distance unit, for the tables (load_tiles)


@dataclass
class Cut:
    """One square cut of a tile. It keeps the tile's arrays and a mask, not a copy of what is
    left: 24 cuts of a 14 M-point survey would otherwise hold 24 copies of it (8 GB)."""

    tile: str
    polygon: object
    inside: np.ndarray      # (N,) bool: the tile's points the cut removes
    tile_xyz: np.ndarray    # (N, 3) the whole tile (shared by its cuts)
    tile_attributes: dict
    centre: np.ndarray      # (2,) and the half-side: what a worker rebuilds the cut from (:meth:`at`)
    half: float

    @classmethod
    def at(cls, tile: str, xyz: np.ndarray, attributes: dict, centre: np.ndarray, half: float) -> "Cut":
        """The square of half-side ``half`` around ``centre`` cut out of a tile."""
        inside = np.all(np.abs(xyz[:, :2] - centre) <= half, axis=1)
        poly = shapely_box(centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half)
        return cls(tile, poly, inside, xyz, attributes, centre, half)

    @property
    def removed(self) -> np.ndarray:
        """(R, 3) the true points inside the cut."""
        return self.tile_xyz[self.inside]

    @property
    def xyz(self) -> np.ndarray:
        """(N - R, 3) what the cut leaves (a new array at each call)."""
        return self.tile_xyz[~self.inside]

    @property
    def attributes(self) -> dict:
        return {k: np.asarray(v)[~self.inside] for k, v in self.tile_attributes.items()}


MAX_CUT_DRAWS = 100_000  # random places tried per tile at most (20 per cut asked)


def cut_boxes(name: str, xyz: np.ndarray, attributes: dict, config: EvalConfig,
              rng: np.random.Generator) -> list[Cut]:
    """Square cuts at random places well inside a tile (inside its core, for a tile with
    ``pcgen tile``'s ``buffer`` attribute), each removing at least ``min_removed``
    points, from 20 random draws per cut asked. No two touch, so a tile takes at most as many
    as fit side by side: once that many are placed, the draws left are taken from ``rng`` in one
    call (the tiles after it get the cuts they always got), and a count too large to draw for
    (over :data:`MAX_CUT_DRAWS` draws) gets 20 draws for each cut that fits."""
    core = xyz[:, :2]
    if "buffer" in attributes:  # a buffered tile: its buffer is a neighbour's core, never truth
        core = core[np.asarray(attributes["buffer"]) == 0]
        if len(core) == 0:
            return []
    lo, hi = core.min(0) + config.edge_margin, core.max(0) - config.edge_margin
    if np.any(hi - lo <= config.gap_size):
        return []
    cuts: list[Cut] = []
    half = config.gap_size / 2
    fit = math.prod(np.floor((hi - lo) / config.gap_size).tolist())  # inf for a vanishing gap
    draws = config.cuts_per_tile * 20
    if draws > MAX_CUT_DRAWS:
        draws = int(min(config.cuts_per_tile, fit)) * 20
    for k in range(draws):
        if len(cuts) == config.cuts_per_tile:
            break
        if len(cuts) == fit:  # no room for another: the stream moves on as if each draw failed
            rng.uniform(lo + half, hi - half, size=(draws - k, 2))
            break
        cut = Cut.at(name, xyz, attributes, rng.uniform(lo + half, hi - half), half)
        if cut.inside.sum() < config.min_removed:
            continue
        if any(cut.polygon.intersects(k.polygon) for k in cuts):
            continue
        cuts.append(cut)
    return cuts


def fill_metrics(generated: np.ndarray, true: np.ndarray, area: float, ground: np.ndarray,
                 tau: Sequence[float], emd_points: int, rng: np.random.Generator) -> dict:
    """Metrics of one filled gap against the removed points (see module docstring).

    Args:
        generated: (P, 3) world points; true: (R, 3); area: gap area; ground: (G, 3) ground points.
    """
    import torch

    from pcgen.ops import chamfer, emd

    out: dict = {"n_true": len(true), "n_generated": len(generated)}
    if len(generated) == 0:
        out.update({"chamfer": float("nan"), "emd": float("nan")})
        out.update({f"fscore@{t:g}": 0.0 for t in tau})
        return out
    origin = true.mean(0)
    g = torch.as_tensor(generated - origin)[None]
    t = torch.as_tensor(true - origin)[None]
    cd = chamfer(g, t, squared=False)
    out["chamfer"] = float(cd.loss) / 2
    gi, ti = cd.x_nearest[0].numpy(), cd.y_nearest[0].numpy()  # nearest-neighbour indices
    d_gt = np.linalg.norm(generated - true[gi], axis=1)
    d_tg = np.linalg.norm(true - generated[ti], axis=1)
    for tv in tau:
        p, r = float((d_gt <= tv).mean()), float((d_tg <= tv).mean())
        out[f"fscore@{tv:g}"] = 0.0 if p + r == 0 else 2 * p * r / (p + r)
    m = min(emd_points, len(generated), len(true))
    a = generated[rng.choice(len(generated), m, replace=False)] - origin
    b = true[rng.choice(len(true), m, replace=False)] - origin
    out["emd"] = float(emd(torch.as_tensor(a)[None], torch.as_tensor(b)[None], squared=False)[0])
    surface = GroundSurface(ground)
    hg = generated[:, 2] - surface(generated[:, :2])
    ht = true[:, 2] - surface(true[:, :2])
    for q in (50, 95):
        out[f"p{q}_err"] = float(abs(np.percentile(hg, q) - np.percentile(ht, q)))
    out["density_err"] = float(abs(len(generated) - len(true)) / area)
    return out


def evaluate_fill(tiles: Sequence[tuple[str, np.ndarray, dict]], generators: dict, config: EvalConfig,
                  fill_config: FillConfig | None = None, progress: bool = False, keep: int = 1,
                  workers: int = 1, dask_address: str | None = None):
    """Run every generator on the same cuts of held-out tiles.

    Args:
        tiles: (name, xyz (N, 3), attributes) of held-out tiles.
        generators: name -> generator (``generate(ctx, n, rng)``), or its picklable spec
            (:func:`pcgen.tasks.generators.make_generator`), which a worker builds once.
        config: cuts and metrics; fill_config: context windows.
        keep: how many cuts to keep with their fills, for the before/after renders.
        workers: processes the cuts are spread over. Every cut draws from its own random
            streams, so the rows are the same for any number, and on a Dask scheduler.
        dask_address: run the cuts on this Dask scheduler's workers instead, in runs of at most
            :data:`DASK_RUN` cuts of one tile.
    Returns:
        (rows: list of per-cut, per-method metric dicts, examples: list of dicts for rendering,
        skipped: one line per cut with too few points around it to fill from, left out; the
        other cuts keep their numbers and random streams).
    """
    from tqdm.auto import tqdm

    fcfg = fill_config or FillConfig()
    rng = np.random.default_rng(config.seed)
    cuts = [c for name, xyz, attrs in tiles for c in cut_boxes(name, xyz, attrs, config, rng)]
    if not cuts:
        raise InputError(f"no tile is large and dense enough for {config.gap_size:g} {config.unit} cuts "
                         f"with {config.min_removed} points")
    bar = tqdm(total=len(cuts), desc="cuts", disable=not progress)
    try:
        if dask_address or (workers > 1 and len(cuts) > 1):
            from pcgen.dispatch import run_all

            jobs = cut_jobs(cuts, generators, config, fcfg, workers, DASK_RUN if dask_address else None, keep)
            done = run_all(score_cuts, jobs, workers=workers, dask_address=dask_address,
                           weights=[len(j.cuts) for j in jobs], on_done=lambda _, result: bar.update(len(result)),
                           preload=["pcgen.tasks.eval_fill"])
            scored = [one for result in done for one in result]
        else:
            gens = built(generators)
            scored = []
            for i, cut in enumerate(cuts):
                scored.append(score_cut(i, cut, gens, config, fcfg))
                bar.update()
            scored = first_shown(scored, keep)
    finally:
        bar.close()
    rows, examples, skipped = [], [], []
    for i, (cut_rows, reason, fills) in enumerate(scored):
        if reason is not None:
            skipped.append(reason)
            continue
        rows.extend(cut_rows)
        if fills is not None and len(examples) < keep:
            examples.append({"cut": cuts[i], **fills})
    if not rows:
        raise InputError(f"no cut has enough points around it to fill from ({skipped[0]})")
    return rows, examples, skipped


def first_shown(scored: list, keep: int) -> list:
    """:func:`score_cut` results with the fills dropped past the first ``keep`` scored cuts (only
    those are drawn), so the fills of every cut are not held, nor sent back by a worker."""
    out, shown = [], 0
    for rows, reason, fills in scored:
        shown += fills is not None
        out.append((rows, reason, fills if shown <= keep else None))
    return out


def built(generators: dict) -> dict:
    """name -> generator, building those given as specs (once per process)."""
    from pcgen.tasks.generators import make_generator

    return {name: make_generator(g) if isinstance(g, tuple) else g for name, g in generators.items()}


def score_cut(i: int, cut: Cut, generators: dict, config: EvalConfig, fcfg: FillConfig):
    """Every method's rows on cut ``i`` (its random streams are ``(seed, i, ...)``), as
    (rows, None, {"context", "fills"}), or ([], why, None) for a cut too sparse to fill from."""
    # density over the part of the window inside the tile (a tile is much smaller than a file)
    left, removed, attributes = cut.xyz, cut.removed, cut.attributes
    footprint = tile_footprint(np.r_[left, removed][:, :2], fcfg.gaps.footprint_concavity)
    try:
        ctx = build_context(left, cut.polygon, fcfg.context, attributes=attributes, footprint=footprint,
                            rng=np.random.default_rng([config.seed, i]), gap_id=f"{cut.tile}#{i}")
    except InputError as exc:  # a cut where the survey is too sparse to fill from
        return [], exc.message, None
    ground = _ground_near(left, attributes.get("classification"), cut.polygon, config)
    cls = attributes.get("classification")
    truth_tree = cKDTree(removed)
    true_cls = None if cls is None else np.asarray(cut.tile_attributes["classification"])[cut.inside]
    rows, fills = [], {}
    for name, gen in generators.items():
        grng = np.random.default_rng([config.seed, i, 7])  # same stream for every method
        traced = [draw_in_gap(gen, ctx, grng) for _ in range(max(config.samples, 1))]
        draws = [d[0] for d in traced]
        pts, k = combine_draws(draws, fcfg.combine, cut.polygon)  # as pcgen fill --samples K writes it
        draws = [pts] + draws[:k] + draws[k + 1:]
        fills[name] = pts
        centre = cut.polygon.centroid
        row = {"tile": cut.tile, "cut": i, "method": name, "x": centre.x, "y": centre.y,
               "area": float(cut.polygon.area), "density_around": ctx.density}
        row.update(fill_metrics(pts, removed, cut.polygon.area, ground, config.tau,
                                config.emd_points, np.random.default_rng([config.seed, i, 11])))
        if cls is not None and len(pts):
            lent = attribute_sources(fcfg, left, None, ctx, attributes, pts, traced[k][1])
            row["same_class"] = float(np.mean(cls[lent] == true_cls[truth_tree.query(pts, k=1)[1]]))
        if len(draws) > 1 and len(pts):
            row["_uncertainty"] = draw_spread(draws)
            row["_error"] = truth_tree.query(pts, k=1)[0]
        rows.append(row)
    return rows, None, {"context": ctx, "fills": fills}


@dataclass
class CutJob:
    """Some cuts of one tile, for a worker: the tile's arrays once and each cut as
    (index, centre, half-side), not its mask."""

    tile: str
    xyz: np.ndarray
    attributes: dict
    cuts: list
    generators: dict
    config: EvalConfig
    fill_config: FillConfig
    keep: int = 1  # cuts whose fills come back, for the picture (:func:`first_shown`)


DASK_RUN = 8  # cuts per job on a Dask cluster, whose worker count the client does not set


def cut_jobs(cuts: list[Cut], generators: dict, config: EvalConfig, fcfg: FillConfig, workers: int,
             run: int | None = None, keep: int = 1) -> list[CutJob]:
    """The cuts in runs of consecutive cuts of one tile, each tile split ``workers`` ways (or into
    runs of at most ``run`` cuts), so one large tile still spreads over every worker while each
    job carries a single tile."""
    jobs = []
    for tile in dict.fromkeys(c.tile for c in cuts):
        mine = [(i, c) for i, c in enumerate(cuts) if c.tile == tile]
        first = mine[0][1]
        parts = -(-len(mine) // run) if run else min(workers, len(mine))
        for part in np.array_split(np.arange(len(mine)), parts):
            jobs.append(CutJob(tile, first.tile_xyz, first.tile_attributes,
                               [(mine[j][0], mine[j][1].centre, mine[j][1].half) for j in part],
                               generators, config, fcfg, keep))
    return jobs


def score_cuts(job: CutJob) -> list:
    """:func:`score_cut` over a job's cuts, in a worker (one torch thread while it runs:
    processes are what scale the evaluation, and a Dask worker may share its process)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        gens = built(job.generators)
        return first_shown([score_cut(i, Cut.at(job.tile, job.xyz, job.attributes, centre, half), gens, job.config,
                                      job.fill_config) for i, centre, half in job.cuts], job.keep)
    finally:
        torch.set_num_threads(threads)


def _ground_near(left: np.ndarray, cls, polygon, config: EvalConfig) -> np.ndarray:
    """The ground returns within 3 gap sides of a cut, that its heights above ground are read
    from: class 2, or in a file without a ground class (heights were then measured from z = 0)
    the lowest returns the gap frame keeps."""
    near = np.abs(left[:, :2] - np.asarray(polygon.centroid.coords[0])).max(1) < 3 * config.gap_size
    if cls is not None and (np.asarray(cls) == config.ground_class).sum() >= 3:
        return left[near & (np.asarray(cls) == config.ground_class)]
    return left[near][filtered_lowest(left[near])]


def summarize(rows: list[dict], tau: Sequence[float]) -> dict:
    """Mean of each metric per method (NaNs skipped), how many cuts each mean covers, and with
    K > 1 draws the pooled uncertainty–error Spearman correlation."""
    from scipy.stats import spearmanr

    keys = ["chamfer", "emd"] + [f"fscore@{t:g}" for t in tau] + ["p50_err", "p95_err", "density_err", "same_class"]
    out: dict = {}
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = [r for r in rows if r["method"] == method]
        out[method] = {"cuts": len(mine)}
        for k in keys:
            vals = np.array([r.get(k, np.nan) for r in mine], dtype=float)
            out[method][k] = float(np.nanmean(vals)) if np.isfinite(vals).any() else float("nan")
        unc = [r["_uncertainty"] for r in mine if "_uncertainty" in r]
        if unc:
            err = np.concatenate([r["_error"] for r in mine if "_uncertainty" in r])
            out[method]["uncertainty_spearman"] = float(spearmanr(np.concatenate(unc), err)[0])
    return out


def compare(rows: list[dict], model: str = "pcgen", bootstrap: int = 2000, seed: int = 0) -> dict | None:
    """The model against the baseline with the lowest mean Chamfer, cut by cut.

    Returns:
        ``{"baseline", "best_share" (cuts where the model's Chamfer is the lowest of all methods),
        "chamfer_ratio" (model / baseline mean), "chamfer_diff" (mean model − baseline) and
        "ci95" (bootstrap over cuts)}``, or None without the model or a baseline.
    """
    by_cut: dict = {}
    for r in rows:
        by_cut.setdefault(r["cut"], {})[r["method"]] = r["chamfer"]
    cuts = [c for c in by_cut.values() if model in c and len(c) > 1 and all(np.isfinite(list(c.values())))]
    if not cuts:
        return None
    baselines = [m for m in cuts[0] if m != model]
    means = {m: float(np.mean([c[m] for c in cuts])) for m in baselines}
    base = min(means, key=means.get)
    diff = np.array([c[model] - c[base] for c in cuts])
    rng = np.random.default_rng(seed)
    boot = diff[rng.integers(0, len(diff), (bootstrap, len(diff)))].mean(1)
    return {"baseline": base, "cuts": len(cuts),
            "best_share": float(np.mean([c[model] <= min(c.values()) for c in cuts])),
            "chamfer_ratio": float(np.mean([c[model] for c in cuts]) / means[base]),
            "chamfer_diff": float(diff.mean()), "ci95": [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))]}


def comparison_text(cmp: dict | None, model: str = "pcgen", unit: str = "m") -> str:
    """One Markdown paragraph of :func:`compare`'s result."""
    if cmp is None:
        return ""
    lo, hi = cmp["ci95"]
    verdict = "better" if hi < 0 else "worse" if lo > 0 else "not distinguishable"
    return (f"\n{model} vs the strongest baseline ({cmp['baseline']}): Chamfer ratio {cmp['chamfer_ratio']:.3f}, "
            f"mean difference {cmp['chamfer_diff']:+.3f} {unit} (95% bootstrap interval {lo:+.3f} to {hi:+.3f} {unit}: "
            f"{verdict}); {model} best on {cmp['best_share']:.0%} of {cmp['cuts']} cuts.\n")


def site_table(by_site: dict, tau: Sequence[float], model: str = "pcgen", unit: str = "m") -> str:
    """One Markdown row per site: the model against that site's strongest baseline, on what the
    fill goal asks of every site (Chamfer ratio and interval, best share, F-score at the τ
    nearest 1, |Δp95|); empty when no site has a comparison."""
    rows = [(site, v) for site, v in by_site.items() if v.get("comparison")]
    if not rows:
        return ""
    t = min(tau, key=lambda v: abs(v - 1.0))
    out = [f"| site | cuts | baseline | Chamfer ratio ↓ | 95% interval of the difference {unit} | {model} best on | "
           f"F@{t:g}{_tight(unit)} {model} / baseline ↑ | \\|Δp95\\| {unit} {model} / baseline ↓ |",
           "|---|---:|---|---:|---|---:|---|---|"]
    for site, v in rows:
        c, s = v["comparison"], v["summary"]
        mine, base = s[model], s[c["baseline"]]
        lo, hi = c["ci95"]
        out.append(f"| {site} | {c['cuts']} | {c['baseline']} | {c['chamfer_ratio']:.3f} | {lo:+.3f} to {hi:+.3f} | "
                   f"{c['best_share']:.0%} | {mine[f'fscore@{t:g}']:.3f} / {base[f'fscore@{t:g}']:.3f} | "
                   f"{mine['p95_err']:.3f} / {base['p95_err']:.3f} |")
    return "\n".join(out) + "\n"


def _tight(unit: str) -> str:
    """A unit written after a number: ``1m``, ``1 US ft``."""
    return f" {unit}" if " " in unit else unit


def markdown_table(summary: dict, tau: Sequence[float], unit: str = "m") -> str:
    """The summary as a Markdown table, distances in ``unit``; ↓ lower is better, ↑ higher is better."""
    u = unit
    cols = [("chamfer", f"Chamfer {u} ↓"), ("emd", f"EMD {u} ↓")] + \
        [(f"fscore@{t:g}", f"F@{t:g}{_tight(u)} ↑") for t in tau] + \
        [("p50_err", rf"\|Δp50\| {u} ↓"), ("p95_err", rf"\|Δp95\| {u} ↓"), ("density_err", rf"\|Δdensity\| /{u}² ↓")]
    if any(np.isfinite(v.get("same_class", np.nan)) for v in summary.values()):
        cols.append(("same_class", "same class ↑"))
    lines = ["| method | cuts | " + " | ".join(c[1] for c in cols) + " |",
             "|---|---:|" + "---:|" * len(cols)]
    spear = any("uncertainty_spearman" in v for v in summary.values())
    if spear:
        lines[0] += " uncertainty–error ρ ↑ |"
        lines[1] += "---:|"
    for method, vals in summary.items():
        cells = " | ".join(f"{vals[k]:.3f}" if np.isfinite(vals[k]) else "–" for k, _ in cols)
        if spear:
            cells += f" | {vals.get('uncertainty_spearman', float('nan')):.3f}"
        lines.append(f"| {method} | {vals['cuts']} | " + cells + " |")
    return "\n".join(lines) + "\n"


def render_examples(examples: list[dict], path: str | Path, dpi: int = 110) -> None:
    """Before/after PNG: per kept cut, the tile with the hole, the truth, and each method's fill.

    Top row: plan view coloured by height; bottom row: side view (x, z) of a strip through the gap.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pcgen.atomic import atomic_path

    ex = examples[0]
    cut, ctx = ex["cut"], ex["context"]
    panels = [("before (cut)", np.zeros((0, 3))), ("truth", cut.removed)] + list(ex["fills"].items())
    xmin, ymin, xmax, ymax = ctx.window.bounds
    bg = ctx.xyz
    zlo, zhi = np.percentile(np.r_[bg[:, 2], cut.removed[:, 2]], [1, 99])
    fig, axes = plt.subplots(2, len(panels), figsize=(3.2 * len(panels), 6.2), squeeze=False)
    gx0, gy0, gx1, gy1 = cut.polygon.bounds
    strip = (bg[:, 1] > gy0) & (bg[:, 1] < gy1)
    for j, (title, pts) in enumerate(panels):
        ax = axes[0, j]
        ax.scatter(bg[:, 0], bg[:, 1], c=bg[:, 2], s=1, cmap="viridis", vmin=zlo, vmax=zhi)
        if len(pts):
            ax.scatter(pts[:, 0], pts[:, 1], c=pts[:, 2], s=3, cmap="viridis", vmin=zlo, vmax=zhi)
        ax.plot(*cut.polygon.exterior.xy, color="red", lw=0.8)
        ax.set_title(title, fontsize=9)
        ax.set_xlim(xmin, xmax), ax.set_ylim(ymin, ymax), ax.set_aspect("equal"), ax.set_xticks([]), ax.set_yticks([])
        ax = axes[1, j]
        ax.scatter(bg[strip, 0], bg[strip, 2], s=1, color="0.6")
        if len(pts):
            sel = (pts[:, 1] > gy0) & (pts[:, 1] < gy1)
            ax.scatter(pts[sel, 0], pts[sel, 2], s=3, color="tab:red")
        ax.axvline(gx0, color="red", lw=0.5), ax.axvline(gx1, color="red", lw=0.5)
        ax.set_xlim(xmin, xmax), ax.set_ylim(zlo - 1, zhi + 1), ax.set_yticks([])
        ax.set_xlabel("x (side view)", fontsize=8)
    fig.suptitle(f"{cut.tile}: {cut.polygon.area:.0f} m² gap, {len(cut.removed)} true points", fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)


def rows_to_json(rows, summary, config: EvalConfig, extra: dict | None = None) -> dict:
    """The JSON report: config, summary and per-cut rows (without the per-point arrays)."""
    cuts = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
    return {"config": asdict(config), "summary": summary, "cuts": cuts, **(extra or {})}


def load_tiles(paths):
    """(name, xyz, attributes) of each file, the form :func:`evaluate_fill` cuts gaps from, and
    the symbol of their distance unit (:func:`pcgen.io.crs.unit_symbol`, for ``EvalConfig.unit``).

    Files whose CRSs are in different units (feet and metres) are refused: their distances
    cannot share one table. A file is named as ``pcgen tile`` names its source (``<folder>/ept.json`` for EPT); files of
    one name from several folders become ``t.laz``, ``t-2.laz``... so each keeps its own rows.
    """
    import pcgen.io as pio
    from pcgen.data.tile_inputs import source_name, unique_stems
    from pcgen.io.crs import unit_symbol
    from pcgen.data.tiling import has_tile_buffer

    paths = [Path(p) for p in paths]
    names = [source_name(str(p)) for p in paths]
    stems = unique_stems(paths)
    names = [n if names.count(n) == 1 else f"{stem}{p.suffix}" for n, stem, p in zip(names, stems, paths)]
    tiles, units = [], {}
    for p, name in zip(paths, names):
        cloud = pio.read(p)
        if cloud.crs is not None:
            units.setdefault(unit_symbol(cloud.crs), name)
        if len(units) > 1:  # one table of distances cannot pool feet and metres
            first, other = list(units.items())[:2]
            raise InputError(f"its CRS is in {other[0]}, that of {first[1]} in {first[0]}: "
                             "evaluate files of different units separately", p)
        if len(cloud) < MIN_TILE_POINTS:
            raise InputError(f"{len(cloud)} points: too few to cut gaps from (at least {MIN_TILE_POINTS})", p)
        attrs = {k: cloud.attributes[k] for k in ("classification", "return_number", "number_of_returns")
                 if k in cloud.attributes}
        if cloud.header is not None and has_tile_buffer(cloud.header):
            attrs["buffer"] = cloud.attributes["buffer"]  # cuts stay in the core
        tiles.append((name, cloud.xyz, attrs))
    return tiles, next(iter(units), "m")


def run_evaluation(tiles, out_dir, generators, cfg, fill_cfg, progress=False, extra=None,
                   overwrite: bool = True, workers: int = 1, dask_address: str | None = None) -> dict:
    """Evaluate and write eval_fill.json / .md / .png into ``out_dir`` atomically; returns the summary.

    The output folder is claimed (locked, staged) before the evaluation starts, so a second run
    into the same folder fails at once instead of racing this one.
    """
    import json

    from pcgen.atomic import atomic_dir

    with atomic_dir(out_dir, overwrite=overwrite) as tmp:
        rows, examples, skipped = evaluate_fill(tiles, generators, cfg, fill_cfg, progress=progress,
                                                workers=workers, dask_address=dask_address)
        summary = summarize(rows, cfg.tau)
        cmp = compare(rows, bootstrap=cfg.bootstrap, seed=cfg.seed)
        table = markdown_table(summary, cfg.tau, cfg.unit) + comparison_text(cmp, unit=cfg.unit)
        if skipped:
            table += (f"{len(skipped)} cut(s) left out, too few points around them to fill from: "
                      + "; ".join(skipped[:3]) + ("; ..." if len(skipped) > 3 else "") + "\n")
        sites = list(dict.fromkeys(r["tile"] for r in rows))
        unscored = [name for name, _, _ in tiles if name not in sites]
        if unscored:  # a sparse file gives no cut: say so, or the table reads as if it were in
            table += (f"{len(unscored)} tile(s) left out, no {cfg.gap_size:g} {cfg.unit} cut in them removes "
                      f"{cfg.min_removed} points with enough around it to fill from (try a larger --gap-size): "
                      + ", ".join(unscored) + "\n")
        by_site = {}
        if len(sites) > 1:
            for site in sites:
                mine = [r for r in rows if r["tile"] == site]
                by_site[site] = {"summary": summarize(mine, cfg.tau), "comparison": compare(mine, seed=cfg.seed)}
        per_site = "".join(f"\n### {site}\n\n" + markdown_table(v["summary"], cfg.tau, cfg.unit)
                           + comparison_text(v["comparison"], unit=cfg.unit)
                           for site, v in by_site.items())
        report = rows_to_json(rows, summary, cfg, {"comparison": cmp, "by_tile": by_site,
                                                   "skipped_cuts": skipped, "unscored_tiles": unscored,
                                                   **(extra or {})})
        (tmp / "eval_fill.json").write_text(json.dumps(report, indent=1, default=float))
        (tmp / "eval_fill.md").write_text(f"Gap filling on {len(sites)} held-out tiles, "
                                          f"{cfg.gap_size:g} {cfg.unit} square cuts\n\n" + table +
                                          ("\n## Per tile\n\n" + site_table(by_site, cfg.tau, unit=cfg.unit) + per_site
                                           if per_site else ""))
        render_examples(examples, tmp / "eval_fill.png")
    return {"summary": summary, "table": table, "comparison": cmp}
