"""A PNG of a filled file (``pcgen fill --png``): what was added, seen from above and from the side.

A user checks a fill by looking at it: the plan view shows where the new points went (red, over
the originals coloured by height, each gap outlined), and a side view through the largest gap
shows whether they sit between the ground and the crowns around them.
"""

from __future__ import annotations

import os

import numpy as np

PNG_MARK = "pcgen fill"  # the PNG's Software text: the one kind of PNG --overwrite may replace
MAX_DRAWN = 200_000  # points per panel; more only slows matplotlib down


def render_fill(xyz: np.ndarray, n_original: int, polygons, path: str | os.PathLike, title: str = "",
                dpi: int = 110, unit: str = "units") -> None:
    """Write the plan view and a side view through the largest gap of a filled cloud to ``path``.

    Args:
        xyz: (N + P, 3) the filled cloud, originals first (as ``fill_cloud`` returns it).
        n_original: N.
        polygons: the gaps filled (shapely polygons, the file's CRS).
        path: the PNG, written atomically and marked with :data:`PNG_MARK`.
        title: the figure's title (the file's name).
        unit: the symbol of the CRS's distance unit (``m``, ``ft``); ``units`` without a CRS.
    The panel titles are also the PNG's ``Description`` text, for readers that cannot see it.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pcgen.atomic import atomic_path

    xyz = np.asarray(xyz, dtype=np.float64)
    old, new = xyz[:n_original], xyz[n_original:]
    rng = np.random.default_rng(0)

    def thin(pts):
        return pts if len(pts) <= MAX_DRAWN else pts[rng.choice(len(pts), MAX_DRAWN, replace=False)]

    zlo, zhi = np.percentile(old[:, 2], [1, 99]) if len(old) else (0.0, 1.0)
    fig, (top, side) = plt.subplots(1, 2, figsize=(12, 5.6), gridspec_kw={"width_ratios": [1, 1.4]})
    shown = thin(old)
    top.scatter(shown[:, 0], shown[:, 1], c=shown[:, 2], s=0.5, cmap="viridis", vmin=zlo, vmax=zhi, linewidths=0)
    shown = thin(new)
    top.scatter(shown[:, 0], shown[:, 1], s=1.5, color="tab:red", linewidths=0, label=f"{len(new)} new points")
    for poly in polygons:
        top.plot(*poly.exterior.xy, color="black", lw=0.6)
    top.set_aspect("equal")
    captions = [f"from above: {len(polygons)} gap{'' if len(polygons) == 1 else 's'}, {len(new)} new points"]
    top.set_title(captions[0].split(",")[0], fontsize=9)
    top.legend(loc="upper right", fontsize=8, markerscale=4)
    top.tick_params(labelsize=7)
    top.ticklabel_format(useOffset=False, style="plain")
    if polygons:
        big = max(polygons, key=lambda p: p.area)
        x0, y0, x1, y1 = big.bounds
        pad = max(x1 - x0, 10.0)
        for pts, style in ((old, {"s": 1.0, "color": "0.55"}), (new, {"s": 2.0, "color": "tab:red"})):
            sel = pts[(pts[:, 1] >= y0) & (pts[:, 1] <= y1) & (pts[:, 0] >= x0 - pad) & (pts[:, 0] <= x1 + pad)]
            side.scatter(sel[:, 0], sel[:, 2], linewidths=0, **style)
        side.axvline(x0, color="black", lw=0.5), side.axvline(x1, color="black", lw=0.5)
        side.set_xlim(x0 - pad, x1 + pad)
        captions.append(f"from the side: the largest gap ({big.area:.0f} {unit}²) and {pad:.0f} {unit} "
                        "either side")
        side.set_title(captions[-1], fontsize=9)
        side.set_xlabel(f"x ({unit})", fontsize=8), side.set_ylabel(f"z ({unit})", fontsize=8)
        side.tick_params(labelsize=7)
        side.ticklabel_format(useOffset=False, style="plain")
    else:
        side.axis("off")
        side.text(0.5, 0.5, "no gap filled", ha="center", va="center")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png",
                    metadata={"Software": PNG_MARK, "Title": title, "Description": "; ".join(captions)})
    plt.close(fig)


def is_fill_png(path) -> bool:
    """Whether ``path`` is a PNG :func:`render_fill` wrote (its Software text is :data:`PNG_MARK`)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    return head.startswith(b"\x89PNG\r\n\x1a\n") and b"Software\x00" + PNG_MARK.encode() in head
