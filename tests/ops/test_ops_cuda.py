"""The CPU correctness checks (checks.py) again on a CUDA device; skipped without one."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from pcgen.ops import _ext, chamfer

pytestmark = pytest.mark.cuda

_spec = importlib.util.spec_from_file_location("ops_checks_cuda", Path(__file__).with_name("checks.py"))
checks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(checks)

DEV = "cuda"
DTYPES = [torch.float32, torch.float64]


def test_cuda_kernels_registered():
    for name in ("knn", "ball_query", "farthest_point_sample"):
        assert _ext.has_op(name, DEV), f"pcgen._C lacks a CUDA kernel for {name}"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("D,k", [(3, 1), (3, 7), (2, 3), (5, 4), (3, 40)])
def test_knn_matches_reference(dtype, D, k):
    checks.check_knn_matches_reference(DEV, dtype, D, k)


def test_knn_padding():
    checks.check_knn_padding(DEV)


@pytest.mark.parametrize("dtype", DTYPES)
def test_ball_query_matches_reference(dtype):
    checks.check_ball_query_matches_reference(DEV, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_fps_matches_reference(dtype):
    checks.check_fps_matches_reference(DEV, dtype)


def test_fps_spread_and_random_start():
    checks.check_fps_spread(DEV)


@pytest.mark.parametrize("dtype", DTYPES)
def test_chamfer_matches_naive(dtype):
    checks.check_chamfer_matches_naive(DEV, dtype)


def test_gradcheck():
    checks.check_gradcheck(DEV)


def test_large_clouds_against_ckdtree():
    checks.check_large(DEV)


def test_lidar_patch(lidar_files):
    import numpy as np

    from pcgen.io import read

    xyz = read(next(p for p in lidar_files if p.name == "Megaplot.laz")).xyz
    mid = np.median(xyz[:, :2], axis=0)
    checks.check_lidar_patch(DEV, xyz[(np.abs(xyz[:, :2] - mid) < 25.0).all(1)])


def test_cpu_and_cuda_agree():
    g = torch.Generator().manual_seed(3)
    x = torch.rand(4, 2048, 3, generator=g)
    y = torch.rand(4, 1500, 3, generator=g)
    a = chamfer(x, y)
    b = chamfer(x.to(DEV), y.to(DEV))
    torch.testing.assert_close(b.loss.cpu(), a.loss, rtol=1e-5, atol=1e-7)
    assert (b.x_nearest.cpu() == a.x_nearest).float().mean() > 0.999
