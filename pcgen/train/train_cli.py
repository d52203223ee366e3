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

    from pcgen.train.run import train

    run_dir = HydraConfig.get().runtime.output_dir
    try:
        result = train(cfg, root=run_dir)
    except PcgenError as exc:
        # Raised from inside Hydra, a PcgenError would print as a traceback; stop with one line.
        _remove_if_unused(run_dir)
        print(f"{_prog()}: error: {exc}", file=sys.stderr)
        sys.exit(2)
    loss = result.get("train/loss")
    return None if loss is None else float(loss)


def _prog() -> str:
    return "pcgen train" if sys.argv[0] == __file__ else Path(sys.argv[0]).name


# Folders on the way to this run's folder that existed before Hydra made it (see _note_existing):
# a refused run removes only what it created.
_EXISTING: set[Path] = set()


def _note_existing(argv: list[str]) -> None:
    """Remember which of the run folder (``hydra.run.dir=``; else the default ``outputs``) and
    its parents exist before Hydra creates it."""
    given = [a.split("=", 1)[1] for a in argv if a.lstrip("+").startswith("hydra.run.dir=")]
    planned = Path(given[-1] if given and "${" not in given[-1] else "outputs").resolve()
    _EXISTING.clear()
    _EXISTING.update(p for p in (planned, *planned.parents) if p.exists())


def _remove_if_unused(run_dir: str) -> None:
    """Remove a run folder this run created that holds only what Hydra wrote on entry
    (``.hydra/``, the log), and its parents up to the working directory that this run created
    and left empty: a refused run leaves no folder, and never removes one the user had."""
    import shutil

    path, stop = Path(run_dir).resolve(), Path.cwd().resolve()
    if path in _EXISTING or not path.is_dir() \
            or any(p.name not in (".hydra", "train.log") for p in path.iterdir()):
        return
    shutil.rmtree(path, ignore_errors=True)
    for parent in path.parents:
        if parent in _EXISTING or parent == stop or stop not in parent.parents or any(parent.iterdir()):
            break
        parent.rmdir()


def precheck(argv: list[str]) -> None:
    """Compose and check the overrides before Hydra creates its run folder, so a bad value
    (``model.optimizer.lr=abc``, ``data.dataset.num_points=-1``, an unknown key) is one line
    and leaves no ``outputs/<run>/`` behind; ``hydra.*`` overrides are Hydra's and are left
    out of the check. Runs with Hydra flags (``-m``, ``--cfg``, ``--help``) or a
    ``hydra.searchpath`` (a user's config folder) are checked inside the app instead (see
    :func:`main`).

    Raises:
        ConfigError: the config does not compose or :func:`pcgen.train.run.validate_config` refuses it.
    """
    if any(a.startswith("-") for a in argv):
        return
    if any(a.lstrip("+~").startswith("hydra.searchpath") for a in argv):
        return  # a user's config folder: only Hydra's app composes with it (checked there)
    from pcgen.train.run import compose_config, validate_config

    own = [a for a in argv if not a.lstrip("+~").startswith("hydra.")]  # Hydra's own settings
    validate_config(compose_config(own, root=Path.cwd()))


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
