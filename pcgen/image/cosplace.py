"""CosPlace place-recognition embedder: the condition the image LDM is trained on.

Same architecture and state-dict key names as the published CosPlace models
(``GeoLocalizationNet``: ``backbone.<i>.*`` = a ResNet without avgpool/fc,
``aggregation`` = L2Norm → GeM (``aggregation.1.p``) → Flatten → Linear
(``aggregation.3.weight``/``bias``) → L2Norm), so ``{backbone}_{dim}_cosplace.pth`` files load
unchanged through :func:`load_cosplace`. Preprocessing follows CosPlace evaluation:
resize the shorter side to 512, centre-crop 512, ImageNet normalisation.
"""

from __future__ import annotations

import os
from typing import Literal, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn

from pcgen.errors import CheckpointError, ShapeError
from pcgen.image.checkpoint import load_state_strict, read_checkpoint
from pcgen.image.data import resize_center_crop, to_unit_tensor
from pcgen.image.resnet import RESNET_OUT_CHANNELS, resnet

__all__ = ["CosPlace", "GeM", "load_cosplace", "IMAGENET_MEAN", "IMAGENET_STD"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
Backbone = Literal["ResNet18", "ResNet50"]


class L2Norm(nn.Module):
    def __init__(self, dim: int = 1):
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(x, p=2.0, dim=self.dim)


class GeM(nn.Module):
    """Generalised-mean pooling ``(mean x^p)^(1/p)`` with a learnable ``p`` (init 3).

    ``forward(x (B, C, H, W)) -> (B, C, 1, 1)``.
    """

    def __init__(self, p: float = 3.0, eps: float = 1e-6):
        super().__init__()
        self.p = nn.Parameter(torch.ones(1) * p)
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(x.clamp(min=self.eps).pow(self.p), x.shape[-2:]).pow(1.0 / self.p)


class CosPlace(nn.Module):
    """ResNet + GeM + FC + L2 embedder returning cross-attention context ``(B, 1, D)``.

    Args:
        backbone: ``"ResNet18"`` or ``"ResNet50"`` (the published CosPlace ResNets).
        fc_output_dim: descriptor size ``D``.
        image_size: side of the resize/centre-crop before the backbone (CosPlace: 512).

    ``forward(images)`` accepts a float tensor ``(B, C, H, W)`` or ``(C, H, W)`` with values in
    [-1, 1] (``C`` = 1, 3 or 4; gray is repeated, alpha dropped), a PIL image, an
    ``(H, W[, C])`` uint8 / [0, 1]-float array, or a list of PIL images / arrays, and returns
    unit-norm embeddings ``(B, 1, D)``. A bad tensor raises ``ShapeError`` and another type
    ``TypeError`` (both the calling code's bugs); a bad image array raises ``InputError``.
    """

    def __init__(self, backbone: Backbone = "ResNet50", fc_output_dim: int = 512, image_size: int = 512):
        super().__init__()
        if backbone not in RESNET_OUT_CHANNELS:
            from pcgen.errors import ConfigError

            raise ConfigError(f"CosPlace backbone must be one of {sorted(RESNET_OUT_CHANNELS)}, got {backbone!r}")
        self.backbone_name = backbone
        self.fc_output_dim = int(fc_output_dim)
        self.image_size = int(image_size)
        trunk = resnet(backbone)
        self.backbone = nn.Sequential(*list(trunk.children())[:-2])
        self.aggregation = nn.Sequential(L2Norm(), GeM(), nn.Flatten(),
                                         nn.Linear(RESNET_OUT_CHANNELS[backbone], self.fc_output_dim),
                                         L2Norm())
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    # -- inputs ---------------------------------------------------------------------------
    def to_unit_batch(self, images) -> Tensor:
        """Any accepted input → ``(B, 3, H, W)`` float in [0, 1] (see class docstring)."""
        if isinstance(images, Tensor):
            x = images
            if x.dim() == 3:
                x = x[None]
            if x.dim() != 4 or x.shape[1] not in (1, 3, 4) or not x.is_floating_point():
                raise ShapeError("CosPlace expects float image tensors (B, 1|3|4, H, W) in [-1, 1], "
                                 f"got {x.dtype} {tuple(images.shape)}")
            if x.numel() and (x.min() < -1.001 or x.max() > 1.001 or torch.isnan(x).any()):
                raise ShapeError("CosPlace expects tensors with values in [-1, 1] "
                                 f"(got range [{x.min().item():.3g}, {x.max().item():.3g}])")
            x = x[:, :3] if x.shape[1] >= 3 else x.expand(-1, 3, -1, -1)
            return ((x.clamp(-1, 1) + 1) / 2).float()
        if isinstance(images, (Image.Image, np.ndarray)):
            images = [images]
        if isinstance(images, Sequence) and images and all(isinstance(i, (Image.Image, np.ndarray)) for i in images):
            crops = [resize_center_crop(to_unit_tensor(im), self.image_size) for im in images]
            return torch.stack(crops)
        raise TypeError("CosPlace accepts [-1, 1] float tensors, PIL images or numpy image arrays, "
                         f"not {type(images).__name__}")

    def preprocess(self, images) -> Tensor:
        """Accepted input → ``(B, 3, S, S)`` ImageNet-normalised batch on this module's device."""
        x = self.to_unit_batch(images).to(self.mean.device)
        x = resize_center_crop(x, self.image_size)
        return (x - self.mean) / self.std

    def forward(self, images) -> Tensor:
        x = self.preprocess(images)
        return self.aggregation(self.backbone(x)).unsqueeze(1)

    def freeze(self) -> "CosPlace":
        """Eval mode, no gradients: the embedder is a fixed condition while the LDM trains."""
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)
        return self


def _unwrap(state) -> dict:
    if isinstance(state, dict):
        for key in ("model_state_dict", "state_dict"):
            if key in state and isinstance(state[key], dict):
                state = state[key]
                break
    if not isinstance(state, dict) or not all(isinstance(v, Tensor) for v in state.values()):
        return {}
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}


def load_cosplace(path: str | os.PathLike, backbone: Backbone | None = None,
                  fc_output_dim: int | None = None, image_size: int = 512) -> CosPlace:
    """Load a local CosPlace checkpoint (published ``*_cosplace.pth`` or a training checkpoint).

    ``backbone`` and ``fc_output_dim`` are read from the weights when not given. The model comes
    back frozen (eval mode, no gradients).

    Raises:
        CheckpointError: unreadable file, or keys/shapes of another architecture (named in one line).
    """
    state = _unwrap(read_checkpoint(path))
    if not state:
        raise CheckpointError("not a CosPlace checkpoint: no tensor state dict found", path)
    if backbone is None:
        backbone = "ResNet50" if any(k.endswith("conv3.weight") for k in state) else "ResNet18"
    if fc_output_dim is None:
        fc = state.get("aggregation.3.weight")
        fc_output_dim = int(fc.shape[0]) if fc is not None and fc.dim() == 2 else 512
    model = CosPlace(backbone, fc_output_dim, image_size)
    load_state_strict(model, state, f"CosPlace {backbone}/{fc_output_dim}", path)
    return model.freeze()
