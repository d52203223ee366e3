"""``pcgen image train|sample|explain|rasterize``: the image track from the command line.

    pcgen image rasterize plots/*.laz rasters/ --kind chm
    pcgen image train --images rasters/ --out runs/chm --preset tiny
    pcgen image sample --ckpt runs/chm/ldm.ckpt --images rasters/ --out samples/
    pcgen image explain --ckpt runs/chm/ldm.ckpt --images rasters/ --samples 4 --out report/
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

from pcgen.options import float_range, int_range, positive_float, seed, step_count, unit_fraction, workers


def _overwrite(p: argparse.ArgumentParser) -> None:
    p.add_argument("--overwrite", action="store_true",
                   help="write into a non-empty output folder (replaces only files pcgen wrote there)")


def _common_sampling(p: argparse.ArgumentParser) -> None:
    _overwrite(p)
    p.add_argument("--sampler", choices=("ddim", "ddpm"), default="ddim")
    p.add_argument("--steps", type=int_range(1, 100_000), default=50, help="denoising steps (default 50)")
    # None when not given, so an option the sampler or checkpoint would ignore can be refused
    p.add_argument("--eta", type=unit_fraction, default=None,
                   help="DDIM η: 0 deterministic (default), 1 ≈ DDPM; --sampler ddim only")
    p.add_argument("--guidance", type=float_range(0.0, 1000.0), default=None,
                   help="classifier-free guidance scale (default 1 = off); conditional checkpoints only")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--threads", type=workers, default=None, help="torch CPU threads (default: torch's choice)")


PIT_DEPTH = 2.0  # file units: the CHM pit filler's default depth


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True)

    p = sub.add_parser("train", help="train the autoencoder and/or the CosPlace-conditioned LDM on a folder")
    p.add_argument("--images", required=True, help="folder of training images (searched recursively)")
    p.add_argument("--out", required=True, help="run folder: autoencoder.ckpt, ldm.ckpt, logged PNGs")
    p.add_argument("--preset", default="tiny", help="pcgen/conf/image preset name or yaml (default tiny)")
    p.add_argument("--config-dir", default=None, metavar="DIR",
                   help="your config folder: its image/NAME.yaml presets join the packaged ones")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a preset value, e.g. --set data.image_size=64 (repeatable)")
    p.add_argument("--stage", choices=("both", "autoencoder", "ldm"), default="both")
    p.add_argument("--autoencoder", help="first-stage checkpoint for --stage ldm")
    p.add_argument("--cosplace", help="CosPlace checkpoint (published *_cosplace.pth); default random init")
    p.add_argument("--ae-steps", type=step_count, help="autoencoder optimizer steps (default: preset)")
    p.add_argument("--ldm-steps", type=step_count, help="LDM optimizer steps (default: preset)")
    p.add_argument("--seed", type=seed, default=0)
    p.add_argument("--threads", type=workers, default=None, help="torch CPU threads (default: torch's choice)")
    _overwrite(p)

    p = sub.add_parser("sample", help="generate images, from the CosPlace embeddings of a folder or unconditionally")
    p.add_argument("--ckpt", required=True, help="LDM checkpoint from `pcgen image train`")
    p.add_argument("--out", required=True, help="output folder of PNGs")
    p.add_argument("--images", help="condition on these images' CosPlace embeddings (one sample each × --num)")
    p.add_argument("--num", type=int_range(1, 10_000), default=4, help="samples (per condition image when --images)")
    _common_sampling(p)

    p = sub.add_parser("explain", help="generate from CosPlace embeddings and measure what retrieval keeps")
    p.add_argument("--ckpt", required=True, help="LDM checkpoint from `pcgen image train`")
    p.add_argument("--images", required=True, help="folder of source images (the retrieval database)")
    p.add_argument("--samples", type=int_range(1, 1_000), default=4, help="generations per source image (K)")
    p.add_argument("--out", required=True, help="report folder: sheets/*.png, report.json, report.md")
    p.add_argument("--cosplace", help="judge retrieval with this CosPlace checkpoint instead of the model's own")
    _common_sampling(p)

    p = sub.add_parser("rasterize", help="LiDAR files → CHM/DSM PNG tiles for the image LDM")
    p.add_argument("inputs", nargs="+", metavar="IN", help="LAS/LAZ (or PLY, ...) files")
    p.add_argument("out_dir", metavar="OUT_DIR", help="folder of PNG tiles and index.json")
    p.add_argument("--res", type=_res, default="auto",
                   help="cell size in file units, or auto (default): the finest of 0.25, 0.5, 1, 2, 5... "
                        "at which a cell of the sparsest input expects 3 points")
    p.add_argument("--kind", choices=("chm", "dsm"), default="chm")
    p.add_argument("--channels", type=int, choices=(1, 3), default=1,
                   help="1: height; 3: height, point density, z std-dev")
    p.add_argument("--tile", type=int_range(0, 65_536), default=256, help="tile side in cells; 0 = whole raster")
    p.add_argument("--max-height", type=positive_float, default=40.0, help="CHM height shown as white (file units)")
    p.add_argument("--min-valid", type=unit_fraction, default=0.5, help="drop tiles whose share of filled cells is below this (0..1)")
    p.add_argument("--pit-depth", type=positive_float, default=None,
                   help=f"CHM: fill one-cell pits deeper than this below their 3x3 median (default {PIT_DEPTH:g})")
    p.add_argument("--no-pit-fill", action="store_true", help="CHM: keep pits as measured")
    _overwrite(p)


def _quiet() -> None:
    """One clean line per pcgen warning; silence Lightning's start-up chatter."""
    import logging

    def show(message, category, filename, lineno, file=None, line=None):
        if "pcgen" in filename:
            print(f"pcgen image: warning: {message}", file=sys.stderr)
    warnings.showwarning = show
    import lightning  # noqa: F401  (it sets its loggers' levels on import; override after)

    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _setup(args) -> None:
    import torch

    _quiet()
    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)


