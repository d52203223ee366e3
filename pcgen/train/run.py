"""Turn a composed Hydra config into a LightningModule, a data module and a Trainer, then fit.

``train.py`` is a thin Hydra entry around :func:`train`; tests and benchmarks call
:func:`build` directly with a config from ``hydra.compose``. ``_target_`` instantiation happens
here, at the edge, and nowhere below: heads get built parts, never the config.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Sequence

import lightning as L
from lightning.pytorch.callbacks import LearningRateMonitor
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from pcgen.errors import CheckpointError, ConfigError
from pcgen.options import MAX_SEED
from pcgen.models.gap_head import GAP_KINDS
from pcgen.train.datamodule import TileDataModule
from pcgen.train.module import GANModule, HeadModule

KINDS = ("vae", "gan", "diffusion", "flow_matching", *GAP_KINDS)
TWO_PLAYER_KINDS = ("gan", "gap_gan")  # trained by GANModule: loss.generator + loss.discriminator


def _merge_resolver(*nodes: Any) -> DictConfig:
    """``${pcgen.merge:${encoder},{time_dim: 128}}``: an encoder config with head-specific args."""
    # Start from an open (non-struct) node so the overrides may add keys the encoder
    # config leaves to its constructor's defaults (time_dim, cond_dim, norm).
    out = OmegaConf.create({})
    for node in nodes:
        out = OmegaConf.merge(out, node)
    return out


def _add_resolver(*values: Any) -> Any:
    """``${pcgen.add:${model.latent_dim},${model.cond_dim}}``: decoder input sizes."""
    return sum(values)


def register_resolvers() -> None:
    """Register pcgen's OmegaConf resolvers (idempotent)."""
    if not OmegaConf.has_resolver("pcgen.merge"):
        OmegaConf.register_new_resolver("pcgen.merge", _merge_resolver)
    if not OmegaConf.has_resolver("pcgen.add"):
        OmegaConf.register_new_resolver("pcgen.add", _add_resolver)


register_resolvers()


def compose_config(overrides: Sequence[str] = (), root: str | os.PathLike | None = None,
                   config_dir: str | os.PathLike | None = None) -> DictConfig:
    """Compose the packaged ``config.yaml`` outside ``train.py`` (benchmarks, scripts, notebooks).

    Args:
        overrides: Hydra command-line style overrides, e.g. ``["model=vae", "trainer.max_steps=5"]``.
        root: run folder; sets ``trainer.default_root_dir`` (which otherwise needs Hydra's
            runtime output dir).
        config_dir: a user's config folder, searched before the packaged ``pcgen/conf``.
    """
    from pcgen.conf import compose

    register_resolvers()
    args = list(overrides)
    if root is not None:
        args.append(f"trainer.default_root_dir={Path(root).resolve()}")
    return compose("config", args, config_dir=config_dir)


