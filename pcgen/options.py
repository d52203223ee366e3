"""Checked argparse types and config values: every numeric option is validated here, where it enters.

Each argparse type raises ``argparse.ArgumentTypeError``, which the dispatcher turns into one line
naming the option, exit status 2; :func:`check_range` and :func:`check_flag` check a value from
a config or a Python call and raise ``ConfigError`` naming its key. NaN and infinities are
refused everywhere; ranges are the smallest a command can work with.
"""

from __future__ import annotations

import argparse
import math
import numbers
from typing import Callable

from pcgen.errors import ConfigError

# Largest integer a seed may be: numpy's SeedSequence and torch.manual_seed both take it.
MAX_SEED = 2 ** 32 - 1
# Coordinates beyond this (file units) overflow int64 grid keys at any sensible cell size.
MAX_EXTENT = 1e15


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"wants a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"wants an integer, got {text!r}") from None


def finite_float(text: str) -> float:
    """Any finite number."""
    return _number(text)


def _ranged(convert: Callable[[str], float], fmt: Callable, low, high, low_open: bool, name: str,
            high_open: bool = False):
    """An argparse type: ``convert`` the text, then check ``low`` and ``high`` (each open or closed)."""

    def parse(text: str):
        value = convert(text)
        if low is not None and (value <= low if low_open else value < low):
            raise argparse.ArgumentTypeError(f"must be {'>' if low_open else '>='} {fmt(low)}, got {text}")
        if high is not None and (value >= high if high_open else value > high):
            raise argparse.ArgumentTypeError(f"must be {'<' if high_open else '<='} {fmt(high)}, got {text}")
        return value

    parse.__name__ = name
    return parse


def float_range(low: float | None = None, high: float | None = None, *, low_open: bool = False,
                high_open: bool = False, name: str = "") -> Callable[[str], float]:
    """A finite float in ``[low, high]``, either end left open by ``low_open``/``high_open``."""
    return _ranged(_number, lambda v: f"{v:g}", low, high, low_open, name or "number", high_open)


def int_range(low: int | None = None, high: int | None = None, name: str = "") -> Callable[[str], int]:
    """An integer in ``[low, high]``."""
    return _ranged(_integer, str, low, high, False, name or "integer")


positive_float = float_range(0.0, MAX_EXTENT, low_open=True, name="positive number")
non_negative_float = float_range(0.0, MAX_EXTENT, name="non-negative number")
unit_fraction = float_range(0.0, 1.0, name="fraction")
MAX_COUNT = 2**31 - 1  # a count past this is a typo, and overflows 32-bit indices downstream
positive_int = int_range(1, MAX_COUNT, name="positive integer")
non_negative_int = int_range(0, MAX_COUNT, name="non-negative integer")
MAX_STEPS = 10_000_000  # optimizer steps of one command (months on this hardware)
step_count = int_range(1, MAX_STEPS, name="step count")
MAX_CUTS = 10_000  # evaluation cuts per tile: more never fit without overlapping
cut_count = int_range(1, MAX_CUTS, name="cut count")
seed = int_range(0, MAX_SEED, name="seed")
workers = int_range(1, 1024, name="process count")


def yaml_mapping_file(text: str) -> str:
    """A readable YAML file holding a mapping (a config); returns the path unchanged."""
    from omegaconf import OmegaConf

    try:
        cfg = OmegaConf.load(text)
    except FileNotFoundError:
        raise argparse.ArgumentTypeError(f"file not found: {text}") from None
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"cannot read {text} ({exc.strerror})") from None
    except Exception as exc:  # yaml.YAMLError and OmegaConf's grammar errors
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise argparse.ArgumentTypeError(f"not valid YAML: {text} ({first[:160]})") from None
    if not OmegaConf.is_dict(cfg):
        raise argparse.ArgumentTypeError(f"{text} must hold a YAML mapping (key: value lines)")
    return text


def bounds_box(text: str) -> tuple[float, ...]:
    """``XMIN,YMIN,XMAX,YMAX`` (or with ZMIN/ZMAX: ``XMIN,YMIN,ZMIN,XMAX,YMAX,ZMAX``), finite, min <= max."""
    from pcgen.io.bounds import parse_bounds

    try:
        values = tuple(_number(v) for v in text.split(","))
        parse_bounds(values)
    except (argparse.ArgumentTypeError, ConfigError) as exc:
        raise argparse.ArgumentTypeError(f"wants XMIN,YMIN,XMAX,YMAX (or XMIN,YMIN,ZMIN,XMAX,YMAX,ZMAX) "
                                         f"in the data's CRS units, got {text!r} ({exc})") from None
    return values


def dask_address(text: str) -> str:
    """A Dask scheduler address (``tcp://host:8786``, ``host:8786``, ``inproc://...``)."""
    import re

    if not re.fullmatch(r"(tcp|tls|ucx|ws|wss)://[^\s/:]+(:\d{1,5})?/?|inproc://\S+|[^\s/:]+:\d{1,5}", text):
        raise argparse.ArgumentTypeError(f"not a Dask scheduler address (tcp://host:8786): {text!r}")
    return text


def check_scale_out(workers: int, dask: str | None) -> None:
    """Refuse ``--workers N`` beside ``--dask``: the scheduler's workers run the jobs, so N would
    be silently ignored."""
    if dask is not None and workers != 1:
        raise ConfigError(f"--workers {workers} starts local processes; with --dask {dask} the "
                          "scheduler's workers run the jobs (drop one of the two)")


def check_range(key: str, value, low: float, high: float, *, open_low: bool = False,
                nullable: bool = False, integer: bool = False):
    """Return ``value`` if it is a number in ``[low, high]`` (``(low, high]`` with ``open_low``;
    None allowed with ``nullable``; a whole number with ``integer``), else raise ``ConfigError``
    naming ``key``."""
    if value is None and nullable:
        return value
    kind = "an integer" if integer else "a number"
    # numpy scalars count too (np.int64(64) from an array is an integer); True is no number
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or (
            integer and not isinstance(value, numbers.Integral)):
        raise ConfigError(f"{key} must be {kind}, got {value!r}")
    if not math.isfinite(value) or value > high or (value <= low if open_low else value < low):
        lo, hi = (str(int(low)), str(int(high))) if integer else (f"{low:g}", f"{high:g}")
        raise ConfigError(f"{key} must be {'>' if open_low else '>='} {lo} and <= {hi}, got {value!r}")
    return value


def check_flag(key: str, value) -> bool:
    """Return ``value`` if it is true or false, else raise ``ConfigError`` naming ``key``."""
    if not isinstance(value, bool):
        raise ConfigError(f"{key} must be true or false, got {value!r}")
    return value
