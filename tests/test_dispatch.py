"""`pcgen.dispatch.run_all`: results in job order, one ``on_done`` per job, worker errors reach
the caller as raised, in this process, a process pool and on Dask.

Pool workers import the job function by name, so the functions here come from importable
modules (the stdlib, pcgen), not from this test file.
"""

from __future__ import annotations

import operator
import os

import pytest

from pcgen.dispatch import run_all
from pcgen.errors import ConfigError, InputError

# jobs of very different sizes, so a pool finishes them out of order
JOBS = [list(range(n, 0, -1)) for n in (200_000, 3, 50_000, 1, 7)]
EXPECTED = [list(range(1, n + 1)) for n in (200_000, 3, 50_000, 1, 7)]


def test_sequential_calls_local_in_order():
    seen, calls = [], []

    def local(job):
        calls.append(job)
        return sorted(job)

    # one worker: every job runs here, through ``local`` when given, ``fn`` never pickled
    out = run_all(sorted, JOBS, workers=1, on_done=lambda i, r: seen.append((i, r[:2])), local=local)
    assert out == EXPECTED
    assert calls == JOBS
    assert seen == [(0, [1, 2]), (1, [1, 2]), (2, [1, 2]), (3, [1]), (4, [1, 2])]


def test_one_job_runs_here_even_with_workers():
    assert run_all(abs, [], workers=4) == []
    assert run_all(abs, [-3], workers=4, local=lambda job: ("here", job)) == [("here", -3)]


def test_pool_keeps_job_order_and_reports_each_job_once():
    done = {}
    # the smallest first: the pool starts the heaviest jobs first, so they finish in another order
    out = run_all(sorted, JOBS, workers=2, on_done=lambda i, r: done.setdefault(i, r),
                  weights=[len(j) for j in JOBS][::-1], preload=["pcgen.dispatch"])
    assert out == EXPECTED
    assert sorted(done) == [0, 1, 2, 3, 4]
    assert all(done[i] == EXPECTED[i] for i in done)


def test_pool_runs_jobs_in_other_processes():
    pids = run_all(operator.call, [os.getpid] * 4, workers=2)
    assert os.getpid() not in pids
    assert 1 <= len(set(pids)) <= 2


@pytest.mark.parametrize("workers", [1, 2])
def test_worker_error_reaches_the_caller_unchanged(tmp_path, workers):
    import pcgen.io as pio

    missing = tmp_path / "missing.laz"
    with pytest.raises(InputError) as info:
        run_all(pio.read, [str(missing), str(missing)], workers=workers)
    assert str(info.value) == f"{missing}: file not found"


def test_dask_keeps_job_order_and_reports_each_job():
    distributed = pytest.importorskip("distributed")
    done = []
    with distributed.LocalCluster(n_workers=1, processes=False, threads_per_worker=2,
                                  dashboard_address=None) as cluster:
        out = run_all(sorted, JOBS, dask_address=cluster.scheduler_address,
                      on_done=lambda i, r: done.append(i))
    assert out == EXPECTED
    assert sorted(done) == [0, 1, 2, 3, 4]


def test_unreachable_dask_scheduler_is_one_config_error():
    with pytest.raises(ConfigError, match=r"^cannot connect to the Dask scheduler at tcp://127\.0\.0\.1:1 "):
        run_all(sorted, JOBS, dask_address="tcp://127.0.0.1:1")
