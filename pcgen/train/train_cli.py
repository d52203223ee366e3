"""``pcgen train`` (and ``python train.py``): the Hydra training app over the packaged configs.

Arguments are Hydra's own: overrides (``model=vae trainer.max_steps=50``), ``-m`` sweeps,
``--cfg job``, ``--help``; a user's config folder joins with ``hydra.searchpath=[file://DIR]``.
The app composes ``pkg://pcgen.conf/config.yaml`` and hands the config to
:func:`pcgen.train.run.train`. It is also runnable as a script (``python .../train_cli.py``):
Lightning's DDP launcher starts each extra rank by re-running ``sys.argv``, so ``pcgen train``
points ``sys.argv[0]`` at this file while Hydra parses the overrides.
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from pcgen.errors import PcgenError
from pcgen.train.run import register_resolvers

register_resolvers()

# Hydra owns the command line: pcgen.cli hands it the raw arguments instead of parsing them.
OWN_ARGV = True


@hydra.main(version_base="1.3", config_path="pkg://pcgen.conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    """Train one configured run; the final training loss is returned for sweepers (e.g. Optuna)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    from pcgen.train.run import train

    hydra_cfg = HydraConfig.get()
    run_dir = hydra_cfg.runtime.output_dir
    try:
        result = train(cfg, root=run_dir)
    except PcgenError as exc:
        # Raised from inside Hydra, a PcgenError would print as a traceback; stop with one line.
        _remove_if_unused(run_dir)
        if hydra_cfg.mode == RunMode.MULTIRUN:  # the sweep stops: its folder too, if empty
            _remove_if_unused(hydra_cfg.sweep.dir, ("multirun.yaml",))
        print(f"{_prog()}: error: {exc}", file=sys.stderr)
        sys.exit(2)
    loss = result.get("train/loss")
    return None if loss is None else float(loss)


def _prog() -> str:
    return "pcgen train" if sys.argv[0] == __file__ else Path(sys.argv[0]).name


# Folders on the way to this run's (or sweep's) folder that existed before Hydra made it (see
# _note_existing): a refused run removes only what it created.
_EXISTING: set[Path] = set()
MULTIRUN_FLAGS = ("-m", "--multirun")
# A sweep larger than this is checked on its first combinations only (each compose takes ~0.1 s).
MAX_CHECKED_SWEEP = 64


def _given(argv: list[str], key: str) -> str | None:
    """The last ``hydra.run.dir=``-style value on the command line, unless it interpolates."""
    given = [a.split("=", 1)[1] for a in argv if a.lstrip("+").startswith(f"{key}=")]
    return given[-1] if given and "${" not in given[-1] else None


def _planned_dirs(argv: list[str]) -> list[Path]:
    """The run folder (``hydra.run.dir=``, else the default ``outputs``) and, with ``-m``, the
    sweep folder (``hydra.sweep.dir=``, else ``multirun``), before Hydra creates them."""
    planned = [Path(_given(argv, "hydra.run.dir") or "outputs").resolve()]
    if any(a in MULTIRUN_FLAGS for a in argv):
        planned.append(Path(_given(argv, "hydra.sweep.dir") or "multirun").resolve())
    return planned


def _note_existing(argv: list[str]) -> None:
    """Remember which of the run (and sweep) folders and their parents exist before Hydra
    creates them."""
    _EXISTING.clear()
    for planned in _planned_dirs(argv):
        _EXISTING.update(p for p in (planned, *planned.parents) if p.exists())


def _remove_if_unused(run_dir: str, hydra_files: tuple[str, ...] = (".hydra", "train.log")) -> None:
    """Remove a run folder this run created that holds only what Hydra wrote on entry
    (``hydra_files``: ``.hydra/`` and the log; a sweep's ``multirun.yaml``), and its parents up
    to the working directory that this run created and left empty: a refused run leaves no
    folder, and never removes one the user had."""
    import shutil

    path, stop = Path(run_dir).resolve(), Path.cwd().resolve()
    if path in _EXISTING or not path.is_dir() \
            or any(p.name not in hydra_files for p in path.iterdir()):
        return
    shutil.rmtree(path, ignore_errors=True)
    for parent in path.parents:
        if parent in _EXISTING or parent == stop or stop not in parent.parents or any(parent.iterdir()):
            break
        parent.rmdir()


