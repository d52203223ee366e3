"""``pcgen eval-augment --downstream``: does augmentation help a classifier on sites it never saw?

Protocol (settings in ``pcgen/conf/downstream/config.yaml``):

1. Every labelled training file is cut into metric-frame squares (``tile_size`` m, ``points``
   points, heights above a label-free ground); so is every held-out file, the test set.
2. Per seed, the training tiles are shuffled once; the first ``fraction`` of them is the scarce
   labelled set of that budget (so the 5% set lies inside the 20% one).
3. Each arm trains the same classifier for the same steps on the scarce set plus its extra:
   ``real`` nothing, ``classic`` rotation/scale/jitter/drop on the fly, ``jitter`` / ``gmm`` /
   ``hybrid`` / ``pcgen`` ``synthetic_per_tile`` synthetic tiles per real one
   (:mod:`pcgen.tasks.synthetic_arms`); ``+classic`` adds the classic augmentation to any arm.
4. Scores: IoU per class over every labelled point of the held-out tiles, mIoU over the
   classes present there; mean and spread over the seeds.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from pcgen.errors import ConfigError, InputError
from pcgen.inputs import site_name

CONFIG_MODULE = "pcgen.conf.downstream"
SOURCES = ("real", "jitter", "gmm", "hybrid", "pcgen")  # what joins the scarce real tiles


def arm_parts(arm: str) -> tuple[str, bool]:
    """``"pcgen+classic"`` -> ``("pcgen", True)``; ``"classic"`` is ``"real+classic"``.

    Raises:
        ConfigError: not a source, optionally followed by ``+classic``.
    """
    source, _, extra = ("real+classic" if arm == "classic" else arm).partition("+")
    if source not in SOURCES or extra not in ("", "classic"):
        raise ConfigError(f"arm {arm!r}: arms are one of {list(SOURCES)}, optionally with +classic, or classic")
    return source, extra == "classic"


def load_settings(overrides: Sequence[str] = (), config_dir=None) -> dict:
    """The composed, checked settings as a plain dict.

    Raises:
        ConfigError: unknown key or arm, a budget outside (0, 1], no seed, bad numbers.
    """
    from omegaconf import OmegaConf

    from pcgen.conf import compose
    from pcgen.options import MAX_SEED, float_range, int_range, unit_fraction

    for item in overrides:  # Hydra reads classes=VALUE as a choice of file and drops a map silently
        key, _, value = item.partition("=")
        if key.lstrip("+~") == "classes" and not value.strip().isidentifier():
            raise ConfigError(f"--set {item}: classes names a class map (landcover, forest, ground_water, "
                              "or a file of --config-dir DIR/classes/); change one class with "
                              "classes.NAME=[codes]")
    cfg = OmegaConf.to_container(compose("config", overrides, config_dir=config_dir, module=CONFIG_MODULE),
                                 resolve=True)
    for key, example in (("arms", "[real, classic]"), ("fractions", "[0.05, 0.2]"), ("seeds", "[0, 1, 2]")):
        if not isinstance(cfg[key], list):  # a scalar would be read item by item (a string letter by letter)
            raise ConfigError(f"{key} must be a list, e.g. {key}={example}, got {cfg[key]!r}")
    if not cfg["arms"]:
        raise ConfigError("arms is empty: give at least one (e.g. [real, classic])")
    for arm in cfg["arms"]:
        arm_parts(arm)
    if not cfg["fractions"] or not all(isinstance(f, (int, float)) and 0 < f <= 1 for f in cfg["fractions"]):
        raise ConfigError(f"fractions must be budgets in (0, 1], got {cfg['fractions']}")
    if not cfg["seeds"]:
        raise ConfigError("seeds is empty: give at least one")
    for value in cfg["seeds"]:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
            raise ConfigError(f"seeds must be integers 0..{MAX_SEED}, got {value!r}")
    for key in ("seeds", "fractions", "arms"):  # a repeat would count one run twice in the mean and spread
        twice = sorted({str(v) for v in cfg[key] if cfg[key].count(v) > 1})
        if twice:
            raise ConfigError(f"{key} repeats {', '.join(twice)}: give each once, got {cfg[key]}")
    if not isinstance(cfg["classic"]["rotate"], bool):
        raise ConfigError(f"classic.rotate must be true or false, got {cfg['classic']['rotate']!r}")
    checks = {"tile_size": float_range(0.0, 10_000.0, low_open=True), "jitter_sigma": float_range(0.0, 100.0),
              "gap_fraction": float_range(0.0, 0.95, low_open=True), "min_labelled": float_range(0.0, 1.0),
              "points": int_range(16, 1_000_000), "synthetic_per_tile": int_range(1, 100),
              "ground_points": int_range(64, 10_000_000), "train.max_steps": int_range(1, 10_000_000),
              "train.class_balance": float_range(0.0, 2.0),
              "train.batch_size": int_range(1, 4096), "train.test_batch_size": int_range(1, 4096),
              "classifier.lr": float_range(0.0, 1.0, low_open=True),
              "classifier.weight_decay": float_range(0.0, 1.0),
              "classifier.scale": numbers(float_range(0.0, 1e6, low_open=True), 3),
              "classic.scale": numbers(float_range(0.0, 10.0, low_open=True), 2, ascending=True),
              "classic.jitter": float_range(0.0, 100.0), "classic.drop": unit_fraction}
    for key, parse in checks.items():
        node, _, leaf = key.rpartition(".")
        where = cfg[node] if node else cfg
        try:
            where[leaf] = parse(where[leaf] if isinstance(where[leaf], list) else str(where[leaf]))
        except argparse.ArgumentTypeError as exc:
            raise ConfigError(f"{key} {exc}") from None
    return cfg


def numbers(parse, length: int, ascending: bool = False):
    """A check of a list setting: ``length`` values, each through ``parse`` (an argparse type of
    :mod:`pcgen.options`), in ascending order when ``ascending`` (a ``[low, high]`` range)."""

    def check(value):
        if not isinstance(value, list) or len(value) != length:
            raise argparse.ArgumentTypeError(f"wants a list of {length} numbers, got {value}")
        out = [parse(str(v)) for v in value]
        if ascending and out != sorted(out):
            raise argparse.ArgumentTypeError(f"must be [low, high] with low <= high, got {value}")
        return out

    return check


def check_split(train_paths: Sequence, test_paths: Sequence) -> None:
    """Refuse a held-out site that is also a training site (by file or dataset name)."""
    both = sorted({site_name(p) for p in train_paths} & {site_name(p) for p in test_paths})
    if both:
        raise InputError(f"held-out site(s) {', '.join(both)} are also training sites: hold out whole sites")


def nested_budgets(n_tiles: int, fractions: Sequence[float], seed: int) -> dict[float, np.ndarray]:
    """{fraction: indices} of the scarce sets of one seed; smaller budgets are prefixes of larger ones."""
    order = np.random.default_rng([seed, 7]).permutation(n_tiles)
    return {f: order[:max(1, int(round(f * n_tiles)))] for f in fractions}


def train_and_score(points, labels, augment, cfg: dict, num_classes: int, seed: int, test_loader,
                    progress: bool = False) -> np.ndarray:
    """Train the configured classifier on the tiles; return its (C, C) confusion on the test loader."""
    import lightning as L
    import torch
    from hydra.utils import instantiate

    from pcgen.train.segmentation import TileSet, balanced_weights, tile_loader

    torch.manual_seed(seed)
    weights = balanced_weights(labels, num_classes, cfg["train"]["class_balance"])
    model = instantiate(cfg["classifier"])(num_classes=num_classes, class_weights=weights.tolist())
    data = tile_loader(TileSet(points, labels, augment, seed), cfg["train"]["batch_size"], seed)
    trainer = L.Trainer(max_steps=cfg["train"]["max_steps"], accelerator="cpu", devices=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=progress, enable_model_summary=False,
                        deterministic=True)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*isinstance.*LeafSpec.*")
        trainer.fit(model, data)
    return model.confusion(test_loader)


def synthetic_distances(made: dict, real: Sequence, test: Sequence, frame) -> dict:
    """MMD/COV/1-NNA (Chamfer) and JSD in metres of each arm's synthetic tiles against the held-out tiles.

    The real tiles they were made from are scored the same way: an arm whose 1-NNA is not above
    theirs makes tiles no more distinguishable from unseen sites than the real ones are.
    """
    import torch

    from pcgen.metrics.suite import evaluate_sets

    ref = torch.from_numpy(np.stack([t.points for t in test]))
    sets = {"real": [t.points for t in real]}
    sets.update({arm: [p for tiles in by_tile.values() for p, _ in tiles] for arm, by_tile in made.items()})
    out = {}
    for arm, clouds in sets.items():
        if len(clouds) < 2:
            continue
        res = evaluate_sets(torch.from_numpy(np.stack(clouds)), ref, metrics=("chamfer",), normalize="none",
                            jsd_bounds=frame.bounds())
        out[arm] = {"tiles": len(clouds), "1nna": res["chamfer"]["1nna"], "mmd": res["chamfer"]["mmd"],
                    "cov": res["chamfer"]["cov"], "jsd": res["jsd"]}
    return out


def run_benchmark(cfg: dict, train_paths: Sequence, test_paths: Sequence, progress: bool = False) -> dict:
    """Every (budget, seed, arm) run; returns the report document (see :mod:`pcgen.tasks.downstream_report`)."""
    from hydra.utils import instantiate

    from pcgen.metrics.frame import MetricFrame
    from pcgen.tasks import synthetic_arms as syn
    from pcgen.tasks.labelled_tiles import ClassMap, class_counts, labelled_share, site_tiles
    from pcgen.train.segmentation import TileSet, iou, iou_ceiling, tile_loader

    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    check_split(train_paths, test_paths)
    class_map = ClassMap.from_mapping(cfg["classes"])
    frame = MetricFrame(tile_size=cfg["tile_size"], points=cfg["points"])
    rng = np.random.default_rng(0)
    sources = {arm_parts(a)[0] for a in cfg["arms"]}
    keep = bool(sources & {"hybrid", "pcgen"})
    t0 = time.perf_counter()
    train = [t for p in train_paths for t in labelled_share(
        site_tiles(p, frame, class_map, rng, cfg["ground_points"], keep_cloud=keep), cfg["min_labelled"])]
    test = [t for p in test_paths for t in labelled_share(
        site_tiles(p, frame, class_map, rng, cfg["ground_points"]), cfg["min_labelled"])]
    if not test:
        raise InputError(f"no held-out tile of {cfg['tile_size']:g} m has {cfg['min_labelled']:.0%} of its "
                         "points in a mapped class: the downstream test needs labelled held-out tiles")
    if not train:
        raise InputError("no training tile has enough labelled points")
    C = len(class_map.names)
    class_map.check_present(class_counts(train, C), "the training files")
    test_counts = class_counts(test, C)
    scored = np.nonzero(test_counts > 0)[0]
    test_loader = tile_loader(TileSet([t.points for t in test], [t.labels for t in test]),
                              cfg["train"]["test_batch_size"], 0, train=False)
    classic = instantiate(cfg["classic"])
    classic = type(classic)(**{**classic.__dict__, "scale": tuple(classic.scale)})
    generators = {}
    if "pcgen" in sources:
        from pcgen.tasks.generators import load_generator
        generators["pcgen"] = load_generator(cfg["ckpt"], threads=None)  # the classifiers train after
    if "hybrid" in sources:  # the gap model's own starting point, without the model
        from pcgen.tasks.baselines import HybridFill
        # drawn from each spot's nearest side, as the gap model's start is
        generators["hybrid"] = HybridFill()
    runs, gen_seconds, distances = [], {name: [] for name in generators}, {}
    prep_s = time.perf_counter() - t0
    for seed in cfg["seeds"]:
        budgets = nested_budgets(len(train), cfg["fractions"], seed)
        largest = budgets[max(budgets)]
        made: dict[str, dict[int, list]] = {}  # arm -> real tile index -> its synthetic tiles
        for arm in ("jitter", "hybrid", "pcgen"):
            if arm in sources:
                arm_rng = np.random.default_rng([seed, SOURCES.index(arm)])
                made[arm] = {}
                for i in largest:
                    if arm == "jitter":
                        made[arm][i] = syn.jitter_tiles([train[i]], cfg["synthetic_per_tile"], cfg["jitter_sigma"],
                                                        arm_rng)
                    else:
                        tiles, secs = syn.reimagined_tiles([train[i]], cfg["synthetic_per_tile"], class_map,
                                                           frame, generators[arm], cfg["gap_fraction"], arm_rng)
                        made[arm][i] = tiles
                        gen_seconds[arm].append(secs)
        if seed == cfg["seeds"][0] and made:
            distances = synthetic_distances(made, [train[i] for i in largest], test, frame)
        for fraction, index in sorted(budgets.items()):
            real = [train[i] for i in index]
            gmm = None
            for arm in cfg["arms"]:
                source, with_classic = arm_parts(arm)
                extra: list = []
                if source in made:
                    extra = [t for i in index for t in made[source][i]]
                elif source == "gmm":
                    if gmm is None:
                        gmm = syn.gmm_tiles(real, cfg["synthetic_per_tile"], np.random.default_rng([seed, 2]), seed)
                    extra = gmm
                pts = [t.points for t in real] + [p for p, _ in extra]
                lab = [t.labels for t in real] + [lab for _, lab in extra]
                start = time.perf_counter()
                conf = train_and_score(pts, lab, classic if with_classic else None, cfg, C, seed,
                                       test_loader, progress)
                scores = iou(conf)
                shown = np.unique(np.concatenate([np.asarray(v) for v in lab]))
                shown = shown[shown >= 0]
                runs.append({"fraction": fraction, "seed": seed, "arm": arm, "real_tiles": len(real),
                             "synthetic_tiles": len(extra), "miou": float(np.nanmean(scores[scored])),
                             "ceiling": iou_ceiling(test_counts, shown),
                             "untrained": [class_map.names[c] for c in scored if c not in shown],
                             "iou": {class_map.names[c]: (None if np.isnan(scores[c]) else float(scores[c]))
                                     for c in range(C)},
                             "train_seconds": round(time.perf_counter() - start, 2)})
                print(f"[{time.perf_counter() - t0:6.0f} s] budget {fraction:.0%} seed {seed} {arm}: "
                      f"mIoU {100 * runs[-1]['miou']:.1f}", file=sys.stderr, flush=True)
    sites = lambda tiles: sorted({t.site for t in tiles})  # noqa: E731
    return {"classes": dict(zip(class_map.names, map(list, class_map.codes))),
            "scored_classes": [class_map.names[c] for c in scored],
            "train_sites": sites(train), "heldout_sites": sites(test),
            "train_tiles": len(train), "test_tiles": len(test),
            "test_points_per_class": dict(zip(class_map.names, test_counts.tolist())),
            "settings": {k: cfg[k] for k in ("fractions", "seeds", "arms", "tile_size", "points",
                                             "synthetic_per_tile", "jitter_sigma", "gap_fraction", "train",
                                             "classic", "classifier", "ckpt")},
            "seconds_per_tile": {k: float(np.mean(v)) for k, v in gen_seconds.items() if v},
            "prepare_seconds": round(prep_s, 1), "synthetic_distances": distances, "runs": runs}
