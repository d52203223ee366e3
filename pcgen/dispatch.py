"""Run one function over many jobs (files): in this process, a process pool, or on Dask.

Why a module of its own: a plain ``ProcessPoolExecutor`` is not safe to stop. Its own shutdown
waits for every running job to finish (a minute on a big file) while SIGTERM or Ctrl-C should
end the run now; a signal that lands while workers start leaves a half-started worker behind;
Ctrl-C reaches the workers too (the terminal signals the whole process group), so each prints a
traceback; and a parent killed by SIGKILL leaves its idle workers, and the forkserver they keep
alive, waiting on the job queue forever. `run_all` handles all of that once, for every
many-file command (``pcgen tile``, ``pcgen fill`` on folders).

Workers start through the forkserver (spawn where there is none), never fork: a forked copy
of a parent holding lazrs' (rayon) thread pool or torch/OpenMP locks can deadlock, while a
forkserver child starts from a clean single-threaded server that imported only ``preload``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

from pcgen.errors import ConfigError


def run_all(fn: Callable[[Any], Any], jobs: Sequence, *, workers: int = 1,
            dask_address: str | None = None, on_done: Callable[[int, Any], None] | None = None,
            weights: Sequence[float] | None = None, preload: Sequence[str] = (),
            local: Callable[[Any], Any] | None = None) -> list:
    """``[fn(job) for job in jobs]``, run in parallel when asked; results in job order.

    Jobs run in this process when ``workers <= 1`` or there is one job; in a pool of ``workers``
    processes otherwise; on the Dask scheduler at ``dask_address`` when one is given. An error
    raised by ``fn`` reaches the caller as raised (a `pcgen.errors.PcgenError` pickles), and
    on any error or interrupt the pool's workers are ended at once, not waited for.

    Args:
        fn: a picklable, module-level function of one job.
        jobs: picklable job descriptions.
        workers: processes in the pool.
        dask_address: a Dask scheduler address (``tcp://host:8786``); its workers must see
            the same file system.
        on_done: called as ``on_done(i, result)`` in this process when job ``i`` finishes
            (in completion order), e.g. to advance a progress bar.
        weights: relative job sizes; the pool starts the largest first so one big job does
            not start last and run alone.
        preload: modules the forkserver imports once (the one holding ``fn``), so each
            worker starts without importing them again.
        local: called instead of ``fn`` for jobs run in this process; it may hold what does
            not pickle (a per-chunk progress hook).
    Returns:
        One result per job, in job order.
    Raises:
        ConfigError: the Dask scheduler cannot be reached.
    """
    jobs = list(jobs)
    if dask_address:
        return _run_dask(fn, jobs, dask_address, on_done)
    if workers <= 1 or len(jobs) <= 1:
        results = []
        for i, job in enumerate(jobs):
            results.append((local or fn)(job))
            if on_done is not None:
                on_done(i, results[-1])
        return results
    return _run_pool(fn, jobs, workers, on_done, weights, preload)


def _run_pool(fn, jobs: list, workers: int, on_done, weights, preload) -> list:
    """Run jobs in a process pool; on any error or interrupt the workers are ended at once.

    The jobs being run are abandoned then anyway: their partial outputs sit in a staging
    folder the caller removes.
    """
    import concurrent.futures as cf

    results: list = [None] * len(jobs)
    order = sorted(range(len(jobs)), key=lambda i: -(weights[i] if weights else 0))
    # Workers start as the jobs are submitted. A signal then would leave a half-started worker
    # that the pool does not list yet (it outlives us or prints a traceback), so take it after.
    with _signals_deferred():
        pool = cf.ProcessPoolExecutor(max_workers=min(workers, len(jobs)),
                                      mp_context=_pool_context(preload),
                                      initializer=_start_worker)
        futures = {pool.submit(fn, jobs[i]): i for i in order}
    try:
        for fut in cf.as_completed(futures):
            i = futures[fut]
            results[i] = fut.result()
            if on_done is not None:
                on_done(i, results[i])
    except BaseException:
        _stop_pool(pool)
        raise
    pool.shutdown(wait=True)
    return results


def _stop_pool(pool) -> None:
    """End a process pool's workers now (SIGTERM) and wait until they are gone, so none writes
    into the staging folder after the caller removed it."""
    with _signals_deferred(redeliver=False):  # a second Ctrl-C must not cut this short
        # The executor lists its workers only privately (public from Python 3.14 on as
        # terminate_workers); without the list, shutdown below still ends them, just slowly.
        procs = list((getattr(pool, "_processes", None) or {}).values())
        # shutdown(wait=False) forgets the pool's manager thread without joining it; left
        # running, it closes its wake-up pipe while interpreter exit writes to it (CPython
        # 3.11 takes no lock there), which prints "Bad file descriptor" after the run.
        manager = getattr(pool, "_executor_manager_thread", None)
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join()
        pool.shutdown(wait=True)
        if manager is not None:
            manager.join(10)  # it ends once it sees the workers gone


def _start_worker() -> None:
    """Pool worker set-up: the parent alone decides when to stop, and a worker never outlives it.

    SIGINT is ignored (a terminal's Ctrl-C reaches the whole process group; the parent ends the
    workers itself). A thread waits on the parent's sentinel (a pipe that closes when the parent
    dies, even by SIGKILL) and exits: otherwise idle workers wait on the job queue forever, and
    keep the forkserver alive with them.
    """
    import multiprocessing
    import os
    import signal
    import threading

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # A worker is ended by SIGTERM, which skips multiprocessing's exit clean-up: a process lock
    # made in it stays registered with the resource tracker, which then prints "leaked
    # semaphore objects" after the run. tqdm makes one for its first bar (even a disabled one)
    # to share a terminal between processes; a worker's bars need only a thread lock.
    from tqdm import tqdm

    tqdm.set_lock(threading.RLock())
    parent = multiprocessing.parent_process()
    if parent is None:  # pragma: no cover - a pool worker always has one
        return

    def watch():
        parent.join()
        os._exit(1)

    threading.Thread(target=watch, name="pcgen-parent-watch", daemon=True).start()


@contextlib.contextmanager
def _signals_deferred(redeliver: bool = True):
    """Hold SIGINT and SIGTERM for the block; with ``redeliver`` the first one that arrived is
    raised again after it, so the process's own handler (or the default action) still runs."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, frame: caught.append(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if caught and redeliver:
        signal.raise_signal(caught[0])


def _pool_context(preload: Sequence[str]):
    """forkserver (spawn where there is none); see the module docstring for why never fork.

    The forkserver is one per process: ``preload`` takes effect when it first starts.
    """
    import multiprocessing as mp

    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        if preload:
            ctx.set_forkserver_preload(list(preload))
        return ctx
    return mp.get_context("spawn")


def _run_dask(fn, jobs: list, address: str, on_done) -> list:
    try:
        from distributed import Client, as_completed
    except ImportError as exc:  # pragma: no cover - dask is a dependency
        raise ConfigError(f"a Dask scheduler needs the 'distributed' package ({exc})") from None
    try:
        client = Client(address, timeout="10s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ConfigError(f"cannot connect to the Dask scheduler at {address} ({exc})") from None
    try:
        futures = {client.submit(fn, job, pure=False): i for i, job in enumerate(jobs)}
        results: list = [None] * len(jobs)
        # the client's own loop: as_completed would otherwise need a default client
        for fut in as_completed(futures, loop=client.loop):
            i = futures[fut]
            results[i] = fut.result()
            if on_done is not None:
                on_done(i, results[i])
        return results
    finally:
        client.close()
