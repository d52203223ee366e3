"""pcgen's Hydra config tree, shipped inside the package, and the one function that composes it.

Hydra finds the tree as ``pkg://pcgen.conf`` (``initialize_config_module("pcgen.conf")``), so an
installed wheel trains, fills and runs the image track without a checkout. A user's own config
folder joins the search path: ``hydra.searchpath=[file://DIR]`` for ``pcgen train``,
``config_dir=DIR`` here and ``--config-dir DIR`` on the other commands. Its files add options
beside the packaged ones (``DIR/experiment/mine.yaml`` is ``experiment=mine``); a folder that
holds the composed config itself (``DIR/config.yaml``) is searched first instead.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

__all__ = ["CONFIG_MODULE", "user_config_dir", "compose"]

CONFIG_MODULE = "pcgen.conf"


def user_config_dir(config_dir: str | os.PathLike) -> Path:
    """The absolute path of a user's config folder.

    Raises:
        ConfigError: the folder does not exist.
    """
    from pcgen.errors import ConfigError

    path = Path(os.path.expanduser(str(config_dir))).resolve()
    if not path.is_dir():
        raise ConfigError("config folder not found", path)
    return path


def _quote(path: Path) -> str:
    """A path inside a single-quoted Hydra override value."""
    return str(path).replace("\\", "\\\\").replace("'", "\\'")


def compose(config_name: str, overrides: Sequence[str] = (),
            config_dir: str | os.PathLike | None = None, module: str = CONFIG_MODULE):
    """Compose ``config_name`` (e.g. ``"config"``, ``"task/fill"``) with Hydra-style overrides.

    Args:
        config_name: a config of the packaged tree (or of ``config_dir``), without ``.yaml``.
        overrides: ``key=value``, ``group=option``, ``+new_key=value`` as on Hydra's command line.
        config_dir: a user's config folder. When it holds ``config_name`` it is searched first
            (its files replace packaged ones of the same name); otherwise it adds group options.
        module: the packaged root: ``pcgen.conf``, or a sub-tree whose keys would clash with
            its config groups (``pcgen.conf.evaluate``).
    Returns:
        The composed ``DictConfig`` (struct mode: unknown keys are errors).
    Raises:
        ConfigError: unknown config, group option or key; malformed override.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir, initialize_config_module
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from pcgen.errors import ConfigError

    args = list(overrides)
    user = user_config_dir(config_dir) if config_dir is not None else None
    if user is not None and (user / f"{config_name}.yaml").is_file():
        # Hydra looks a primary config up in the initial folder only, and earlier folders win:
        # the user's folder holding the primary config comes first, the packaged tree after it.
        init = initialize_config_dir(str(user), version_base="1.3")
        args.append(f"hydra.searchpath=[pkg://{module}]")
    else:
        init = initialize_config_module(module, version_base="1.3")
        if user is not None:  # the user's folder adds group options (new names) to the tree
            args.append(f"hydra.searchpath=['file://{_quote(user)}']")
    try:
        with init:
            cfg = hydra_compose(config_name, overrides=args)
    except (HydraException, OmegaConfBaseException) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"config {config_name!r}: {first}") from None
    return _unnest(cfg, config_name)


def _unnest(cfg, config_name: str):
    """A config picked from a group (``image/tiny``) keeps its keys at the root.

    Hydra nests a primary config found in a sub-folder under that folder's name unless the file
    says ``# @package _global_``; the packaged files say so, a user's may not.
    """
    from omegaconf import OmegaConf

    node = cfg
    for part in config_name.split("/")[:-1]:
        if list(node.keys()) != [part]:
            return cfg
        node = node[part]
    if node is cfg:
        return cfg
    out = OmegaConf.create(OmegaConf.to_container(node, resolve=False))
    OmegaConf.set_struct(out, True)
    return out
