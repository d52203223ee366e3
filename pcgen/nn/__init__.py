"""Point-cloud encoders sharing one interface.

``forward(points (B, N, 3+F), lengths=None, t_emb=None, cond=None) -> EncoderOutput(global_feature
(B, D), point_features (B, N, D'))``; attributes ``global_dim``, ``point_dim``; ``regularization()``.
"""

from pcgen.lazy import lazy_names

# name -> module, imported on first use (pcgen.lazy): loading one head imports only its own
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
__getattr__, __dir__ = lazy_names(__name__, _EXPORTS)
