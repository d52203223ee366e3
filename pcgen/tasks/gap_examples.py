"""Gap examples in the gap frame: what a conditional gap model sees, in training and when filling.

:func:`frame_example` turns one :class:`~pcgen.tasks.context.GapContext` into arrays in the gap
frame (:mod:`pcgen.tasks.frame`): the context points with their ground flag, the source the model
starts from (:func:`gap_source`), and a few numbers about the gap (its size, the surrounding
density, the context's height envelope). Training and filling both call it, so the model never
sees a window prepared differently from the ones it learned on.

:func:`cut_examples` cuts random square gaps of several sizes out of real clouds (whole files of
the training sites) and keeps, for each, the frame example plus the removed points: the
training set of the gap models (``datasets/train_default_fill.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import shapely
from shapely.geometry import box as shapely_box

from pcgen.errors import InputError
from pcgen.tasks.baselines import CanopyFill, HybridFill, SurfaceFill
from pcgen.tasks.context import ContextConfig, GapContext, SortedCloud, build_context
from pcgen.tasks.frame import GROUND_CLASS, GapFrame

COND_DIM = 6  # half side, log density, context height p50 / p95 / max, ground share
HEIGHT_DESCRIPTORS = slice(2, 5)  # the entries of cond that are heights (they scale with them)
HEIGHT_UNIT = 10.0  # m; cond's heights are in these units
P95_DESCRIPTOR = 3  # cond's entry for the context's 95th-percentile height
HEIGHT_LIMIT_PERCENTILE = 99  # of the training contexts' p95 heights: the tallest forest a model is asked about
SURFACE_SHARE = 0.5  # of the source drawn from the interpolated surfaces; the rest is a copy
COPIES = {"hybrid": HybridFill, "canopy": CanopyFill}  # the copy a source starts from (the checkpoint says which)


def gap_source(ctx: GapContext, n: int, rng: np.random.Generator, surface_share: float = SURFACE_SHARE,
               copy: str = "hybrid", near_side: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(n, 3) world points a gap model starts from, (n,) the context point each one speaks for,
    and (n,) float32 kinds: 1 for a surface sample, 0 for a copied point.

    Two simple fills, each right where the other is wrong: the hybrid copy
    (:class:`~pcgen.tasks.baselines.HybridFill`) has the texture of real crowns and the gaps
    between them, but puts them where the neighbour's trees stood; the interpolated ground and
    first-return surfaces (:class:`~pcgen.tasks.baselines.SurfaceFill`) continue the ground and
    the canopy top into the gap, but have no inside. The first ``n - round(n * surface_share)``
    points are the copy, the rest surface samples. Half and half (fixed, not tuned on held-out
    sites) beat either source alone for the same head on every held-out gap size
    (``docs/fill-experiments.md``). ``copy`` names the copy (:data:`COPIES`): ``canopy``
    (:class:`~pcgen.tasks.baselines.CanopyFill`) also scales copied heights to the canopy where
    they land; a checkpoint records the copy it was trained from. A surface point speaks for the ground or first return nearest to it
    (:meth:`~pcgen.tasks.baselines.SurfaceFill.generate_with_source`), so attributes are imputed
    from it as from a copy. ``near_side`` is how the copy draws from the four strips
    (:class:`~pcgen.tasks.baselines.MirrorFill`; the shipped weights were trained on the uniform
    draw, and a checkpoint records which). The kinds let a head tell the two apart (``model.head.source_kind``;
    off in the shipped model, which did no better with them: ``docs/fill-experiments.md``).
    """
    if not 0.0 <= surface_share <= 1.0:
        raise ValueError(f"surface_share must be in [0, 1], got {surface_share}")
    if copy not in COPIES:
        raise ValueError(f"copy must be one of {', '.join(COPIES)}, got {copy!r}")
    k = int(round(n * surface_share))
    pts, index = COPIES[copy](near_side=near_side).generate_with_source(ctx, n - k, rng)
    kind = np.r_[np.zeros(n - k, np.float32), np.ones(k, np.float32)]
    if k == 0:
        return pts, index, kind
    surface, nearest = SurfaceFill().generate_with_source(ctx, k, rng)
    return np.r_[pts, surface], np.r_[np.asarray(index, np.int64), nearest], kind


