"""Image track: latent diffusion conditioned on CosPlace place-recognition embeddings.

Parts, bottom up: ``resnet`` (torchvision-compatible ResNet-18/50), ``cosplace`` (the embedder),
``data`` (image folders), ``autoencoder`` (KL first stage), ``schedule``/``ldm`` (the LDM recipe and
samplers), ``config`` (presets in ``conf/image``), ``train``, ``explain`` (generate from embeddings,
measure retrieval), ``rasterize`` (LiDAR → CHM/DSM PNGs), ``cli``.
"""

from pcgen.image.cosplace import CosPlace, load_cosplace

__all__ = ["CosPlace", "load_cosplace"]