def _group_options(group: str, argv: list[str]) -> list[str]:
    """The options of a config group as Hydra's sweeper sees them (the packaged ones and those
    of the ``hydra.searchpath`` folders on the command line)."""
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.object_type import ObjectType

    from pcgen.conf import CONFIG_MODULE

    search = [a for a in argv if a.lstrip("+~").startswith("hydra.searchpath")]
    with initialize_config_module(CONFIG_MODULE, version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        return loader.get_group_options(group, results_filter=ObjectType.CONFIG,
                                        config_name="config", overrides=search)


def _sweep_runs(argv: list[str]) -> list[list[str]] | None:
    """The override lists of a ``-m`` sweep's runs (Hydra's basic sweeper: the product of the
    comma lists, ranges and ``glob(...)`` over config options), at most
    :data:`MAX_CHECKED_SWEEP`; None when Hydra alone can expand it (a sweeper plugin's own syntax).

    Raises:
        ConfigError: an override Hydra cannot parse.
    """
    import itertools

    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import Glob
    from hydra.errors import HydraException

    from pcgen.errors import ConfigError

    try:
        parsed = OverridesParser.create().parse_overrides([a for a in argv if a not in MULTIRUN_FLAGS])
    except HydraException as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"cannot parse the overrides: {first[:200]}") from None
    choices = []
    for override in parsed:
        key = override.get_key_element()
        if not override.is_sweep_override():
            choices.append([override.input_line])
            continue
        try:
            if isinstance(override.value(), Glob):
                values = override.value().filter(_group_options(key, argv))
            else:
                values = list(override.sweep_string_iterator())
        except Exception:  # a sweeper plugin's own syntax: Hydra's to expand
            return None
        choices.append([f"{key}={v}" for v in values])
    return [list(run) for run in itertools.islice(itertools.product(*choices), MAX_CHECKED_SWEEP)]


def precheck(argv: list[str]) -> None:
    """Compose and check the overrides before Hydra creates its run folder, so a bad value
    (``model.optimizer.lr=abc``, ``data.dataset.num_points=-1``, an unknown key) or a run
    folder among the inputs (``hydra.run.dir=`` the tile folder) is one line and leaves no
    ``outputs/<run>/`` (nor ``multirun/<date>/``) behind; ``hydra.*`` overrides are Hydra's and
    are left out of the check, but for ``hydra.searchpath`` (a user's config folder), which
    the composition needs. A ``-m`` sweep is checked run by run. Runs with other Hydra flags
    (``--cfg``, ``--help``) are checked inside the app instead (see :func:`main`).

    Raises:
        ConfigError: the config does not compose or :func:`pcgen.train.run.validate_config` refuses it.
        OutputError: the run folder is, holds or lies inside an input (:func:`pcgen.train.run.check_run_dir`).
    """
    _check_flags(argv)
    if any(a.startswith("-") and a not in MULTIRUN_FLAGS for a in argv):
        return
    from pcgen.train.run import check_run_dir, compose_config, validate_config

    multirun = any(a in MULTIRUN_FLAGS for a in argv)
    runs = _sweep_runs(argv) if multirun else [argv]
    for run in runs or ():
        # Hydra's own settings stay out, but for the config folders the composition searches
        own = [a for a in run if not a.lstrip("+~").startswith("hydra.")
               or a.lstrip("+~").startswith("hydra.searchpath")]
        cfg = compose_config(own, root=Path.cwd())
        validate_config(cfg)
        # Where Hydra will write: the given folder, else a new one under outputs/<kind>/ (or the
        # sweep's); a folder not made yet can only lie inside an input, which is what is checked.
        folder = _given(argv, "hydra.sweep.dir" if multirun else "hydra.run.dir")
        check_run_dir(cfg, folder or Path("multirun" if multirun else f"outputs/{cfg.model.kind}") / "new")


def _check_flags(argv: list[str]) -> None:
    """Refuse a flag Hydra does not know (``--bogus``) in one line instead of Hydra's usage text.

    Raises:
        ConfigError: the first unknown flag.
    """
    from hydra._internal.utils import get_args_parser

    from pcgen.errors import ConfigError

    known = {flag for action in get_args_parser()._actions for flag in action.option_strings}
    for arg in argv:
        flag = arg.split("=", 1)[0]
        if flag.startswith("-") and flag not in known:
            raise ConfigError(f"unknown option {flag}: pcgen train takes overrides (key=value) and "
                              "Hydra's flags (pcgen train --help)")


def cli() -> None:
    """``python train.py``: :func:`precheck`, then the Hydra app; a bad config exits 2 in one line."""
    try:
        precheck(sys.argv[1:])
    except PcgenError as exc:
        print(f"{_prog()}: error: {exc}", file=sys.stderr)
        sys.exit(2)
    _note_existing(sys.argv[1:])
    main()


def add_arguments(parser) -> None:
    """Nothing to add: Hydra parses ``pcgen train``'s arguments (see :data:`OWN_ARGV`)."""


def run(argv: list[str]) -> int:
    """Run the Hydra app on ``argv`` (overrides and Hydra flags); returns the exit status."""
    precheck(argv)  # a PcgenError here is printed by pcgen.cli as one line, exit 2
    _note_existing(argv)
    saved = sys.argv
    sys.argv = [__file__, *argv]
    try:
        main()
    except SystemExit as exc:  # --help, Hydra's own errors (1) and ours (2)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = saved
    return 0


if __name__ == "__main__":
    main()
