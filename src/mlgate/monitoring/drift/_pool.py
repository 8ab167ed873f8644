"""Per-feature drift work on a few threads, with results and errors as one thread gives them.

Features are independent, and nearly all of a numeric feature's time goes to numpy calls
that release the GIL (sorting, binary searches, ufuncs over the merged ECDFs), so threads
give real parallelism without copying columns into other processes. Below
:data:`PARALLEL_MIN_VALUES` values the threads cost more than they save.

Results come back in the features' order; when features fail, the error raised is the one
a plain loop would have raised first (the earliest failing feature's), and features not yet
started are cancelled.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import TypeVar

__all__ = ["PARALLEL_MIN_VALUES", "available_cores", "run_in_order"]

T = TypeVar("T")

PARALLEL_MIN_VALUES = 100_000
"""Values in both windows together from which compare() starts threads of its own."""

_MAX_WORKERS = 8


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS and Windows have no affinity call
        return os.cpu_count() or 1


def run_in_order(
    jobs: Sequence[Callable[[], T]], executor: Executor | None = None, *, parallel: bool = True
) -> list[T]:
    """Every job's result, in the jobs' order.

    ``executor`` runs them if given (the caller owns it and shuts it down). Otherwise, with
    ``parallel`` and more than one core, a thread pool of up to one thread per core lives for
    this call; else the jobs run one after the other in the calling thread.
    """
    if executor is not None:
        return _collect([executor.submit(job) for job in jobs])
    workers = min(available_cores(), len(jobs), _MAX_WORKERS)
    if not parallel or workers < 2:
        return [job() for job in jobs]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mlgate-drift") as pool:
        return _collect([pool.submit(job) for job in jobs])


def _collect(futures: list[Future[T]]) -> list[T]:
    try:
        return [future.result() for future in futures]
    except BaseException:
        for future in futures:
            future.cancel()
        raise
