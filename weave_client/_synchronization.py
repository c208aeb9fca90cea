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
import atexit
import contextvars
import inspect
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

__all__ = [
    "ASYNC_OP_TAKES",
    "OP_TAKES",
    "AsyncEvent",
    "AsyncLock",
    "AsyncNotifier",
    "AsyncSemaphore",
    "AsyncWorker",
    "Event",
    "Lock",
    "Notifier",
    "Semaphore",
    "Worker",
    "async_callable_kind",
    "async_gather_bounded",
    "async_run_blocking",
    "async_sleep",
    "callable_kind",
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
    """Runs ``target`` as an asyncio task on the loop that calls ``start()``.

    ``at_exit`` is accepted for parity with ``Worker`` and not used: no event loop
    runs at interpreter exit, so async owners flush in ``aclose()`` instead.
    """

    def __init__(
        self,
        target: Callable[[], Coroutine[Any, Any, None]],
        name: str,
        at_exit: Callable[[], Coroutine[Any, Any, None]] | None = None,
    ) -> None:
        self._target = target
        self._name = name
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        # A task left on a closed loop (a previous asyncio.run) is not running:
        # the owner restarts the worker on the current loop.
        task = self._task
        return task is not None and not task.done() and not task.get_loop().is_closed()

    def start(self) -> None:
        """Start the task on the running loop (RuntimeError when there is none)."""
        if self.running:
            return
        # A fresh context: the worker must not inherit the caller's current call.
        self._task = asyncio.get_running_loop().create_task(
            self._target(), name=self._name, context=contextvars.Context()
        )

    async def join(self, timeout: float | None = None) -> bool:
        """Wait for the target to return; False if it is still running at ``timeout``."""
        if self._task is None or self._task.get_loop() is not asyncio.get_running_loop():
            return not self.running
        done, _ = await asyncio.wait({self._task}, timeout=timeout)
        return bool(done)

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()


class Worker:
    """Runs ``target`` in a daemon thread started by ``start()``.

    ``at_exit``, if given, runs at interpreter exit while the thread is alive (a
    daemon thread would otherwise die with queued work); it must bound its wait.
    """

    def __init__(
        self,
        target: Callable[[], None],
        name: str,
        at_exit: Callable[[], None] | None = None,
    ) -> None:
        self._target = target
        self._name = name
        self._at_exit = at_exit
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the thread (again, if a previous one has returned)."""
        if self.running:
            return
        # A fresh context: the worker must not inherit the caller's current call.
        ctx = contextvars.Context()
        self._thread = threading.Thread(
            target=ctx.run, args=(self._run,), name=self._name, daemon=True
        )
        if self._at_exit is not None:
            atexit.register(self._at_exit)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._target()
        finally:
            if self._at_exit is not None:
                atexit.unregister(self._at_exit)

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the target to return; False if it is still running at ``timeout``."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def cancel(self) -> None:
        """Threads cannot be cancelled; the target must watch its own stop flag."""


# --- cross-thread notification ----------------------------------------------


class AsyncNotifier:
    """Wakes tasks waiting on a condition; ``notify()`` may be called from any thread.

    The asyncio primitives are not thread-safe, yet a sync ``@op`` running in a
    worker thread reports to an async client's sender. Waiters register a future
    on the loop; ``notify()`` resolves them directly on the loop thread and through
    ``loop.call_soon_threadsafe`` from any other thread. Waiters re-check their
    predicate on the loop after each wake-up, so no notification is lost.
    """

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._waiters: set[asyncio.Future[None]] = set()

    def bind(self) -> None:
        """Tie the notifier to the running loop (done on first wait if not before)."""
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()

    def notify(self) -> None:
        """Wake every waiter so it re-checks its predicate. Thread-safe."""
        if threading.get_ident() == self._loop_thread:
            if self._waiters:
                self._wake()
            return
        # From another thread, always hop to the loop: a waiter between its
        # predicate check and registering its future would miss a direct wake.
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._wake)
            except RuntimeError:
                # The loop closed between the check and the call: nobody is waiting.
                pass

    def _wake(self) -> None:
        waiters, self._waiters = self._waiters, set()
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float | None = None) -> bool:
        """Wait until ``predicate()`` is true; False if it is still false at ``timeout``."""
        if self._loop is None:
            self.bind()
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not predicate():
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return False
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.add(fut)
            try:
                await asyncio.wait_for(fut, remaining)
            except TimeoutError:
                pass
            finally:
                self._waiters.discard(fut)
        return True


class Notifier:
    """Wakes threads waiting on a condition; ``notify()`` may be called from any thread."""

    def __init__(self) -> None:
        self._cond = threading.Condition()

    def bind(self) -> None:
        """Nothing to bind: threads need no loop (kept for parity with AsyncNotifier)."""

    def notify(self) -> None:
        """Wake every waiter so it re-checks its predicate. Thread-safe."""
        with self._cond:
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[], bool], timeout: float | None = None) -> bool:
        """Wait until ``predicate()`` is true; False if it is still false at ``timeout``."""
        with self._cond:
            return self._cond.wait_for(predicate, timeout)


# --- what a decorator accepts -------------------------------------------------


# What each flavour's op decorator takes, for its error message.
ASYNC_OP_TAKES = (
    "coroutine functions and async generator functions"
    " (use op for plain functions and generators)"
)
OP_TAKES = (
    "plain functions and generator functions"
    " (use async_op for coroutine functions and async generators)"
)


def async_callable_kind(func: Callable[..., Any]) -> str | None:
    """``"function"`` for a coroutine function, ``"generator"`` for an async generator
    function, None for anything else (the async flavour's ``@async_op`` takes these)."""
    if inspect.iscoroutinefunction(func):
        return "function"
    if inspect.isasyncgenfunction(func):
        return "generator"
    return None


def callable_kind(func: Callable[..., Any]) -> str | None:
    """``"function"`` for a plain function, ``"generator"`` for a generator function,
    None for coroutine and async generator functions (the sync flavour's ``@op``)."""
    if inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func):
        return None
    if inspect.isgeneratorfunction(func):
        return "generator"
    return "function" if callable(func) else None
