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

from pcgen.errors import CheckpointError, ConfigError, InputError
from pcgen.options import MAX_SEED
from pcgen.models.gap_head import GAP_KINDS
from pcgen.train.datamodule import TileDataModule, known_keys
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


def _global_only_resolver(node: Any) -> DictConfig:
    """``${pcgen.global_only:${encoder}}``: an encoder for a head that reads only its global
    feature (VAE, GAN discriminator), built without the per-point head (``point_channels: []``)
    whose weights would get no gradient (and make DDP stop on unused parameters)."""
    out = OmegaConf.merge(OmegaConf.create({}), node)
    if "point_channels" in out:
        out.point_channels = []
    return out


def _add_resolver(*values: Any) -> Any:
    """``${pcgen.add:${model.latent_dim},${model.cond_dim}}``: decoder input sizes."""
    return sum(values)


def register_resolvers() -> None:
    """Register pcgen's OmegaConf resolvers (idempotent)."""
    if not OmegaConf.has_resolver("pcgen.merge"):
        OmegaConf.register_new_resolver("pcgen.merge", _merge_resolver)
    if not OmegaConf.has_resolver("pcgen.global_only"):
        OmegaConf.register_new_resolver("pcgen.global_only", _global_only_resolver)
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
MAX_STEPS = 1_000_000_000  # steps or epochs: more is a typo (and past what Lightning's counters hold)
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
    "trainer.val_check_interval": (_POSITIVE, False),
    "model.generator_every": (_POSITIVE, True),
    "callbacks.samples.num_samples": (_POSITIVE, True),
    "callbacks.samples.every_n_steps": (_NON_NEGATIVE, True),
    "model.scheduler.eta_min": (_NON_NEGATIVE, False),
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
            integer where one is needed, not finite, or out of range; a malformed
            ``trainer.max_time``; an unknown ``trainer.gradient_clip_algorithm``; gradient
            accumulation for a two-player (GAN) head.
        CheckpointError: an l-GAN autoencoder checkpoint that is unreadable or has another
            latent size (:func:`check_autoencoder`).
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
        if rule == _STEPS and value != -1 and not 1 <= value <= MAX_STEPS:
            raise ConfigError(f"{key} must be -1 (no limit) or 1..{MAX_STEPS}, got {value!r}")
    _check_max_time(OmegaConf.select(cfg, "trainer.max_time", default=None))
    ema = OmegaConf.select(cfg, "model.ema_decay", default=None)
    if ema is not None and (isinstance(ema, bool) or not isinstance(ema, (int, float))
                            or not (math.isfinite(ema) and 0 <= ema < 1)):
        raise ConfigError(f"model.ema_decay must be in [0, 1) (0 or null: no average), got {ema!r}")
    limits = [OmegaConf.select(cfg, f"trainer.{key}", default=None) for key in ("max_steps", "max_epochs", "max_time")]
    if limits[0] == -1 and limits[1] == -1 and limits[2] is None:
        raise ConfigError("trainer.max_steps=-1 and trainer.max_epochs=-1 with no trainer.max_time: the run "
                          "would never stop; give one of them a limit")
    algorithm = OmegaConf.select(cfg, "trainer.gradient_clip_algorithm", default=None)
    if algorithm is not None and str(algorithm).lower() not in CLIP_ALGORITHMS:
        raise ConfigError(f"trainer.gradient_clip_algorithm must be one of {', '.join(CLIP_ALGORITHMS)}, "
                          f"got {algorithm!r}")
    kind = OmegaConf.select(cfg, "model.kind", default=None)
    accumulate = OmegaConf.select(cfg, "trainer.accumulate_grad_batches", default=1)
    if kind in TWO_PLAYER_KINDS and accumulate != 1:
        raise ConfigError(f"trainer.accumulate_grad_batches must be 1 for model.kind={kind} (two "
                          f"optimizers stepped by hand), got {accumulate!r}")
    _check_data_kind(cfg, kind)
    check_autoencoder(cfg)


GAP_DATA = "pcgen.train.gap_data.GapDataModule"