def stretch_heights(parts: Mapping, factor: float) -> dict:
    """An example's height-bearing parts with every height above ground multiplied by ``factor``:
    the same gap over a taller or lower forest, its ground where it was.

    ``parts`` maps any of ``source``, ``context``, ``truth`` ((N, 3) arrays), ``cond`` and
    ``z_max`` to their values (a cached example's dict, or a :class:`FrameExample`'s fields);
    the returned dict holds new arrays for the ones present and not None. Training stretches
    examples this way (``data.height_scale``); filling shrinks a forest taller than any the model
    was trained on into that range (:func:`height_factor`) and stretches the fill back.
    """
    out = {}
    for key in ("source", "context", "truth"):
        if parts.get(key) is not None:
            points = np.array(parts[key], copy=True)
            points[:, 2] *= factor
            out[key] = points
    if parts.get("cond") is not None:
        cond = np.array(parts["cond"], copy=True)
        cond[HEIGHT_DESCRIPTORS] *= factor
        out["cond"] = cond
    if parts.get("z_max") is not None:
        out["z_max"] = float(parts["z_max"]) * factor
    return out


def height_limit(conds: np.ndarray) -> float:
    """The tallest forest a model trained on these examples knows: the
    :data:`HEIGHT_LIMIT_PERCENTILE` th percentile of their (E, COND_DIM) descriptors' context p95 heights."""
    return float(np.percentile(np.asarray(conds)[:, P95_DESCRIPTOR] * HEIGHT_UNIT, HEIGHT_LIMIT_PERCENTILE))


def height_factor(context_heights: np.ndarray, limit: float | None) -> float:
    """1, or ``limit`` / the context's 95th-percentile height where that exceeds ``limit``.

    The held-out forests the shipped model fills are taller than most of its training gaps, and
    with every height doubled (a 45 m canopy) the model lost to the canopy copy; shrunk into the
    trained range first, it won again (docs/fill-experiments.md, "Forests taller than the training sites").
    """
    if limit is None or len(context_heights) == 0:
        return 1.0
    p95 = float(np.percentile(context_heights, 95))
    return limit / p95 if p95 > limit else 1.0


@dataclass
class FrameExample:
    """One gap in the gap frame (metres, gap-centred, z = height above ground).

    Attributes:
        frame: maps these arrays back to world coordinates.
        context: (M, 3) float32 context points.
        context_ground: (M,) float32, 1 for the ground returns the frame was fitted on.
        source: (P, 3) float32 start points (:func:`gap_source`), P = the gap's point budget.
        cond: (COND_DIM,) float32 gap descriptors (see :data:`COND_DIM`).
        half: (2,) half sides of the gap's box.
        z_max: highest context height above ground (the envelope generated heights stay under).
        truth: (R, 3) float32 removed points when known (training), else None.
        source_index: (P,) the context point each source point speaks for (None when the
            source was given), so generated points keep that point's class.
        source_kind: (P,) float32, 1 for a surface sample and 0 for a copied point (None when
            the source was given).
    """

    frame: GapFrame
    context: np.ndarray
    context_ground: np.ndarray
    source: np.ndarray
    cond: np.ndarray
    half: np.ndarray
    z_max: float
    truth: np.ndarray | None = None
    source_index: np.ndarray | None = None
    source_kind: np.ndarray | None = None


