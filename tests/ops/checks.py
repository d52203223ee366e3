"""Correctness checks shared by the CPU tests (test_ops.py) and the CUDA tests (test_ops_cuda.py).

Each check takes a device and compares the public op (compiled kernel when built) with the
pure-torch reference or with an independent computation (cdist, scipy's cKDTree).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.spatial import cKDTree

from pcgen.ops import ball_query, chamfer, farthest_point_sample, knn
from pcgen.ops import reference as R

RAGGED = [(37, 50), (0, 11), (64, 3), (12, 0)]  # (len1, len2) per cloud, incl. empty ones


def ragged_batch(D, dtype, device, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    B = len(RAGGED)
    N = max(a for a, _ in RAGGED)
    M = max(b for _, b in RAGGED)
    p1 = (torch.rand(B, N, D, generator=g, dtype=dtype) * scale).to(device)
    p2 = (torch.rand(B, M, D, generator=g, dtype=dtype) * scale).to(device)
    l1 = torch.tensor([a for a, _ in RAGGED], device=device)
    l2 = torch.tensor([b for _, b in RAGGED], device=device)
    return p1, p2, l1, l2


def check_knn_matches_reference(device, dtype, D, k):
    for p1, p2, l1, l2 in [ragged_batch(D, dtype, device, seed=D + k),
                           _full_batch(3, 700, 900, D, dtype, device, seed=k)]:
        out = knn(p1, p2, k, l1, l2)
        ref_d, ref_i = R.knn_reference(p1, p2, l1, l2, k)
        assert out.idx.dtype == torch.int64 and out.dists.dtype == dtype
        tol = 1e-5 if dtype == torch.float32 else 1e-12
        torch.testing.assert_close(out.dists, ref_d, atol=tol, rtol=tol)
        assert torch.equal(out.idx < 0, ref_i < 0)
        # indices agree except between neighbours at equal distance (float32 rounding ties)
        same = (out.idx == ref_i).double().mean().item()
        assert same == 1.0 if dtype == torch.float64 else same > 0.999


def _full_batch(B, N, M, D, dtype, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    p1 = torch.rand(B, N, D, generator=g, dtype=dtype).to(device)
    p2 = torch.rand(B, M, D, generator=g, dtype=dtype).to(device)
    return p1, p2, None, None


def check_knn_padding(device):
    p1, p2, l1, l2 = ragged_batch(3, torch.float64, device)
    out = knn(p1, p2, 5, l1, l2)
    # cloud 2 has 3 points: 2 of the 5 slots are missing; cloud 1 has no queries; cloud 3 no targets
    assert (out.idx[2, :64, 3:] == -1).all() and (out.idx[2, :64, :3] >= 0).all()
    assert (out.dists[2, :64, 3:] == 0).all()
    assert (out.idx[1] == -1).all() and (out.idx[3] == -1).all()
    assert (out.idx[0, 37:] == -1).all()  # padded queries


def check_ball_query_matches_reference(device, dtype):
    p1, p2, l1, l2 = ragged_batch(3, dtype, device, seed=5)
    for r in (0.1, 0.3, 2.0):
        out = ball_query(p1, p2, r, 6, l1, l2)
        ref_d, ref_i = R.ball_query_reference(p1, p2, l1, l2, 6, r)
        assert torch.equal(out.idx, ref_i)
        torch.testing.assert_close(out.dists, ref_d)
        assert (out.dists <= r * r).all()
    # every point within the radius is found when k is large enough
    p1, p2, _, _ = _full_batch(2, 300, 400, 3, dtype, device, seed=9)
    out = ball_query(p1, p2, 0.2, 400)
    inside = (torch.cdist(p1.double(), p2.double()) ** 2 <= 0.04).sum(-1)
    assert torch.equal((out.idx >= 0).sum(-1), inside)


def check_fps_matches_reference(device, dtype):
    p, _, l, _ = ragged_batch(3, dtype, device, seed=3)
    for n in (1, 10, 40):
        out = farthest_point_sample(p, n, l)
        assert torch.equal(out, R.farthest_point_sample_reference(p, l, n, torch.zeros_like(l)))
        if _has("farthest_point_sample", device):
            start = torch.tensor([5, 0, 63, 1], device=device).minimum((l - 1).clamp_min(0))
            got = torch.ops.pcgen.farthest_point_sample(p, l, n, start)
            assert torch.equal(got, R.farthest_point_sample_reference(p, l, n, start))
    out = farthest_point_sample(p, 40, l)
    assert (out[0, 37:] == -1).all() and (out[1] == -1).all() and (out[0, :37] >= 0).all()
    assert len(set(out[2].tolist())) == 40  # distinct points


def _has(name, device):
    from pcgen.ops import _ext

    return _ext.has_op(name, device)


def check_fps_spread(device):
    """FPS covers the cloud: its covering radius beats a random subset's by far."""
    g = torch.Generator().manual_seed(1)
    p = torch.rand(1, 2000, 3, generator=g, dtype=torch.float64).to(device)
    idx = farthest_point_sample(p, 64)
    rnd = torch.randperm(2000, generator=g)[:64].to(device)[None]

    def cover(i):
        return torch.cdist(p[0], p[0, i[0]]).min(1).values.max().item()

    assert cover(idx) < 0.8 * cover(rnd)
    starts = set()
    for seed in range(6):
        a = farthest_point_sample(p, 8, random_start=True, generator=torch.Generator().manual_seed(seed))
        b = farthest_point_sample(p, 8, random_start=True, generator=torch.Generator().manual_seed(seed))
        assert torch.equal(a, b)
        starts.add(int(a[0, 0]))
    assert len(starts) > 1


