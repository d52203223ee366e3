"""pcgen.ops on the CPU: compiled kernels vs pure-torch references, gradients, edge cases."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from pcgen.errors import ConfigError, ShapeError
from pcgen.ops import _ext, ball_query, chamfer, farthest_point_sample, knn, knn_gather, reference

_spec = importlib.util.spec_from_file_location("ops_checks", Path(__file__).with_name("checks.py"))
checks = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(checks)

DTYPES = [torch.float32, torch.float64]


def test_extension_is_built():
    if "1" in (os.environ.get("PCGEN_NO_EXT"), os.environ.get("PCGEN_FORCE_REFERENCE")):
        pytest.skip("running on the references on purpose")
    for name in ("knn", "ball_query", "farthest_point_sample"):
        assert _ext.has_op(name, "cpu"), f"pcgen._C lacks a CPU kernel for {name}"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("D,k", [(3, 1), (3, 7), (2, 3), (5, 4)])
def test_knn_matches_reference(dtype, D, k):
    checks.check_knn_matches_reference("cpu", dtype, D, k)


def test_knn_padding():
    checks.check_knn_padding("cpu")


@pytest.mark.parametrize("dtype", DTYPES)
def test_ball_query_matches_reference(dtype):
    checks.check_ball_query_matches_reference("cpu", dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_fps_matches_reference(dtype):
    checks.check_fps_matches_reference("cpu", dtype)


def test_fps_spread_and_random_start():
    checks.check_fps_spread("cpu")


@pytest.mark.parametrize("dtype", DTYPES)
def test_chamfer_matches_naive(dtype):
    checks.check_chamfer_matches_naive("cpu", dtype)


def test_gradcheck():
    checks.check_gradcheck("cpu")


def test_large_clouds_against_ckdtree():
    if not _ext.has_op("knn"):
        pytest.skip("the chunked reference is too slow for 50k x 50k in the test budget")
    checks.check_large("cpu")


def test_lidar_patch(lidar_files):
    from pcgen.io import read

    cloud = read(next(p for p in lidar_files if p.name == "Megaplot.laz"))
    xyz = cloud.xyz
    mid = np.median(xyz[:, :2], axis=0)
    patch = xyz[(np.abs(xyz[:, :2] - mid) < 25.0).all(1)]  # 50 m x 50 m of forest, real coordinates
    assert 2000 < len(patch) < 20000
    checks.check_lidar_patch("cpu", patch)


def test_chamfer_hand_computed():
    # cloud 0: x = (0,0,0), (1,0,0); y = (0,0,1)
    #   x->y squared: 1, 2 -> mean 1.5; y->x: min(1, 2) = 1 -> total 2.5
    # cloud 1: x = (0,0,0), (0,2,0) (+ one padding point); y = (0,-1,0), (0,3,0)
    #   x->y: 1, 1 -> 1;  y->x: 1, 1 -> 1 -> total 2
    x = torch.tensor([[[0, 0, 0], [1, 0, 0], [9, 9, 9]], [[0, 0, 0], [0, 2, 0], [7, 7, 7]]],
                     dtype=torch.float64)
    y = torch.tensor([[[0, 0, 1], [5, 5, 5]], [[0, -1, 0], [0, 3, 0]]], dtype=torch.float64)
    lx, ly = torch.tensor([2, 2]), torch.tensor([1, 2])
    out = chamfer(x, y, lx, ly)
    assert out.loss.item() == pytest.approx((2.5 + 2.0) / 2)
    assert out.x_nearest.tolist() == [[0, 0, -1], [0, 1, -1]]
    assert out.y_nearest.tolist() == [[0, -1], [0, 1]]
    per = chamfer(x, y, lx, ly, batch_reduction=None)
    assert per.loss.tolist() == pytest.approx([2.5, 2.0])
    assert chamfer(x, y, lx, ly, point_reduction="sum").loss.item() == pytest.approx((4 + 4) / 2)
    one = chamfer(x, y, lx, ly, single_directional=True, batch_reduction="sum")
    assert one.loss.item() == pytest.approx(1.5 + 1.0)
    plain = chamfer(x, y, lx, ly, squared=False, batch_reduction=None)
    assert plain.loss.tolist() == pytest.approx([(1 + 2 ** 0.5) / 2 + 1, 2.0])
    mx = chamfer(x, y, lx, ly, point_reduction="max", batch_reduction=None)
    assert mx.loss.tolist() == pytest.approx([2 + 1, 1 + 1])
    terms = chamfer(x, y, lx, ly, point_reduction=None, batch_reduction=None).loss
    torch.testing.assert_close(terms[0], torch.tensor([[1.0, 2, 0], [1, 1, 0]], dtype=torch.float64))
    torch.testing.assert_close(terms[1], torch.tensor([[1.0, 0], [1, 1]], dtype=torch.float64))
    wx = torch.tensor([[1.0, 3.0, 0.0], [1.0, 1.0, 0.0]], dtype=torch.float64)
    wy = torch.ones(2, 2, dtype=torch.float64)
    w = chamfer(x, y, lx, ly, weights=(wx, wy), batch_reduction=None)
    assert w.loss.tolist() == pytest.approx([(1 + 6) / 4 + 1, 2.0])


def test_a_cloud_against_an_empty_one_is_infinitely_far_not_a_perfect_match():
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(2, 5, 3, generator=g), torch.rand(2, 6, 3, generator=g)
    ly = torch.tensor([0, 6])
    for reduction in ("mean", "sum", "max"):
        loss = chamfer(x, y, y_lengths=ly, point_reduction=reduction, batch_reduction=None).loss
        assert loss[0].item() == float("inf")  # was 0: five points matched by nothing
        assert loss[1].item() == pytest.approx(chamfer(x[1:], y[1:], point_reduction=reduction).loss.item())
    assert chamfer(x, y, y_lengths=ly, squared=False, batch_reduction=None).loss[0].item() == float("inf")
    both = chamfer(x, y, x_lengths=torch.tensor([0, 5]), y_lengths=ly, batch_reduction=None).loss
    assert both[0].item() == 0.0  # two empty clouds
    assert chamfer(x[:, :0], y[:, :0], point_reduction="max").loss.item() == 0.0  # was an amax IndexError


def test_scalar_options_and_gather_indices_are_checked():
    from pcgen.ops import knn_gather

    x, y = torch.rand(1, 4, 3), torch.rand(1, 6, 3)
    for bad in (None, "2", 0, 1.5, True):
        with pytest.raises(ConfigError, match=f"k must be a whole number >= 1, got {bad!r}"):
            knn(x, y, bad)  # None was int()'s TypeError; "2" was "got 2"
    for bad in (None, "0.1", 0.0, float("nan")):
        with pytest.raises(ConfigError, match="radius must be a finite number > 0"):
            ball_query(x, y, bad, 2)
    with pytest.raises(ConfigError, match="n must be a whole number >= 0, got None"):
        farthest_point_sample(x, None)
    with pytest.raises(ShapeError, match="lengths2 must be an integer"):
        knn(x, y, 1, lengths2=torch.tensor([True]))  # was read as 1
    feats = torch.rand(1, 6, 5)
    idx = knn(x, y, 2).idx
    assert knn_gather(feats, idx).shape == (1, 4, 2, 5)
    for bad, says in ((idx + 10, r"idx must lie in \[-1, 5\]"), (idx - 3, r"idx must lie in \[-1, 5\]"),
                      (idx.float(), "idx must be an integer"), (idx[0], "idx must be an integer"),
                      (torch.cat([idx, idx]), "must share batch size")):
        with pytest.raises(ShapeError, match=says):
            knn_gather(feats, bad)  # -2 was zero-filled silently, 99 a torch index error


def test_chamfer_gradient_direction():
    """Moving x towards its nearest y lowers the loss: the gradient points away from y."""
    x = torch.tensor([[[0.0, 0.0, 0.0]]], requires_grad=True)
    y = torch.tensor([[[1.0, 0.0, 0.0]]], requires_grad=True)
    chamfer(x, y).loss.backward()
    assert x.grad.tolist() == [[[-4.0, 0.0, 0.0]]]  # d/dx of 2 * (x - y)^2
    assert y.grad.tolist() == [[[4.0, 0.0, 0.0]]]


def test_opcheck():
    if not _ext.has_op("knn"):
        pytest.skip("pcgen._C not built")
    g = torch.Generator().manual_seed(0)
    p1 = torch.rand(2, 20, 3, generator=g, dtype=torch.float64, requires_grad=True)
    p2 = torch.rand(2, 25, 3, generator=g, dtype=torch.float64, requires_grad=True)
    l1, l2 = torch.tensor([20, 7]), torch.tensor([25, 3])
    # the aot_dispatch checks take ~10 s here; torch.compile is covered by test_torch_compile
    utils = ("test_schema", "test_autograd_registration", "test_faketensor")
    torch.library.opcheck(torch.ops.pcgen.knn, (p1, p2, l1, l2, 4), test_utils=utils)
    torch.library.opcheck(torch.ops.pcgen.ball_query, (p1, p2, l1, l2, 4, 0.4), test_utils=utils)
    torch.library.opcheck(torch.ops.pcgen.farthest_point_sample,
                          (p1.detach(), l1, 5, torch.tensor([0, 3])), test_utils=utils)


def test_torch_compile():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 100, 3, generator=g, requires_grad=True)
    y = torch.rand(2, 90, 3, generator=g)

    def f(a, b):
        return chamfer(a, b).loss

    compiled = torch.compile(f, backend="aot_eager", fullgraph=True)
    got = compiled(x, y)
    got.backward()
    gx = x.grad.clone()
    x.grad = None
    want = f(x, y)
    want.backward()
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(gx, x.grad)


def test_bad_inputs():
    x = torch.rand(2, 10, 3)
    with pytest.raises(ShapeError, match="must be a \\(B, N, D\\)"):
        knn(torch.rand(10, 3), x, 1)
    with pytest.raises(ShapeError, match="share batch size"):
        knn(x, torch.rand(3, 10, 3), 1)
    with pytest.raises(ShapeError, match="float32 or float64"):
        knn(x.half(), x.half(), 1)
    with pytest.raises(ConfigError, match="k must be"):
        knn(x, x, 0)
    with pytest.raises(ShapeError, match="lengths1 must lie"):
        knn(x, x, 1, lengths1=torch.tensor([11, 2]))
    with pytest.raises(ConfigError, match="radius"):
        ball_query(x, x, 0.0, 2)
    with pytest.raises(ConfigError, match="n must be"):
        farthest_point_sample(x, -1)
    with pytest.raises(ConfigError, match="point_reduction"):
        chamfer(x, x, point_reduction="median")
    with pytest.raises(ShapeError, match="weights"):
        chamfer(x, x, weights=torch.ones(3))
    with pytest.raises(ShapeError, match="non-negative"):
        chamfer(x, x, weights=torch.tensor([1.0, -1.0]))
    with pytest.raises(ShapeError, match="per-point weights of x must be finite and non-negative"):  # gave -4.7e11
        chamfer(x, x, weights=(-torch.ones(x.shape[:2], dtype=x.dtype), torch.ones(x.shape[:2], dtype=x.dtype)))


def test_all_zero_cloud_weights_give_zero_not_nan():
    """0/0 gave NaN; pytorch3d returns 0, and the gradient stays finite."""
    x = torch.rand(2, 5, 3, dtype=torch.float64, requires_grad=True)
    out = chamfer(x, torch.rand(2, 7, 3, dtype=torch.float64), weights=torch.zeros(2, dtype=torch.float64))
    assert out.loss.item() == 0.0
    out.loss.backward()
    assert torch.equal(x.grad, torch.zeros_like(x))


def test_reference_chunks_without_dense_matrix(monkeypatch):
    """The fallback works in row blocks: force tiny blocks and compare with a dense answer."""
    from pcgen.ops import reference as R

    monkeypatch.setattr(R, "CHUNK_ELEMS", 64)
    p1, p2, l1, l2 = checks.ragged_batch(3, torch.float64, "cpu")
    d, i = R.knn_reference(p1, p2, l1, l2, 2)
    for b in range(p1.shape[0]):
        n, m = int(l1[b]), int(l2[b])
        if n and m:
            dd = torch.cdist(p1[b, :n], p2[b, :m]) ** 2
            want = dd.topk(min(2, m), largest=False)
            torch.testing.assert_close(d[b, :n, :min(2, m)], want.values)
    assert np.isfinite(d.numpy()).all()


def test_non_finite_points_do_not_break_the_search():
    g = torch.Generator().manual_seed(5)
    x = torch.rand(1, 300, 3, generator=g)
    y = torch.rand(1, 400, 3, generator=g)
    far = y.clone()
    far[0, 5] = 1e6
    y[0, 5] = float("inf")
    assert torch.equal(knn(x, y, 2).idx, knn(x, far, 2).idx)


def test_chamfer_refuses_what_it_cannot_measure():
    """A NaN point gave a NaN, an infinite or a finite loss that left the point out, by cloud size;
    a list or array of weights was an AttributeError, and a NaN weight passed."""
    x = torch.rand(2, 200, 3)
    y = torch.rand(2, 200, 3)
    y[0, -1] = float("nan")
    with pytest.raises(ShapeError, match="y hold NaN or infinite coordinates"):
        chamfer(x, y, single_directional=True)
    y[0, -1] = 0.5
    for weights, says in (([1.0, 1.0], "weights must be a \\(2,\\) tensor .* got list"),
                          (np.ones(2), "weights must be a \\(2,\\) tensor .* got ndarray"),
                          (torch.tensor([float("nan"), 1.0]), "weights must be finite and non-negative"),
                          ((torch.ones(2, 200), torch.ones(2, 7)), "per-point weights of y must be a \\(2, 200\\)")):
        with pytest.raises(ShapeError, match=says):
            chamfer(x, y, weights=weights)


def test_farthest_point_sample_never_repeats_a_pick():
    """Duplicate returns left only distance 0 and the argmax took point 0 again: [0, 5, 0, 0]."""
    p = torch.zeros(1, 10, 3)
    p[0, 5:, 0] = 1.0
    assert farthest_point_sample(p, 4).tolist() == [[0, 5, 1, 2]]
    ref = reference.farthest_point_sample_reference(p, torch.tensor([10]), 4, torch.tensor([7]))
    assert ref.tolist() == [[7, 0, 1, 2]]
    assert sorted(farthest_point_sample(p, 10)[0].tolist()) == list(range(10))
    p[0, 3] = float("nan")
    with pytest.raises(ShapeError, match="points hold NaN or infinite coordinates"):
        farthest_point_sample(p, 4)


def test_gather_from_an_empty_cloud_gives_zeros():
    p1, p2 = torch.rand(1, 4, 3), torch.rand(1, 0, 3)
    result = knn(p1, p2, 2)
    assert result.idx.tolist() == [[[-1, -1]] * 4]
    assert torch.equal(knn_gather(p2, result.idx), torch.zeros(1, 4, 2, 3))
