"""Thread pools that stop promptly: Ctrl-C, a cancelled job or an error drops the queued work.

``with ThreadPoolExecutor(...)`` waits, on the way out, for every task already submitted, so
stopping a folder audit or a scan would first finish all of it. Here the tasks not yet started
are cancelled and only the running ones (one file or tensor per thread) are waited for. Only
threads are used, no signals, so it behaves the same on Windows, where there is no SIGTERM and
Ctrl-C reaches Python as a KeyboardInterrupt in the main thread.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

__all__ = ["worker_pool"]


@contextlib.contextmanager
def worker_pool(workers: int, name: str) -> Iterator[ThreadPoolExecutor]:
    """A ``ThreadPoolExecutor`` of ``workers`` threads named ``name-N`` that, when the body
    raises (KeyboardInterrupt, ``Cancelled``, an error), cancels the tasks not yet started."""
    pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix=name)
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
