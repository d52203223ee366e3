"""Render a few point clouds to one PNG: a top view coloured by height over a side view.

Two orthographic projections read better than a 3D scatter for LiDAR tiles (canopy gaps show
from above, stems and ground from the side) and cost one matplotlib scatter each.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np


def render_clouds(clouds: Sequence[np.ndarray], path: str | os.PathLike,
                  contexts: Sequence[np.ndarray] | None = None, title: str = "",
                  point_size: float = 1.0, labels: Sequence[str] | None = None) -> None:
    """Write a grid of clouds to ``path`` (PNG), one column per cloud.

    Args:
        clouds: each (N, 3) — generated points, drawn coloured by z.
        path: output PNG path; written atomically.
        contexts: optional, each (M, 3) — the given partial cloud, drawn grey under the cloud.
        title: figure title (e.g. the training step).
        point_size: scatter marker size.
        labels: one column title per cloud (default ``sample i``).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pcgen.atomic import atomic_path

    n = len(clouds)
    fig, axes = plt.subplots(2, n, figsize=(2.6 * n, 5.2), squeeze=False)
    for i, xyz in enumerate(clouds):
        xyz = np.asarray(xyz, dtype=np.float64)
        ctx = None if contexts is None else np.asarray(contexts[i], dtype=np.float64)
        for row, (a, b) in enumerate(((0, 1), (0, 2))):
            ax = axes[row, i]
            if ctx is not None and len(ctx):
                ax.scatter(ctx[:, a], ctx[:, b], s=point_size, c="0.75", linewidths=0)
            ax.scatter(xyz[:, a], xyz[:, b], s=point_size, c=xyz[:, 2], cmap="viridis",
                       linewidths=0)
            ax.set_aspect("equal", adjustable="datalim")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[0, i].set_title(labels[i] if labels else f"sample {i}", fontsize=8)
    axes[0, 0].set_ylabel("top (x, y)")
    axes[1, 0].set_ylabel("side (x, z)")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
