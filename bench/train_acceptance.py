"""Acceptance run: train every head on the real forest tiles for a bounded time, then evaluate.

    python bench/train_acceptance.py --minutes 4 --out /tmp/pcgen_accept

Each head trains in its own ``train.py`` process (N=2048 points, PointNet backbone by default)
for ``--minutes`` of wall time; the script then reports the first/last training loss from the
run's metrics.csv, and the generation metrics of EMA samples against real tiles through
``pcgen.metrics.evaluate_sets`` (MMD, COV, 1-NNA, precision/recall with Chamfer and EMD, and
the occupancy JSD; box-normalized clouds, see docs/metrics.md). Rerunnable: every run folder is
kept under ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MODELS = ["vae", "gan", "diffusion", "flow_matching"]


def train_one(model: str, args) -> Path:
    run = Path(args.out) / model
    cmd = [sys.executable, str(REPO / "train.py"), f"model={model}", f"encoder={args.encoder}",
           f"data={args.data}", f"data.dataset.num_points={args.num_points}",
           f"data.batch_size={args.batch}", f"data.num_workers={args.workers}", "trainer=cpu", "trainer.max_steps=-1",
           f"trainer.max_time=00:00:{args.minutes:02d}:00", "trainer.enable_progress_bar=false",
           "callbacks.last.every_n_train_steps=50", "callbacks.best.every_n_train_steps=50",
           "callbacks.samples.every_n_steps=200", "logger=csv", f"hydra.run.dir={run}",
           *args.overrides]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if proc.returncode:
        raise SystemExit(f"{model}: train.py failed:\n{proc.stderr[-3000:]}")
    print(f"# trained {model} in {time.perf_counter() - t0:.0f} s -> {run}", flush=True)
    return run


def loss_curve(run: Path, key: str = "train/loss") -> list[float]:
    with open(run / "logs" / "csv" / "metrics.csv") as fh:
        return [float(r[key]) for r in csv.DictReader(fh) if r.get(key) not in (None, "")]


def evaluate(run: Path, args) -> dict[str, float]:
    """``pcgen evaluate`` on the run's last checkpoint against the data's tiles."""
    from pcgen.train.run import build_datamodule, compose_config

    cfg = compose_config([f"data={args.data}"], root=run)
    tile_dir = build_datamodule(cfg).resolve_tile_dir()
    out = run / "eval.json"
    cmd = [sys.executable, "-m", "pcgen.cli", "evaluate", f"ckpt={run / 'checkpoints' / 'last.ckpt'}",
           f"data={tile_dir}", f"max_clouds={args.num_clouds}", f"out={out}",
           f"metrics=[{','.join(args.metrics)}]"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"pcgen evaluate failed: {proc.stderr.strip()[-500:]}")
    report = json.loads(out.read_text())
    flat = {"jsd": float(report["jsd"])}
    for metric in args.metrics:
        for key in ("mmd", "cov", "1nna", "precision", "recall"):
            flat[f"{key}-{'cd' if metric == 'chamfer' else metric}"] = float(report[metric][key])
    return flat


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=MODELS)
    p.add_argument("--encoder", default="pointnet")
    p.add_argument("--data", default="forest")
    p.add_argument("--num-points", type=int, default=2048)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--minutes", type=int, default=4)
    p.add_argument("--workers", type=int, default=1, help="data loader workers (FPS per item)")
    p.add_argument("--num-clouds", type=int, default=32)
    p.add_argument("--metrics", nargs="+", default=["chamfer", "emd"], choices=["chamfer", "emd"])
    p.add_argument("--out", default="/tmp/pcgen_accept")
    p.add_argument("--skip-train", action="store_true", help="evaluate existing runs only")
    p.add_argument("overrides", nargs="*", help="extra train.py overrides")
    args = p.parse_args()
    runs = {m: (Path(args.out) / m if args.skip_train else train_one(m, args)) for m in args.models}
    rows = []
    for model, run in runs.items():
        curve = loss_curve(run)
        k = max(1, len(curve) // 10)
        result = {"model": model, "logged": len(curve), "loss_first": sum(curve[:k]) / k,
                  "loss_last": sum(curve[-k:]) / k}
        try:
            result.update(evaluate(run, args))
        except RuntimeError as exc:
            result["metrics"] = f"unavailable ({exc})"
        rows.append(result)
        print(json.dumps(result), flush=True)
    keys = [k for k in rows[0] if k not in ("model", "logged", "loss_first", "loss_last")]
    print(f"\n# {args.data} tiles, N={args.num_points}, {args.minutes} min CPU each, "
          f"encoder={args.encoder}, {args.num_clouds} generated vs real clouds")
    print("| head | loss first 10% -> last 10% | " + " | ".join(keys) + " |")
    print("|---|---|" + "---|" * len(keys))
    for r in rows:
        vals = " | ".join(f"{r[k]:.4g}" if isinstance(r[k], float) and math.isfinite(r[k]) else str(r[k])
                          for k in keys)
        print(f"| {r['model']} | {r['loss_first']:.4f} -> {r['loss_last']:.4f} | {vals} |")


if __name__ == "__main__":
    main()
