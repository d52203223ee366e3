"""Gaussian mixture baseline for augmentation: EM in torch, full covariances, K by held-out likelihood.

scikit-learn is not a dependency and its EM is per-model; this one is vectorized over points and
components (one (N, K) responsibility matrix per step, Cholesky log-densities), small enough to
read. It models the pooled points of the training tiles in the normalized frame; a synthetic tile
is ``n_points`` i.i.d. draws from it, which is what a "fit a density, sample it" baseline does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from pcgen.errors import ConfigError, InputError


@dataclass
class GaussianMixture:
    """Fitted mixture. weights (K,), means (K, D), covariances (K, D, D)."""

    weights: torch.Tensor
    means: torch.Tensor
    covariances: torch.Tensor

    @property
    def k(self) -> int:
        return int(self.weights.shape[0])

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """(N, D) -> (N,) log density."""
        return torch.logsumexp(_component_log_prob(x, self.means, self.covariances) + self.weights.log(), dim=1)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(n, D) draws."""
        comp = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        chol = torch.linalg.cholesky(self.covariances)
        z = torch.randn(n, self.means.shape[1], generator=generator, dtype=self.means.dtype)
        return self.means[comp] + torch.einsum("nij,nj->ni", chol[comp], z)

    def name(self) -> str:
        return f"gmm(K={self.k})"


def _component_log_prob(x: torch.Tensor, means: torch.Tensor, covs: torch.Tensor) -> torch.Tensor:
    """(N, D), (K, D), (K, D, D) -> (N, K) log N(x | mean_k, cov_k)."""
    d = x.shape[1]
    chol = torch.linalg.cholesky(covs)                                      # (K, D, D)
    diff = (x[None, :, :] - means[:, None, :]).transpose(1, 2)              # (K, D, N)
    sol = torch.linalg.solve_triangular(chol, diff, upper=False)            # (K, D, N)
    maha = (sol ** 2).sum(1)                                                 # (K, N)
    logdet = 2 * torch.log(torch.diagonal(chol, dim1=1, dim2=2)).sum(1)      # (K,)
    return (-0.5 * (maha + logdet[:, None] + d * math.log(2 * math.pi))).T


def fit_gmm(x: torch.Tensor, k: int, iters: int = 100, tol: float = 1e-4, reg: float = 1e-5,
            generator: torch.Generator | None = None) -> GaussianMixture:
    """EM from k-means++-style seeding.

    Args:
        x: (N, D) float64 points.
        k: components.
        iters: EM iterations at most; stops when the mean log-likelihood gains less than ``tol``.
        reg: added to covariance diagonals (keeps them positive definite).
    """
    n, d = x.shape
    if n < k * (d + 1):
        raise InputError(f"{n} points cannot fit {k} full-covariance components")
    x = x.double()
    # seeding: first centre at random, then proportional to squared distance (k-means++)
    idx = [int(torch.randint(n, (1,), generator=generator))]
    d2 = ((x - x[idx[0]]) ** 2).sum(1)
    for _ in range(1, k):
        idx.append(int(torch.multinomial(d2 / d2.sum(), 1, generator=generator)))
        d2 = torch.minimum(d2, ((x - x[idx[-1]]) ** 2).sum(1))
    means = x[idx].clone()
    eye = torch.eye(d, dtype=x.dtype)
    covs = torch.cov(x.T).expand(k, d, d).clone() / k + reg * eye
    weights = torch.full((k,), 1.0 / k, dtype=x.dtype)
    prev = -math.inf
    for _ in range(iters):
        logp = _component_log_prob(x, means, covs) + weights.log()          # E step
        ll = torch.logsumexp(logp, 1, keepdim=True)
        resp = (logp - ll).exp()                                             # (N, K)
        nk = resp.sum(0) + 1e-10                                             # M step
        weights = nk / n
        means = (resp.T @ x) / nk[:, None]
        diff = x[None] - means[:, None]                                      # (K, N, D)
        covs = torch.einsum("kn,kni,knj->kij", resp.T, diff, diff) / nk[:, None, None] + reg * eye
        cur = float(ll.mean())
        if cur - prev < tol:
            break
        prev = cur
    return GaussianMixture(weights, means, covs)


def select_gmm(train: torch.Tensor, held: torch.Tensor, ks: Sequence[int] = (2, 4, 8, 16, 32),
               seed: int = 0) -> tuple[GaussianMixture, dict[int, float]]:
    """Fit one mixture per K on ``train`` and keep the K with the best mean held-out log-likelihood.

    Returns:
        (best mixture, {K: held-out mean log-likelihood}).
    """
    if not ks:
        raise ConfigError("no K to choose from")
    scores: dict[int, float] = {}
    best, best_score = None, -math.inf
    for k in ks:
        if len(train) < k * 4 * (train.shape[1] + 1):
            continue
        g = fit_gmm(train, k, generator=torch.Generator().manual_seed(seed))
        s = float(g.log_prob(held.double()).mean())
        scores[k] = s
        if s > best_score:
            best, best_score = g, s
    if best is None:
        raise InputError(f"too few points ({len(train)}) to fit any of K={list(ks)}")
    return best, scores


class GMMBaseline:
    """Augmentation baseline: pooled training-tile points → mixture (K by held-out likelihood) → tiles."""

    name = "gmm"

    def __init__(self, tiles: Sequence[np.ndarray], ks: Sequence[int] = (2, 4, 8, 16, 32), seed: int = 0,
                 max_points: int = 20000):
        rng = np.random.default_rng(seed)
        pts = np.concatenate([np.asarray(t, dtype=np.float64) for t in tiles])
        pts = pts[rng.permutation(len(pts))[:max_points]]
        cut = int(0.8 * len(pts))
        self.mixture, self.scores = select_gmm(torch.as_tensor(pts[:cut]), torch.as_tensor(pts[cut:]), ks, seed)

    def sample(self, n_tiles: int, n_points: int, rng: np.random.Generator) -> list[np.ndarray]:
        g = torch.Generator().manual_seed(int(rng.integers(2**31 - 1)))
        return [self.mixture.sample(n_points, g).float().numpy() for _ in range(n_tiles)]
