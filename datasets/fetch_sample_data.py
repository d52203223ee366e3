#!/usr/bin/env python3
"""Fetch pcgen's public sample data (LiDAR and street photos) with SHA-256 checks.

Every file is a byte-for-byte copy of a git blob in a public GitHub repository at a fixed
commit (see datasets/README.md for sources and licences). Local copies are used first:
``$PCGEN_DATA`` and ``../shared/data`` beside the repository; a file is downloaded from
raw.githubusercontent.com only when no local copy with the right checksum exists.

    python datasets/fetch_sample_data.py                 # into ./data (or --dest DIR)
    python datasets/fetch_sample_data.py --only lidar    # just the small LAS/LAZ files (also: training, images)
    python datasets/fetch_sample_data.py --check DIR     # verify a folder, download nothing
    export PCGEN_DATA=$PWD/data                          # so pcgen finds it

Standard library only, so it runs before pcgen is installed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Callable, Iterable

REPO_ROOT = Path(__file__).resolve().parent.parent
COMMITS = {
    "r-lidar/lidR": "d185a7eb3d8de52272c9c60500fd104b97197cf3",
    "laspy/laspy": "fbc5b375f9dad6bae499a81ca436bee361ecf047",
    "PDAL/PDAL": "ccf0ab7046072f68cab78734e90d0d3149f3af10",
    "gmberton/VPR-methods-evaluation": "adbb6e2345daeb667aa56ccff4f161082d3d8e61",
}
FILES = [
    # (local path, repository, path in repository, sha256)
    ('lidar/Megaplot.laz', 'r-lidar/lidR', 'inst/extdata/Megaplot.laz', 'e6526a427e3a7554dc7fd9df13900b8365b2136c6ff219a9fc130844c853a627'),
    ('lidar/MixedConifer.laz', 'r-lidar/lidR', 'inst/extdata/MixedConifer.laz', 'b7af31a4cf752044e493c3620d4f4301aa41553dd840502569f2f110ad876eb3'),
    ('lidar/Topography.laz', 'r-lidar/lidR', 'inst/extdata/Topography.laz', '3016d0d654a7b38f5589c1f60c302a50045b9bba6b2047b2e47a474e9ac8c149'),
    ('lidar/lone-star.laz', 'PDAL/PDAL', 'test/data/ept/source/lone-star.laz', 'cca313f505c7d5b2bdfc2a8ddb697678917fe731921009264f47a436e52cd7a0'),
    ('lidar/las_with_several_extra_byte_bloc.laz', 'PDAL/PDAL', 'test/data/laz/las_with_several_extra_byte_bloc.laz', '4acb579c77e2b8eb07136d55857481122d87991490aa7c875893341005e043e7'),
    ('lidar/4_6_crop.las', 'PDAL/PDAL', 'test/data/las/4_6_crop.las', 'c432b44d4e938ed3895d3a8515f4e425da1ae5d9cffa74f95937854c40b8ed83'),
    ('lidar/autzen_trim.laz', 'laspy/laspy', 'tests/data/autzen_trim.laz', '75867b3e75cfc3c2e96da9f753c04c9fbaa6a59468dea13e2859f3109b38bd66'),
    ('lidar/sample_c.las', 'PDAL/PDAL', 'test/data/las/sample_c.las', '6f6b0be5970a86fceddde988ef6ae42661309a5067a6f65019581300e1df4fe8'),
    ('lidar/warsaw_small.las', 'PDAL/PDAL', 'test/data/las/warsaw_small.las', 'e416058a79306c5ad025aadede1f334cacba9769eeec84ce8b0ee73970897aa2'),
    ('lidar/mvk-thin.las', 'PDAL/PDAL', 'test/data/las/mvk-thin.las', 'c3707f90cc153b4a7a4ff679115b5f4435119b5cb7324dddeb6fd3f055efd2e6'),
    ('lidar/simple.las', 'laspy/laspy', 'tests/data/simple.las', 'a0570ef57b685b77a6d3e3992cbdfeecdb2c3065d3780bbeaba490818258b734'),
    ('lidar/test1_4.las', 'laspy/laspy', 'tests/data/test1_4.las', 'f4e840920885fc175ab90c0a50778165e64e3f9ccb049ea5e360f3e30bb932b1'),
    ('images/database/db1.jpg', 'gmberton/VPR-methods-evaluation', 'toy_dataset/database/db1.jpg', '26372afb6df33deefcaf5718e0e7b0e967f19da79ad3c5cb367ccbd47044eb05'),
    ('images/database/db10.jpg', 'gmberton/VPR-methods-evaluation', 'toy_dataset/database/db10.jpg', 'edcac412bfe1b69a6ce9ccf9db38170f57d0e5a6868d1a5f94c9dbb85af5bfab'),
    ('images/database/db12.jpg', 'gmberton/VPR-methods-evaluation', 'toy_dataset/database/db12.jpg', '30dfa320842f18ca545ded6d9584b20a3f3a659029d9a6c0bcb8d518fd206265'),
    ('images/database/db14.jpg', 'gmberton/VPR-methods-evaluation', 'toy_dataset/database/db14.jpg', '8ba0a063727d505149ebef15122031ee2dfd74d2a04346cc4ee0a30f3418e87c'),
    ('images/database/db15.jpg', 'gmberton/VPR-methods-evaluation', 'toy_dataset/database/db15.jpg', 'd96bffc4587d0a1553102ea16c5a2fdd57b03180d856201e788604ef88612761'),
    ('images/database/db16.jpg', 'gmberton/VPR-methods-evaluation', 'toy_dataset/database/db16.jpg', '503f8e92b02b12eacd05c6da296d642ab8bb11dd44ccd97f06dfbd663821cba6'),
    ('images/database/db17.jpg', 'gmberton/VPR-methods-evaluation', 'toy_dataset/database/db17.jpg', 'f7812799543844baf7500501c5fe7f8133ac61120465cbd3492ad9cdfa91b97f'),
    ('images/database/db2.jpg', 'gmberton/VPR-methods-evaluation', 'toy_dataset/database/db2.jpg', '185b00d4c65ac43404d3ad50d66af8375f08d1303bb4058d2f7d52c43cf86258'),
    ('images/database/db3.jpg', 'gmberton/VPR-methods-evaluation', 'toy_dataset/database/db3.jpg', '06d7264a78630cf98cea68c6317546721f50521259602abfee314f870e6fb8e8'),
    ('images/database/db4.jpg', 'gmberton/VPR-methods-evaluation', 'toy_dataset/database/db4.jpg', '9f9f6ecf26bc4c0bf31ded1f3922dc8adf41cd1d317b7cac66b69d164b4f5a28'),
    ('images/database/db5.jpg', 'gmberton/VPR-methods-evaluation', 'toy_dataset/database/db5.jpg', '4fbea19a86e1fb5a060704a181b8701498fcf3149eefc78fd0148eb77ad9b26c'),
    ('images/database/db6.jpg', 'gmberton/VPR-methods-evaluation', 'toy_dataset/database/db6.jpg', 'a28d32e5855a7e7bbf1fa625e62829fd00a6dcabc088a7789f0e3a8eea0805d5'),
    ('images/database/db7.jpg', 'gmberton/VPR-methods-evaluation', 'toy_dataset/database/db7.jpg', '45a6abfed8421b77f926edeefeadd7f7a77c19efd251c332cd9eb5f7ba665dcb'),
    ('images/database/db8.jpg', 'gmberton/VPR-methods-evaluation', 'toy_dataset/database/db8.jpg', 'c4da74a053bec7eeddd9ba65dbb6792fd4216c7eed7dfac7186ebc76e820be64'),
    ('images/database/db9.jpg', 'gmberton/VPR-methods-evaluation', 'toy_dataset/database/db9.jpg', 'd82b4c179917b7c6b40e707db3971b5a54c0b114f9e0d7c0b5d36ebc2952c61e'),
    ('images/queries/q1.jpg', 'gmberton/VPR-methods-evaluation', 'toy_dataset/queries/q1.jpg', 'c068b999aa4462a50dd2fdb95982e06c931670c3755de0c878ce8c36684a47a4'),
    ('images/queries/q2.jpg', 'gmberton/VPR-methods-evaluation', 'toy_dataset/queries/q2.jpg', '3cc8b67e2ed837197f4e427fee4457f46b72e5c896c787964af45f09f86ef73c'),
    ('images/queries/q4.jpg', 'gmberton/VPR-methods-evaluation', 'toy_dataset/queries/q4.jpg', '2cd6e1e504b39d5efce5c065d8bf8e85284a08e61baccc7c58c36d0e5ee4336b'),
]


TRAINING_TABLE = Path(__file__).resolve().parent / "training_files.tsv"


def _training_files() -> list[tuple[str, str, str, str]]:
    """The ``training/`` files (~16 M points, 300 files of an EPT dataset among them), kept in a
    TSV beside this script; a repository named ``owner/name@commit`` pins its own commit."""
    lines = TRAINING_TABLE.read_text().splitlines()
    return [tuple(line.split("\t")) for line in lines if line and not line.startswith("#")]


FILES += _training_files()


class ChecksumError(Exception):
    """A file's SHA-256 differs from the table."""


