"""Earth mover's distance between equal-size point sets, with three methods behind one call.

* ``"auction"`` (default): Bertsekas' auction with epsilon-scaling, compiled (``cuda_ops/cpu/
  emd_auction.cpp``, ``cuda_ops/cuda/emd_auction.cu``), pure torch as fallback. ``eps`` is the
  relative tolerance: the cost is at most ``eps`` above the optimum (certified, see the kernel).
* ``"exact"``: scipy's ``linear_sum_assignment`` (CPU, float64): the reference.
* ``"sinkhorn"``: geomloss' entropic OT; ``eps`` is geomloss' ``blur``. Returns the transport
  cost of the entropic plan (see :mod:`pcgen.ops._emd_sinkhorn`); its "assignment" is each
  row's heaviest column, not a permutation.

The cost is differentiable in ``x`` and ``y`` on the fixed assignment (or plan): the matching is
computed without gradient, then the cost is rebuilt from it with torch ops, so
``d cost / d x_i = 2 (x_i - y_sigma(i)) / N`` for squared distances.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from pcgen.errors import ConfigError, ShapeError
from pcgen.ops import _emd_reference as ref
from pcgen.ops._checks import check_finite, check_pair, whole_number
from pcgen.ops._ext import has_op

EMDMethod = Literal["auction", "exact", "sinkhorn"]
MIN_AUCTION_SCALING = 1.5  # epsilon divisor per phase; the phases multiply as it nears 1
_DEFAULT_EPS = {"auction": 1e-2, "sinkhorn": 0.01, "exact": 0.0}


@dataclass
class EMDOutput:
    """``cost`` (B,) per-cloud EMD; ``assignment`` (B, N) int64, ``x[b, i]`` -> ``y[b, assignment[b, i]]``."""

    cost: torch.Tensor
    assignment: torch.Tensor


def emd_assignment(x: torch.Tensor, y: torch.Tensor, method: EMDMethod = "auction",
                   squared: bool = True, eps: float | None = None, scaling: float | None = None,
                   per_cell: int = 32) -> torch.Tensor:
    """The matching only (no gradient). Arguments as :func:`emd`. Returns (B, N) int64."""
    eps = _check(x, y, method, eps)
    x, y = x.detach(), y.detach()
    check_finite("x and y", torch.cat([x, y], 1))
    if method == "exact":
        return ref.exact_assignment(x, y, squared)
    if method == "sinkhorn":
        return torch.stack([_sinkhorn(x[b], y[b], squared, eps, scaling)[1] for b in range(x.shape[0])]) \
            if x.shape[0] else torch.empty(0, x.shape[1], dtype=torch.long, device=x.device)
    if not eps > 0:
        raise ConfigError(f"auction tolerance eps must be > 0, got {eps}")
    scaling = 8.0 if scaling is None else float(scaling)
    if not MIN_AUCTION_SCALING <= scaling < math.inf:  # 1.0001 ran 30 s on 300 points: a hang
        raise ConfigError(f"auction scaling must be >= {MIN_AUCTION_SCALING:g}, got {scaling}")
    per_cell = whole_number("per_cell", per_cell, 1)
    if has_op("emd_auction", x.device):
        _register_fake()
        assignment, _ = torch.ops.pcgen.emd_auction(x.contiguous(), y.contiguous(), squared, eps,
                                                   int(per_cell), scaling)
        return assignment
    return ref.auction_reference(x, y, squared, eps, scaling)[0]


_FAKE_REGISTERED = False


def _register_fake() -> None:
    """Shapes of ``pcgen::emd_auction`` for torch.compile / opcheck (registered once)."""
    global _FAKE_REGISTERED
    if _FAKE_REGISTERED:
        return
    _FAKE_REGISTERED = True

    @torch.library.register_fake("pcgen::emd_auction")
    def _fake(x, y, squared, tol, per_cell, scaling):
        return (x.new_empty(x.shape[0], x.shape[1], dtype=torch.int64),
                x.new_empty(x.shape[0], dtype=torch.float64))


def _check(x, y, method, eps) -> float:
    check_pair(x, y, ("x", "y"))
    if x.shape[1] != y.shape[1]:
        raise ShapeError(f"emd needs equal-size sets, got x {tuple(x.shape)} and y {tuple(y.shape)}")
    if method not in _DEFAULT_EPS:
        raise ConfigError(f"emd method must be one of {sorted(_DEFAULT_EPS)}, got {method!r}")
    return _DEFAULT_EPS[method] if eps is None else float(eps)


def _sinkhorn(x, y, squared, blur, scaling):
    from pcgen.ops._emd_sinkhorn import sinkhorn_plan

    if not blur > 0:
        raise ConfigError(f"sinkhorn blur eps must be > 0, got {blur}")
    scaling = 0.9 if scaling is None else float(scaling)
    if not 0 < scaling < 1:
        raise ConfigError(f"sinkhorn scaling must lie in (0, 1), got {scaling}")
    plan = sinkhorn_plan(x, y, squared, blur, scaling)
    return plan, plan.argmax(1)


def _matched_cost(x, y, assignment, squared):
    ym = torch.gather(y, 1, assignment[..., None].expand(-1, -1, y.shape[2]))
    d2 = (x - ym).pow(2).sum(-1)
    if squared:
        return d2.mean(-1)
    # sqrt with a zero (not NaN) gradient at coincident points
    safe = torch.where(d2 > 0, d2, torch.ones_like(d2))
    return torch.where(d2 > 0, safe.sqrt(), torch.zeros_like(d2)).mean(-1)


def emd(x: torch.Tensor, y: torch.Tensor, method: EMDMethod = "auction", squared: bool = True,
        eps: float | None = None, return_assignment: bool = False, *, scaling: float | None = None,
        per_cell: int = 32):
    """Earth mover's distance per cloud: mean over points of the (squared) distance under the matching.

    Args:
        x: (B, N, D) float32/float64.
        y: (B, N, D), same size as ``x`` (EMD here is a bijection).
        method: ``"auction"`` (default), ``"exact"`` (scipy, CPU) or ``"sinkhorn"`` (geomloss).
        squared: average squared distances (default, as in most losses) or plain distances
            (as PointFlow's evaluation EMD).
        eps: auction: relative tolerance (default 0.01: cost <= 1.01 x optimum, certified);
            sinkhorn: geomloss ``blur`` (default 0.01, distance units); exact: ignored.
        return_assignment: also return the matching.
        scaling: auction: epsilon divisor per phase (default 8); sinkhorn: geomloss ``scaling``
            (default 0.9).
        per_cell: auction (compiled CPU kernel): objects per grid cell of its bid search.
    Returns:
        cost (B,) in ``x``'s dtype, differentiable w.r.t. ``x`` and ``y`` on the fixed matching;
        or ``EMDOutput(cost, assignment (B, N) int64)`` when ``return_assignment``.
    """
    if method == "sinkhorn":
        eps_ = _check(x, y, method, eps)
        check_finite("x and y", torch.cat([x.detach(), y.detach()], 1))
        if x.shape[1] == 0:  # geomloss has no plan between empty clouds; a mean over no points, as the auction
            cost = x.new_full((x.shape[0],), float("nan"))
            assignment = torch.empty(x.shape[0], 0, dtype=torch.long, device=x.device)
            return EMDOutput(cost, assignment) if return_assignment else cost
        costs, assigns = [], []
        for b in range(x.shape[0]):
            plan, a = _sinkhorn(x[b].detach(), y[b].detach(), squared, eps_, scaling)
            plan = (plan / plan.sum()).to(x.dtype)
            costs.append((plan * ref.pairwise_cost(x[b], y[b], squared)).sum())
            assigns.append(a)
        cost = torch.stack(costs) if costs else x.new_zeros(0)
        assignment = torch.stack(assigns) if assigns else torch.empty(0, x.shape[1], dtype=torch.long)
    else:
        assignment = emd_assignment(x, y, method, squared, eps, scaling, per_cell)
        cost = _matched_cost(x, y, assignment, squared)
    return EMDOutput(cost, assignment) if return_assignment else cost
