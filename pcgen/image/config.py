"""Image-track presets (``pcgen/conf/image/*.yaml``) and the builders that turn them into models.

A preset has sections ``data``, ``autoencoder`` (``AutoencoderKL`` kwargs), ``autoencoder_train``,
``unet`` (``_target_`` diffusers U-Net + kwargs), ``cosplace`` (or ``null`` for unconditional),
``diffusion`` (the LDM recipe), ``trainer`` and ``sampling``. The U-Net's ``sample_size`` and
``cross_attention_dim`` are derived here from the image size and CosPlace dimension so they cannot
disagree.
"""

from __future__ import annotations

import os
from pathlib import Path

from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from pcgen.errors import CheckpointError, ConfigError
from pcgen.image.autoencoder import build_autoencoder, downsampling_factor
from pcgen.image.checkpoint import load_state_strict, read_checkpoint
from pcgen.image.cosplace import CosPlace, load_cosplace
from pcgen.image.ldm import LatentDiffusion

__all__ = ["preset_names", "load_preset", "to_plain", "build_unet", "build_cosplace",
           "build_ldm", "load_ldm"]



def preset_names() -> list[str]:
    """The packaged presets (``pcgen/conf/image/*.yaml``)."""
    from importlib.resources import files

    return sorted(p.name[:-5] for p in files("pcgen.conf").joinpath("image").iterdir()
                  if p.name.endswith(".yaml"))


def load_preset(name: str | os.PathLike = "tiny", overrides: list[str] | None = None,
                config_dir: str | os.PathLike | None = None) -> DictConfig:
    """Compose preset ``image/<name>`` (or a yaml path) with Hydra-style ``key=value`` overrides.

    Args:
        name: a packaged preset name, one in ``config_dir/image/``, or the path of a yaml file.
        overrides: e.g. ``["data.image_size=64"]``.
        config_dir: a user's config folder searched before the packaged tree.
    Raises:
        ConfigError: unknown preset, malformed override or unknown key.
    """
    from pcgen.conf import compose

    path = Path(name)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise ConfigError("preset file not found", path)
        config_dir, config_name = path.resolve().parent, path.stem
    else:
        config_name = f"image/{name}"
        known = set(preset_names())
        if config_dir is not None:
            known |= {p.stem for p in Path(config_dir).glob("image/*.yaml")}
        if str(name) not in known:
            raise ConfigError(f"unknown image preset {str(name)!r}; choose one of {sorted(known)} or a yaml file")
    bad = [o for o in overrides or [] if "=" not in o]
    if bad:
        raise ConfigError(f"overrides must look like key=value, got {bad}")
    cfg = compose(config_name, list(overrides or []), config_dir=config_dir)
    OmegaConf.set_struct(cfg, False)  # builders and the trainer read optional keys with .get
    check_preset(cfg)
    return cfg


# dotted key -> (lowest, open?, highest, integer): checked when a preset is composed, so a bad
# --set value is one line before the autoencoder trains, not a traceback an hour later
_RULES = {
    "data.image_size": (8, False, 4096, True),
    "data.batch_size": (1, False, 100_000, True),
    "data.num_workers": (0, False, 1024, True),
    "autoencoder_train.base_lr": (0.0, True, 1.0, False),
    "autoencoder_train.batch_size": (1, False, 100_000, True),
    "autoencoder_train.kl_weight": (0.0, False, 1e6, False),
    "autoencoder_train.warmup_steps": (0, False, 10 ** 9, True),
    "diffusion.timesteps": (2, False, 100_000, True),
    "diffusion.cond_drop_prob": (0.0, False, 1.0, False),
    "diffusion.base_lr": (0.0, True, 1.0, False),
    "diffusion.warmup_steps": (0, False, 10 ** 9, True),
    "diffusion.ema_decay": (0.0, False, 1.0, False),
    "trainer.accumulate_grad_batches": (1, False, 100_000, True),
    "trainer.autoencoder_steps": (1, False, 10 ** 9, True),  # 0 would write an untrained model
    "trainer.ldm_steps": (1, False, 10 ** 9, True),
    "sampling.steps": (1, False, 100_000, True),
    "cosplace.image_size": (32, False, 4096, True),  # ResNet and VGG downsample 32x
    "autoencoder.layers_per_block": (1, False, 64, True),
    "autoencoder.norm_num_groups": (1, False, 4096, True),
    "unet.layers_per_block": (1, False, 64, True),
    "unet.norm_num_groups": (1, False, 4096, True),
}
# sections every preset composes; a yaml file given as --preset must bring or inherit them
_SECTIONS = ("data", "autoencoder", "autoencoder_train", "unet", "diffusion", "trainer", "sampling")


