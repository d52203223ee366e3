"""What a tiling run's inputs hold and what its tiles are named after (the inputs themselves
come from `pcgen.inputs.list_inputs`).

Kept apart from the tiling itself: these checks run up front, before anything is written, so
a missing, empty or unreadable input fails the run with one clear error and no partial output.
"""

from __future__ import annotations

from pathlib import Path

import laspy

import pcgen.io as pio
from pcgen.errors import InputError
from pcgen.io.ept import EPT_NAME, is_ept
from pcgen.io.las import COPC_SUFFIX, check_header, check_records


def read_headers(files: list[Path]) -> list[laspy.LasHeader]:
    """Open and check every header up front so a bad file fails the run before anything is
    written: scales, offsets and bounds go through `pcgen.io.las.check_header`, the one check
    every reader applies (a 0 or NaN scale collapses every X; NaN bounds break the grid), and
    records the header miscounts through `pcgen.io.las.check_records`.

    An EPT dataset's header is its first node's, with the dataset's point count and extent.
    """
    headers = []
    for f in files:
        if is_ept(f):
            with pio.open_chunks(f) as reader:
                headers.append(check_header(reader.header, f))
            continue
        try:
            with laspy.open(f) as reader:
                header = reader.header
        except BaseException as exc:  # noqa: BLE001 - lazrs panics derive from BaseException
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            raise InputError(f"not a readable LAS/LAZ file ({str(exc).strip()[:200]})", f) \
                from None
        if header.point_count == 0:
            raise InputError("contains no points", f)
        check_records(f)
        headers.append(check_header(header, f))
    return headers


def source_name(path: str) -> str:
    """A tile's source as the index names it: the file name, ``<folder>/ept.json`` for EPT."""
    p = Path(path)
    return f"{p.parent.name}/{p.name}" if p.name == EPT_NAME else p.name


def input_stem(path: Path) -> str:
    """Tile-name prefix of an input: the file's stem (``x`` for ``x.copc.laz``: what is written
    from it is plain LAZ, no octree), an EPT dataset's folder name."""
    path = Path(path)
    if is_ept(path):
        return path.resolve().parent.name
    return path.name[:-len(COPC_SUFFIX)] if path.name.lower().endswith(COPC_SUFFIX) else path.stem


def unique_stems(files: list[Path]) -> list[str]:
    """One tile-name prefix per input, ``<stem>-2``, ``-3``... where stems repeat."""
    stems, used = [], set()
    for f in files:
        base = input_stem(f)
        stem, n = base, 2
        while stem in used:
            stem, n = f"{base}-{n}", n + 1
        used.add(stem)
        stems.append(stem)
    return stems