def frame_example(ctx: GapContext, n: int, rng: np.random.Generator, truth_xyz: np.ndarray | None = None,
                  source_xyz: np.ndarray | None = None, copy: str = "hybrid", near_side: bool = False) -> FrameExample:
    """Put one gap, its source of ``n`` points and (optionally) its true points in the gap frame.

    Args:
        ctx: the gap and the points around it.
        n: points to generate (the gap's budget, or more for a clipped polygon).
        rng: draws the source (:func:`gap_source`).
        truth_xyz: (R, 3) world points removed from the gap, for training.
        source_xyz: (n, 3) world source points to use instead of a fresh :func:`gap_source`.
        copy: the copy of a fresh source (:data:`COPIES`).
        near_side: how that copy draws from the strips (:func:`gap_source`).
    """
    cls = ctx.attributes.get("classification")
    frame = GapFrame.fit(ctx.xyz, ctx.gap_box, cls)
    context = frame.to_frame(ctx.xyz)
    if cls is not None and (np.asarray(cls) == GROUND_CLASS).sum() >= 3:
        is_ground = (np.asarray(cls) == GROUND_CLASS).astype(np.float32)
    else:  # the frame's lowest-per-cell ground: flag the context points sitting on it
        is_ground = (np.abs(context[:, 2]) < 0.3).astype(np.float32)
    if source_xyz is not None:
        src, src_index, src_kind = source_xyz, None, None
    else:
        src, src_index, src_kind = gap_source(ctx, n, rng, copy=copy, near_side=near_side)
    source = frame.to_frame(src)
    xmin, ymin, xmax, ymax = ctx.gap_box
    half = np.array([(xmax - xmin) / 2, (ymax - ymin) / 2])
    hz = context[:, 2]
    cond = np.array([half.mean() / 10.0, np.log(max(ctx.density, 1e-3)) / 3.0,
                     np.percentile(hz, 50) / HEIGHT_UNIT, np.percentile(hz, 95) / HEIGHT_UNIT,
                     hz.max() / HEIGHT_UNIT, is_ground.mean()], dtype=np.float32)
    truth = None if truth_xyz is None else frame.to_frame(truth_xyz).astype(np.float32)
    return FrameExample(frame=frame, context=context.astype(np.float32), context_ground=is_ground,
                        source=source.astype(np.float32), cond=cond, half=half.astype(np.float32),
                        z_max=float(hz.max()), truth=truth, source_index=src_index, source_kind=src_kind)


def cut_examples(cloud: SortedCloud, count: int, gap_sizes, rng: np.random.Generator,
                 context: ContextConfig | None = None, min_removed: int = 40, max_truth: int = 1024,
                 max_tries: int = 40, copy: str = "hybrid", near_side: bool = False) -> list[FrameExample]:
    """Cut ``count`` random square gaps out of a real cloud and frame each with its truth.

    Gaps lie where their whole context window is inside the data's bounds; a window whose
    ring is less than half covered by points (1 m cells) is redrawn, so the density is measured
    on data, not on the void beyond a file's edge. Above ``max_truth`` removed points the truth
    and the source are thinned by the same factor, so both keep one density.

    Args:
        cloud: the whole file.
        count: examples wanted (fewer if the cloud keeps refusing cuts).
        gap_sizes: sides to draw from uniformly, e.g. (5, 20) for a range.
        copy: the copy each source starts from (:data:`COPIES`).
        near_side: how that copy draws from the strips (:func:`gap_source`).
    """
    cfg = context or ContextConfig()
    lo_s, hi_s = float(min(gap_sizes)), float(max(gap_sizes))
    out: list[FrameExample] = []
    for _ in range(count * max_tries):
        if len(out) == count:
            break
        side = rng.uniform(lo_s, hi_s)
        half_w = max(cfg.min_half_size, 0.5 * cfg.scale * side)
        if np.any(cloud.hi - cloud.lo <= 2 * half_w):
            continue
        c = rng.uniform(cloud.lo + half_w, cloud.hi - half_w)
        idx = cloud.window(c[0] - half_w, c[1] - half_w, c[0] + half_w, c[1] + half_w)
        if len(idx) < cfg.min_points * 4:
            continue
        pts = cloud.xyz[idx]
        cells = np.unique(np.floor((pts[:, :2] - c + half_w) / 2.0).astype(np.int64), axis=0)
        if len(cells) < 0.5 * (half_w) ** 2:  # (2 half / 2 m)² cells, half of them occupied
            continue
        poly = shapely_box(c[0] - side / 2, c[1] - side / 2, c[0] + side / 2, c[1] + side / 2)
        inside = shapely.contains_xy(poly, pts[:, 0], pts[:, 1])
        if inside.sum() < min_removed:
            continue
        attrs = {} if cloud.cls is None else {"classification": cloud.cls[idx]}
        try:
            ctx = build_context(pts, poly, cfg, attributes=attrs, rng=rng)
        except InputError:
            continue
        truth = pts[inside]
        n = ctx.n_target
        if len(truth) > max_truth:
            keep = max_truth / len(truth)
            truth = truth[rng.choice(len(truth), max_truth, replace=False)]
            n = max(int(round(n * keep)), 1)
        if n < 8:
            continue
        out.append(frame_example(ctx, n, rng, truth_xyz=truth, copy=copy, near_side=near_side))
    return out