def check_preset(cfg) -> None:
    """Raise ``ConfigError`` naming the first bad value of a composed preset."""
    from pcgen.options import check_range

    missing = [k for k in _SECTIONS if not OmegaConf.is_dict(cfg.get(k))]
    if missing:
        raise ConfigError(f"the preset has no {', '.join(missing)} section; start a preset file from a "
                          f"packaged one (defaults: [/image/tiny, _self_]), one of {preset_names()}")
    for key, (low, open_low, high, integer) in _RULES.items():
        value = OmegaConf.select(cfg, key, default=None)
        if value is not None:
            check_range(key, value, low, high, open_low=open_low, integer=integer)
    for net in ("autoencoder", "unet"):  # group norm splits every block's channels into groups
        groups = cfg[net].get("norm_num_groups")
        odd = [c for c in cfg[net].get("block_out_channels") or [] if groups and c % groups]
        if odd:
            raise ConfigError(f"{net}.block_out_channels {list(cfg[net].block_out_channels)} must all be "
                              f"multiples of {net}.norm_num_groups ({groups}); {odd[0]} is not")
    factor = 2 ** (len(cfg.autoencoder.block_out_channels) - 1)
    if cfg.data.image_size % factor:
        raise ConfigError(f"data.image_size must be a multiple of {factor} (the autoencoder's "
                          f"downsampling), got {cfg.data.image_size}")
    ckpt = (cfg.get("cosplace") or {}).get("checkpoint")
    if ckpt and not Path(ckpt).is_file():
        raise ConfigError("CosPlace checkpoint not found", ckpt)


def to_plain(section) -> dict:
    """A config section as a plain (resolved) dict."""
    return OmegaConf.to_container(section, resolve=True) if isinstance(section, DictConfig) else dict(section)


def build_cosplace(cfg) -> CosPlace | None:
    """The preset's CosPlace: from ``cosplace.checkpoint`` when set, else randomly initialised."""
    section = cfg.get("cosplace")
    if section is None:
        return None
    ckpt = section.get("checkpoint")
    if ckpt:
        return load_cosplace(ckpt, section.backbone, section.fc_output_dim, section.get("image_size", 512))
    return CosPlace(section.backbone, section.fc_output_dim, section.get("image_size", 512)).freeze()


def build_unet(cfg):
    """The preset's denoiser with ``sample_size`` = latent side and ``cross_attention_dim`` = D."""
    kwargs = to_plain(cfg.unet)
    target = kwargs.pop("_target_")
    latent = cfg.data.image_size // 2 ** (len(cfg.autoencoder.block_out_channels) - 1)
    kwargs["sample_size"] = latent
    kwargs["in_channels"] = kwargs["out_channels"] = cfg.autoencoder.latent_channels
    if cfg.get("cosplace") is not None:
        kwargs["cross_attention_dim"] = cfg.cosplace.fc_output_dim
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    try:
        return get_class(target)(**kwargs)
    except Exception as exc:
        raise ConfigError(f"cannot build unet {target}: {exc}") from None


def build_ldm(cfg, autoencoder=None, cosplace=None) -> LatentDiffusion:
    """Build the LDM of a preset; ``autoencoder``/``cosplace`` default to fresh ones from ``cfg``."""
    ae_cfg = {k: v for k, v in to_plain(cfg.autoencoder).items() if not k.startswith("_")}
    vae = autoencoder if autoencoder is not None else build_autoencoder(**ae_cfg)
    if cfg.data.image_size % downsampling_factor(vae):
        raise ConfigError(f"image_size {cfg.data.image_size} is not a multiple of {downsampling_factor(vae)}")
    if cosplace is None:
        cosplace = build_cosplace(cfg)
    d = to_plain(cfg.diffusion)
    return LatentDiffusion(vae, build_unet(cfg), cosplace, batch_size=cfg.data.batch_size,
                           config=to_plain(cfg), **d)


def load_ldm(path: str | os.PathLike) -> LatentDiffusion:
    """Rebuild an LDM from a checkpoint written by ``pcgen image train`` (config + all weights).

    Raises:
        CheckpointError: unreadable, not an LDM checkpoint, or keys of another architecture (named).
    """
    ckpt = read_checkpoint(path)
    meta = ckpt.get("pcgen_image") if isinstance(ckpt, dict) else None
    if not meta or meta.get("kind") != "ldm" or "state_dict" not in ckpt:
        kind = meta.get("kind") if meta else "unknown"
        raise CheckpointError(f"not a pcgen image LDM checkpoint (kind: {kind})", path)
    cfg = OmegaConf.create(meta["config"])
    if cfg.get("cosplace") is not None:
        cfg.cosplace.checkpoint = None  # the CosPlace weights come from this file
    try:
        model = build_ldm(cfg)
    except ConfigError as exc:
        raise CheckpointError(f"its config does not build: {exc.message}", path) from None
    load_state_strict(model, ckpt["state_dict"], "pcgen image LDM", path)
    return model.eval()
