"""Parts shared by every encoder: the per-point MLP, timestep embedding, FiLM conditioning, the output type.

The encoders serve as VAE encoders, GAN discriminators and diffusion / flow-matching denoisers,
so conditioning (a timestep embedding and a condition vector) enters all of them the same way:
one small network turns ``(t_emb, cond)`` into a vector ``c``, and :class:`Conditioning` applies
``c`` at a few documented sites of each encoder, by FiLM or by concatenation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Sequence

import torch
from torch import Tensor, nn
from torch_geometric.nn import MLP, global_max_pool, global_mean_pool

from pcgen.errors import ShapeError

Norm = Literal["batch", "layer", "none"]
Act = Literal["relu", "leaky_relu", "silu", "gelu"]
ConditioningMode = Literal["film", "concat"]


@dataclass
class EncoderOutput:
    """What every pcgen encoder returns.

    Attributes:
        global_feature: ``(B, D)`` one vector per cloud, invariant to point order and padding.
        point_features: ``(B, N, D')`` one vector per input point, in input order; zeros at
            padded positions.
    """

    global_feature: Tensor
    point_features: Tensor


def shared_mlp(channels: Sequence[int], norm: Norm = "batch", act: Act = "relu",
               last_act: bool = True, dropout: float = 0.0) -> MLP:
    """A per-point MLP (torch-geometric's ``MLP``) applied to packed points ``(P, C)``.

    Norms act per point (``layer``) or over the valid points of the batch (``batch``); because
    encoders run it on packed points, padding never enters the batch statistics.

    Args:
        channels: ``[in, hidden..., out]``, at least two entries.
        norm: ``"batch"``, ``"layer"`` (per point) or ``"none"``.
        act: activation after each layer (``leaky_relu`` uses slope 0.2, as in DGCNN).
        last_act: apply norm and activation after the last layer too (``False`` leaves it linear).
        dropout: dropout probability between layers.
    Returns:
        a module mapping ``(P, channels[0])`` to ``(P, channels[-1])``.
    """
    channels = [int(c) for c in channels]
    if len(channels) < 2:
        raise ValueError(f"shared_mlp needs at least [in, out] channels, got {channels}")
    norm_name, norm_kwargs = {
        "batch": ("batch_norm", {"allow_single_element": True}),
        "layer": ("layer_norm", {"mode": "node"}),
        "none": (None, None),
    }[norm]
    act_kwargs = {"negative_slope": 0.2} if act == "leaky_relu" else None
    return MLP(channels, act=act, act_kwargs=act_kwargs, norm=norm_name, norm_kwargs=norm_kwargs,
               plain_last=not last_act, dropout=dropout)


def global_pool(x: Tensor, batch: Tensor, size: int, mean: bool = False) -> Tensor:
    """Max (and optionally mean, concatenated) over each cloud's packed rows.

    Args: x ``(P, C)``, batch ``(P,)`` cloud of each row, size ``B``.
    Returns: ``(B, C)``, or ``(B, 2C)`` with ``mean``.
    """
    out = global_max_pool(x, batch, size=size)
    if mean:
        out = torch.cat([out, global_mean_pool(x, batch, size=size)], dim=-1)
    return out


def timestep_embedding(t: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal embedding of (possibly fractional) diffusion / flow times.

    Uses diffusers' ``get_timestep_embedding`` (cos first, no frequency shift), so pcgen's heads
    embed time exactly like diffusers' U-Nets do.

    Args:
        t: ``(B,)`` times; integers for DDPM steps or floats in ``[0, 1]`` (multiply by 1000 first
            for flow matching so the frequencies are used).
        dim: embedding size (even).
    Returns:
        ``(B, dim)`` float tensor.
    """
    from diffusers.models.embeddings import get_timestep_embedding  # heavy import, only when used

    if t.dim() == 0:
        t = t[None]
    if t.dim() != 1:
        raise ShapeError(f"timestep_embedding expects t of shape (B,), got {tuple(t.shape)}")
    return get_timestep_embedding(t.float(), dim, flip_sin_to_cos=True, downscale_freq_shift=0,
                                  max_period=int(max_period))


class FiLM(nn.Module):
    """Feature-wise linear modulation ``x * (1 + scale(c)) + shift(c)``, starting as the identity.

    Args:
        cond_dim: size of the conditioning vector ``c``.
        channels: size of the features it modulates.
    """

    def __init__(self, cond_dim: int, channels: int):
        super().__init__()
        self.proj = nn.Linear(cond_dim, 2 * channels)
        nn.init.zeros_(self.proj.weight)  # identity at init: conditioning is learned in, not forced
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: Tensor, c: Tensor, batch: Tensor) -> Tensor:
        """Args: x ``(P, C)`` packed features, c ``(B, cond_dim)``, batch ``(P,)`` cloud of each row.
        Returns: ``(P, C)``."""
        scale, shift = self.proj(c).chunk(2, dim=-1)
        return x * (1 + scale[batch]) + shift[batch]


class Conditioning(nn.Module):
    """Turns ``(t_emb, cond)`` into one vector ``c`` and applies it at an encoder's sites.

    With ``time_dim == cond_dim == 0`` it does nothing. ``film`` modulates the site's features
    (channels unchanged); ``concat`` appends ``c`` to every row (channels grow by ``hidden``).

    Args:
        time_dim: size of ``t_emb`` (0: no timestep input).
        cond_dim: size of ``cond`` (0: no condition input).
        site_channels: feature size at each site, in the order the encoder calls them.
        mode: ``"film"`` or ``"concat"``.
        hidden: size of ``c``.
    """

    def __init__(self, time_dim: int, cond_dim: int, site_channels: Sequence[int],
                 mode: ConditioningMode = "film", hidden: int = 128):
        super().__init__()
        if mode not in ("film", "concat"):
            raise ValueError(f"conditioning mode must be 'film' or 'concat', got {mode!r}")
        self.time_dim, self.cond_dim, self.mode = int(time_dim), int(cond_dim), mode
        self.enabled = self.time_dim + self.cond_dim > 0
        self.hidden = int(hidden) if self.enabled else 0
        self.site_channels = [int(c) for c in site_channels]
        if self.enabled:
            self.embed = nn.Sequential(nn.Linear(self.time_dim + self.cond_dim, hidden), nn.SiLU(),
                                       nn.Linear(hidden, hidden))
            if mode == "film":
                self.films = nn.ModuleList(FiLM(hidden, c) for c in self.site_channels)

    @property
    def extra(self) -> int:
        """Channels a site gains (``hidden`` for concat, else 0)."""
        return self.hidden if self.enabled and self.mode == "concat" else 0

    def out_channels(self, site: int) -> int:
        return self.site_channels[site] + self.extra

    def embed_inputs(self, t_emb: Tensor | None, cond: Tensor | None, batch_size: int) -> Tensor | None:
        """Check ``t_emb (B, time_dim)`` and ``cond (B, cond_dim)`` and embed them to ``(B, hidden)``."""
        parts = []
        for name, value, dim, arg in (("t_emb", t_emb, self.time_dim, "time_dim"),
                                      ("cond", cond, self.cond_dim, "cond_dim")):
            if dim == 0:
                if value is not None:
                    raise ShapeError(f"{name} given but the encoder was built with {arg}=0")
                continue
            if value is None:
                raise ShapeError(f"the encoder was built to take {name} of shape (B, {dim}); none given")
            if value.shape != (batch_size, dim):
                raise ShapeError(f"{name} must have shape ({batch_size}, {dim}), got {tuple(value.shape)}")
            parts.append(value)
        if not parts:
            return None
        return self.embed(torch.cat(parts, dim=-1))

    def forward(self, site: int, x: Tensor, c: Tensor | None, batch: Tensor) -> Tensor:
        """Apply ``c (B, hidden)`` to packed features ``x (P, C)`` whose rows belong to ``batch (P,)``."""
        if c is None:
            return x
        if self.mode == "film":
            return self.films[site](x, c, batch)
        return torch.cat([x, c[batch]], dim=-1)
