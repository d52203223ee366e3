"""PLY / PCD / XYZ through open3d, mapped onto `PointCloud` with LAS-style attribute names.

Colours become ``red``/``green``/``blue`` as uint16 on LAS's 0–65535 scale, normals become
``normal_x``/``normal_y``/``normal_z`` (float32), other PLY/PCD properties keep their names.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from pathlib import Path

import numpy as np

from pcgen.atomic import atomic_path
from pcgen.errors import InputError, OutputError
from pcgen.io.cloud import PointCloud

TENSOR_SUFFIXES = (".ply", ".pcd")
LEGACY_SUFFIXES = (".xyz", ".xyzn", ".xyzrgb", ".pts")
O3D_SUFFIXES = TENSOR_SUFFIXES + LEGACY_SUFFIXES
_NORMALS = ("normal_x", "normal_y", "normal_z")
_RGB = ("red", "green", "blue")


def _colors_to_u16(colors: np.ndarray) -> np.ndarray:
    if colors.dtype == np.uint8:
        return colors.astype(np.uint16) * 257
    if colors.dtype == np.uint16:
        return colors
    return np.round(np.clip(colors.astype(np.float64), 0.0, 1.0) * 65535).astype(np.uint16)


def _colors_to_unit(cloud: PointCloud) -> np.ndarray:
    rgb = np.stack([cloud.attributes[c] for c in _RGB], axis=1).astype(np.float64)
    # LAS says 16-bit colours, but many files store 8-bit values; keep those visible.
    full = 255.0 if rgb.size and rgb.max() <= 255 else 65535.0
    return rgb / full


def _ply_safe(value: np.ndarray) -> np.ndarray:
    """Widen dtypes open3d's PLY writer rejects (it takes u1, u2, i4, f4, f8) without losing values."""
    if value.dtype in (np.uint8, np.uint16, np.int32, np.float32, np.float64):
        return value
    if value.dtype.kind == "b" or (value.dtype.kind == "i" and value.dtype.itemsize < 4):
        return value.astype(np.int32)
    return value.astype(np.float64)  # u4 / i8 / u8: exact up to 2**53


@contextlib.contextmanager
def _native_output(log: list):
    """Capture what open3d's C++ prints (fd 1 and 2): its readers report failure only there,
    returning a partly uninitialized cloud."""
    sys.stdout.flush()
    sys.stderr.flush()
    with tempfile.TemporaryFile() as buf:
        saved = [os.dup(1), os.dup(2)]
        try:
            os.dup2(buf.fileno(), 1)
            os.dup2(buf.fileno(), 2)
            yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            buf.seek(0)
            log.append(re.sub(r"\x1b\[[0-9;]*m", "", buf.read().decode(errors="replace")))


def _ply_vertex_count(path: Path) -> int | None:
    """Vertex count from a PLY header; open3d returns partial clouds on read errors."""
    with open(path, "rb") as fh:
        head = fh.read(65536)
    end = head.find(b"end_header")
    if not head.startswith(b"ply") or end < 0:
        return None
    for line in head[:end].splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == b"element" and parts[1] == b"vertex":
            return int(parts[2]) if parts[2].isdigit() else None
    return None


def _check_text_rows(path: Path, suffix: str, read: int) -> None:
    """open3d skips a text row it cannot parse without a word: refuse a file with such rows.
    Blank rows and ``#`` comments are not points; a ``.pts`` file opens with its count."""
    with open(path, "rb") as fh:
        rows = [(i, line) for i, line in enumerate(fh, 1)
                if line.strip() and not line.lstrip().startswith(b"#")]
    if suffix == ".pts":
        rows = rows[1:]
    if len(rows) <= read:
        return
    for i, line in rows:
        try:
            [float(v) for v in line.split()[:3]]
            if len(line.split()) >= 3:
                continue
        except ValueError:
            pass
        text = line.decode("utf-8", "replace").strip()[:40]
        raise InputError(f"row {i} is not a point, x y z numbers ({text!r}); "
                         f"{len(rows) - read} of {len(rows)} rows could not be read", path)


def _raise_on_failure(log: str, path: Path) -> None:
    for line in log.splitlines():
        if "failed" in line.lower() or "error" in line.lower():
            detail = re.sub(r"\s*\[Open3D (WARNING|ERROR)\]\s*", "", line).strip()
            detail = detail.replace(str(path), "").rstrip(" :.")
            raise InputError(f"not a readable {path.suffix[1:].upper()} file ({detail})", path)


