"""SIGTERM is handled like Ctrl-C: one line, exit 128 + signal, staging removed, nothing written."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from pcgen import datadir

SLOW = """
import sys, time, types
from pcgen import cli
from pcgen.atomic import atomic_dir

def add_arguments(p):
    p.add_argument("out")

def run(args):
    with atomic_dir(args.out) as tmp:
        (tmp / "part.laz").write_text("partial")
        print("ready", flush=True)
        time.sleep(60)

module = types.SimpleNamespace(add_arguments=add_arguments, run=run)
cli.SUBCOMMANDS["slow"] = ("slow", "sleeps inside atomic_dir")
cli.importlib.import_module = lambda name: module
sys.exit(cli.main(["slow", sys.argv[1]]))
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_unwinds_staging(tmp_path, sig):
    proc = subprocess.Popen([sys.executable, "-c", SLOW, str(tmp_path / "out")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    assert any(p.name.startswith(".out.pcgen-") for p in tmp_path.iterdir())  # staging and lock exist
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 128 + sig
    assert err.strip() == f"pcgen slow: interrupted ({sig.name})"
    assert list(tmp_path.iterdir()) == []


def test_sigterm_during_a_real_tiling_run_leaves_nothing(tmp_path):
    src = datadir.lidar_file("lone-star.laz")
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "pcgen.cli", "tile", str(src), str(out), "--size", "20",
                             "--no-overview"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not any(p.name.startswith(".out.pcgen-") and p.name.endswith(".tmp") for p in tmp_path.iterdir()):
        assert proc.poll() is None and time.time() < deadline, "tiling ended before it could be signalled"
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert err.strip() == "pcgen tile: interrupted (SIGTERM)"
    assert list(tmp_path.iterdir()) == []
