"""The downstream benchmark's report: a summary per (budget, arm), Markdown tables and a bar chart."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def summarize(doc: dict) -> list[dict]:
    """Per (fraction, arm): mIoU and per-class IoU, mean and standard deviation over the seeds."""
    out = []
    fractions = sorted({r["fraction"] for r in doc["runs"]})
    arms = list(dict.fromkeys(r["arm"] for r in doc["runs"]))
    for f in fractions:
        for arm in arms:
            runs = [r for r in doc["runs"] if r["fraction"] == f and r["arm"] == arm]
            if not runs:
                continue
            miou = np.array([r["miou"] for r in runs])
            per_class = {c: [r["iou"][c] for r in runs if r["iou"][c] is not None] for c in doc["scored_classes"]}
            out.append({"fraction": f, "arm": arm, "seeds": len(runs), "miou_mean": float(miou.mean()),
                        "miou_std": float(miou.std(ddof=1)) if len(miou) > 1 else 0.0,
                        "iou_mean": {c: float(np.mean(v)) for c, v in per_class.items() if v},
                        "real_tiles": runs[0]["real_tiles"], "synthetic_tiles": runs[0]["synthetic_tiles"]})
    return out


def ceilings(doc: dict) -> dict[float, dict]:
    """Per budget: the mean mIoU ceiling over the seeds (see :func:`pcgen.train.segmentation.iou_ceiling`)
    and, per held-out class no scarce set of that budget was shown, in how many seeds it was missing."""
    out = {}
    for f in sorted({r["fraction"] for r in doc["runs"]}):
        runs = [r for r in doc["runs"] if r["fraction"] == f and "ceiling" in r]
        first = {}
        for r in runs:  # one run per seed: the scarce set, not the arm, decides what was shown
            first.setdefault(r["seed"], r)
        if first:
            missing = [c for r in first.values() for c in r["untrained"]]
            out[f] = {"ceiling": float(np.mean([r["ceiling"] for r in first.values()])),
                      "seeds": len(first), "missing": {c: missing.count(c) for c in dict.fromkeys(missing)}}
    return out


def gain(summary: list[dict], fraction: float, arm: str, over: str) -> tuple[float, float] | None:
    """(mean mIoU of ``arm`` minus ``over``, the larger of their seed spreads), in IoU units."""
    pick = {s["arm"]: s for s in summary if s["fraction"] == fraction}
    if arm not in pick or over not in pick:
        return None
    a, b = pick[arm], pick[over]
    return a["miou_mean"] - b["miou_mean"], max(a["miou_std"], b["miou_std"])


def markdown(doc: dict, summary: list[dict]) -> str:
    classes = doc["scored_classes"]
    lines = [f"Per-point classifier trained on scarce labelled tiles of {', '.join(doc['train_sites'])}; "
             f"tested on {doc['test_tiles']} tiles of the held-out sites {', '.join(doc['heldout_sites'])} "
             f"({doc['settings']['tile_size']:g} m squares, {doc['settings']['points']} points). "
             f"IoU in %, mean ± standard deviation over {len(doc['settings']['seeds'])} seeds; mIoU over "
             f"{', '.join(classes)}.", "",
             "| budget | arm | real + synthetic tiles | mIoU | " + " | ".join(classes) + " |",
             "|---|---|---:|---:|" + "---:|" * len(classes)]
    for s in summary:
        cells = " | ".join(f"{100 * s['iou_mean'].get(c, float('nan')):.1f}" for c in classes)
        lines.append(f"| {s['fraction']:.0%} | {s['arm']} | {s['real_tiles']} + {s['synthetic_tiles']} | "
                     f"{100 * s['miou_mean']:.1f} ± {100 * s['miou_std']:.1f} | {cells} |")
    lines.append("")
    pairs = (("pcgen", "classic"), ("pcgen+classic", "classic"), ("pcgen", "hybrid"),
             ("pcgen+classic", "hybrid+classic"))
    for f in sorted({s["fraction"] for s in summary}):
        for arm, over in pairs:
            g = gain(summary, f, arm, over)
            if g is not None:
                lines.append(f"- {f:.0%} budget: {arm} − {over} = {100 * g[0]:+.1f} mIoU points "
                             f"(larger seed spread {100 * g[1]:.1f}).")
    for f, c in (doc.get("ceilings") or ceilings(doc)).items():
        if c["missing"]:
            absent = ", ".join(f"{name} in {k} of {c['seeds']} seeds" for name, k in c["missing"].items())
            lines.append(f"- {f:.0%} budget: the scarce sets lack {absent}; a classifier never predicts a class "
                         f"it was not shown, so no arm can score above {100 * c['ceiling']:.1f} mIoU "
                         "(the ceiling, mean over seeds).")
    for name, t in (doc.get("seconds_per_tile") or {}).items():
        lines.append(f"- {name} synthetic tile: {t:.2f} s each ({100 * t / 60:.1f} min per 100 tiles).")
    dist = doc.get("synthetic_distances") or {}
    if dist:
        seconds = doc.get("seconds_per_tile") or {}
        lines += ["", f"Tiles of the largest budget (seed {doc['settings']['seeds'][0]}) against the held-out "
                  "tiles, in metres (Chamfer; 1-NNA 0.5 = indistinguishable, 1.0 = fully separated):", "",
                  "| tiles | count | 1-NNA | MMD-CD (m²) | COV | JSD | s per tile |", "|---|---:|---:|---:|---:|---:|---:|"]
        for name, d in dist.items():
            t = f"{seconds[name]:.2f}" if name in seconds else "–"
            lines.append(f"| {name} | {d['tiles']} | {d['1nna']:.3f} | {d['mmd']:.3f} | {d['cov']:.3f} | "
                         f"{d['jsd']:.3f} | {t} |")
    return "\n".join(lines) + "\n"


def render_chart(summary: list[dict], path: Path, ceiling: dict[float, dict] | None = None) -> None:
    """Grouped bars: mIoU per arm at each budget, seed spread as error bars; a dashed line marks
    a budget's ceiling where its scarce sets lack a held-out class."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pcgen.atomic import atomic_path

    fractions = sorted({s["fraction"] for s in summary})
    arms = list(dict.fromkeys(s["arm"] for s in summary))
    width = 0.8 / max(len(arms), 1)
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(fractions) * len(arms) / 3, 3.6))
    for k, arm in enumerate(arms):
        rows = [next((s for s in summary if s["fraction"] == f and s["arm"] == arm), None) for f in fractions]
        means = [100 * r["miou_mean"] if r else np.nan for r in rows]
        stds = [100 * r["miou_std"] if r else 0 for r in rows]
        ax.bar(np.arange(len(fractions)) + (k - (len(arms) - 1) / 2) * width, means, width, yerr=stds,
               capsize=3, label=arm)
    lacking = [(k, c["ceiling"]) for k, f in enumerate(fractions)
               if (c := (ceiling or {}).get(f)) and c["missing"]]
    for n, (k, top) in enumerate(lacking):
        ax.hlines(100 * top, k - 0.45, k + 0.45, colors="black", linestyles="dashed",
                  label="ceiling" if n == 0 else None)
    ax.set_xticks(np.arange(len(fractions)), [f"{f:.0%} labelled" for f in fractions])
    ax.set_ylabel("held-out mIoU (%)")
    ax.legend(fontsize=8, ncol=min(len(arms), 5), loc="lower center")
    ax.set_title("Downstream segmentation on held-out sites", fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
