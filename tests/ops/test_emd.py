"""EMD: auction (compiled and pure torch) against scipy's exact assignment, gradients, Sinkhorn."""

from __future__ import annotations

import pytest
import torch

from pcgen.errors import ConfigError, ShapeError
from pcgen.ops import emd
from pcgen.ops._emd_reference import auction_reference
from pcgen.ops._ext import has_op
from pcgen.ops.emd import EMDOutput, _matched_cost

needs_ext = pytest.mark.skipif(not has_op("emd_auction"), reason="pcgen._C not built")


def _clouds(B=3, N=64, D=3, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(B, N, D, generator=g, dtype=dtype)
    y = torch.rand(B, N, D, generator=g, dtype=dtype) * 0.8 + 0.3  # a different distribution
    return x, y


def _is_perm(a):
    return all(sorted(r.tolist()) == list(range(a.shape[1])) for r in a)


@needs_ext
@pytest.mark.parametrize("squared", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_auction_within_tolerance_of_exact(squared, dtype):
    x, y = _clouds(dtype=dtype)
    exact = emd(x, y, method="exact", squared=squared).double()
    for tol in (1e-1, 1e-2, 1e-4):
        a, bound = torch.ops.pcgen.emd_auction(x, y, squared, tol, 8, 8.0)
        assert _is_perm(a)
        cost = _matched_cost(x.double(), y.double(), a, squared)
        rel = (cost - exact) / exact
        assert (rel >= -1e-6).all()  # never below the optimum
        assert (rel <= bound + 1e-6).all() and (bound <= tol + 1e-12).all()
    assert rel.max() < 1e-4


@needs_ext
def test_compiled_matches_reference_auction_quality():
    x, y = _clouds(B=2, N=48, D=2, seed=3)
    exact = emd(x, y, method="exact")
    a_ref, b_ref = auction_reference(x, y, True, 1e-3, 8.0)
    assert _is_perm(a_ref)
    rel = (_matched_cost(x, y, a_ref, True) - exact) / exact
    assert (rel >= -1e-9).all() and (rel <= b_ref + 1e-9).all() and (rel < 1e-3).all()
    c = emd(x, y, eps=1e-3)
    assert torch.allclose(c, exact, rtol=1e-3)


def test_reference_auction_unsquared_and_tiny():
    x, y = _clouds(B=2, N=20, seed=5)
    exact = emd(x, y, method="exact", squared=False)
    a, bound = auction_reference(x, y, False, 1e-6, 4.0)
    assert torch.allclose(_matched_cost(x, y, a, False), exact, rtol=1e-6)
    one = auction_reference(x[:, :1], y[:, :1])[0]
    assert one.tolist() == [[0], [0]]


@pytest.mark.parametrize("method", ["auction", "exact"])
def test_permuted_copy_is_recovered(method):
    x, _ = _clouds(B=2, N=50, seed=7)
    perm = torch.stack([torch.randperm(50, generator=torch.Generator().manual_seed(s)) for s in (1, 2)])
    y = torch.gather(x, 1, perm[..., None].expand(-1, -1, 3))
    out = emd(x, y, method=method, return_assignment=True)
    assert isinstance(out, EMDOutput)
    assert torch.equal(torch.gather(perm, 1, out.assignment), torch.arange(50).expand(2, 50))
    assert torch.allclose(out.cost, torch.zeros(2, dtype=out.cost.dtype), atol=1e-12)


def test_translation_costs_shift_squared():
    x, _ = _clouds(B=2, N=40, seed=9)
    t = torch.tensor([0.3, -0.2, 0.1], dtype=torch.float64)
    assert torch.allclose(emd(x, x + t, method="exact"), t.pow(2).sum().expand(2))
    assert torch.allclose(emd(x, x + t, method="auction", eps=1e-4), t.pow(2).sum().expand(2), rtol=1e-4)
    assert torch.allclose(emd(x, x + t, method="exact", squared=False), t.norm().expand(2))


@pytest.mark.parametrize("method", ["auction", "exact"])
@pytest.mark.parametrize("squared", [True, False])
def test_gradcheck_on_fixed_assignment(method, squared):
    x, y = _clouds(B=2, N=6, seed=11)
    x.requires_grad_(True)
    y.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: emd(a, b, method=method, squared=squared, eps=1e-9),
                                    (x, y), eps=1e-6, atol=1e-6)


def test_gradient_is_matched_difference():
    x, y = _clouds(B=1, N=30, seed=13)
    x.requires_grad_(True)
    out = emd(x, y, method="exact", return_assignment=True)
    out.cost.sum().backward()
    ym = torch.gather(y, 1, out.assignment[..., None].expand(-1, -1, 3))
    assert torch.allclose(x.grad, 2 * (x.detach() - ym) / 30)


def test_sinkhorn_close_to_exact_and_differentiable():
    x, y = _clouds(B=1, N=40, seed=17)
    exact = emd(x, y, method="exact")
    x.requires_grad_(True)
    out = emd(x, y, method="sinkhorn", eps=0.05, return_assignment=True)
    assert out.assignment.shape == (1, 40)
    assert abs(float(out.cost.detach()) / float(exact) - 1) < 0.25
    out.cost.sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_bad_inputs():
    x, y = _clouds(B=2, N=10)
    with pytest.raises(ShapeError):
        emd(x, y[:, :9])
    with pytest.raises(ShapeError):
        emd(x[0], y[0])
    with pytest.raises(ShapeError):
        emd(x, y.float())
    with pytest.raises(ConfigError):
        emd(x, y, method="hungarian")
    with pytest.raises(ConfigError):
        emd(x, y, eps=0.0)
    with pytest.raises(ConfigError):
        emd(x, y, scaling=1.0)
    with pytest.raises(ConfigError, match="auction scaling must be >= 1.5, got 1.0001"):
        emd(x, y, scaling=1.0001)  # ran 30 s on 300 points
    for bad in (0, -5, 2.5):
        with pytest.raises(ConfigError, match=f"per_cell must be a whole number >= 1, got {bad!r}"):
            emd(x, y, per_cell=bad)  # 0 and -5 were taken


@pytest.mark.parametrize("method", ["auction", "sinkhorn"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 1e25])
def test_emd_refuses_what_it_cannot_settle(bad, method):
    """NaN, inf or a squared distance past float32 hung the auction or crashed the process
    (sinkhorn: a geomloss ValueError)."""
    x, y = _clouds(B=2, N=10, dtype=torch.float32)
    x[1, 3, 2] = bad
    with pytest.raises(ShapeError, match="x and y (hold NaN|span)"):
        emd(x, y, method=method)


def test_sinkhorn_says_when_its_plan_misses_the_marginals():
    """Unconverged, its cost fell 5% under the exact EMD with nothing said."""
    x, y = _clouds(B=1, N=400)
    with pytest.warns(RuntimeWarning, match="no bound on the EMD"):
        emd(x, y, method="sinkhorn")


def test_empty_batch():
    x = torch.zeros(0, 5, 3)
    assert emd(x, x).shape == (0,)
    assert emd(x, x, method="exact").shape == (0,)


@pytest.mark.parametrize("method", ["auction", "exact", "sinkhorn"])
def test_empty_clouds_cost_nan_by_every_method(method):
    x = torch.zeros(2, 0, 3)  # sinkhorn gave an IndexError from geomloss
    out = emd(x, x, method=method, return_assignment=True)
    assert out.cost.shape == (2,) and torch.isnan(out.cost).all() and out.assignment.shape == (2, 0)


@needs_ext
def test_opcheck_schema_and_fake():
    from pcgen.ops.emd import _register_fake

    _register_fake()
    x, y = _clouds(B=2, N=12)
    torch.library.opcheck(torch.ops.pcgen.emd_auction, (x, y, True, 1e-2, 4, 8.0),
                          test_utils=("test_schema", "test_faketensor"))


def test_fallback_without_extension_uses_torch_auction(monkeypatch):
    import sys

    emd_mod = sys.modules["pcgen.ops.emd"]  # the attribute pcgen.ops.emd is the function
    monkeypatch.setattr(emd_mod, "has_op", lambda name, device="cpu": False)
    x, y = _clouds(B=2, N=40, seed=19)
    exact = emd(x, y, method="exact")
    cost = emd(x, y, eps=1e-2)
    assert ((cost - exact) / exact <= 1e-2 + 1e-9).all() and (cost >= exact - 1e-12).all()
