"""Shared fixtures: the real sample data (through pcgen.datadir) and device selection."""

from __future__ import annotations

import pytest
import torch

from pcgen import datadir


@pytest.fixture
def single_thread():
    """One intra-op thread: tiny tensors only pay synchronisation for more (100x on a loaded 2-core box).

    Opt in per folder; ops tests keep the default so the kernels' parallel paths are exercised.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def data_dir():
    try:
        return datadir.data_dir()
    except Exception as exc:  # the real data is required; say so clearly
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def lidar_dir(data_dir):
    return data_dir / "lidar"


@pytest.fixture(scope="session")
def lidar_files(lidar_dir):
    return datadir.lidar_files()


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="no CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