def read_o3d(path) -> PointCloud:
    """Read PLY/PCD/XYZ. Raises `InputError` for unreadable files and NaN/inf coordinates."""
    import open3d as o3d

    path = Path(path)
    if not path.is_file():
        raise InputError("file not found", path)
    suffix = path.suffix.lower()
    attrs: dict[str, np.ndarray] = {}
    if suffix in TENSOR_SUFFIXES:
        log: list[str] = []
        with _native_output(log):
            pcd = o3d.t.io.read_point_cloud(str(path))
        _raise_on_failure(log[0], path)
        fields = {k: pcd.point[k].numpy() for k in pcd.point}
        xyz = fields.pop("positions", np.zeros((0, 3)))
        if "colors" in fields:
            rgb = _colors_to_u16(fields.pop("colors"))
            attrs.update({c: rgb[:, i] for i, c in enumerate(_RGB)})
        if "normals" in fields:
            nrm = fields.pop("normals").astype(np.float32)
            attrs.update({c: nrm[:, i] for i, c in enumerate(_NORMALS)})
        for name, value in fields.items():
            attrs[name] = value[:, 0] if value.ndim == 2 and value.shape[1] == 1 else value
    else:
        log = []
        with _native_output(log):
            pcd = o3d.io.read_point_cloud(str(path), format="auto")
        _raise_on_failure(log[0], path)
        xyz = np.asarray(pcd.points)
        if pcd.has_colors():
            rgb = _colors_to_u16(np.asarray(pcd.colors))
            attrs.update({c: rgb[:, i] for i, c in enumerate(_RGB)})
        if pcd.has_normals():
            nrm = np.asarray(pcd.normals).astype(np.float32)
            attrs.update({c: nrm[:, i] for i, c in enumerate(_NORMALS)})
    expected = _ply_vertex_count(path) if suffix == ".ply" else None
    if expected is not None and len(xyz) != expected:
        raise InputError(f"could read only {len(xyz)} of {expected} points (corrupt PLY?)", path)
    if suffix in LEGACY_SUFFIXES:
        _check_text_rows(path, suffix, len(xyz))
    if len(xyz) == 0 and path.stat().st_size > 0:
        raise InputError(f"no points could be read (not a valid {suffix[1:].upper()} file?)", path)
    xyz = np.asarray(xyz, dtype=np.float64)
    bad = ~np.isfinite(xyz).all(axis=1)
    if bad.any():
        raise InputError(f"{int(bad.sum())} points have NaN or inf coordinates", path)
    return PointCloud(xyz, attrs)


def write_o3d(cloud: PointCloud, path) -> None:
    """Write PLY/PCD (xyz, colours, normals, other numeric attributes) or XYZ-family text, atomically."""
    import open3d as o3d

    path = Path(path)
    suffix = path.suffix.lower()
    if len(cloud) == 0:  # open3d fails on it or writes a file nothing reads back
        raise OutputError(f"an empty cloud cannot be written as {suffix} (LAS/LAZ can hold one)", path)
    has_rgb = all(c in cloud.attributes for c in _RGB)
    has_nrm = all(c in cloud.attributes for c in _NORMALS)
    with atomic_path(path) as tmp:
        if suffix in TENSOR_SUFFIXES:
            pcd = o3d.t.geometry.PointCloud()
            pcd.point.positions = o3d.core.Tensor(np.ascontiguousarray(cloud.xyz))
            if has_rgb:
                pcd.point.colors = o3d.core.Tensor(_colors_to_unit(cloud).astype(np.float32))
            if has_nrm:
                # float64 like positions: open3d's PCD writer garbles mixed widths
                pcd.point.normals = o3d.core.Tensor(np.stack(
                    [cloud.attributes[c] for c in _NORMALS], axis=1).astype(np.float64))
            for name in cloud.attributes:
                if name in _RGB or name in _NORMALS:
                    continue
                value = np.asarray(cloud.attributes[name])
                if value.dtype.kind not in "iuf":
                    continue
                value = _ply_safe(value.reshape(len(cloud), -1))
                pcd.point[name] = o3d.core.Tensor(np.ascontiguousarray(value))
            ok = o3d.t.io.write_point_cloud(str(tmp), pcd)
        else:
            pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(cloud.xyz))
            if has_rgb:
                pcd.colors = o3d.utility.Vector3dVector(_colors_to_unit(cloud))
            if has_nrm:
                pcd.normals = o3d.utility.Vector3dVector(np.stack(
                    [cloud.attributes[c] for c in _NORMALS], axis=1).astype(np.float64))
            ok = o3d.io.write_point_cloud(str(tmp), pcd, format=suffix[1:])
        if not ok:
            raise OutputError("open3d could not write the file", path)
