"""Decoders from a latent vector to a point set, shared by the VAE and the GAN generator.

All take ``forward(z (B, L), num_points) -> (B, num_points, 3)``: the VAE decodes its latent,
the GAN generator its noise, each with the condition vector concatenated when conditional.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from pcgen.errors import ConfigError


def mlp(dims: Sequence[int], activation: type[nn.Module] = nn.SiLU, final_activation: bool = False) -> nn.Sequential:
    """Linear layers of widths ``dims`` with ``activation`` between them (and after the last if asked)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(dims) - 2 or final_activation:
            layers.append(activation())
    return nn.Sequential(*layers)


class MLPDecoder(nn.Module):
    """Fully connected decoder (Achlioptas et al. 2018): z → N·3 coordinates in one shot.

    Fast and strong for a fixed point count, but tied to it: ``num_points`` must equal the
    construction-time ``num_points``.

    Args:
        latent_dim: L, size of the input vector (latent plus condition when conditional).
        num_points: N produced.
        hidden: widths of the hidden layers.
    """

    def __init__(self, latent_dim: int, num_points: int, hidden: Sequence[int] = (256, 512, 1024)):
        super().__init__()
        self.latent_dim, self.num_points = latent_dim, num_points
        self.net = mlp([latent_dim, *hidden, num_points * 3])

    def forward(self, z: Tensor, num_points: int | None = None) -> Tensor:
        """Args: z (B, L). Returns: (B, N, 3)."""
        if num_points is not None and num_points != self.num_points:
            raise ConfigError(f"MLPDecoder was built for {self.num_points} points, asked for {num_points}; "
                              "use FoldingDecoder for a free point count")
        return self.net(z).view(z.shape[0], self.num_points, 3)


def square_lattice(num_points: int, device=None, dtype=None) -> Tensor:
    """A well-spread deterministic 2-D point set in [-1, 1]² for any count (Fibonacci lattice).

    FoldingNet uses a regular grid, which only exists for square counts; the Fibonacci lattice
    covers the square as evenly for every N.

    Returns:
        (N, 2).
    """
    i = torch.arange(num_points, device=device, dtype=torch.float64)
    golden = (math.sqrt(5.0) - 1.0) / 2.0
    u = (i + 0.5) / num_points
    v = torch.remainder(i * golden, 1.0)
    return (torch.stack([u, v], dim=-1) * 2 - 1).to(dtype or torch.get_default_dtype())


class FoldingDecoder(nn.Module):
    """FoldingNet-style decoder (Yang et al. 2018): fold a 2-D lattice twice, conditioned on z.

    Works for any number of points, so one model serves 2048-point tiles and 256-point gaps.

    Args:
        latent_dim: L, size of the input vector.
        hidden: width of the folding MLPs.
    """

    def __init__(self, latent_dim: int, hidden: int = 256):
        super().__init__()
        self.latent_dim = latent_dim
        self.fold1 = mlp([latent_dim + 2, hidden, hidden, 3])
        self.fold2 = mlp([latent_dim + 3, hidden, hidden, 3])

    def forward(self, z: Tensor, num_points: int) -> Tensor:
        """Args: z (B, L), num_points N. Returns: (B, N, 3)."""
        grid = square_lattice(num_points, device=z.device, dtype=z.dtype)
        zz = z[:, None, :].expand(-1, num_points, -1)
        first = self.fold1(torch.cat([zz, grid.expand(z.shape[0], -1, -1)], dim=-1))
        return first + self.fold2(torch.cat([zz, first], dim=-1))


__all__ = ["mlp", "MLPDecoder", "FoldingDecoder", "square_lattice"]
