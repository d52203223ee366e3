"""Gap generators behind one interface: ``generate(ctx, n, rng) -> (P, 3)`` world points.

:class:`GapModelGenerator` wraps a gap head trained in the gap frame (metres, heights above
ground) that starts from :func:`~pcgen.tasks.gap_examples.gap_source`; :class:`ModelGenerator` wraps the older conditional
heads of ``pcgen train experiment=fill`` (a normalized window, a global context vector).
:func:`load_generator` picks the right one for a checkpoint. :func:`make_generator` builds any generator by
name, so worker processes (process pool, Dask) can rebuild it from a picklable spec.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from pcgen.errors import CheckpointError, ConfigError
from pcgen.tasks.context import GapContext

DEFAULT_CHECKPOINT = Path(__file__).resolve().parent.parent / "checkpoints" / "default_fill.ckpt"
BASELINES = ("mirror", "hybrid", "canopy", "surface")  # pcgen.tasks.baselines.FILL_BASELINES (tested equal)
SOURCE_COPIES = ("hybrid", "canopy")  # pcgen.tasks.gap_examples.COPIES (tested equal)
AUTO_COPY = "auto"  # the start by gap width: the canopy copy up to SMALL_GAP_WIDTH, else the trained copy
SMALL_GAP_WIDTH = 7.5  # m (pcgen.tasks.gaps.gap_width): the canopy copy is closer in 5 m holes (docs/fill-experiments.md)


def window_frame(xyz: np.ndarray, window_bounds) -> tuple[np.ndarray, float]:
    """Centre and scale of the normalized frame of a context window.

    The centre is the window's xy centre and the points' mean height; the scale is the
    window's half side, so a tile-sized window maps to [-1, 1]² like a training tile.

    Args:
        xyz: (M, 3) world context points.
        window_bounds: (xmin, ymin, xmax, ymax) of the window.
    Returns:
        center (3,) float64, scale float.
    """
    xmin, ymin, xmax, ymax = window_bounds
    center = np.array([(xmin + xmax) / 2, (ymin + ymax) / 2, float(np.mean(xyz[:, 2]))])
    return center, float(max(xmax - xmin, ymax - ymin) / 2)


def normalization_frame(mode: str):
    """A frame function that normalizes a window as ``TileDataset`` normalized training tiles.

    Training tiles were fitted whole (gap included); the window lacks the gap's points, whose
    absence moves the sphere centre a little. The tile-sized window keeps the scale close.
    """
    from pcgen.data.transforms import Normalization

    def frame(xyz: np.ndarray, window_bounds) -> tuple[np.ndarray, float]:
        norm = Normalization.fit(xyz, mode)
        return np.asarray(norm.center, dtype=np.float64), float(norm.scale)

    return frame


class ModelGenerator:
    """A conditional head as a gap generator.

    Args:
        head: object with ``sample(num_samples, num_points, context=(B, M, 3), gap_box=(B, 4),
            generator=None) -> (B, num_points, 3)`` in the normalized frame.
        context_points: M, the context size the head was trained with.
        frame: ``(xyz, window_bounds) -> (center, scale)``; defaults to :func:`window_frame`.
    """

    name = "pcgen"

    def __init__(self, head, context_points: int = 1024, frame=window_frame, max_points: int = 4096):
        self.head = head
        self.context_points = context_points
        self.frame = frame
        self.max_points = max_points

    def generate(self, ctx: GapContext, n: int, rng: np.random.Generator) -> np.ndarray:
        import torch  # baseline-only workers never pay for importing torch

        n = int(min(n, self.max_points))
        center, scale = self.frame(ctx.xyz, ctx.window.bounds)
        m = self.context_points
        context = (ctx.xyz - center) / scale
        if len(context) > m:  # training contexts were FPS samples of the tile: match their spread
            from pcgen.ops import farthest_point_sample

            start = torch.as_tensor(context, dtype=torch.float32)[None]
            idx = farthest_point_sample(start, m)[0].numpy()
        else:
            from pcgen.data.sampling import resample_index

            idx = resample_index(len(context), m, rng)
        context = context[idx]
        box = np.asarray(ctx.gap_box)
        gap_box = np.r_[(box[:2] - center[:2]) / scale, (box[2:] - center[:2]) / scale]
        gen = torch.Generator().manual_seed(int(rng.integers(2**31 - 1)))
        with torch.no_grad():
            out = self.head.sample(1, n, context=torch.as_tensor(context, dtype=torch.float32)[None],
                                   gap_box=torch.as_tensor(gap_box, dtype=torch.float32)[None],
                                   generator=gen)
        pts = out[0].double().cpu().numpy()
        pts[:, 0] = np.clip(pts[:, 0], gap_box[0], gap_box[2])
        pts[:, 1] = np.clip(pts[:, 1], gap_box[1], gap_box[3])
        return pts * scale + center


class GapModelGenerator:
    """A gap head (any :class:`pcgen.models.gap_head.GapHead`: offset, flow or diffusion) as a gap generator.

    The head works in the gap frame and starts from :func:`~pcgen.tasks.gap_examples.gap_source`
    (half hybrid copy, half interpolated surfaces), so this wrapper only
    frames the gap (:func:`pcgen.tasks.gap_examples.frame_example`), thins the context to the
    size the head was trained with, and maps the result back to world coordinates.

    Args:
        head: object with ``sample(batch, generator=None) -> (1, n, 3)`` gap-frame points.
        max_context: context points the head saw per gap in training.
        context_band: how the head's training chose them (:func:`~pcgen.tasks.gap_examples.context_subset`).
        copy: the copy its sources start from (:data:`~pcgen.tasks.gap_examples.COPIES`), as in training.
        small_copy: the copy for gaps at most :data:`SMALL_GAP_WIDTH` wide (default: ``copy``).
        height_limit: the tallest forest (context p95 height, frame units) the head was trained
            on; a taller gap is shrunk into it and its fill stretched back
            (:func:`~pcgen.tasks.gap_examples.height_factor`). None: never.
        near_side: the copy draws each spot mostly from its nearest strip
            (:class:`~pcgen.tasks.baselines.MirrorFill`), as the baselines do, whatever draw the
            head was trained on (the shipped weights, trained on all four strips alike, come 1-3%
            closer from it on 15 held-out cut sets; docs/fill-experiments.md). False: all four alike.
    """

    name = "pcgen"

    def __init__(self, head, max_context: int = 1536, context_band: float = 0.0, copy: str = "hybrid",
                 small_copy: str | None = None, height_limit: float | None = None, near_side: bool = True):
        self.head = head
        self.near_side = bool(near_side)
        self.max_context = int(max_context)
        self.context_band = float(context_band)
        self.copy = copy
        self.small_copy = small_copy or copy
        self.height_limit = height_limit

    def start_copy(self, polygon) -> str:
        """The copy a gap's sources start from: ``small_copy`` in a gap up to
        :data:`SMALL_GAP_WIDTH` wide, else ``copy``."""
        from pcgen.tasks.gaps import gap_width

        if self.small_copy == self.copy:
            return self.copy
        return self.small_copy if gap_width(polygon) <= SMALL_GAP_WIDTH else self.copy

    def generate(self, ctx: GapContext, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.generate_with_source(ctx, n, rng)[0]

    def generate_with_source(self, ctx: GapContext, n: int, rng: np.random.Generator):
        """(n, 3) world points and (n,) the context point each started from.

        The head moves each source point by a bounded offset and keeps their order, so a
        generated point is its source point moved, and the context point that one speaks for
        lends it its class.
        """
        import torch

        from pcgen.models.gap_head import example_batch
        from pcgen.tasks.gap_examples import context_subset, frame_example, height_factor, stretch_heights

        ex = frame_example(ctx, int(n), rng, copy=self.start_copy(ctx.polygon), near_side=self.near_side)
        if len(ex.context) > self.max_context:
            keep = context_subset(ex.context, ex.half, self.max_context, self.context_band, rng)
            ex.context, ex.context_ground = ex.context[keep], ex.context_ground[keep]
        factor = height_factor(ex.context[:, 2], self.height_limit)
        if factor != 1.0:
            ex = replace(ex, **stretch_heights(vars(ex), factor))
        gen = torch.Generator().manual_seed(int(rng.integers(2**31 - 1)))
        with torch.no_grad():
            out = self.head.sample(example_batch([ex], with_truth=False), generator=gen)[0].double().numpy()
        out[:, 2] /= factor
        return ex.frame.to_world(out), ex.source_index


def load_generator(path: str | os.PathLike | None = None, copy: str | None = None,
                   threads: int | None = 1):
    """The gap generator of a conditional checkpoint (the shipped one when ``path`` is None).

    Args:
        path: the checkpoint.
        copy: start a gap head from this copy (:data:`SOURCE_COPIES`) in every gap; None or
            :data:`AUTO_COPY`: the canopy copy in gaps up to :data:`SMALL_GAP_WIDTH` wide (it is
            closer in 5 m holes, docs/fill-experiments.md) and the copy it was trained from in wider ones.
            Either copy draws each spot from its nearest side, as the baselines do (the
            checkpoint's ``data.near_side`` records its training draw only).
        threads: torch's intra-op threads for this process from now on (None leaves them).
            A gap's network calls are small: split over two threads they wait on each other,
            and on a busy 2-core machine pyfor_test's fill took 40-88 s instead of 12-13 s
            (the same bytes). Processes (``--workers``, Dask) are what scale filling.
    Raises:
        CheckpointError: missing, corrupt, or a head that cannot fill gaps.
        ConfigError: an unknown ``copy``, or a ``copy`` for a head that starts from none.
    """
    if copy is not None and copy not in (AUTO_COPY, *SOURCE_COPIES):
        raise ConfigError(f"source copy must be one of {', '.join((AUTO_COPY, *SOURCE_COPIES))}, got {copy!r}")
    copy = None if copy == AUTO_COPY else copy
    from pcgen.models.gap_head import GAP_KINDS
    from pcgen.train.checkpoint import load_head

    path = Path(path) if path is not None else DEFAULT_CHECKPOINT
    if not path.is_file():
        raise CheckpointError("checkpoint not found" + (
            " (the shipped default is trained by datasets/train_default_fill.py)"
            if path == DEFAULT_CHECKPOINT else ""), path)
    head, meta = load_head(path, map_location="cpu")
    if threads is not None:
        import torch

        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
    data = (meta or {}).get("data") or {}
    if not data.get("conditional", False):
        raise CheckpointError(f"checkpoint holds an unconditional {meta.get('kind', 'unknown')} head; "
                              "gap filling needs a conditional one (datasets/train_default_fill.py)", path)
    head.eval()
    if meta.get("kind") in GAP_KINDS:
        return GapModelGenerator(head, max_context=int(data.get("max_context") or 1536),
                                 context_band=float(data.get("context_band") or 0.0),
                                 copy=copy or _source_copy(data.get("source_copy"), path),
                                 small_copy=copy or "canopy",
                                 height_limit=_height_limit(data.get("height_limit"), path))
    if copy is not None:
        raise ConfigError(f"a source copy applies to gap heads; this checkpoint holds a "
                          f"{meta.get('kind', 'unknown')} head that starts from noise")
    gap = data.get("gap") or {}
    mode = data.get("normalize") or "sphere"
    return ModelGenerator(head, context_points=int(gap.get("context_points", 1024)), frame=normalization_frame(mode))


def _height_limit(value, path) -> float | None:
    """The checkpoint's height limit (None for checkpoints trained before it was recorded)."""
    if value is None:
        return None
    try:
        limit = float(value)
    except (TypeError, ValueError):
        limit = float("nan")
    if not (np.isfinite(limit) and limit > 0):
        raise CheckpointError(f"checkpoint's data.height_limit must be a positive number, got {value!r}", path)
    return limit


def _source_copy(name, path) -> str:
    """The copy a checkpoint's sources start from (older checkpoints: the hybrid copy)."""
    from pcgen.tasks.gap_examples import COPIES

    name = name or "hybrid"
    if name not in COPIES:
        raise CheckpointError(f"checkpoint names an unknown source copy {name!r} ({', '.join(COPIES)})", path)
    return name


_CACHE: dict = {}


def make_generator(spec: tuple):
    """Build (once per process) the generator a picklable spec names.

    Args:
        spec: ``("model", ckpt_path_or_None[, source_copy])`` or ``(baseline_name,)``.
    """
    if spec in _CACHE:
        return _CACHE[spec]
    kind = spec[0]
    if kind == "model":
        gen = load_generator(spec[1], spec[2] if len(spec) > 2 else None)
    elif kind in BASELINES:
        from pcgen.tasks.baselines import FILL_BASELINES
        gen = FILL_BASELINES[kind]()
    else:
        raise ConfigError(f"unknown generator {kind!r} (model, {', '.join(BASELINES)})")
    _CACHE[spec] = gen
    return gen
