"""The one output-location guard every writing command runs before it reads anything.

An output that is, contains, or lies inside one of the command's inputs is refused: writing
there could replace or delete the very files being read. A non-empty output folder is refused
unless the caller allows replacing it; even then :func:`pcgen.atomic.atomic_dir` only replaces
files pcgen itself wrote there.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterable

from pcgen.errors import OutputError


def _real(path: str | os.PathLike) -> Path:
    return Path(os.path.realpath(os.path.abspath(path)))


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_output(out: str | os.PathLike, inputs: Iterable[str | os.PathLike | None], *,
                 folder: bool, overwrite: bool = False, overwrite_hint: str = "",
                 ours: Callable[[Path], bool] | None = None) -> Path:
    """Refuse an unsafe output location; returns ``out`` as an absolute path.

    Args:
        out: the output file (``folder=False``) or folder (``folder=True``).
        inputs: every path the command reads (files, folders, tile indexes, checkpoints,
            configs); ``None`` entries are skipped. A tile index guards the files it lists and
            an ``ept.json`` its dataset's folder (:func:`pcgen.inputs.footprint`).
        folder: whether ``out`` is a folder.
        overwrite: allow an existing non-empty output folder (its pcgen-written files get
            replaced, nothing else), or an existing output file that ``ours`` recognises.
        overwrite_hint: how the caller's user allows it (e.g. a flag), quoted in the error.
        ours: for an output file, whether an existing file there is one pcgen wrote (without
            it an existing file is never replaced).

    Raises:
        OutputError: ``out`` is an input, contains one, lies inside one, is the wrong kind of
            path, sits under a file, is a non-empty folder without ``overwrite``, or is an
            existing file that pcgen did not write (or did, without ``overwrite``).
    """
    absolute = Path(os.path.abspath(out))
    if not absolute.name:
        raise OutputError("cannot write to the file-system root", out)
    from pcgen.inputs import footprint

    real_out = _real(out)
    for item in (path for named in inputs if named is not None for path in footprint(named)):
        real_in = _real(item)
        if real_in == real_out or _same_file(Path(item), absolute):
            raise OutputError(f"output would overwrite its input {item}", out)
        if real_out.is_relative_to(real_in):
            raise OutputError(f"output lies inside the input {item}", out)
        if real_in.is_relative_to(real_out):
            raise OutputError(f"output would contain the input {item}", out)
    if folder:
        if absolute.exists() and not absolute.is_dir():
            raise OutputError("output path exists and is not a folder", out)
        if not overwrite and absolute.is_dir() and any(absolute.iterdir()):
            hint = f" (pass {overwrite_hint} to replace the files pcgen wrote there)" if overwrite_hint else ""
            raise OutputError(f"output folder exists and is not empty{hint}", out)
    elif absolute.is_dir():
        raise OutputError("output path is a folder, expected a file name", out)
    elif absolute.exists() or absolute.is_symlink():
        if ours is None or not absolute.is_file() or not ours(absolute):
            raise OutputError("output file exists and pcgen did not write it; pick another name", out)
        if not overwrite:
            hint = f" (pass {overwrite_hint} to replace it)" if overwrite_hint else ""
            raise OutputError(f"output file exists{hint}", out)
    ancestor = absolute.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise OutputError("cannot create the output: a file is in the way", ancestor)
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise OutputError("output folder is not writable", ancestor)
    return absolute


def is_pcgen_report(path, mark: str) -> bool:
    """Whether ``path`` is a JSON object whose ``"generator"`` member is ``mark``: a report
    pcgen wrote (the kind of file ``--overwrite`` may replace)."""
    import json

    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("generator") == mark
