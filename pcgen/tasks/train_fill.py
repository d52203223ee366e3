"""Train a small conditional (gap-filling) head on tiles of the public sample data.

Used by ``datasets/train_default_fill.py`` (the shipped checkpoint) and by ``pcgen demo`` when no
checkpoint is available. Flow matching on small PointNet encoders: the cheapest encoder and a
10-step Heun sampler keep training and filling within minutes on 2 CPU cores (the other heads
were not compared at this budget).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
DEFAULT_FILES = ["Megaplot.laz", "MixedConifer.laz", "Topography.laz"]


def split_tiles(tile_dir: Path, out: Path, heldout_every: int) -> tuple[list[str], list[str]]:
    """Copy tiles into ``out/train`` and ``out/heldout``: every n-th tile (sorted by name) is held out."""
    tiles = sorted(tile_dir.glob("*.laz"))
    train, held = out / "train", out / "heldout"
    train.mkdir(parents=True, exist_ok=True)
    held.mkdir(parents=True, exist_ok=True)
    names_train, names_held = [], []
    for i, t in enumerate(tiles):
        dest = held if i % heldout_every == heldout_every // 2 else train
        shutil.copy2(t, dest / t.name)
        (names_held if dest is held else names_train).append(t.name)
    return names_train, names_held


def overrides(tile_dir: Path, args) -> list[str]:
    """The Hydra overrides of the shipped model: small, CPU-friendly, conditional."""
    return [
        "model=flow_matching", "encoder=pointnet", "experiment=fill", "trainer=cpu",
        "logger=none", "callbacks=none", f"seed={args.seed}",
        f"data.tile_dir={tile_dir}", "data.files=null",
        f"data.dataset.num_points={args.num_points}",
        f"data.gap.context_points={args.context_points}", f"data.gap.target_points={args.target_points}",
        f"data.batch_size={args.batch_size}",
        f"trainer.max_steps={args.steps}", "trainer.enable_progress_bar=true",
        "trainer.enable_model_summary=false", "+trainer.enable_checkpointing=false",
        "model.time_dim=32", f"model.cond_dim={args.width}", f"model.head.net.hidden={args.width}",
        f"model.head.context_encoder.hidden={args.width}", f"model.optimizer.lr={args.lr}",
        f"model.ema_decay={args.ema}", "model.head.steps=10",
        "encoder.local_channels=[32,32]", f"encoder.global_channels=[32,64,{2 * args.width}]",
        f"encoder.point_channels=[{args.width},32]",
    ]


def strip_checkpoint(module, meta: dict, path: Path) -> None:
    """Save only what ``pcgen.train.checkpoint.load_head`` reads: EMA (or live) head weights + config."""
    import torch

    from pcgen.atomic import atomic_path

    state = module.state_dict()
    ema = {k: v for k, v in state.items() if k.startswith("ema.module.")}
    weights = ema or {k: v for k, v in state.items() if k.startswith("head.")}
    hp = {k: v for k, v in meta.items() if k != "config"}
    ckpt = {"state_dict": weights, "hyper_parameters": hp, "global_step": int(module.global_step),
            "pytorch-lightning_version": "stripped"}
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Train the default gap-filling checkpoint on the sample data")
    parser.add_argument("--files", nargs="+", default=DEFAULT_FILES, help="sample files (pcgen.datadir names)")
    parser.add_argument("--out", default=str(REPO / "pcgen" / "checkpoints" / "default_fill.ckpt"))
    parser.add_argument("--work", default=None, help="keep tiles and the split here (default: a temp folder)")
    parser.add_argument("--tile-size", type=float, default=40.0)
    parser.add_argument("--heldout-every", type=int, default=6)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--num-points", type=int, default=384)
    parser.add_argument("--context-points", type=int, default=256)
    parser.add_argument("--target-points", type=int, default=128)
    parser.add_argument("--width", type=int, default=64, help="hidden width of the networks")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--ema", type=float, default=0.99)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--init", default=None, help="start from the weights of a (stripped) checkpoint")
    return parser


def train_fill(args) -> dict:
    """Tile, split, train, strip; returns the sidecar dict (also written next to ``args.out``)."""

    import torch

    from pcgen import datadir
    from pcgen.data import tile_files
    from pcgen.data.tiling import TileOptions
    from pcgen.train.run import build, compose_config, head_meta

    torch.set_num_threads(args.threads)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="pcgen-fill-train-"))
    t0 = time.time()
    sources = [datadir.lidar_file(f) for f in args.files]
    tiles = work / "tiles"
    if not tiles.is_dir():
        tile_files(sources, tiles, TileOptions(size=args.tile_size, buffer=0.0, min_points=args.num_points),
                   overview=False)
    if not (work / "split" / "train").is_dir():
        split_tiles(tiles, work / "split", args.heldout_every)
    names_train = sorted(p.name for p in (work / "split" / "train").glob("*.laz"))
    names_held = sorted(p.name for p in (work / "split" / "heldout").glob("*.laz"))
    print(f"{len(names_train)} training tiles, {len(names_held)} held out ({time.time() - t0:.0f} s)", file=sys.stderr)

    cfg = compose_config(overrides(work / "split" / "train", args), root=work / "run")
    module, datamodule, trainer = build(cfg, work / "run")
    if args.init:  # continue a stripped checkpoint: same architecture, fresh optimizer
        from pcgen.train.checkpoint import load_head

        head, _ = load_head(args.init)
        module.head.load_state_dict(head.state_dict())
        if getattr(module, "ema", None) is not None:
            module.ema.module.load_state_dict(head.state_dict())
    t1 = time.time()
    trainer.fit(module, datamodule=datamodule)
    train_s = time.time() - t1
    loss = {k: float(v) for k, v in trainer.callback_metrics.items()}
    print(f"trained {trainer.global_step} steps in {train_s:.0f} s: {loss}", file=sys.stderr)

    out = Path(args.out)
    strip_checkpoint(module, head_meta(cfg), out)
    sidecar = {"files": args.files, "tile_size": args.tile_size, "heldout_every": args.heldout_every,
               "train_tiles": names_train, "heldout_tiles": names_held, "steps": int(trainer.global_step),
               "train_seconds": round(train_s, 1), "final_metrics": loss, "seed": args.seed,
               "overrides": overrides(Path("<tiles>"), args), "work": str(work)}
    out.with_suffix(".json").write_text(json.dumps(sidecar, indent=1))
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB)", file=sys.stderr)
    return sidecar
