"""Find the real sample data (LiDAR and photos) that tests, benchmarks and demos use.

Looks at ``$PCGEN_DATA`` first, then ``../shared/data`` beside the repository root.
``datasets/fetch_sample_data.py`` fills a folder like it for users outside this environment.
"""

from __future__ import annotations

import os
from pathlib import Path

from pcgen.errors import InputError

_REPO_ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """Return the sample-data folder, or raise ``InputError`` saying where it looked."""
    candidates = []
    env = os.environ.get("PCGEN_DATA")
    if env:
        candidates.append(Path(env))
    candidates.append(_REPO_ROOT.parent / "shared" / "data")
    for cand in candidates:
        if (cand / "lidar").is_dir():
            return cand.resolve()
    looked = ", ".join(str(c) for c in candidates)
    raise InputError(f"no sample data folder with a lidar/ subfolder (looked in {looked}); "
                     "set PCGEN_DATA or run datasets/fetch_sample_data.py")


def lidar_dir() -> Path:
    return data_dir() / "lidar"


def lidar_file(name: str) -> Path:
    """Path of one shared LiDAR file by name, in ``lidar/`` or else ``training/``, e.g.
    ``lidar_file("Megaplot.laz")``, ``lidar_file("pyfor_test.laz")``."""
    path = lidar_dir() / name
    if not path.is_file() and (data_dir() / "training" / name).is_file():
        return data_dir() / "training" / name
    if not path.is_file():
        raise InputError(f"sample LiDAR file not found (looked in lidar/ and training/ of {data_dir()})",
                         name)
    return path


def lidar_files() -> list[Path]:
    """Every shared LAS/LAZ file, sorted by name."""
    from pcgen.io.las import LAS_SUFFIXES

    return sorted(p for p in lidar_dir().iterdir() if p.suffix.lower() in LAS_SUFFIXES)
