"""Labelled tiles for the downstream benchmark: metric-frame squares whose points carry a class.

A :class:`ClassMap` names the classes a segmentation model learns (``ground: [2]``,
``vegetation: [3, 4, 5]``, ...); ASPRS codes it does not name (0 never classified, 1
unclassified, noise, ...) are ignored in training and scoring, because "unclassified" means
"nobody looked", not a class.

The classifier's input must not see the labels, so heights are above a ground taken from the
points alone (the lowest return per 2 m cell, :func:`pcgen.tasks.frame.lowest_per_cell`),
never from class 2.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from pcgen.errors import ConfigError, InputError

IGNORE = -1  # label of points whose ASPRS code the class map does not name


@dataclass(frozen=True)
class ClassMap:
    """Class names in label order and the ASPRS codes each stands for.

    Args:
        classes: ``{name: [codes]}``; a code may appear under one name only.
    """

    names: tuple[str, ...]
    codes: tuple[tuple[int, ...], ...]

    @staticmethod
    def from_mapping(classes: Mapping[str, Sequence[int]]) -> "ClassMap":
        """Raises ConfigError: empty, a code outside 0–255, or a code under two names."""
        if not classes:
            raise ConfigError("the class map is empty: name at least one class (e.g. ground: [2])")
        names, codes, seen = [], [], {}
        for name, group in classes.items():
            if not isinstance(group, (int, list, tuple)):  # a string would be read letter by letter
                raise ConfigError(f"class {name!r} wants ASPRS codes, e.g. {name}: [3, 4, 5], got {group!r}")
            group = [group] if isinstance(group, int) else list(group)
            if not group:
                raise ConfigError(f"class {name!r} names no ASPRS code")
            for code in group:
                if not isinstance(code, int) or isinstance(code, bool) or not 0 <= code <= 255:
                    raise ConfigError(f"class {name!r}: ASPRS codes are integers 0–255, got {code!r}")
                if code in seen:
                    raise ConfigError(f"ASPRS code {code} is under both {seen[code]!r} and {name!r}")
                seen[code] = name
            names.append(str(name))
            codes.append(tuple(int(c) for c in group))
        return ClassMap(tuple(names), tuple(codes))

    def labels(self, classification: np.ndarray) -> np.ndarray:
        """(N,) int64 label per point: the index of its class, :data:`IGNORE` for other codes."""
        lut = np.full(256, IGNORE, np.int64)
        for i, group in enumerate(self.codes):
            lut[list(group)] = i
        return lut[np.asarray(classification, dtype=np.int64) & 0xFF]

    def check_present(self, counts: np.ndarray, where: str) -> None:
        """Refuse a map naming a class no point of ``where`` carries.

        Args:
            counts: (C,) points per class over the data.
        Raises:
            InputError: some class has no point.
        """
        missing = [n for n, c in zip(self.names, counts) if c == 0]
        if missing:
            raise InputError(f"the class map names {', '.join(map(repr, missing))}, which no point of {where} "
                             "carries; drop it from the class map (classes) or add files that have it")


@dataclass
class LabelledTile:
    """One metric-frame square.

    Attributes:
        site: the file or dataset it was cut from.
        center: (2,) world xy of the square's centre.
        points: (P, 3) float32 frame points: x, y from the centre, z above the label-free ground.
        labels: (P,) int64 class index or :data:`IGNORE`.
        cloud: the square's world points with all attributes (thinned), for generators that
            re-imagine part of it; None for held-out tiles.
    """

    site: str
    center: np.ndarray
    points: np.ndarray
    labels: np.ndarray
    cloud: object = None


def frame_points(xyz: np.ndarray, center: np.ndarray, frame, support: np.ndarray) -> np.ndarray:
    """(P, 3) world points of one square in the frame, heights above a label-free ground.

    Args:
        support: (S, 3) the square's returns the ground is found in (the lowest per 2 m cell).
            Every tile, real or synthetic, gets the same density here (``ground_points``): in
            a dense forest the lowest of a sparse subset is often a crown, not the ground.
    """
    from pcgen.tasks.frame import GroundSurface, lowest_per_cell

    surface = GroundSurface(support[lowest_per_cell(support)])
    return frame.place(xyz, center, surface(xyz[:, :2]))


def site_tiles(path: str | Path, frame, class_map: ClassMap, rng: np.random.Generator,
               ground_points: int = 6144, keep_cloud: bool = False) -> list[LabelledTile]:
    """Every whole square of one labelled file or dataset.

    Args:
        path: a LAS/LAZ/COPC file or an EPT dataset.
        frame: :class:`pcgen.metrics.frame.MetricFrame` (tile size, points per tile).
        ground_points: the square's returns (a random subset of at most this many) its
            label-free ground is found in.
        keep_cloud: keep those returns with all attributes in :attr:`LabelledTile.cloud`, for
            generators that re-imagine part of the tile.
    Raises:
        InputError: the file has no classification.
    """
    import pcgen.io as pio

    cloud = pio.read(path)
    if "classification" not in cloud.attributes:
        raise InputError("has no classification: the downstream benchmark needs labelled files", path)
    cls = np.asarray(cloud.attributes["classification"])
    site = Path(path).name if Path(path).name != "ept.json" else Path(path).parent.name
    out = []
    for center, index in frame.squares(cloud.xyz[:, :2]):
        kept = index if len(index) <= ground_points else np.sort(rng.choice(index, ground_points, replace=False))
        sub = kept[frame.subsample(len(kept), rng)]
        tile = LabelledTile(site, center, frame_points(cloud.xyz[sub], center, frame, cloud.xyz[kept]),
                            class_map.labels(cls[sub]))
        if keep_cloud:
            tile.cloud = cloud.select(kept)
        out.append(tile)
    return out


def labelled_share(tiles: Sequence[LabelledTile], min_share: float = 0.5) -> list[LabelledTile]:
    """The tiles at least ``min_share`` of whose points carry a mapped class (the rest say little)."""
    return [t for t in tiles if np.mean(t.labels != IGNORE) >= min_share]


def class_counts(tiles: Sequence[LabelledTile], n_classes: int) -> np.ndarray:
    """(C,) labelled points per class over the tiles."""
    counts = np.zeros(n_classes, np.int64)
    for t in tiles:
        counts += np.bincount(t.labels[t.labels != IGNORE], minlength=n_classes)[:n_classes]
    return counts
