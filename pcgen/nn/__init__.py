"""Point-cloud encoders sharing one interface.

``forward(points (B, N, 3+F), lengths=None, t_emb=None, cond=None) -> EncoderOutput(global_feature
(B, D), point_features (B, N, D'))``; attributes ``global_dim``, ``point_dim``; ``regularization()``.
"""

import importlib

# name -> module; each is imported on first use, so loading one head does not import every
# model family's libraries (Lightning, diffusers, torch-geometric: seconds per process)
_EXPORTS = {
    "DGCNNEncoder": "pcgen.nn.dgcnn",
    "EncoderOutput": "pcgen.nn.blocks",
    "FiLM": "pcgen.nn.blocks",
    "GapConditioner": "pcgen.nn.gap_conditioner",
    "PointNet2Encoder": "pcgen.nn.pointnet2",
    "PointNetEncoder": "pcgen.nn.pointnet",
    "shared_mlp": "pcgen.nn.blocks",
    "timestep_embedding": "pcgen.nn.blocks",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