def _check_data_kind(cfg: DictConfig, kind: str | None) -> None:
    """A gap head trains on cut gap examples (``data=gap_examples``, as ``experiment=gap_fill``
    sets), every other head on tiles: a gap head on tiles failed mid-fit (``KeyError:
    'source'``), after the run folder and its logs were made.

    Raises:
        ConfigError: a head and data of different kinds.
    """
    gap_data = OmegaConf.select(cfg, "data._target_", default=None) == GAP_DATA
    if kind in GAP_KINDS and not gap_data:
        raise ConfigError(f"model={kind} trains on cut gap examples: use experiment=gap_fill "
                          "(or data=gap_examples data.caches=[...])")
    if gap_data and kind not in GAP_KINDS:
        raise ConfigError(f"data=gap_examples feeds the gap heads ({', '.join(GAP_KINDS)}), "
                          f"not model.kind={kind}")
    conditional = bool(OmegaConf.select(cfg, "data.conditional", default=False))
    encoder = OmegaConf.select(cfg, "model.head.context_encoder", default=None, throw_on_missing=False)
    if conditional and not gap_data and kind not in GAP_KINDS and encoder is None:
        raise ConfigError(f"data=fill feeds each gap's context to the head, and model.kind={kind} has no "
                          "context encoder: use experiment=fill (it adds one)")


CLIP_ALGORITHMS = ("norm", "value")  # Lightning's gradient_clip_algorithm choices


def _check_max_time(value: Any) -> None:
    """``trainer.max_time``: null, or a positive ``"DD:HH:MM:SS"`` budget (Lightning's string form).

    Raises:
        ConfigError: anything else (a number, a malformed string, all zeros).
    """
    import re

    if value is None:
        return
    match = re.fullmatch(r"(\d+):(\d{1,2}):(\d{1,2}):(\d{1,2})", value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ConfigError(f'trainer.max_time must be "DD:HH:MM:SS" or null, got {value!r}')
    days, hours, minutes, seconds = (int(g) for g in match.groups())
    if hours > 23 or minutes > 59 or seconds > 59:
        raise ConfigError(f'trainer.max_time must be "DD:HH:MM:SS" (hours < 24, minutes and '
                          f'seconds < 60), got {value!r}')
    if days == hours == minutes == seconds == 0:
        raise ConfigError(f"trainer.max_time must be longer than zero, got {value!r}")


def run_inputs(cfg: DictConfig) -> list[Path]:
    """The paths a run reads that its run folder must stay clear of: ``data.tile_dir``, the
    source files of ``data.files`` (every shared file when neither is set) and the folders or
    indexes it names, the gap example ``data.caches`` and the l-GAN's ``model.autoencoder_ckpt``.
    A resume checkpoint is not one: it normally lies in the run folder.

    Raises:
        InputError: a ``data.files`` entry or a cache that does not exist.
    """
    from pcgen.train.datamodule import resolve_sources

    data = cfg.data
    out: list[Path] = []
    if data.get("tile_dir"):
        out.append(Path(os.path.expanduser(str(data.tile_dir))))
        if not out[-1].is_dir():
            raise InputError("tile folder not found (data.tile_dir)", out[-1])
    elif "_target_" not in data:
        files = data.get("files")
        out += resolve_sources(files)
        named = [files] if isinstance(files, str) else list(files or [])
        out += [Path(os.path.expanduser(str(f))) for f in named if os.sep in str(f)]  # a folder, an index
    elif OmegaConf.select(cfg, "data.caches", default=None, throw_on_missing=False):
        from pcgen.train.gap_data import check_caches

        out += check_caches([os.path.expanduser(str(c)) for c in
                             ([data.caches] if isinstance(data.caches, str) else data.caches)])
    ckpt = OmegaConf.select(cfg, "model.autoencoder_ckpt", default=None, throw_on_missing=False)
    if ckpt and ckpt != "???":
        out.append(Path(os.path.expanduser(str(ckpt))))
    return out


def check_run_dir(cfg: DictConfig, run_dir: str | os.PathLike) -> Path:
    """Refuse a run folder that is, holds or lies inside one of the run's inputs
    (:func:`run_inputs`) before anything is written there; an existing folder is fine (resume).

    Raises:
        OutputError: the run folder overlaps an input.
    """
    from pcgen.outputs import check_output

    return check_output(run_dir, run_inputs(cfg), folder=True, overwrite=True)


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
                         generator_every=model.get("generator_every", 1), gradient_clip_val=clip,
                         gradient_clip_algorithm=cfg.trainer.get("gradient_clip_algorithm") or "norm",
                         **common)
    return HeadModule(head, loss, **common)


