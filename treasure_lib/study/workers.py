"""Stages built side by side: worker processes with one thread each, so small models fill a CPU's cores.

On a CPU, the study's small models use the cores better in parallel processes with one thread each than one after
another on all cores. `classify.jobs` processes run at once (null: one per core, at most 4; one on a GPU), and every
job keeps the same thread count alone or beside others, so a stage comes out the same either way. A round may mix
kinds of stage (backbones, classifiers, anomaly scores): each job names the top-level function that builds it in
the worker, and jobs are handed out longest first, as the caller orders them.
"""

from __future__ import annotations

import contextlib

from ..config import ClassifyParams


def parallel_jobs(classify: ClassifyParams) -> int:
    """Stages built at once: `classify.jobs`, else one per core (at most 4) on a CPU, one on a GPU."""
    import os

    import torch

    if classify.jobs:
        return int(classify.jobs)
    if torch.cuda.is_available() and classify.train.accelerator in ("auto", "gpu", "cuda"):
        return 1
    return max(1, min(4, os.cpu_count() or 1))


def threads_per_job(classify: ClassifyParams) -> int:
    """Torch threads of one job: the cores shared by the jobs that run at once (a function of the classify section
    and the machine only, so a model comes out the same whether it trained alone or beside others)."""
    import os

    return max(1, (os.cpu_count() or 1) // parallel_jobs(classify))


@contextlib.contextmanager
def torch_threads(n: int):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def side_by_side(run, what: str, jobs: list[tuple]) -> None:
    """Build every `(build, job)` of `jobs` in `classify.jobs` spawned processes, `build((run dir, params, job))`
    a top-level function of the library; with one worker (or one job) nothing happens here and the callers build
    their stages in this process, as they would anyway. The processes stay up for the next call of this process
    (a chapter asks several times; each start imports torch anew, seconds per call)."""
    n = parallel_jobs(run.params.classify)
    if min(len(jobs), n) <= 1:
        return
    pool = _pool(n)
    run_dir, params = str(run.dir), run.params.to_dict()
    try:
        with run.writing(what):  # the workers build under this process's lock
            for done in pool.map(_dispatch, [(build, (run_dir, params, job)) for build, job in jobs]):
                del done
    except BaseException:
        _POOLS.pop(n, None)
        pool.shutdown(wait=False, cancel_futures=True)
        raise


_POOLS: dict = {}


def _pool(workers: int):
    """This process's pool of `workers` spawned processes, started on first use and shut down at exit."""
    if workers not in _POOLS:
        import atexit
        import multiprocessing
        import os
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(
            workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_die_with_parent,
            initargs=(os.getpid(),),
        )
        _POOLS[workers] = pool
        atexit.register(pool.shutdown, wait=True)
    return _POOLS[workers]


_BUSY = False  # a worker is building a job (SIGINT stops it) or waiting for one (SIGINT is not its to handle)


def _dispatch(item: tuple) -> bool:
    global _BUSY
    build, job = item
    _BUSY = True
    try:
        return build(job)
    finally:
        _BUSY = False


def _on_interrupt(signum, frame) -> None:
    """SIGINT in a worker: stop the job it builds (the user interrupted the chapter); while it waits for one,
    nothing: the kernel's shutdown interrupts the whole process group, and an idle worker printed a
    KeyboardInterrupt traceback per process into make book's log; it ends with its parent instead."""
    if _BUSY:
        raise KeyboardInterrupt


def _die_with_parent(parent: int) -> None:
    """A worker whose chapter was interrupted or killed stops too, instead of training on for nobody; SIGINT
    stops the job it builds and leaves an idle worker alone (`_on_interrupt`)."""
    import os
    import signal
    import threading
    import time

    signal.signal(signal.SIGINT, _on_interrupt)

    def watch():
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()