def url_of(repo: str, path: str) -> str:
    """Raw URL of ``path`` at the pinned commit (``COMMITS``, or the ``@commit`` after the name)."""
    name, _, commit = repo.partition("@")
    return f"https://raw.githubusercontent.com/{name}/{commit or COMMITS[name]}/{path}"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def local_sources() -> list[Path]:
    """Folders that may already hold the files: $PCGEN_DATA, then ../shared/data."""
    out = []
    if os.environ.get("PCGEN_DATA"):
        out.append(Path(os.environ["PCGEN_DATA"]))
    out.append(REPO_ROOT.parent / "shared" / "data")
    return out


def http_get(url: str, dest: Path) -> None:
    with urllib.request.urlopen(url, timeout=60) as resp, open(dest, "wb") as fh:
        shutil.copyfileobj(resp, fh)


def fetch(dest: Path, only: str | None = None, sources: Iterable[Path] | None = None,
          download: Callable[[str, Path], None] = http_get, log=print) -> list[Path]:
    """Make ``dest`` hold every selected file with the right checksum; return their paths.

    A file already in ``dest`` with the right checksum is kept; otherwise it is copied from
    the first local source holding a verified copy, else downloaded. Every new file is
    written under a temporary name and renamed only after its checksum matches.
    """
    dest = Path(dest)
    sources = [Path(s) for s in (local_sources() if sources is None else sources)]
    done = []
    for rel, repo, path, digest in FILES:
        if only and not rel.startswith(only + "/"):
            continue
        target = dest / rel
        if target.is_file() and sha256(target) == digest:
            log(f"ok        {rel}")
            done.append(target)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            origin = None
            for src in sources:
                cand = src / rel
                if cand.is_file() and cand.resolve() != target.resolve() and sha256(cand) == digest:
                    shutil.copyfile(cand, tmp)
                    origin = f"copied from {cand}"
                    break
            if origin is None:
                url = url_of(repo, path)
                download(url, tmp)
                origin = f"downloaded {url}"
            got = sha256(tmp)
            if got != digest:
                raise ChecksumError(f"{rel}: SHA-256 {got} does not match {digest} ({origin})")
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        log(f"fetched   {rel} ({origin})")
        done.append(target)
    return done


def check(folder: Path, only: str | None = None) -> list[str]:
    """Names of selected files missing from ``folder`` or failing their checksum."""
    bad = []
    for rel, _, _, digest in FILES:
        if only and not rel.startswith(only + "/"):
            continue
        p = Path(folder) / rel
        if not p.is_file() or sha256(p) != digest:
            bad.append(rel)
    return bad


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", default="data", help="output folder (default ./data)")
    parser.add_argument("--only", choices=["lidar", "training", "images"], help="fetch one group only")
    parser.add_argument("--check", metavar="DIR", help="verify DIR against the checksums and exit")
    args = parser.parse_args(argv)
    if args.check:
        bad = check(Path(args.check), args.only)
        for rel in bad:
            print(f"missing or wrong checksum: {rel}", file=sys.stderr)
        print(f"{'OK' if not bad else 'FAILED'}: {args.check}")
        return 1 if bad else 0
    try:
        fetch(Path(args.dest), args.only)
    except (ChecksumError, OSError) as exc:
        print(f"fetch_sample_data: error: {exc}", file=sys.stderr)
        return 2
    print(f"done; point pcgen at it with: export PCGEN_DATA={Path(args.dest).resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
