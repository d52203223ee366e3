"""Labelled synthetic tiles for the downstream benchmark, one maker per arm.

Each maker turns the scarce real labelled tiles into ``per_tile`` synthetic tiles per real one,
``(points, labels)`` in the metric frame:

* ``jitter``: a tile's points resampled with replacement and jittered; labels ride along.
* ``gmm``: the EM Gaussian mixture of the real tiles' points (:class:`pcgen.tasks.gmm.GMMBaseline`);
  a sampled point takes the label of the nearest labelled real point, as the issue's baseline says.
* ``pcgen``: the gap model re-imagines a box of the real tile (:func:`pcgen.tasks.augment.reimagine`);
  each generated point keeps the class of the real point it was made from, so the label is
  generated with the point, not guessed afterwards.
* ``hybrid``: the same box filled by the hybrid copy (:class:`pcgen.tasks.baselines.HybridFill`),
  the copied half of the gap model's source: what the model adds over a copy.
"""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np

from pcgen.errors import InputError
from pcgen.tasks.labelled_tiles import IGNORE, ClassMap, LabelledTile, frame_points

Tiles = list[tuple[np.ndarray, np.ndarray]]


def jitter_tiles(real: Sequence[LabelledTile], per_tile: int, sigma: float, rng: np.random.Generator) -> Tiles:
    out = []
    for tile in real:
        n = len(tile.points)
        for _ in range(per_tile):
            idx = rng.choice(n, n, replace=True)
            pts = tile.points[idx] + rng.normal(0, sigma, (n, 3)).astype(np.float32)
            out.append((pts, tile.labels[idx]))
    return out


def gmm_tiles(real: Sequence[LabelledTile], per_tile: int, rng: np.random.Generator, seed: int) -> Tiles:
    from scipy.spatial import cKDTree

    from pcgen.tasks.gmm import GMMBaseline

    pts = np.concatenate([t.points for t in real])
    lab = np.concatenate([t.labels for t in real])
    known = lab != IGNORE
    if not known.any():
        raise InputError("the labelled tiles have no point of a mapped class")
    tree = cKDTree(pts[known])
    gmm = GMMBaseline([t.points for t in real], seed=seed)
    n = len(real[0].points)
    out = []
    for sample in gmm.sample(per_tile * len(real), n, rng):
        _, j = tree.query(sample)
        out.append((sample.astype(np.float32), lab[known][j]))
    return out


def reimagined_tiles(real: Sequence[LabelledTile], per_tile: int, class_map: ClassMap, frame, generator,
                     gap_fraction: float, rng: np.random.Generator) -> tuple[Tiles, float]:
    """Tiles with a box re-imagined by ``generator`` and the seconds each took (framing included).

    Raises:
        InputError: a tile was kept without its world points (``keep_cloud``).
    """
    from pcgen.tasks.augment import reimagine

    out = []
    start = time.perf_counter()
    for tile in real:
        if tile.cloud is None:
            raise InputError(f"a tile of {tile.site} has no world points to re-imagine")
        for _ in range(per_tile):
            cloud = reimagine(tile.cloud, generator, gap_fraction, rng).cloud
            sub = frame.subsample(len(cloud), rng)
            pts = frame_points(cloud.xyz[sub], tile.center, frame, cloud.xyz)
            out.append((pts, class_map.labels(np.asarray(cloud.attributes["classification"])[sub])))
    return out, (time.perf_counter() - start) / max(len(out), 1)