def check_autoencoder(cfg: DictConfig) -> None:
    """An l-GAN's ``model.autoencoder_ckpt`` must hold a latent of size ``model.latent_dim``.

    Raises:
        CheckpointError: unreadable checkpoint, or another latent size (both sizes named).
    """
    path = OmegaConf.select(cfg, "model.autoencoder_ckpt", default=None, throw_on_missing=False)
    wanted = OmegaConf.select(cfg, "model.latent_dim", default=None)
    if not path or wanted is None:
        return
    from pcgen.train.checkpoint import read_checkpoint

    path = Path(os.path.expanduser(str(path)))
    head = read_checkpoint(path)["hyper_parameters"]["head"]
    saved = head.get("latent_dim") if isinstance(head, dict) else None
    if saved is not None and saved != wanted:
        raise CheckpointError(f"model.autoencoder_ckpt has latent size {saved} but model.latent_dim="
                              f"{wanted}: set model.latent_dim={saved}", path)


def build_datamodule(cfg: DictConfig) -> L.LightningDataModule:
    """The data module described by ``cfg.data`` (minus its preset-only keys): a ``_target_``
    names its class (the gap examples), else it is the tile data module."""
    args = OmegaConf.to_container(cfg.data, resolve=True)
    args.pop("name", None)
    if args.get("_target_") == GAP_DATA:
        from pcgen.train.gap_data import GapDataModule

        args.pop("dataset", None)  # tile sample settings (debug presets size them): not for gap examples
        target = args.pop("_target_")
        known_keys(args, GapDataModule, "data", data_first=False)
        return _instantiate({"_target_": target, **args}, "data")
    if "_target_" in args:
        return _instantiate(args, "data")
    return TileDataModule(seed=cfg.seed, **args)


def _idle_encoder_layers(cfg: DictConfig) -> bool:
    """Whether the head's encoder keeps layers its loss never reaches: VAE and GAN read only the
    global feature, and an encoder without ``point_channels`` (PointNet++: feature propagation)
    cannot leave its per-point layers out (see ``pcgen.global_only``), so DDP must allow them."""
    encoder = (OmegaConf.select(cfg, "model.head.encoder") if cfg.model.kind == "vae"
               else OmegaConf.select(cfg, "model.head.discriminator.encoder") if cfg.model.kind == "gan"
               else None)
    return isinstance(encoder, DictConfig) and "point_channels" not in encoder


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
    if args.get("strategy") == "ddp" and _idle_encoder_layers(cfg):
        from lightning.pytorch.strategies import DDPStrategy

        args["strategy"] = DDPStrategy(find_unused_parameters=True)
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


def _read_resume(resume: str | None, kind: str) -> tuple[Path | None, dict[str, Any] | None]:
    if not resume:
        return None, None
    from pcgen.train.checkpoint import read_checkpoint

    path = Path(os.path.expanduser(str(resume)))
    ckpt = read_checkpoint(path)
    saved = ckpt["hyper_parameters"]["kind"]
    if saved != kind:
        raise CheckpointError(f"resume checkpoint holds a {saved} head but model={kind}", path)
    return path, ckpt


def resolve_resume(resume: str | None, kind: str) -> str | None:
    """Check a ``resume=PATH`` before Lightning sees it, so a bad path is one clear error.

    Raises:
        CheckpointError: missing, corrupt, not from pcgen, or holding another head kind.
    """
    path, _ = _read_resume(resume, kind)
    return None if path is None else str(path)


