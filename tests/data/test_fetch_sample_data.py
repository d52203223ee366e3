"""datasets/fetch_sample_data.py: local copies first, checksums always, nothing half-written.

No network: downloads are replaced by a function that serves the shared copies (or bad bytes).
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "datasets" / "fetch_sample_data.py"


@pytest.fixture(scope="module")
def fsd():
    spec = importlib.util.spec_from_file_location("fetch_sample_data", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _no_network(url, dest):
    raise AssertionError(f"tried to download {url}")


def test_table_matches_shared_checksums(fsd, data_dir):
    sums = dict(line.split()[::-1] for line in (data_dir / "SHA256SUMS").read_text().splitlines())
    table = {f"./{rel}": digest for rel, _, _, digest in fsd.FILES}
    assert table == sums
    for rel, repo, path, _ in fsd.FILES:
        url = fsd.url_of(repo, path)
        assert url.startswith(f"https://raw.githubusercontent.com/{repo.partition('@')[0]}/") and len(
            url.split("/")[5]) == 40
        assert url.endswith("/" + path)  # training files are renamed locally (lastools_, spanner_)
    assert fsd.check(data_dir) == []


def test_local_copies_used_and_verified(fsd, data_dir, tmp_path):
    got = fsd.fetch(tmp_path / "d", only="lidar", sources=[data_dir], download=_no_network,
                    log=lambda *_: None)
    assert sorted(p.name for p in got) == sorted(p.name for p in (data_dir / "lidar").iterdir())
    assert fsd.check(tmp_path / "d", only="lidar") == []
    # a second run keeps the verified files and still downloads nothing
    assert len(fsd.fetch(tmp_path / "d", only="lidar", sources=[], download=_no_network,
                         log=lambda *_: None)) == len(got)


def test_bad_local_copy_falls_back_to_download(fsd, data_dir, tmp_path):
    src = tmp_path / "src" / "lidar"
    src.mkdir(parents=True)
    (src / "simple.las").write_bytes(b"not the file")  # wrong checksum: must not be used
    served = []

    def fake_download(url, dest):
        served.append(url)
        name = url.rsplit("/", 1)[1]
        shutil.copyfile(data_dir / "lidar" / name, dest)

    one = [row for row in fsd.FILES if row[0] == "lidar/simple.las"]
    fsd.FILES, saved = one, fsd.FILES
    try:
        fsd.fetch(tmp_path / "d", sources=[tmp_path / "src"], download=fake_download,
                  log=lambda *_: None)
    finally:
        fsd.FILES = saved
    assert served == [fsd.url_of("laspy/laspy", "tests/data/simple.las")]
    assert (tmp_path / "d" / "lidar" / "simple.las").read_bytes() == \
        (data_dir / "lidar" / "simple.las").read_bytes()


def test_checksum_mismatch_leaves_nothing(fsd, tmp_path):
    def evil_download(url, dest):
        Path(dest).write_bytes(b"tampered")

    with pytest.raises(fsd.ChecksumError, match="does not match"):
        fsd.fetch(tmp_path / "d", only="lidar", sources=[], download=evil_download,
                  log=lambda *_: None)
    assert list((tmp_path / "d" / "lidar").iterdir()) == []
    assert fsd.main(["--check", str(tmp_path / "d"), "--only", "lidar"]) == 1
