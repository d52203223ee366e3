"""Build and install pcgen, with its point-set kernels (C++ always, CUDA when torch has it).

Install torch first (``pip install torch==2.13.0``) and use ``--no-build-isolation`` so the
kernels build against that torch instead of a freshly downloaded (CUDA) one.
Set ``PCGEN_NO_EXT=1`` to skip the kernels; pcgen then falls back to its pure-torch references.
"""

import glob
import os

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def get_extensions():
    """One extension, ``pcgen._C``: every ``cuda_ops/cpu/*.cpp`` plus ``cuda_ops/cuda/*.cu`` with CUDA."""
    if os.environ.get("PCGEN_NO_EXT") == "1":
        return []
    import torch
    from torch.utils.cpp_extension import CUDA_HOME, CppExtension, CUDAExtension

    sources = sorted(glob.glob(os.path.join("cuda_ops", "cpu", "*.cpp")))
    if not sources:
        return []
    extra = {"cxx": ["-O3", "-fopenmp", "-std=c++17"]}
    define_macros = []
    ext_cls = CppExtension
    want_cuda = torch.version.cuda is not None and CUDA_HOME is not None and (
        torch.cuda.is_available() or os.environ.get("FORCE_CUDA") == "1")
    if want_cuda:
        sources += sorted(glob.glob(os.path.join("cuda_ops", "cuda", "*.cu")))
        ext_cls = CUDAExtension
        define_macros.append(("WITH_CUDA", None))
        extra["nvcc"] = ["-O3", "--use_fast_math", "-std=c++17"]
    return [ext_cls("pcgen._C", sources, include_dirs=[os.path.join(HERE, "cuda_ops")],
                    define_macros=define_macros, extra_compile_args=extra,
                    extra_link_args=["-fopenmp"])]


def get_cmdclass():
    if os.environ.get("PCGEN_NO_EXT") == "1":
        return {}
    from torch.utils.cpp_extension import BuildExtension

    return {"build_ext": BuildExtension.with_options(no_python_abi_suffix=True)}


setup(
    name="pcgen",
    version="0.1.0",
    description="Generative modeling of environmental point clouds: LiDAR tiling, gap filling, augmentation",
    long_description=open(os.path.join(HERE, "README.md"), encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["pcgen", "pcgen.*"]),
    # The Hydra config tree (pkg://pcgen.conf) and the shipped checkpoint travel in the wheel.
    package_data={"pcgen": ["checkpoints/*.ckpt", "checkpoints/*.json"],
                  "pcgen.conf": ["**/*.yaml"]},
    include_package_data=True,
    ext_modules=get_extensions(),
    cmdclass=get_cmdclass(),
    install_requires=[
        "torch>=2.13,<2.14",
        "torch-geometric>=2.6,<2.9",
        "open3d>=0.18,<0.21",
        "laspy[lazrs]>=2.5,<3",
        "geomloss>=0.2.6,<0.4",
        "numpy>=1.24,<3",
        "scipy>=1.10,<2",
        "hydra-core>=1.3,<1.4",
        "lightning>=2.4,<3",
        "tqdm>=4.66,<5",
        "diffusers>=0.30,<1",
        "dask[distributed]>=2024.1",
        "pillow>=10,<14",
        "matplotlib>=3.7,<4",
        "pyproj>=3.6,<4",
        "tensorboard>=2.15,<3",
        "shapely>=2.0,<3",
    ],
    extras_require={"test": ["pytest>=8,<10", "hypothesis>=6.100,<7"]},
    entry_points={"console_scripts": ["pcgen=pcgen.cli:main"]},
)