def naive_chamfer(x, y, lx, ly):
    """Per-cloud (x->y mean, y->x mean) with cdist, for checking."""
    out = []
    for b in range(x.shape[0]):
        d = torch.cdist(x[b, :lx[b]].double(), y[b, :ly[b]].double()) ** 2
        out.append((d.min(1).values.mean(), d.min(0).values.mean()))
    return out


def check_chamfer_matches_naive(device, dtype):
    g = torch.Generator().manual_seed(2)
    x = torch.rand(3, 80, 3, generator=g, dtype=dtype).to(device)
    y = torch.rand(3, 60, 3, generator=g, dtype=dtype).to(device)
    lx = torch.tensor([80, 17, 40], device=device)
    ly = torch.tensor([60, 60, 5], device=device)
    terms = naive_chamfer(x, y, lx, ly)
    want = sum(a + b for a, b in terms) / 3
    got = chamfer(x, y, lx, ly)
    tol = 1e-6 if dtype == torch.float32 else 1e-12
    assert abs(got.loss.item() - want.item()) < tol
    w = torch.tensor([1.0, 2.0, 0.5], dtype=dtype, device=device)
    got = chamfer(x, y, lx, ly, weights=w, batch_reduction="sum")
    want = sum(wi * (a + b) for wi, (a, b) in zip(w.tolist(), terms))
    assert abs(got.loss.item() - want.item()) < tol * 10
    one = chamfer(x, y, lx, ly, single_directional=True, batch_reduction=None)
    torch.testing.assert_close(one.loss.double().cpu(), torch.stack([a for a, _ in terms]).cpu(),
                               atol=tol, rtol=tol)
    assert one.y_nearest is None


def check_gradcheck(device):
    g = torch.Generator().manual_seed(7)
    x = torch.rand(2, 12, 3, generator=g, dtype=torch.float64).to(device).requires_grad_()
    y = torch.rand(2, 10, 3, generator=g, dtype=torch.float64).to(device).requires_grad_()
    lx, ly = torch.tensor([12, 7], device=device), torch.tensor([10, 4], device=device)
    assert torch.autograd.gradcheck(lambda a, b: knn(a, b, 4, lx, ly).dists, (x, y))
    fast = dict(fast_mode=True)
    assert torch.autograd.gradcheck(lambda a, b: ball_query(a, b, 0.3, 4, lx, ly).dists, (x, y), **fast)
    assert torch.autograd.gradcheck(lambda a, b: chamfer(a, b, lx, ly).loss, (x, y), **fast)
    assert torch.autograd.gradcheck(lambda a, b: chamfer(a, b, squared=False, point_reduction="sum").loss,
                                    (x, y), **fast)


def check_large(device, n=50_000):
    """A cloud pair too big for a dense distance matrix budget, against cKDTree."""
    g = torch.Generator().manual_seed(11)
    x = torch.rand(1, n, 3, generator=g, dtype=torch.float64)
    y = torch.rand(1, n, 3, generator=g, dtype=torch.float64) * torch.tensor([1.0, 1.0, 0.05],
                                                                              dtype=torch.float64)
    out = chamfer(x.to(device), y.to(device), batch_reduction=None)
    dx, ix = cKDTree(y[0].numpy()).query(x[0].numpy(), k=1)
    dy, iy = cKDTree(x[0].numpy()).query(y[0].numpy(), k=1)
    assert math.isclose(out.loss.item(), float((dx ** 2).mean() + (dy ** 2).mean()), rel_tol=1e-9)
    assert (out.x_nearest[0].cpu().numpy() == ix).mean() > 0.9999
    assert (out.y_nearest[0].cpu().numpy() == iy).mean() > 0.9999


def check_lidar_patch(device, xyz: np.ndarray):
    """Real LiDAR in real-world coordinates (large offsets, surfaces, duplicates) vs cKDTree."""
    x = torch.from_numpy(xyz[::2].copy())[None].to(device)
    y = torch.from_numpy(xyz[1::2].copy())[None].to(device)
    out = knn(x, y, 8)
    d, i = cKDTree(xyz[1::2]).query(xyz[::2], k=8)
    np.testing.assert_allclose(out.dists[0].cpu().numpy(), d ** 2, rtol=1e-9, atol=1e-9)
    c = chamfer(x.float(), y.float())  # float32 on real coordinates: centre first, as users should
    c0 = chamfer(x - x.mean(1, keepdim=True), y - x.mean(1, keepdim=True))
    dy, _ = cKDTree(xyz[::2]).query(xyz[1::2], k=1)
    want = float((d[:, 0] ** 2).mean() + (dy ** 2).mean())
    assert math.isclose(c0.loss.item(), want, rel_tol=1e-9)
    assert math.isfinite(c.loss.item())
    bq = ball_query(x, y, 1.0, 16)
    n_in = (d ** 2 <= 1.0).sum(1)
    assert ((bq.idx[0, :, :8] >= 0).sum(1).cpu().numpy() == n_in).all()
