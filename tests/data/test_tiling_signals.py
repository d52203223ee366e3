"""`pcgen tile --workers 2` and `pcgen fill -j 2` on folders under signals (both run their pool
through `pcgen.dispatch`): SIGTERM ends the run at once (workers ended, not waited for), and a
SIGKILLed run leaves no worker or forkserver process behind."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pcgen import datadir

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")


def _start(tmp_path):
    """Tile two copies of Megaplot.laz into 2 m tiles (about a minute of work) with 2 workers;
    return once the workers are writing tiles into the staging folder."""
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.laz", "b.laz"):
        shutil.copy(datadir.lidar_file("Megaplot.laz"), folder / name)
    proc = subprocess.Popen([sys.executable, "-m", "pcgen.cli", "tile", str(folder), str(tmp_path / "out"),
                             "--size", "2", "--buffer", "0.5", "--workers", "2", "--no-overview"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 180  # a busy machine can take over a minute to start writing
    while not any(any(p.iterdir()) for p in tmp_path.glob(".out.pcgen-*.tmp")):
        assert proc.poll() is None and time.time() < deadline, "tiling ended before it could be signalled"
        time.sleep(0.05)
    return proc


def _start_fill(tmp_path):
    """Fill eight copies of lone-star.laz (mirror baseline, automatic gaps: 3 to 10 s a file, by
    machine) with 2 workers, so the run outlasts the wait below on a fast machine too; return once
    both workers run, 6 s into their files (they write nothing until a file is done)."""
    folder = tmp_path / "in"
    folder.mkdir()
    for name in (f"{c}.laz" for c in "abcdefgh"):
        shutil.copy(datadir.lidar_file("lone-star.laz"), folder / name)
    proc = subprocess.Popen([sys.executable, "-m", "pcgen.cli", "fill", str(folder), str(tmp_path / "out"),
                             "--baseline", "mirror", "-j", "2", "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 180  # a busy machine can take over a minute to start writing
    # the workers are the forkserver's children: our grandchildren
    while len(_descendants(proc.pid) - _children(proc.pid)) < 2:
        assert proc.poll() is None and time.time() < deadline, "fill ended before it could be signalled"
        time.sleep(0.05)
    time.sleep(6.0)  # into their files: past reading and gap finding (about 3 s), into the fill
    assert proc.poll() is None
    return proc


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[1])


def _children(pid: int) -> set[int]:
    return {int(e.name) for e in Path("/proc").iterdir()
            if e.name.isdigit() and (st := _stat(int(e.name))) and st[1] == pid}


def _descendants(pid: int) -> set[int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (st := _stat(int(entry.name))):
            parents[int(entry.name)] = st[1]
    found, todo = set(), [pid]
    while todo:
        p = todo.pop()
        kids = {c for c, pp in parents.items() if pp == p}
        found |= kids
        todo.extend(kids)
    return found


def _alive(pids) -> set[int]:
    return {p for p in pids if (st := _stat(p)) and st[0] != "Z"}  # a zombie has exited


def _wait_gone(pids, seconds: float) -> set[int]:
    deadline = time.time() + seconds
    while (left := _alive(pids)) and time.time() < deadline:
        time.sleep(0.05)
    return left


@pytest.mark.parametrize("command, begin", [("tile", _start), ("fill", _start_fill)], ids=["tile", "fill"])
def test_sigterm_ends_workers_at_once(tmp_path, command, begin):
    proc = begin(tmp_path)
    helpers = _descendants(proc.pid)  # the forkserver and its two workers
    assert len(helpers) >= 3
    start = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
        proc.wait()
        left = _wait_gone(helpers, 5)
        for pid in left:  # never leave them running for the rest of the session
            os.kill(pid, signal.SIGKILL)
    took = time.monotonic() - start
    # the workers' files would take 10 s (fill) to most of a minute (tile) more; the measured
    # exit is about 0.5 s
    assert took < 5, f"exit took {took:.1f} s"
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert err.strip() == f"pcgen {command}: interrupted (SIGTERM)"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]
    assert not left, f"still running after the run ended: {sorted(left)}"


@pytest.mark.parametrize("begin", [_start, _start_fill], ids=["tile", "fill"])
def test_sigkilled_parent_leaves_no_helper_processes(tmp_path, begin):
    proc = begin(tmp_path)
    helpers = _descendants(proc.pid)
    assert len(helpers) >= 3
    proc.kill()
    proc.wait()
    left = _wait_gone(helpers, 5)
    for pid in left:  # never leave them running for the rest of the session
        os.kill(pid, signal.SIGKILL)
    assert not left, f"still running 5 s after the parent was killed: {sorted(left)}"