# options each --stage would ignore, and why
_NOT_FOR_STAGE = {
    "autoencoder": {"autoencoder": "it trains a new autoencoder", "ldm_steps": "it trains no LDM",
                    "cosplace": "CosPlace conditions the LDM only"},
    "both": {"autoencoder": "it trains a new autoencoder; --stage ldm trains the LDM on yours"},
    "ldm": {"ae_steps": "it trains no autoencoder"},
}


def _train(args) -> int:

    from pcgen.atomic import atomic_dir
    from pcgen.errors import ConfigError
    from pcgen.image.config import build_cosplace, load_preset
    from pcgen.image.train import fit_autoencoder, fit_ldm

    for key, why in _NOT_FOR_STAGE[args.stage].items():
        if getattr(args, key) is not None:
            raise ConfigError(f"--{key.replace('_', '-')} does not apply to --stage {args.stage} ({why})")
    if args.stage == "ldm" and not args.autoencoder:
        raise ConfigError("--stage ldm needs --autoencoder CKPT")
    overrides = list(args.overrides)
    if args.cosplace:
        overrides.append(f"cosplace.checkpoint={os.path.abspath(args.cosplace)}")
    cfg = load_preset(args.preset, overrides, config_dir=args.config_dir)
    # a bad CosPlace checkpoint fails now, not after the autoencoder has trained
    cosplace = build_cosplace(cfg) if args.stage != "autoencoder" else None
    ae_in = os.path.abspath(args.autoencoder) if args.autoencoder else None
    written = []
    with atomic_dir(args.out, overwrite=args.overwrite) as tmp:
        if args.stage in ("both", "autoencoder"):
            ae_in = fit_autoencoder(cfg, args.images, tmp / "autoencoder.ckpt", args.ae_steps,
                                    tmp / "images_autoencoder")
            written.append(f"autoencoder: {Path(args.out) / 'autoencoder.ckpt'}")
        if args.stage in ("both", "ldm"):
            fit_ldm(cfg, args.images, tmp / "ldm.ckpt", ae_in, args.ldm_steps, tmp / "images_ldm",
                    cosplace=cosplace)
            written.append(f"ldm: {Path(args.out) / 'ldm.ckpt'}")
    print("\n".join(written))  # only now are the checkpoints in place
    return 0


def _sampling(args, model=None) -> dict:
    """The sampler settings of ``args``; an option given explicitly that would be ignored is refused
    (``--eta`` without DDIM, and, once ``model`` is known, ``--guidance`` without conditioning)."""
    from pcgen.errors import ConfigError

    if args.eta is not None and args.sampler != "ddim":
        raise ConfigError(f"--eta applies to --sampler ddim only, not {args.sampler}")
    if model is not None and args.guidance is not None and not model.conditional:
        raise ConfigError("--guidance needs a CosPlace-conditioned checkpoint; this one is unconditional")
    return dict(sampler=args.sampler, steps=args.steps, eta=0.0 if args.eta is None else args.eta,
                guidance_scale=1.0 if args.guidance is None else args.guidance)