def _container(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node


def head_meta(cfg: DictConfig) -> dict[str, Any]:
    """What a checkpoint must carry to rebuild and use its head: kind, head config, data frame."""
    data = cfg.data
    ds = data.get("dataset", {}) or {}
    return {
        "kind": cfg.model.kind,
        "head": _container(cfg.model.head),
        "data": {
            "num_points": ds.get("num_points"),
            "normalize": ds.get("normalize"),
            "features": list(ds.get("features", []) or []),
            "conditional": bool(data.get("conditional", False)),
            "max_context": data.get("max_context"),
            "context_band": data.get("context_band"),
            "gap": _container(data.get("gap")) if data.get("gap") else None,
        },
        "config": OmegaConf.to_container(cfg, resolve=True),
    }


# Numeric settings checked before anything is built or written: dotted key -> (rule, words).
# ``None`` passes (Lightning's "no limit"); a missing key (another head or data kind) is skipped.
_POSITIVE, _NON_NEGATIVE, _STEPS, _SEED = "positive", "non-negative", "steps", "seed"
NUMERIC_RULES: dict[str, tuple[str, bool]] = {
    "seed": (_SEED, True),
    "trainer.gradient_clip_val": (_NON_NEGATIVE, False),
    "model.optimizer.lr": (_POSITIVE, False),
    "model.optimizer.weight_decay": (_NON_NEGATIVE, False),
    "model.optimizer_d.lr": (_POSITIVE, False),
    "trainer.max_steps": (_STEPS, True),
    "trainer.max_epochs": (_STEPS, True),
    "trainer.accumulate_grad_batches": (_POSITIVE, True),
    "trainer.log_every_n_steps": (_POSITIVE, True),
    "data.batch_size": (_POSITIVE, True),
    "data.num_workers": (_NON_NEGATIVE, True),
    "data.dataset.num_points": (_POSITIVE, True),
    "data.tile_options.size": (_POSITIVE, False),
    "data.tile_options.min_points": (_NON_NEGATIVE, True),
    "data.gap.context_points": (_POSITIVE, True),
    "data.gap.target_points": (_POSITIVE, True),
}


def _unset_keys(node, prefix: str = "") -> list[str]:
    """Dotted keys whose value is OmegaConf's ``???`` (required, no default), in order."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    out = []
    for key, value in items:
        path = f"{prefix}.{key}" if isinstance(node, dict) else f"{prefix}[{key}]"
        path = path.lstrip(".")
        if value == "???":
            out.append(path)
        elif isinstance(value, (dict, list)):
            out += _unset_keys(value, path)
    return [k for k in out if not k.startswith("hydra.")]


def validate_config(cfg: DictConfig) -> None:
    """Refuse nonsense numbers (``model.optimizer.lr=abc``, ``trainer.max_steps=-5``) before
    any module, data or run folder exists, so they are one line rather than a traceback from
    deep inside the optimizer or the sampler.

    Raises:
        ConfigError: a required value left unset (``???``, e.g. ``model.autoencoder_ckpt`` of
            ``model=lgan``); a value of :data:`NUMERIC_RULES` that is not a number, not an
            integer where one is needed, not finite, or out of range.
    """
    missing = _unset_keys(OmegaConf.to_container(cfg, resolve=False))
    if missing:
        raise ConfigError(f"{missing[0]} is required: set it ({missing[0]}=...)"
                          + (f"; also unset: {', '.join(missing[1:])}" if len(missing) > 1 else ""))
    for key, (rule, integer) in NUMERIC_RULES.items():
        value = OmegaConf.select(cfg, key, default=None, throw_on_missing=False)
        if value is None:
            continue
        kind = "an integer" if integer else "a number"
        ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
        if isinstance(value, bool) or not ok_type or not math.isfinite(value):
            raise ConfigError(f"{key} must be {kind}, got {value!r}")
        if rule == _POSITIVE and value <= 0:
            raise ConfigError(f"{key} must be positive, got {value!r}")
        if rule == _NON_NEGATIVE and value < 0:
            raise ConfigError(f"{key} must be >= 0, got {value!r}")
        if rule == _SEED and not 0 <= value <= MAX_SEED:
            raise ConfigError(f"{key} must be 0..{MAX_SEED}, got {value!r}")
        if rule == _STEPS and value < 0 and value != -1:
            raise ConfigError(f"{key} must be -1 (no limit) or >= 0, got {value!r}")


def _instantiate(node: Any, what: str) -> Any:
    """``hydra.utils.instantiate``, with a bad ``_target_`` or argument as one ConfigError."""
    from hydra.errors import InstantiationException

    try:
        return instantiate(node)
    except InstantiationException as exc:
        if isinstance(exc.__cause__, ConfigError):  # a pcgen class refused a value: its message names it
            raise ConfigError(exc.__cause__.message) from None
        lines = [ln for ln in str(exc).strip().splitlines() if not ln.startswith("full_key:")]
        raise ConfigError(f"cannot build {what}: {(lines or [type(exc).__name__])[-1][:200]}") from None


def build_module(cfg: DictConfig) -> L.LightningModule:
    """Instantiate the head, its weighted loss(es) and optimizer factories into a module."""
    model = cfg.model
    kind = model.get("kind")
    if kind not in KINDS:
        raise ConfigError(f"model.kind must be one of {KINDS}, got {kind!r}")
    validate_config(cfg)
    head = _instantiate(model.head, "model.head")
    two_player = kind in TWO_PLAYER_KINDS
    loss = _instantiate(cfg.loss.generator if two_player else cfg.loss.terms, "the loss")
    common = {"optimizer": _instantiate(model.optimizer, "model.optimizer"),
              "scheduler": _instantiate(model.get("scheduler"), "model.scheduler"),
              "ema_decay": model.get("ema_decay", 0.999), "meta": head_meta(cfg)}
    if two_player:
        clip = cfg.trainer.get("gradient_clip_val")
        return GANModule(head, loss, instantiate(cfg.loss.discriminator),
                         optimizer_d=instantiate(model.get("optimizer_d")),
                         generator_every=model.get("generator_every", 1),
                         gradient_clip_val=clip, **common)
    return HeadModule(head, loss, **common)


def build_datamodule(cfg: DictConfig) -> L.LightningDataModule:
    """The data module described by ``cfg.data`` (minus its preset-only keys): a ``_target_``
    names its class (the gap examples), else it is the tile data module."""
    args = OmegaConf.to_container(cfg.data, resolve=True)
    args.pop("name", None)
    if "_target_" in args:
        return instantiate(args)
    return TileDataModule(seed=cfg.seed, **args)


def build_trainer(cfg: DictConfig, root: str | os.PathLike) -> L.Trainer:
    """A Lightning Trainer from ``cfg.trainer`` with the configured callbacks and loggers."""
    args = OmegaConf.to_container(cfg.trainer, resolve=True)
    if cfg.model.kind in TWO_PLAYER_KINDS:
        # Manual optimization clips inside GANModule; Lightning rejects the Trainer argument.
        args.pop("gradient_clip_val", None)
        args.pop("gradient_clip_algorithm", None)
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values() if c is not None]
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    if not loggers:  # the LR monitor refuses to run without a logger; it has nothing to do then
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    if not cfg.data.get("val_fraction"):
        args["limit_val_batches"] = 0  # no held-out tiles: skip the validation loop entirely
    args.setdefault("default_root_dir", str(root))
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    try:
        return L.Trainer(callbacks=callbacks, logger=loggers or False, **args)
    except (MisconfigurationException, ValueError, TypeError, RuntimeError) as exc:
        # trainer.precision=foo, trainer.devices=0, trainer.accelerator=gpu without one: Lightning's words
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"trainer settings refused: {first[:200]}") from None


def build(cfg: DictConfig, root: str | os.PathLike | None = None):
    """Return ``(module, datamodule, trainer)`` for a composed config."""
    root = Path(root or cfg.get("run_dir") or os.getcwd())
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    trainer = build_trainer(cfg, root)  # first: a refused trainer setting fails before the data is read
    module = build_module(cfg)
    datamodule = build_datamodule(cfg)
    return module, datamodule, trainer


def resolve_resume(resume: str | None, kind: str) -> str | None:
    """Check a ``resume=PATH`` before Lightning sees it, so a bad path is one clear error.

    Raises:
        CheckpointError: missing, corrupt, not from pcgen, or holding another head kind.
    """
    if not resume:
        return None
    from pcgen.train.checkpoint import read_checkpoint

    path = Path(os.path.expanduser(str(resume)))
    saved = read_checkpoint(path)["hyper_parameters"]["kind"]
    if saved != kind:
        raise CheckpointError(f"resume checkpoint holds a {saved} head but model={kind}", path)
    return str(path)


def train(cfg: DictConfig, root: str | os.PathLike | None = None) -> dict[str, Any]:
    """Fit as configured; returns final metrics and checkpoint paths.

    Args:
        cfg: the composed config (``pcgen/conf/config.yaml``).
        root: run folder for checkpoints, logs and samples (default: Hydra's output dir / cwd).
    """
    resume = resolve_resume(cfg.get("resume"), cfg.model.kind)
    module, datamodule, trainer = build(cfg, root)
    trainer.fit(module, datamodule=datamodule, ckpt_path=resume)
    result: dict[str, Any] = {k: float(v) for k, v in trainer.callback_metrics.items()}
    for cb in trainer.checkpoint_callbacks:
        if getattr(cb, "last_model_path", ""):
            result["last_checkpoint"] = cb.last_model_path
        if getattr(cb, "monitor", None) and cb.best_model_path:
            result["best_checkpoint"] = cb.best_model_path
    result["global_step"] = trainer.global_step
    return result
