"""Reconstruction terms between a generated and a reference cloud: Chamfer and EMD.

Both are thin wrappers over ``pcgen.ops`` so heads name one term function per distance and
the kernels (compiled or pure-torch reference) stay in one place.
"""

from __future__ import annotations

from torch import Tensor

from pcgen import ops
from pcgen.ops.emd import EMDMethod  # the one definition, the op's; re-exported for the heads


def chamfer_loss(pred: Tensor, target: Tensor, squared: bool = True) -> Tensor:
    """Symmetric Chamfer distance, averaged over points and batch.

    Args:
        pred: (B, N, 3) generated points.
        target: (B, M, 3) reference points.
        squared: squared Euclidean distances (the pytorch3d default) or plain ones.

    Returns:
        () scalar, differentiable in ``pred`` (and ``target``).
    """
    return ops.chamfer(pred, target, squared=squared).loss


def emd_loss(pred: Tensor, target: Tensor, method: EMDMethod = "auction", squared: bool = True) -> Tensor:
    """Earth mover's distance per cloud (a bijection, so equal sizes), averaged over the batch.

    The auction solver is the default: its matching is certified within 1 % of the optimum and,
    measured on this project's CPU at B=4, N=2048, it ran ~30x faster than geomloss' Sinkhorn;
    the gradient flows through the cost on the fixed matching.

    Args:
        pred: (B, N, 3) generated points.
        target: (B, N, 3) reference points.
        method: the ``pcgen.ops.emd`` solver.
        squared: squared ground cost.

    Returns:
        () scalar.
    """
    cost = ops.emd(pred, target, method=method, squared=squared)
    if not isinstance(cost, Tensor):  # EMDOutput
        cost = cost.cost
    return cost.mean()


def reconstruction_terms(pred: Tensor, target: Tensor, kinds: tuple[str, ...],
                         emd_method: EMDMethod = "auction") -> dict[str, Tensor]:
    """The named reconstruction terms a head was asked for, e.g. ``("chamfer", "emd")``.

    Args:
        pred: (B, N, 3).
        target: (B, M, 3) (M == N for "emd").
        kinds: any of "chamfer", "emd" (or one of them as a string).
        emd_method: the ``pcgen.ops.emd`` solver.

    Returns:
        {kind: () scalar} in the order given.
    """
    out: dict[str, Tensor] = {}
    for kind in check_kinds(kinds):  # one name is a term, not its letters
        out[kind] = chamfer_loss(pred, target) if kind == "chamfer" else emd_loss(pred, target, method=emd_method)
    return out


def check_kinds(kinds) -> tuple[str, ...]:
    """Validate a reconstruction-term list at construction time, before any training step."""
    from pcgen.errors import ConfigError

    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds or ())
    bad = [k for k in kinds if k not in ("chamfer", "emd")]
    if bad:
        raise ConfigError(f"unknown reconstruction term(s) {bad}; expected 'chamfer' and/or 'emd'")
    return kinds


__all__ = ["chamfer_loss", "emd_loss", "reconstruction_terms", "check_kinds"]
