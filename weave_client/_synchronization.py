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
import concurrent.futures
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
    "mark_if_coroutine_function",
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
    """Runs ``target`` as an asyncio task on the client's event loop.

    The loop is the "home" loop (``bind()``, called where the client is made
    current, or the loop the task last ran on) while it runs; ``start()`` may be
    called from any thread: from another thread or another event loop it hands
    the start to the home loop (``call_soon_threadsafe``). With no home loop
    running it starts on the caller's loop. ``at_exit`` is accepted for parity
    with ``Worker`` and not used: no event loop runs at interpreter exit, so
    async owners flush in ``aclose()`` instead.
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
        self._home: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        # A task left on a closed loop (a previous asyncio.run) is not running:
        # the owner restarts the worker on the current loop.
        task = self._task
        return task is not None and not task.done() and not task.get_loop().is_closed()

    def bind(self) -> None:
        """Make the event loop running in this thread (if any) the worker's home."""
        try:
            self._home = asyncio.get_running_loop()
        except RuntimeError:
            pass

    def on_own_thread(self) -> bool:
        """True in the thread running the worker's loop (which must never block)."""
        home = self._home
        return home is not None and asyncio._get_running_loop() is home

    def start(self, on_start: Callable[[], None] | None = None) -> bool:
        """Start the task (``on_start()`` first, on its loop); thread-safe.

        False when no loop can run it now: no home loop is running and this
        thread runs none (the work then waits for the next start on a loop).
        """
        with self._lock:
            if self.running:
                return True
            loop = asyncio._get_running_loop()
            home = self._home
            if home is not None and home is not loop and home.is_running():
                try:
                    home.call_soon_threadsafe(self._start_at_home, on_start)
                    return True
                except RuntimeError:
                    pass  # the home loop closed meanwhile: run on this one
            if loop is None:
                return False
            self._start_on(loop, on_start)
            return True

    def _start_at_home(self, on_start: Callable[[], None] | None) -> None:
        with self._lock:
            if not self.running:
                self._start_on(asyncio.get_running_loop(), on_start)

    def _start_on(
        self, loop: asyncio.AbstractEventLoop, on_start: Callable[[], None] | None
    ) -> None:
        if on_start is not None:
            on_start()
        self._home = loop
        # A fresh context: the worker must not inherit the caller's current call.
        self._task = loop.create_task(self._target(), name=self._name, context=contextvars.Context())

    async def join(self, timeout: float | None = None) -> bool:
        """Wait for the target to return; False if it is still running at ``timeout``.

        Works from any event loop: the task's own, or another one (waiting on a
        thread-safe future the task's loop resolves).
        """
        task = self._task
        if task is None:
            return True
        loop = task.get_loop()
        if loop is asyncio.get_running_loop():
            done, _ = await asyncio.wait({task}, timeout=timeout)
            return bool(done)
        if not self.running:
            return True
        finished: concurrent.futures.Future[None] = concurrent.futures.Future()

        def resolve(_: object) -> None:
            if not finished.done():
                finished.set_result(None)

        def hook() -> None:
            task.add_done_callback(resolve)

        try:
            loop.call_soon_threadsafe(hook)
        except RuntimeError:
            return not self.running
        try:
            await asyncio.wait_for(asyncio.wrap_future(finished), timeout)
        except TimeoutError:
            return task.done()
        return True

    def cancel(self) -> None:
        """Cancel the task (from any thread)."""
        task = self._task
        if task is None:
            return
        loop = task.get_loop()
        if asyncio._get_running_loop() is loop:
            task.cancel()
            return
        try:
            loop.call_soon_threadsafe(task.cancel)
        except RuntimeError:
            pass  # its loop is closed: the task will never run again


class Worker:
    """Runs ``target`` in a daemon thread started by ``start()`` (thread-safe).

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
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def bind(self) -> None:
        """Nothing to bind: a thread needs no loop (parity with ``AsyncWorker``)."""

    def on_own_thread(self) -> bool:
        """True in the worker thread itself."""
        thread = self._thread
        return thread is not None and thread.ident == threading.get_ident()

    def start(self, on_start: Callable[[], None] | None = None) -> bool:
        """Start the thread (again, if a previous one has returned); always True."""
        with self._lock:
            if self.running:
                return True
            if on_start is not None:
                on_start()
            # A fresh context: the worker must not inherit the caller's current call.
            ctx = contextvars.Context()
            self._thread = threading.Thread(
                target=ctx.run, args=(self._run,), name=self._name, daemon=True
            )
            if self._at_exit is not None:
                atexit.register(self._at_exit)
            self._thread.start()
            return True

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


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class AsyncNotifier:
    """Wakes tasks waiting on a condition; ``notify()`` may be called from any thread.

    The asyncio primitives are not thread-safe, yet a sync ``@op`` running in a
    worker thread (or an op on another event loop) reports to an async client's
    sender. Each waiter registers a future of its own loop; ``notify()``
    resolves it directly on that loop's thread and through
    ``loop.call_soon_threadsafe`` from anywhere else. A waiter checks its
    predicate again after registering, so no notification is lost.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: set[asyncio.Future[None]] = set()

    def bind(self) -> None:
        """Nothing to bind: waiters bring their own loop (kept for parity)."""

    def notify(self) -> None:
        """Wake every waiter so it re-checks its predicate. Thread-safe."""
        if not self._waiters:
            return
        with self._lock:
            waiters, self._waiters = self._waiters, set()
        running = asyncio._get_running_loop()
        for fut in waiters:
            loop = fut.get_loop()
            if loop is running:
                _resolve(fut)
                continue
            try:
                loop.call_soon_threadsafe(_resolve, fut)
            except RuntimeError:
                pass  # its loop closed: nobody waits there any more

    async def wait_for(self, predicate: Callable[[], bool], timeout: float | None = None) -> bool:
        """Wait until ``predicate()`` is true; False if it is still false at ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not predicate():
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return False
            fut: asyncio.Future[None] = loop.create_future()
            with self._lock:
                self._waiters.add(fut)
            try:
                if predicate():  # a notify() between the check and registering
                    return True
                await asyncio.wait_for(fut, remaining)
            except TimeoutError:
                pass
            finally:
                with self._lock:
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


def mark_if_coroutine_function(obj: Any, func: Callable[..., Any]) -> None:
    """Let ``obj`` (a callable object wrapping ``func``) pass as a coroutine function
    when ``func`` is one, for frameworks that check before awaiting (Starlette's
    background tasks, ``asyncio``/``inspect.iscoroutinefunction``)."""
    if not inspect.iscoroutinefunction(func):
        return
    marker = getattr(inspect, "_is_coroutine_mark", None)  # Python 3.12+
    if marker is not None:
        obj._is_coroutine_marker = marker
    legacy = getattr(asyncio.coroutines, "_is_coroutine", None)  # asyncio's, up to 3.13
    if legacy is not None:
        obj._is_coroutine = legacy


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
