"""Context shared by both flavours: the current client and the current call stack.

One set of contextvars serves the async and the sync client, so a sync ``@op``
called inside an ``@async_op`` nests under it, and ``asyncio.gather`` /
``create_task`` children inherit their parent's call.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

__all__ = [
    "ContextThreadPoolExecutor",
    "current_client",
    "pop_client",
    "push_client",
]

P = ParamSpec("P")
T = TypeVar("T")

# The client entered (or created) last: the target of traced ops. Typed ``Any``
# because it is an AsyncWeaveClient or a WeaveClient.
_current_client: contextvars.ContextVar[Any | None] = contextvars.ContextVar(
    "weave_client_current_client", default=None
)


def current_client() -> Any | None:
    """The client traced ops report to, or None (ops then run untraced)."""
    return _current_client.get()


def push_client(client: Any) -> contextvars.Token[Any | None]:
    """Make ``client`` current; returns the token to restore the previous one."""
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
