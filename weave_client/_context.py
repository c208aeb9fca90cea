"""Context shared by both flavours: which client traced ops report to, and threads.

The current client is, first, the one made current in this context (a
contextvar: set by ``create_client``/``create_async_client`` and by entering a
client's ``with`` block, inherited by tasks, ``asyncio.to_thread`` and
``ContextThreadPoolExecutor``/``Thread`` workers), else the process-wide default:
the most recently created or entered client that is still open. Closing it
hands the role back to the previous open one. So a client made in a web app's
lifespan, or in the main thread, is found by request handlers, worker threads
and other event loops, which do not share its context. A client entered (or made
by a create function) is held until closed; one only constructed is a default
while it is referenced and no entered client is open.

Reading it is on every traced call's path: one contextvar read, then one
module-global read. This module imports neither flavour.
"""

from __future__ import annotations

import contextvars
import threading
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

__all__ = [
    "ContextThreadPoolExecutor",
    "Thread",
    "current_client",
    "note_client",
    "open_clients",
    "pop_client",
    "push_client",
    "register_client",
    "unregister_client",
]

P = ParamSpec("P")
T = TypeVar("T")

# The client made current in this context. Typed ``Any`` because it is an
# AsyncWeaveClient or a WeaveClient (this module imports neither).
_current_client: contextvars.ContextVar[Any | None] = contextvars.ContextVar(
    "weave_client_current_client", default=None
)

# The process-wide default: the top of ``_open`` (None when no client is open).
# Written under ``_registry_lock``; read without it (one global read).
_default: Any | None = None
# Open clients that were entered or made current, oldest first; the last is the default.
_open: list[Any] = []
# Clients only constructed (never entered), oldest first, held weakly: the last one
# alive is the default while no entered client is open.
_constructed: list[weakref.ref[Any]] = []
_weak_default: weakref.ref[Any] | None = None
# Re-entrant: a weakref callback may run (garbage collection) while it is held.
_registry_lock = threading.RLock()


def current_client() -> Any | None:
    """The client traced ops report to, or None (ops then run untraced).

    The client made current in this context if it is still open, else the
    process-wide default (the most recently created or entered open client).
    """
    client = _current_client.get()
    if client is not None and not client._closed:
        return client
    if _default is not None:
        return _default
    weak = _weak_default
    return weak() if weak is not None else None


def _update_defaults() -> None:
    """Recompute both defaults (call with ``_registry_lock`` held)."""
    global _default, _weak_default
    _default = _open[-1] if _open else None
    _constructed[:] = [ref for ref in _constructed if ref() is not None]
    _weak_default = _constructed[-1] if _constructed else None


def _forget_collected(_: weakref.ref[Any]) -> None:
    with _registry_lock:
        _update_defaults()


def _drop_constructed(client: Any) -> None:
    _constructed[:] = [ref for ref in _constructed if ref() is not client]


def note_client(client: Any) -> None:
    """Record a newly constructed client: a default while referenced and never entered."""
    with _registry_lock:
        _constructed.append(weakref.ref(client, _forget_collected))
        _update_defaults()


def register_client(client: Any) -> None:
    """Make ``client`` the process-wide default (again, if it already was one); held
    until ``unregister_client``."""
    with _registry_lock:
        if client in _open:
            _open.remove(client)
        _open.append(client)
        _drop_constructed(client)
        _update_defaults()


def unregister_client(client: Any) -> None:
    """Forget a closed client; the previous open one becomes the default again."""
    with _registry_lock:
        if client in _open:
            _open.remove(client)
        _drop_constructed(client)
        _update_defaults()


def open_clients() -> list[Any]:
    """The open clients registered as process-wide defaults, oldest first."""
    with _registry_lock:
        return list(_open)


def push_client(client: Any) -> contextvars.Token[Any | None]:
    """Make ``client`` current in this context; returns the token to restore the previous one."""
    return _current_client.set(client)


def pop_client(token: contextvars.Token[Any | None]) -> None:
    """Restore the client that was current before ``push_client``."""
    try:
        _current_client.reset(token)
    except ValueError:
        # Reset from another context (e.g. a client closed in a different task):
        # fall back to clearing it rather than failing the close.
        _current_client.set(None)


@contextmanager
def using_client(client: Any) -> Iterator[None]:
    """Make ``client`` current inside the block."""
    token = push_client(client)
    try:
        yield
    finally:
        pop_client(token)


class ContextThreadPoolExecutor(ThreadPoolExecutor):
    """A ThreadPoolExecutor whose tasks run in a copy of the submitter's context.

    Traced calls made in the worker nest under the call that submitted them.
    """

    def submit(
        self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> Future[T]:
        """Run ``fn(*args, **kwargs)`` in a worker, in a copy of the caller's context."""
        ctx = contextvars.copy_context()
        return super().submit(ctx.run, fn, *args, **kwargs)  # type: ignore[arg-type]

    def map(
        self, fn: Callable[..., T], *iterables: Any, timeout: float | None = None,
        chunksize: int = 1,
    ) -> Iterator[T]:
        """``Executor.map``, each call in a copy of the caller's context."""
        ctx = contextvars.copy_context()

        def run(*args: Any) -> T:
            return ctx.copy().run(fn, *args)

        return super().map(run, *iterables, timeout=timeout, chunksize=chunksize)


class Thread(threading.Thread):
    """A ``threading.Thread`` whose ``run()`` happens in a copy of the starter's context.

    The context is copied when ``start()`` is called, so traced calls made in
    the thread nest under the call that started it (a plain ``threading.Thread``
    starts with an empty context: its calls are roots). Subclasses may override
    ``run()`` as usual.
    """

    def start(self) -> None:
        """Start the thread; ``run()`` will see a copy of the caller's context."""
        ctx = contextvars.copy_context()
        run = self.run
        # An instance attribute shadows the (possibly overridden) method, so the
        # thread's bootstrap calls run() inside the copied context.
        self.run = lambda: ctx.run(run)  # type: ignore[method-assign]
        super().start()
