"""Pure-torch / scipy references for EMD: the auction (fallback without ``pcgen._C``) and the exact
assignment (scipy's ``linear_sum_assignment``, for tests and evaluation).

The auction here is the Jacobi variant (every unassigned bidder bids at once, each object keeps
its highest bid) over the full (N, N) cost matrix of one cloud at a time: simple, correct on any
device, and ``O(N^2)`` memory per cloud. It follows the compiled kernel's epsilon schedule and
stopping rule, so both return an assignment whose cost is at most ``tol`` (relative) above the
optimum.
"""

from __future__ import annotations

import numpy as np
import torch


def pairwise_cost(x: torch.Tensor, y: torch.Tensor, squared: bool) -> torch.Tensor:
    """Cost matrix between two clouds.

    Args:
        x: (N, D), y: (M, D).
    Returns:
        (N, M): squared Euclidean distances, or plain distances when ``squared`` is False.
    """
    d = torch.cdist(x, y).pow(2) if squared else torch.cdist(x, y)
    return d


def _auction_one(C: torch.Tensor, tol: float, scaling: float) -> tuple[torch.Tensor, float]:
    n = C.shape[0]
    dev = C.device
    if n == 1:
        return torch.zeros(1, dtype=torch.long, device=dev), 0.0
    lb = max(float(C.min(1).values.mean()), float(C.min(0).values.mean()))
    cmax = float(C.max())
    eps_min = max(tol * lb, 1e-9 * max(cmax, 1e-300))
    eps = max(4.0 * lb, eps_min)
    price = torch.zeros(n, dtype=C.dtype, device=dev)
    arange = torch.arange(n, device=dev)
    while True:
        owner = torch.full((n,), -1, dtype=torch.long, device=dev)
        assign = torch.full((n,), -1, dtype=torch.long, device=dev)
        while True:
            bidders = (assign < 0).nonzero().squeeze(1)
            if bidders.numel() == 0:
                break
            vals = C[bidders] + price
            two = vals.topk(2, dim=1, largest=False)
            w1, w2 = two.values[:, 0], two.values[:, 1]
            j1 = two.indices[:, 0]
            bid = price[j1] + (w2 - w1) + eps
            best = torch.full((n,), -float("inf"), dtype=C.dtype, device=dev)
            best.scatter_reduce_(0, j1, bid, reduce="amax")
            won = bid >= best[j1]
            # one winner per object: the lowest-numbered bidder among equal top bids
            winner = torch.full((n,), n, dtype=torch.long, device=dev)
            winner.scatter_reduce_(0, j1[won], bidders[won], reduce="amin")
            objs = (winner < n).nonzero().squeeze(1)
            prev = owner[objs]
            assign[prev[prev >= 0]] = -1
            owner[objs] = winner[objs]
            assign[winner[objs]] = objs
            price[objs] = best[objs]
        primal = float(C[arange, assign].sum())
        bound = min(1.0, n * eps / primal) if primal > 0 else 0.0
        if primal <= 0 or n * eps <= tol * primal or eps <= eps_min:
            return assign, bound
        eps = max(eps / scaling, eps_min)


@torch.no_grad()
def auction_reference(x: torch.Tensor, y: torch.Tensor, squared: bool = True, tol: float = 1e-2,
                      scaling: float = 8.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Auction assignment in pure torch (Jacobi bidding, epsilon-scaling).

    Args:
        x, y: (B, N, D) clouds of equal size.
    Returns:
        assignment (B, N) int64 (``x[b, i]`` goes to ``y[b, assignment[b, i]]``) and the certified
        relative error bound (B,) float64.
    """
    B, N = x.shape[0], x.shape[1]
    out = torch.empty(B, N, dtype=torch.long, device=x.device)
    bounds = torch.zeros(B, dtype=torch.float64)
    for b in range(B):
        if N == 0:
            continue
        C = pairwise_cost(x[b].double(), y[b].double(), squared)
        out[b], bounds[b] = _auction_one(C, tol, scaling)
    return out, bounds


@torch.no_grad()
def exact_assignment(x: torch.Tensor, y: torch.Tensor, squared: bool = True) -> torch.Tensor:
    """Optimal assignment per cloud by scipy's ``linear_sum_assignment`` (CPU, float64).

    Args:
        x, y: (B, N, D).
    Returns:
        (B, N) int64 on ``x``'s device.
    """
    from scipy.optimize import linear_sum_assignment

    B, N = x.shape[0], x.shape[1]
    out = np.empty((B, N), dtype=np.int64)
    xs, ys = x.detach().double().cpu(), y.detach().double().cpu()
    for b in range(B):
        C = pairwise_cost(xs[b], ys[b], squared).numpy()
        rows, cols = linear_sum_assignment(C)
        out[b, rows] = cols
    return torch.from_numpy(out).to(x.device)