def _config_diff(saved: Any, current: Any, prefix: str) -> list[str]:
    """Dotted keys where two plain config trees differ, in order."""
    if isinstance(saved, dict) and isinstance(current, dict):
        out = []
        for key in list(saved) + [k for k in current if k not in saved]:
            out += _config_diff(saved.get(key), current.get(key), f"{prefix}.{key}")
        return out
    return [] if saved == current else [prefix]


def _target(node: Any) -> Any:
    return node.get("_target_") if isinstance(node, dict) else node


def check_resume(path: Path, ckpt: dict[str, Any], cfg: DictConfig,
                 module: L.LightningModule | None = None) -> None:
    """Refuse a resume that cannot continue the checkpoint's run: its step already reaches
    ``trainer.max_steps``, another optimizer or scheduler class (their saved state would not
    load), or (given the ``module`` this config builds) weights that do not fit it.

    Raises:
        CheckpointError: naming the checkpoint and what differs (with the config keys).
    """
    step = int(ckpt.get("global_step", 0))
    max_steps = cfg.trainer.get("max_steps")
    if max_steps is not None and max_steps != -1 and max_steps <= step:
        raise CheckpointError(f"checkpoint is at step {step}, trainer.max_steps={max_steps} leaves nothing "
                              f"to train: set trainer.max_steps above {step}", path)
    saved_cfg = ckpt["hyper_parameters"].get("config") or {}
    saved_model = saved_cfg.get("model") or {}
    current_model = _container(cfg.model)
    for key in ("optimizer", "optimizer_d", "scheduler"):
        if key not in saved_model:
            continue  # a checkpoint from before the config was saved: Lightning's own check
        was, now = _target(saved_model.get(key)), _target(current_model.get(key))
        if was != now:
            raise CheckpointError(f"checkpoint was trained with model.{key} {was}, this run asks for "
                                  f"{now}: resume needs the same one", path)
    if module is None:
        return
    saved_state, state = ckpt["state_dict"], module.state_dict()
    problem = next((f"{k} is missing in the checkpoint" for k in state if k not in saved_state), None)
    problem = problem or next((f"{k} in the checkpoint is not in this model"
                               for k in saved_state if k not in state), None)
    problem = problem or next((f"{k} has shape {list(saved_state[k].shape)} in the checkpoint, "
                               f"{list(v.shape)} here" for k, v in state.items()
                               if tuple(saved_state[k].shape) != tuple(v.shape)), None)
    if problem:
        diff = _config_diff(ckpt["hyper_parameters"].get("head"), _container(cfg.model.head), "model.head")
        where = f"; the config differs at {', '.join(diff[:3])}" if diff else ""
        raise CheckpointError(f"checkpoint weights do not fit this model: {problem}{where}", path)


def train(cfg: DictConfig, root: str | os.PathLike | None = None) -> dict[str, Any]:
    """Fit as configured; returns final metrics and checkpoint paths.

    Args:
        cfg: the composed config (``pcgen/conf/config.yaml``).
        root: run folder for checkpoints, logs and samples (default: Hydra's output dir / cwd).
    """
    # where the run writes: the app's run folder, else the composed trainer.default_root_dir
    check_run_dir(cfg, root or OmegaConf.select(cfg, "trainer.default_root_dir", default=None,
                                                throw_on_resolution_failure=False) or os.getcwd())
    resume, ckpt = _read_resume(cfg.get("resume"), cfg.model.kind)
    if resume is not None:
        check_resume(resume, ckpt, cfg)  # step and optimizer: before anything is built
    module, datamodule, trainer = build(cfg, root)
    if resume is not None:
        check_resume(resume, ckpt, cfg, module)
    datamodule.setup("fit")  # data refused (no tiles, a bad cache) before the loggers write a thing
    trainer.fit(module, datamodule=datamodule, ckpt_path=None if resume is None else str(resume))
    result: dict[str, Any] = {k: float(v) for k, v in trainer.callback_metrics.items()}
    for cb in trainer.checkpoint_callbacks:
        if getattr(cb, "last_model_path", ""):
            result["last_checkpoint"] = cb.last_model_path
        if getattr(cb, "monitor", None) and cb.best_model_path:
            result["best_checkpoint"] = cb.best_model_path
    result["global_step"] = trainer.global_step
    return result