def context_subset(context: np.ndarray, half, budget: int, band: float, rng: np.random.Generator) -> np.ndarray:
    """Indices of at most ``budget`` gap-frame context points the model reads.

    With ``band`` 0, a uniform random subset. Otherwise the points within ``band`` × the gap's
    larger half-side of the gap's box come first (a random subset of them if they alone exceed
    the budget) and the rest of the budget is drawn from the farther points: a 20 m gap's window
    is 80 m wide, and a uniform subset leaves few points at the edges the fill must continue.
    """
    n = len(context)
    if n <= budget:
        return np.arange(n)
    if band <= 0:
        return rng.choice(n, budget, replace=False)
    half = np.asarray(half, dtype=np.float64)
    outside = np.maximum(np.abs(context[:, :2]) - half, 0.0)
    near = np.hypot(outside[:, 0], outside[:, 1]) <= band * float(half.max())
    idx_near, idx_far = np.flatnonzero(near), np.flatnonzero(~near)
    if len(idx_near) >= budget:
        return rng.choice(idx_near, budget, replace=False)
    return np.concatenate([idx_near, rng.choice(idx_far, budget - len(idx_near), replace=False)])


_ARRAYS = ("context", "context_ground", "source", "source_kind", "truth")


def save_examples(examples, path) -> None:
    """Write frame examples (with truth) to one ``.npz`` of flat arrays + offsets (no pickles)."""
    from pcgen.atomic import atomic_path

    data = {}
    for key in _ARRAYS:
        parts = [np.asarray(getattr(e, key), dtype=np.float32) for e in examples]
        data[key] = np.concatenate(parts) if parts else np.zeros((0,), np.float32)
        data[key + "_offsets"] = np.cumsum([0] + [len(p) for p in parts]).astype(np.int64)
    data["cond"] = np.stack([e.cond for e in examples]).astype(np.float32)
    data["half"] = np.stack([e.half for e in examples]).astype(np.float32)
    data["z_max"] = np.array([e.z_max for e in examples], dtype=np.float32)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **data)


def load_examples(path) -> list[dict]:
    """Read :func:`save_examples` output as a list of dicts of arrays (``truth`` included).

    A cache written before the source kinds were stored gets them from :func:`gap_source`'s
    order (the copy first, then ``round(n * SURFACE_SHARE)`` surface samples), which built it.
    """
    with np.load(path, allow_pickle=False) as z:
        data = {k: z[k] for k in z.files}
    out = []
    for i in range(len(data["cond"])):
        ex = {k: data[k][data[k + "_offsets"][i]: data[k + "_offsets"][i + 1]] for k in _ARRAYS if k in data}
        if "source_kind" not in ex:
            n = len(ex["source"])
            ex["source_kind"] = (np.arange(n) >= n - int(round(n * SURFACE_SHARE))).astype(np.float32)
        ex.update(cond=data["cond"][i], half=data["half"][i], z_max=float(data["z_max"][i]))
        out.append(ex)
    return out
