"""The one error hierarchy every pcgen entry point reports as a single line.

Anything a user can cause (a bad file, a bad option, a bad checkpoint) raises a
``PcgenError`` subclass; the CLI prints it without a traceback and exits non-zero.
Anything else is a bug and keeps its traceback, including :class:`ShapeError`: a tensor of the
wrong shape reaching a pcgen function is a mistake in the calling code, never in a user's file.
"""

from __future__ import annotations

import os


class PcgenError(Exception):
    """Base class: a user-facing problem, optionally tied to a file."""

    def __init__(self, message: str, path: str | os.PathLike | None = None):
        self.path = None if path is None else os.fspath(path)
        self.message = message
        super().__init__(f"{self.path}: {message}" if self.path else message)


class InputError(PcgenError):
    """An input file is missing, unreadable, corrupt or holds unusable data."""


class OutputError(PcgenError):
    """An output location cannot be written."""


class ConfigError(PcgenError):
    """An option or configuration value is out of range or inconsistent."""


class CheckpointError(PcgenError):
    """A checkpoint is missing, corrupt, or belongs to another model."""


class ShapeError(ValueError):
    """A tensor argument has the wrong shape, dtype or device, or values its layout rules out
    (lengths beyond N, negative weights, a box with xmax <= xmin).

    Raised by the public ops, layers and heads when the *calling code* hands them bad tensors.
    Deliberately not a :class:`PcgenError`: the CLI must not report a bug as a user's bad input,
    so it keeps its traceback. A ``ValueError``, so generic callers can still catch it.
    """
