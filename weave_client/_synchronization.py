"""The one hand-written async/sync pair.

Everything in ``weave_client/_async`` that waits is written with the async names
below; ``scripts/unasync`` maps each to its sync twin (see the table in
``scripts/unasync_rules.py``). These are the only places where the two flavours
differ by more than ``async``/``await``: a lock, an event, a semaphore, sleep,
running blocking work, bounded concurrency, and the background worker (an
asyncio task for the async client, a daemon thread for the sync one).
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = [
    "AsyncEvent",
    "AsyncLock",
    "AsyncSemaphore",
    "AsyncWorker",
    "Event",
    "Lock",
    "Semaphore",
    "Worker",
    "async_gather_bounded",
    "async_run_blocking",
    "async_sleep",
    "current_async_time",
    "current_time",
    "gather_bounded",
    "run_blocking",
    "sleep",
]

T = TypeVar("T")

# --- primitives -------------------------------------------------------------

AsyncLock = asyncio.Lock
Lock = threading.Lock
AsyncEvent = asyncio.Event
Event = threading.Event
AsyncSemaphore = asyncio.Semaphore
Semaphore = threading.Semaphore


async def async_sleep(seconds: float) -> None:
    """Sleep without blocking the event loop."""
    await asyncio.sleep(seconds)


def sleep(seconds: float) -> None:
    """Sleep the calling thread."""
    time.sleep(seconds)


def current_async_time() -> float:
    """A monotonic clock (the loop's, so it agrees with asyncio timeouts)."""
    return time.monotonic()


def current_time() -> float:
    """A monotonic clock."""
    return time.monotonic()


async def async_run_blocking(fn: Callable[..., T], *args: Any) -> T:
    """Run CPU-bound or blocking ``fn`` in a worker thread, context propagated."""
    return await asyncio.to_thread(fn, *args)


def run_blocking(fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn`` in the calling thread: the sync client has no loop to protect."""
    return fn(*args)


# --- bounded concurrency ----------------------------------------------------


async def async_gather_bounded(
    jobs: Iterable[Callable[[], Awaitable[T]]], limit: int
) -> list[T]:
    """Run the jobs concurrently, at most ``limit`` at once; results in job order.

    The first exception propagates after the other running jobs are cancelled.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit!r}")
    semaphore = asyncio.Semaphore(limit)

    async def run(job: Callable[[], Awaitable[T]]) -> T:
        async with semaphore:
            return await job()

    tasks = [asyncio.ensure_future(run(job)) for job in jobs]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        raise


def gather_bounded(jobs: Iterable[Callable[[], T]], limit: int) -> list[T]:
    """Run the jobs in a pool of ``limit`` threads, each in a copy of the caller's context."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit!r}")
    with ThreadPoolExecutor(max_workers=limit, thread_name_prefix="weave-gather") as pool:
        futures = [pool.submit(contextvars.copy_context().run, job) for job in jobs]
        try:
            return [future.result() for future in futures]
        except BaseException:
            for future in futures:
                future.cancel()
            raise


# --- the background worker --------------------------------------------------


class AsyncWorker:
    """Runs ``target`` as an asyncio task on the loop that calls ``start()``."""

    def __init__(self, target: Callable[[], Coroutine[Any, Any, None]], name: str) -> None:
        self._target = target
        self._name = name
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self.running:
            return
        # A fresh context: the worker must not inherit the caller's current call.
        self._task = asyncio.get_running_loop().create_task(
            self._target(), name=self._name, context=contextvars.Context()
        )

    async def join(self, timeout: float | None = None) -> bool:
        """Wait for the target to return; False if it is still running at ``timeout``."""
        if self._task is None:
            return True
        done, _ = await asyncio.wait({self._task}, timeout=timeout)
        return bool(done)

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()


class Worker:
    """Runs ``target`` in a daemon thread started by ``start()``."""

    def __init__(self, target: Callable[[], None], name: str) -> None:
        self._target = target
        self._name = name
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        # A fresh context: the worker must not inherit the caller's current call.
        ctx = contextvars.Context()
        self._thread = threading.Thread(
            target=ctx.run, args=(self._target,), name=self._name, daemon=True
        )
        self._thread.start()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the target to return; False if it is still running at ``timeout``."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def cancel(self) -> None:
        """Threads cannot be cancelled; the target must watch its own stop flag."""
