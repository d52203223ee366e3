"""Packages that import their names on first use (PEP 562 module ``__getattr__``).

Importing ``pcgen.models.gap_offset`` runs ``pcgen/models/__init__.py`` first; an ``__init__``
that imports every submodule makes loading one class pay for every family's libraries
(Lightning, diffusers, torch-geometric: seconds in each process that fills a gap). A package
lists its names and their modules in ``_EXPORTS``, a plain dict that the checkpoint check
(`pcgen.train.safe_targets`) reads without running code, and takes its ``__getattr__`` and
``__dir__`` from :func:`lazy_names`.
"""

from __future__ import annotations

import importlib
import sys


def lazy_names(package: str, exports: dict[str, str]):
    """``(__getattr__, __dir__)`` for ``package``: ``exports[name]`` is the module holding ``name``."""

    def __getattr__(name: str):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name]), name)
        setattr(sys.modules[package], name, value)  # later lookups skip this function
        return value

    def __dir__():
        return sorted(exports)

    return __getattr__, __dir__
