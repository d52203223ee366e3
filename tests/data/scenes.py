"""A small synthetic airborne-LiDAR scene (terrain, trees, buildings) for the data tests.

It exercises the code paths (ASPRS classes, returns, GPS time, CRS, a LAS header on a
centimetre grid) in milliseconds; it is never a stand-in for the real sample files.
"""

from __future__ import annotations

import laspy
import numpy as np
import pyproj

from pcgen.io.cloud import PointCloud

GROUND, HIGH_VEGETATION, BUILDING = 2, 5, 6


def _terrain(rng, x, y, size):
    """Smooth rolling terrain: a few random sinusoids on a tilted plane, metres."""
    z = 250.0 + 0.05 * x - 0.03 * y
    for _ in range(3):
        kx, ky = rng.uniform(0.5, 2.5, 2) * 2 * np.pi / size
        z = z + rng.uniform(0.5, 2.0) * np.sin(kx * x + ky * y + rng.uniform(0, 2 * np.pi))
    return z


def make_scene(seed: int = 0, size: float = 60.0, density: float = 4.0, n_trees: int = 12,
               n_buildings: int = 2, origin=(500_000.0, 5_000_000.0)) -> PointCloud:
    """Generate a scene in UTM 17N (EPSG:32617) on a 1 cm grid.

    Args:
        seed: RNG seed; the same seed gives the same cloud.
        size: side of the square scene in metres.
        density: ground points per square metre.
        n_trees: conical-crown trees (class 5, first of two returns over ground).
        n_buildings: flat-roofed boxes (class 6 roofs and walls).
        origin: (x, y) of the scene's lower-left corner.
    Returns:
        `PointCloud` with a LAS 1.2 point-format-1 header and attributes ``classification``,
        ``intensity``, ``return_number``, ``number_of_returns``, ``gps_time``.
    """
    rng = np.random.default_rng(seed)
    ox, oy = origin
    n_ground = int(size * size * density)
    gx, gy = rng.uniform(0, size, n_ground), rng.uniform(0, size, n_ground)
    parts = [(gx, gy, _terrain(np.random.default_rng(seed), gx, gy, size),
              np.full(n_ground, GROUND))]
    returns = [np.ones(n_ground, np.uint8)]
    nret = [np.ones(n_ground, np.uint8)]
    for _ in range(n_buildings):
        w, d, h = rng.uniform(8, 15), rng.uniform(8, 15), rng.uniform(4, 10)
        bx, by = rng.uniform(0, size - w), rng.uniform(0, size - d)
        base = _terrain(np.random.default_rng(seed), np.array([bx + w / 2]),
                        np.array([by + d / 2]), size)[0]
        n_roof = int(w * d * density)
        rx, ry = bx + rng.uniform(0, w, n_roof), by + rng.uniform(0, d, n_roof)
        n_wall = int(2 * (w + d) * h * density * 0.3)
        t = rng.uniform(0, 2 * (w + d), n_wall)
        wx = np.where(t < w, bx + t, np.where(t < w + d, bx + w, np.where(
            t < 2 * w + d, bx + (t - w - d), bx)))
        wy = np.where(t < w, by, np.where(t < w + d, by + (t - w), np.where(
            t < 2 * w + d, by + d, by + (t - 2 * w - d))))
        parts.append((np.concatenate([rx, wx]), np.concatenate([ry, wy]),
                      np.concatenate([np.full(n_roof, base + h), base + rng.uniform(0, h, n_wall)]),
                      np.full(n_roof + n_wall, BUILDING)))
        returns.append(np.ones(n_roof + n_wall, np.uint8))
        nret.append(np.ones(n_roof + n_wall, np.uint8))
    for _ in range(n_trees):
        cx, cy = rng.uniform(0, size, 2)
        height, radius = rng.uniform(8, 25), rng.uniform(1.5, 4.0)
        base = _terrain(np.random.default_rng(seed), np.array([cx]), np.array([cy]), size)[0]
        n = int(np.pi * radius ** 2 * density * 3)
        frac = rng.uniform(0, 1, n) ** 0.7  # depth into the crown, denser near the top
        ang = rng.uniform(0, 2 * np.pi, n)
        r = radius * frac * rng.uniform(0.8, 1.0, n)
        parts.append((cx + r * np.cos(ang), cy + r * np.sin(ang),
                      base + height * (1 - 0.6 * frac), np.full(n, HIGH_VEGETATION)))
        returns.append(np.ones(n, np.uint8))
        nret.append(np.full(n, 2, np.uint8))
    x = np.concatenate([p[0] for p in parts]) + ox
    y = np.concatenate([p[1] for p in parts]) + oy
    z = np.concatenate([p[2] for p in parts])
    cls = np.concatenate([p[3] for p in parts]).astype(np.uint8)
    xyz = np.round(np.stack([x, y, z], axis=1), 2)
    n = len(xyz)
    header = laspy.LasHeader(point_format=1, version="1.2")
    header.scales = np.array([0.01, 0.01, 0.01])
    header.offsets = np.array([ox, oy, 0.0])
    header.add_crs(pyproj.CRS.from_epsg(32617))
    order = np.argsort(xyz[:, 1] + 1e-3 * xyz[:, 0], kind="stable")  # scan-line-ish order
    attrs = {
        "classification": cls[order],
        "intensity": rng.integers(100, 4000, n).astype(np.uint16),
        "return_number": np.concatenate(returns)[order],
        "number_of_returns": np.concatenate(nret)[order],
        "gps_time": 3.0e5 + np.arange(n, dtype=np.float64) * 1e-5,
    }
    return PointCloud(xyz[order], attrs, header=header)
