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
        ConfigError: the folder does not exist or holds no YAML file (a mistyped folder would
            otherwise run the packaged config without a word).
    """
    from pcgen.errors import ConfigError

    path = Path(os.path.expanduser(str(config_dir))).resolve()
    if not path.is_dir():
        raise ConfigError("config folder not found", path)
    if next(path.rglob("*.yaml"), None) is None:
        raise ConfigError("config folder holds no .yaml file", path)
    return path


def _quote(path: Path) -> str:
    """A path inside a single-quoted Hydra override value."""
    return str(path).replace("\\", "\\\\").replace("'", "\\'")


def compose(config_name: str, overrides: Sequence[str] = (),
            config_dir: str | os.PathLike | None = None, module: str = CONFIG_MODULE,
            overlay: str | os.PathLike | None = None):
    """Compose ``config_name`` (e.g. ``"config"``, ``"task/fill"``) with Hydra-style overrides.

    Args:
        config_name: a config of the packaged tree (or of ``config_dir``), without ``.yaml``.
        overrides: ``key=value``, ``group=option``, ``+new_key=value`` as on Hydra's command line.
        config_dir: a user's config folder. When it holds ``config_name`` it is searched first
            (its files replace packaged ones of the same name); otherwise it adds group options.
        module: the packaged root: ``pcgen.conf``, or a sub-tree whose keys would clash with
            its config groups (``pcgen.conf.evaluate``).
        overlay: a user's yaml file merged over ``config_name`` before the overrides, so it may
            set only some keys (``pcgen fill --config my.yaml``).
    Returns:
        The composed ``DictConfig`` (struct mode: unknown keys are errors).
    Raises:
        ConfigError: unknown config, group option or key; malformed override; missing file.
    """
    import contextlib
    import tempfile

    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir, initialize_config_module
    import yaml
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from pcgen.errors import ConfigError

    args, search = list(overrides), []
    user = user_config_dir(config_dir) if config_dir is not None else None
    name = config_name
    try:
        with contextlib.ExitStack() as stack:
            if overlay is not None:
                # The file becomes the primary config, its defaults list starting from
                # config_name, so its own values land over the packaged ones.
                tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pcgen-conf-")))
                _write_overlay(Path(overlay), config_name, tmp / "overlay.yaml")
                stack.enter_context(initialize_config_dir(str(tmp), version_base="1.3"))
                search = [f"pkg://{module}"] if user is None else [f"'file://{_quote(user)}'", f"pkg://{module}"]
                name = "overlay"
            elif user is not None and (user / f"{config_name}.yaml").is_file():
                # Hydra looks a primary config up in the initial folder only, and earlier folders
                # win: the user's folder holding it comes first, the packaged tree after it.
                stack.enter_context(initialize_config_dir(str(user), version_base="1.3"))
                search = [f"pkg://{module}"]
            else:
                stack.enter_context(initialize_config_module(module, version_base="1.3"))
                if user is not None:  # the user's folder adds group options (new names)
                    search = [f"'file://{_quote(user)}'"]
            if search:
                args.append(f"hydra.searchpath=[{','.join(search)}]")
            cfg = hydra_compose(name, overrides=args)
    except (HydraException, OmegaConfBaseException, ValueError) as exc:  # ValueError: `--set =1`
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        where = f"{overlay} over {config_name!r}" if overlay is not None else repr(config_name)
        bad = _unparsable(overrides)
        if bad is not None:
            first = bad
        unknown = _unknown_key(first, exc.__cause__)
        if unknown is not None:  # Hydra's line named neither the missing key nor the right one
            first = _unknown_key_text(unknown, overrides, lambda rest: compose(
                config_name, rest, config_dir=config_dir, module=module, overlay=overlay))
        raise ConfigError(f"config {where}: {first}") from None
    except yaml.MarkedYAMLError as exc:  # a file of the user's config folder does not parse
        mark = exc.problem_mark or exc.context_mark
        where = f"{mark.name}, line {mark.line + 1}" if mark is not None else str(config_dir)
        raise ConfigError(f"{where}: not valid YAML ({exc.problem or exc.context})") from None
    return _unnest(cfg, config_name)


def _unparsable(overrides: Sequence[str]) -> str | None:
    """One line naming the first override that is not ``key=value`` (Hydra's own message quotes
    only a lexer state, ``no viable alternative at input '[1,2'``, or none of it)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    for override in overrides:
        try:
            parsed = parser.parse_overrides([override])[0]
        except HydraException as exc:
            why = (str(exc).strip().splitlines() or [""])[0]
            return f"override {override!r} is not key=value ({why})"
        if not parsed.key_or_group:
            return f"override {override!r} has no key (key=value)"
    return None


