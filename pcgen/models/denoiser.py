"""Per-point network for the iterative heads: ε_θ(x_t, t, c) for diffusion, v_θ(x_t, t, c) for flows."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from pcgen.models._util import regularization
from pcgen.nn.blocks import timestep_embedding


class PointDenoiser(nn.Module):
    """A shared ``pcgen.nn`` encoder backbone plus a per-point head that predicts a 3-vector per point.

    The timestep embedding and the condition reach the backbone through its ``t_emb``/``cond``
    inputs (FiLM inside the encoder), and once more through a FiLM layer in the head, so the
    prediction for each point sees its own features, its cloud's global feature, the time and
    the condition.

    Args:
        encoder: a ``pcgen.nn`` encoder built with ``time_dim=time_dim`` and ``cond_dim=cond_dim``.
        time_dim: size of the sinusoidal timestep embedding.
        cond_dim: C of the condition vector (0 when unconditional).
        hidden: width of the per-point head.
    """

    def __init__(self, encoder: nn.Module, time_dim: int = 128, cond_dim: int = 0, hidden: int = 256):
        super().__init__()
        self.encoder, self.time_dim, self.cond_dim = encoder, time_dim, cond_dim
        self.time_mlp = nn.Sequential(nn.Linear(time_dim, time_dim), nn.SiLU(), nn.Linear(time_dim, time_dim))
        self.inp = nn.Linear(encoder.point_dim + encoder.global_dim, hidden)
        self.film = nn.Linear(time_dim + cond_dim, 2 * hidden)
        self.out = nn.Sequential(nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, 3))
        # zero output at init: the first prediction is "no noise"/"no motion", a stable start
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def forward(self, x: Tensor, t: Tensor, cond: Tensor | None = None) -> Tensor:
        """Args:
            x: (B, N, 3) noisy points.
            t: (B,) float times in the head's scale (DDPM step index, or 1000·t for flows).
            cond: (B, C) condition vector, or None.
        Returns:
            (B, N, 3) prediction (ε or velocity).
        """
        t_emb = self.time_mlp(timestep_embedding(t, self.time_dim).to(x.dtype))
        out = self.encoder(x, t_emb=t_emb, cond=cond)
        n = x.shape[1]
        h = self.inp(torch.cat([out.point_features, out.global_feature[:, None].expand(-1, n, -1)], dim=-1))
        film_in = t_emb if cond is None else torch.cat([t_emb, cond], dim=-1)
        scale, shift = self.film(film_in)[:, None].chunk(2, dim=-1)
        return self.out(h * (1 + scale) + shift)

    def regularization(self) -> Tensor | None:
        return regularization(self.encoder)


__all__ = ["PointDenoiser"]