def _sample(args) -> int:
    import torch

    from pcgen.atomic import atomic_dir
    from pcgen.errors import ConfigError
    from pcgen.image.config import load_ldm
    from pcgen.image.data import image_names, load_images
    from pcgen.image.render import grid, save_png, to_uint8

    if args.num < 1:
        raise ConfigError(f"--num must be at least 1, got {args.num}")
    _sampling(args)
    model = load_ldm(args.ckpt)
    gen = torch.Generator().manual_seed(args.seed)
    kw = dict(_sampling(args, model), generator=gen)
    rows = []
    if args.images:
        if not model.conditional:
            raise ConfigError("--images needs a CosPlace-conditioned checkpoint; this one is unconditional")
        items = load_images(args.images)
        names = image_names([item.path for item in items], args.images)  # a/img.png, b/img.png: two names
        for item in items:
            ctx = model.embed(item.image)
            rows.append(list(model.sample(args.num, ctx, **kw)))
    else:
        rows.append(list(model.sample(args.num, None, **kw)))
        names = ["sample"]
    from PIL import Image

    with atomic_dir(args.out, overwrite=args.overwrite) as tmp:
        for name, row in zip(names, rows):
            for k, img in enumerate(row):
                Image.fromarray(to_uint8(img)).save(tmp / f"{name}_{k:02d}.png")
        save_png(grid(rows), tmp / "grid.png")
    print(f"{sum(len(r) for r in rows)} samples: {args.out}")
    return 0


def _explain(args) -> int:
    from pcgen.image.config import load_ldm
    from pcgen.image.cosplace import load_cosplace
    from pcgen.image.explain import explain

    _sampling(args)
    model = load_ldm(args.ckpt)
    judge = load_cosplace(args.cosplace) if args.cosplace else None
    report = explain(model, args.images, args.out, args.samples, **_sampling(args, model), seed=args.seed,
                     evaluator=judge, checkpoint=str(args.ckpt), overwrite=args.overwrite)
    print(f"recall@1 {report.recall['1']:.3f}  recall@5 {report.recall['5']:.3f}  "
          f"(chance {report.recall_chance['1']:.3f} / {report.recall_chance['5']:.3f})  "
          f"cosine to source {report.cosine_to_source_mean:.3f}  → {args.out}/report.md")
    return 0


def _res(text: str):
    """``--res``: ``auto`` or a cell size from 0.001 to 1e6 file units."""
    if text == "auto":
        return text
    try:
        return float_range(0.001, 1e6)(text)
    except argparse.ArgumentTypeError as exc:
        if "wants a number" in str(exc):  # name the word it also takes
            raise argparse.ArgumentTypeError(f"wants a number or auto, got {text!r}") from None
        raise


def _rasterize(args) -> int:
    from pcgen.errors import ConfigError
    from pcgen.image.rasterize import rasterize_files

    if args.pit_depth is not None and (args.no_pit_fill or args.kind == "dsm"):
        raise ConfigError(f"--pit-depth sets the CHM pit filler; "
                          f"{'--no-pit-fill turns it off' if args.no_pit_fill else 'a DSM is not pit-filled'}")

    counts: list[int] = []  # PNGs per input, by position (one file named twice counts twice)
    chosen: list[float] = []
    written = rasterize_files(args.inputs, args.out_dir, res=args.res, kind=args.kind, channels=args.channels,
                              tile=args.tile, max_height=args.max_height, min_valid=args.min_valid,
                              pit_depth=None if args.no_pit_fill else args.pit_depth or PIT_DEPTH,
                              overwrite=args.overwrite, counts=counts, chosen=chosen)
    if args.res == "auto":
        print(f"pcgen image rasterize: --res auto: {chosen[0]:g} file units a cell", file=sys.stderr)
    for path, count in zip(args.inputs, counts):  # a file with no tile dense enough is left out: say so
        if not count:
            print(f"pcgen image rasterize: {path}: no tile with {args.min_valid:.0%} of its cells holding "
                  "points, none written (a coarser --res or a smaller --tile may help)", file=sys.stderr)
    print(f"{len(written)} rasters from {sum(c > 0 for c in counts)} of {len(args.inputs)} files: {args.out_dir}")
    return 0


def _guard(args) -> None:
    """Refuse an output that is, holds or lies inside an input, before anything is read."""
    from pcgen.outputs import check_output

    if args.verb == "rasterize":
        out, inputs = args.out_dir, list(args.inputs)
    else:
        out = args.out
        inputs = [getattr(args, k, None) for k in ("images", "ckpt", "autoencoder", "cosplace", "config_dir")]
        preset = getattr(args, "preset", None)
        if preset and preset.endswith((".yaml", ".yml")):  # a file, not a packaged preset's name
            inputs.append(preset)
    check_output(out, inputs, folder=True, overwrite=args.overwrite, overwrite_hint="--overwrite")


def run(args: argparse.Namespace) -> int:
    _guard(args)
    if args.verb == "rasterize":
        _quiet()
        return _rasterize(args)
    _setup(args)
    return {"train": _train, "sample": _sample, "explain": _explain}[args.verb](args)