def _unknown_key(first: str, cause) -> str | None:
    """The override whose key is not in the config, from Hydra's "Could not override" error."""
    import re

    match = re.match(r"Could not override '([^']+)'", first)
    if match is None or "is not in struct" not in str(cause):
        return None
    return match.group(1)


def _unknown_key_text(key: str, overrides: Sequence[str], compose_rest) -> str:
    """One line for an override of a key the config lacks, naming the keys it may have meant
    (those ending in its last part, found by composing the config without it)."""
    from omegaconf import OmegaConf

    rest = [a for a in overrides if a.split("=", 1)[0].lstrip("+~") != key]
    leaf = key.rsplit(".", 1)[-1]
    try:
        paths = _key_paths(OmegaConf.to_container(compose_rest(rest), resolve=False))
    except Exception:  # noqa: BLE001 - another override is bad too: name this one alone
        paths = []
    near = [p for p in paths if p.rsplit(".", 1)[-1] == leaf][:3]
    hint = f"; did you mean {' or '.join(near)}?" if near else ""
    return f"no key {key!r} to override{hint}"


def _key_paths(node, prefix: str = "") -> list[str]:
    """Dotted paths of every leaf and branch of a plain config container."""
    out = []
    if isinstance(node, dict):
        for name, value in node.items():
            path = f"{prefix}{name}"
            out.append(path)
            out += _key_paths(value, path + ".")
    return out


def _write_overlay(path: Path, base: str, out: Path) -> None:
    """Copy a user's yaml to ``out`` with ``defaults: [/base, _self_]`` unless it has a defaults list.

    Raises:
        ConfigError: missing or unparsable file, or not a mapping.
    """
    from omegaconf import DictConfig, OmegaConf

    from pcgen.errors import ConfigError

    if not path.is_file():
        raise ConfigError("config file not found", path)
    try:
        body = OmegaConf.load(path)
    except Exception as exc:
        raise ConfigError(f"cannot read yaml: {str(exc).splitlines()[0]}", path) from None
    if not isinstance(body, DictConfig):
        raise ConfigError("expected a mapping of settings", path)
    if "defaults" not in body:
        body = OmegaConf.merge({"defaults": [f"/{base}", "_self_"]}, body)
    OmegaConf.save(body, out)


def _unnest(cfg, config_name: str):
    """A config picked from a group (``image/tiny``) keeps its own keys at the root.

    Hydra puts a primary config found in a sub-folder under that folder's name (``image:``)
    unless the file says ``# @package _global_``. The packaged files say so; a user's may not,
    so its nested keys are lifted back over the root (where its defaults list put the rest).
    """
    from omegaconf import DictConfig, OmegaConf

    parts = config_name.split("/")[:-1]
    node = cfg
    for part in parts:
        if not isinstance(node, DictConfig) or part not in node:
            return cfg
        node = node[part]
    if not parts or not isinstance(node, DictConfig):
        return cfg
    rest = OmegaConf.to_container(cfg, resolve=False)
    parent = rest
    for part in parts[:-1]:
        parent = parent[part]
    del parent[parts[-1]]
    while parts[:-1] and not parent:  # drop the folders left empty
        parts = parts[:-1]
        parent = rest
        for part in parts[:-1]:
            parent = parent[part]
        del parent[parts[-1]]
    out = OmegaConf.merge(rest, OmegaConf.to_container(node, resolve=False))
    OmegaConf.set_struct(out, True)
    return out
