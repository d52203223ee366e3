"""pcgen: generative modeling of environmental point clouds (LiDAR in, LiDAR out)."""

__version__ = "0.1.0"
