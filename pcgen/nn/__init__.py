"""Point-cloud encoders sharing one interface.

``forward(points (B, N, 3+F), lengths=None, t_emb=None, cond=None) -> EncoderOutput(global_feature
(B, D), point_features (B, N, D'))``; attributes ``global_dim``, ``point_dim``; ``regularization()``.
"""

from pcgen.nn.blocks import EncoderOutput, FiLM, shared_mlp, timestep_embedding
from pcgen.nn.dgcnn import DGCNNEncoder
from pcgen.nn.gap_conditioner import GapConditioner
from pcgen.nn.pointnet import PointNetEncoder
from pcgen.nn.pointnet2 import PointNet2Encoder

__all__ = ["DGCNNEncoder", "EncoderOutput", "FiLM", "GapConditioner", "PointNet2Encoder", "PointNetEncoder",
           "shared_mlp", "timestep_embedding"]
