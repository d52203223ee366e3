"""Generation metrics: score generated point clouds against reference ones, write a JSON report.

The library behind ``pcgen evaluate`` (``pcgen.tasks.eval_generation_cli``); not to be confused
with ``pcgen.tasks.eval_fill``, which scores gap filling against cut-out ground truth. Two ways in,
with Hydra-style ``key=value`` overrides of ``pcgen/conf/evaluate/config.yaml``::

    pcgen evaluate generated=samples.npy reference=refs/ out=report.json
    pcgen evaluate ckpt=run/checkpoints/last.ckpt data=tiles/ out=report.json

``generated`` / ``reference`` are a ``.npy`` file of shape (K, N, 3) or a folder of clouds (one
per ``.npy`` / ``.las`` / ``.laz`` / ``.ply`` file, sorted by name). With ``ckpt`` the head is
loaded through ``pcgen.train.checkpoint.load_head`` and samples as many clouds as the reference
set (a tile folder read by ``pcgen.data.TileDataset`` with the checkpoint's points per sample).
Metrics and protocol: ``docs/metrics.md``. The report is written atomically.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from pcgen.atomic import atomic_path
from pcgen.data.sampling import resample_index
from pcgen.errors import ConfigError, InputError, OutputError, ShapeError
from pcgen.io.las import LAS_SUFFIXES
from pcgen.ops._checks import check_finite

CLOUD_SUFFIXES = (".npy", *LAS_SUFFIXES, ".ply")
CONFIG_MODULE = "pcgen.conf.evaluate"


def _check_whole(config_dir) -> None:
    """A user's ``config.yaml`` replaces the packaged one whole: one that leaves keys out failed
    later as "Could not override 'generated'", naming neither the file nor the fix."""
    from pcgen.conf import compose, user_config_dir

    path = user_config_dir(config_dir) / "config.yaml"
    if not path.is_file():
        return
    try:
        theirs = OmegaConf.load(path)
    except Exception as exc:  # noqa: BLE001 - any parse failure is the file's
        raise ConfigError(f"cannot read it: {str(exc).splitlines()[0]}", path) from None
    packaged = compose("config", module=CONFIG_MODULE)
    missing = [k for k in packaged if not (isinstance(theirs, dict) or OmegaConf.is_dict(theirs)) or k not in theirs]
    if missing:
        raise ConfigError(f"it replaces pcgen's evaluate config whole and lacks {', '.join(missing)}: "
                          "copy pcgen/conf/evaluate/config.yaml there and edit it", path)


def load_config(overrides: Sequence[str] = (), config_dir: str | os.PathLike | None = None) -> dict:
    """Compose the evaluation settings with Hydra-style ``key=value`` overrides, then check them.

    Raises:
        ConfigError: unknown key, malformed override, bad metric list or a missing input.
    """
    from pcgen.conf import compose

    bad = [a for a in overrides if "=" not in a or a.startswith("=")]
    if bad:
        raise ConfigError(f"arguments must be key=value, got {bad[0]!r}")
    if config_dir is not None:
        _check_whole(config_dir)
    cfg = OmegaConf.to_container(compose("config", overrides, config_dir=config_dir,
                                         module=CONFIG_MODULE), resolve=True)
    if isinstance(cfg["metrics"], str):
        cfg["metrics"] = [cfg["metrics"]]
    if not set(cfg["metrics"]) <= {"chamfer", "emd"} or not cfg["metrics"]:
        raise ConfigError(f"metrics must be a subset of [chamfer, emd], got {cfg['metrics']}")
    if cfg["ckpt"] is None and (cfg["generated"] is None or cfg["reference"] is None):
        raise ConfigError("give generated=... and reference=..., or ckpt=... and data=...")
    if cfg["ckpt"] is not None and (cfg["data"] is None and cfg["reference"] is None):
        raise ConfigError("ckpt=... needs data=TILE_DIR (or reference=...)")
    if cfg["ckpt"] is not None and cfg["generated"] is not None:
        raise ConfigError("ckpt=... generates the clouds to score; drop generated=... (or ckpt=...)")
    if cfg["ckpt"] is not None and cfg["data"] is not None and cfg["reference"] is not None:
        raise ConfigError("ckpt=... scores against data=... or reference=..., not both")
    if cfg["ckpt"] is None and cfg["data"] is not None:
        raise ConfigError("data=... is the reference tiles of ckpt=...; without a checkpoint give reference=...")
    cfg["device"] = check_device(cfg["device"])
    _check_numbers(cfg)
    if not isinstance(cfg["out"], str) or not cfg["out"].strip():
        raise ConfigError(f"out must be a file name for the report, got {cfg['out']!r}")
    return cfg


def _check_numbers(cfg: dict) -> None:
    """Refuse a count, size or tolerance that would crash later or quietly change the report
    (``max_clouds=-1`` dropped the last cloud, ``pr_k=0`` reported zeros)."""
    from pcgen.metrics.suite import check_metric_settings
    from pcgen.options import MAX_SEED, check_flag, check_range

    check_range("num_points", cfg["num_points"], 1, 10_000_000, nullable=True, integer=True)
    check_range("max_clouds", cfg["max_clouds"], 2, 10_000_000, nullable=True, integer=True)
    check_metric_settings(cfg["chunk"], cfg["emd_eps"], cfg["emd_squared"], cfg["jsd_resolution"],
                          cfg["pr_k"])
    check_range("batch_size", cfg["batch_size"], 1, 100_000, integer=True)
    check_range("seed", cfg["seed"], 0, MAX_SEED - 1, integer=True)  # the reference set takes seed + 1
    check_flag("progress", cfg["progress"])


def check_device(name) -> str:
    """Refuse a device torch cannot use (``cuda:7`` on a one-GPU machine, ``gpu``) up front,
    in one line, rather than as a CUDA traceback halfway through sampling.

    Raises:
        ConfigError: malformed name, or a CUDA/MPS device this machine does not have.
    """
    try:
        dev = torch.device(str(name))
    except (RuntimeError, ValueError):
        raise ConfigError(f"device must be cpu, cuda or cuda:N, got {name!r}") from None
    if dev.type == "cuda":
        count = torch.cuda.device_count()
        if count == 0 or (dev.index or 0) >= count:
            have = "no CUDA devices" if count == 0 else f"CUDA devices 0..{count - 1}"
            raise ConfigError(f"device {name!r} does not exist (this machine has {have})")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {name!r} is not available on this machine")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"device must be cpu, cuda or cuda:N, got {name!r}")
    return str(dev)


def _resample(xyz: np.ndarray, n: int | None, rng: np.random.Generator, path) -> np.ndarray:
    if xyz.dtype.kind not in "fiu":
        raise InputError(f"holds {xyz.dtype} values, not coordinates", path)
    xyz = xyz.astype(np.float64, copy=False)
    if xyz.ndim != 2 or xyz.shape[1] != 3 or len(xyz) == 0:
        raise InputError(f"expected (N, 3) points, got {xyz.shape}", path)
    if not np.isfinite(xyz).all():
        raise InputError("cloud has non-finite coordinates", path)
    if np.abs(xyz).max() > np.finfo(np.float32).max:
        raise InputError("coordinates beyond float32's range (3.4e38), which the metrics use", path)
    if n is None or n == len(xyz):
        return xyz
    return xyz[resample_index(len(xyz), n, rng)]


def load_clouds(path, num_points: int | None = None, max_clouds: int | None = None,
                seed: int = 0) -> torch.Tensor:
    """Read a set of clouds.

    Args:
        path: ``.npy`` (K, N, 3) or a folder of cloud files.
        num_points: resample each cloud to this many points
            (:func:`pcgen.data.sampling.resample_index`: a random subset, or every point plus
            random repeats when a cloud is smaller); ``None`` keeps N and requires equal sizes.
        max_clouds: keep the first this many.
    Returns:
        (K, N, 3) float32.
    """
    path = Path(path)
    rng = np.random.default_rng(seed)
    if path.is_file() and path.suffix == ".npy":
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:  # unreadable, truncated, pickled
            raise InputError(f"cannot read .npy ({exc})", path) from None
        if arr.ndim != 3 or arr.shape[-1] != 3:
            raise InputError(f"expected a (K, N, 3) array, got {arr.shape}", path)
        clouds = [_resample(c, num_points, rng, path) for c in arr[:max_clouds]]
    elif path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in CLOUD_SUFFIXES)[:max_clouds]
        if not files:
            raise InputError(f"no cloud files ({', '.join(CLOUD_SUFFIXES)}) in folder", path)
        clouds = []
        for f in files:
            if f.suffix == ".npy":
                try:
                    xyz = np.load(f, allow_pickle=False)
                except (OSError, ValueError, EOFError) as exc:  # unreadable, truncated, pickled
                    raise InputError(f"cannot read .npy ({exc})", f) from None
            else:
                from pcgen import io as pio

                xyz = pio.read(f).xyz
            clouds.append(_resample(np.asarray(xyz), num_points, rng, f))
    elif not path.exists():
        raise InputError("no such file or folder", path)
    else:
        raise InputError("expected a .npy file or a folder of clouds", path)
    sizes = {len(c) for c in clouds}
    if len(sizes) > 1:
        raise InputError(f"clouds have different sizes {sorted(sizes)[:4]}; set num_points=", path)
    if len(clouds) < 2:
        raise InputError("need at least 2 clouds", path)
    out = torch.from_numpy(np.stack(clouds)).float()
    try:  # what float64 held may not fit float32, nor its squared distances
        check_finite("its clouds", out)
    except ShapeError as exc:
        raise InputError(str(exc), path) from None
    return out


def _from_checkpoint(cfg) -> tuple[torch.Tensor, torch.Tensor]:
    from pcgen.train.checkpoint import load_head

    head, meta = load_head(cfg["ckpt"], map_location=cfg["device"])
    data_meta = meta.get("data") or {}
    if data_meta.get("conditional"):
        raise ConfigError("this checkpoint is a conditional (gap-filling) head; generation metrics "
                          "need an unconditional one", cfg["ckpt"])
    n = cfg["num_points"] or int(data_meta.get("num_points", 2048))
    if cfg["reference"] is not None:
        ref = load_clouds(cfg["reference"], n, cfg["max_clouds"], cfg["seed"])
    else:
        from pcgen.data import TileDataset

        ds = TileDataset(cfg["data"], num_points=n, normalize=data_meta.get("normalize", "sphere"),
                         seed=cfg["seed"])
        count = len(ds) if cfg["max_clouds"] is None else min(len(ds), int(cfg["max_clouds"]))
        if count < 2:
            raise InputError("need at least 2 reference tiles", cfg["data"])
        ref = torch.stack([ds[i]["points"] for i in range(count)]).float()
    gen_parts = []
    g = torch.Generator(device=cfg["device"]).manual_seed(int(cfg["seed"]))
    with torch.no_grad():
        for s in range(0, ref.shape[0], int(cfg["batch_size"])):
            k = min(int(cfg["batch_size"]), ref.shape[0] - s)
            gen_parts.append(head.sample(k, n, generator=g).float().cpu())
    return torch.cat(gen_parts), ref


def evaluate_generation(cfg: dict) -> dict:
    """Evaluate as :func:`load_config` describes and write the report; returns it."""
    from pcgen.metrics import evaluate_sets

    if cfg["ckpt"] is not None:
        gen, ref = _from_checkpoint(cfg)
    else:
        gen = load_clouds(cfg["generated"], cfg["num_points"], cfg["max_clouds"], cfg["seed"])
        ref = load_clouds(cfg["reference"], cfg["num_points"], cfg["max_clouds"], cfg["seed"] + 1)
    if "emd" in cfg["metrics"] and gen.shape[1] != ref.shape[1]:
        raise ConfigError(f"EMD needs clouds of equal size: generated have {gen.shape[1]} points, "
                          f"reference {ref.shape[1]}; set num_points=")
    fewest = min(len(gen), len(ref))
    if int(cfg["pr_k"]) >= fewest:  # a ball over a whole set holds everything: precision = recall = 1
        raise ConfigError(f"pr_k={cfg['pr_k']} needs more than {cfg['pr_k']} clouds in each set; "
                          f"got {len(gen)} generated and {len(ref)} reference (use pr_k <= {fewest - 1})")
    report = evaluate_sets(gen.to(cfg["device"]), ref.to(cfg["device"]), metrics=cfg["metrics"],
                           normalize=cfg["normalize"], chunk=int(cfg["chunk"]),
                           emd_eps=float(cfg["emd_eps"]), emd_squared=bool(cfg["emd_squared"]),
                           jsd_resolution=int(cfg["jsd_resolution"]), pr_k=int(cfg["pr_k"]),
                           progress=bool(cfg["progress"]))
    report["inputs"] = {k: (str(cfg[k]) if cfg[k] is not None else None)
                        for k in ("generated", "reference", "ckpt", "data")}
    report["generator"] = REPORT_MARK
    try:
        with atomic_path(cfg["out"]) as tmp:
            tmp.write_text(json.dumps(report, indent=2) + "\n")
    except OSError as exc:
        raise OutputError(f"cannot write the report ({exc.strerror or exc})", cfg["out"]) from None
    return report


REPORT_MARK = "pcgen evaluate"  # the report's "generator" member: pcgen wrote this file


def is_evaluation_report(path) -> bool:
    """Whether ``path`` is a report ``pcgen evaluate`` wrote (``--overwrite`` may replace it)."""
    from pcgen.outputs import is_pcgen_report

    return is_pcgen_report(path, REPORT_MARK)

