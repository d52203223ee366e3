"""The one place that turns what a user names (files, folders, tile indexes, EPT datasets) into
point-cloud paths.

``pcgen tile``, ``pcgen fill``, the evaluation commands and the training data config all take
the same kinds of input; one expansion gives them the same rules and the same one-line errors,
checked up front so a missing file fails a run before anything is written.

- a file is itself (COPC files are LAZ files), if its suffix is one the caller reads;
- a folder is its files with those suffixes, sorted by name, unless it holds an ``ept.json``:
  then it is one EPT dataset, named by its ``ept.json`` (read whole, never as a tile index);
- a tile index is a ``.txt`` (one path per line, ``#`` comments) or a ``.json``/``.geojson``
  whose features carry the tile path in ``location`` (gdaltindex), ``path``, ``file`` or
  ``name`` (``pcgen tile``); relative paths are relative to the index.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

from pcgen.errors import InputError
from pcgen.io.ept import EPT_NAME, is_ept
from pcgen.io.las import LAS_SUFFIXES

INDEX_SUFFIXES = (".txt", ".json", ".geojson")
_INDEX_KEYS = ("location", "path", "file", "name")

InputKind = Literal["missing", "ept", "folder", "index", "file"]


def input_kind(path: str | os.PathLike) -> InputKind:
    """What one input is; the EPT check comes first, so an ``ept.json`` is never an index."""
    p = Path(path)
    if not p.exists():
        return "missing"
    if is_ept(p):
        return "ept"
    if p.is_dir():
        return "folder"
    return "index" if p.suffix.lower() in INDEX_SUFFIXES else "file"


def list_inputs(inputs: Iterable[str | os.PathLike],
                suffixes: Sequence[str] = LAS_SUFFIXES) -> list[Path]:
    """Expand files, folders, tile indexes and EPT datasets into point-cloud paths.

    Args:
        inputs: what the user named, in order.
        suffixes: file suffixes (lower case, with the dot) the caller can read; folders list
            these, and a file or index entry with another suffix is refused.

    Returns:
        Paths in input order (folders sorted by name), each file once (first occurrence kept);
        an EPT dataset appears as its ``ept.json``.

    Raises:
        InputError: naming the input: it does not exist, has another suffix, is a folder with
            no such files, or is a tile index that is unreadable, empty or names missing files.
    """
    suffixes = tuple(suffixes)
    found: list[Path] = []
    for item in inputs:
        p = Path(item)
        kind = input_kind(p)
        if kind == "missing":
            raise InputError("file not found", p)
        if kind == "ept":
            found.append(p / EPT_NAME if p.is_dir() else p)
        elif kind == "folder":
            listed = sorted(q for q in p.iterdir() if q.suffix.lower() in suffixes and q.is_file())
            if not listed:
                raise InputError(f"folder holds no {_names(suffixes)} files (nor an EPT {EPT_NAME})", p)
            found.extend(listed)
        elif kind == "index":
            found.extend(_read_index(p, suffixes))
        else:
            _check_suffix(p, suffixes)
            found.append(p)
    seen: set[Path] = set()
    out = []
    for f in found:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


def _names(suffixes: Sequence[str]) -> str:
    return "/".join(suffixes)


def _check_suffix(path: Path, suffixes: Sequence[str]) -> None:
    if path.suffix.lower() not in suffixes:
        raise InputError(f"not a {_names(suffixes)} file", path)


def site_name(path: str | os.PathLike) -> str:
    """The name a split file gives a site: a file's name, an EPT dataset's folder name (for its
    ``ept.json`` too), so held-out checks see ``hawaii_ept/ept.json`` as the site ``hawaii_ept``."""
    p = Path(path)
    return p.parent.name if p.name == "ept.json" else p.name


def footprint(item: str | os.PathLike) -> list[Path]:
    """Every path an input occupies, for the output checks (:func:`pcgen.outputs.check_output`):
    the input itself, an EPT dataset's whole folder (named by its ``ept.json`` or not), and the
    files a tile index lists (an unreadable index lists none here; reading it fails later)."""
    p = Path(item)
    paths = [p]
    kind = input_kind(p)
    if kind == "ept" and p.name == EPT_NAME:
        paths.append(p.parent)
    elif kind == "index":
        try:
            paths.extend(_index_entries(p))
        except InputError:
            pass
    return paths


def _index_entries(path: Path) -> list[Path]:
    """The absolute paths a ``.txt`` or GeoJSON tile index lists, as written (not resolved)."""
    try:
        text = path.read_text()
        if path.suffix.lower() == ".txt":
            names = [ln.strip() for ln in text.splitlines()
                     if ln.strip() and not ln.lstrip().startswith("#")]
        else:
            names = []
            for feature in json.loads(text).get("features", []):
                props = feature.get("properties") or {}
                name = next((props[k] for k in _INDEX_KEYS if props.get(k)), None)
                if name:
                    names.append(str(name))
    except (OSError, UnicodeDecodeError, ValueError, AttributeError) as exc:
        raise InputError(f"unreadable tile index ({exc})", path) from None
    if not names:
        raise InputError("tile index lists no tiles", path)
    # absolute, not resolved: a tile keeps the name the index gives it, even through a link
    return [Path(os.path.abspath(path.parent / n)) for n in names]


def _read_index(path: Path, suffixes: Sequence[str]) -> list[Path]:
    """The tiles a ``.txt`` or GeoJSON tile index names, each checked to exist and be readable
    by the caller (a file with one of ``suffixes``, or an EPT dataset)."""
    files = _index_entries(path)
    _refuse(path, "names missing files", [f for f in files if not f.exists()])
    paths = [f / EPT_NAME if f.is_dir() and is_ept(f) else f for f in files]
    _refuse(path, f"names entries that are not {_names(suffixes)} files",
            [f for f in paths if f.name != EPT_NAME and (f.is_dir() or f.suffix.lower() not in suffixes)])
    return paths


def _refuse(index: Path, problem: str, bad: list[Path]) -> None:
    """One line naming the index and the first few entries at fault."""
    if bad:
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        raise InputError(f"tile index {problem}: {', '.join(map(str, bad[:3]))}{more}", index)
