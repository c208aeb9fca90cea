"""Conversation threads: ``with weave_client.thread("conv-42") as t:`` (weave's ``weave.thread``).

Every call started inside the block carries the block's ``thread_id``. A call
whose parent is not in the same thread (a top-level call of the block) starts a
*turn*: its ``turn_id`` is its own id, and its descendants carry that
``turn_id``. ``thread(None)`` clears the thread for the block; ``thread()``
makes a new UUIDv7 id. The state is a contextvar (in ``_tracing``), so tasks,
``gather`` children and context-copying worker threads inherit it.
"""

from __future__ import annotations

import contextvars
from types import TracebackType

from ._ids import generate_id
from ._tracing import _thread, current_frame

__all__ = ["ThreadContext", "thread"]


class _Auto:
    """The default of ``thread()``: make a new id."""

    def __repr__(self) -> str:
        return "<auto>"


_AUTO = _Auto()


class ThreadContext:
    """The thread of a ``thread(...)`` block: ``thread_id`` and the current ``turn_id``.

    Usable as ``with`` (in sync and async code alike) or ``async with``; each
    ``with`` statement needs its own ``thread(...)`` object.
    """

    __slots__ = ("_thread_id", "_token")

    def __init__(self, thread_id: str | None) -> None:
        self._thread_id = thread_id
        self._token: contextvars.Token[str | None] | None = None

    def __repr__(self) -> str:
        return f"ThreadContext(thread_id={self._thread_id!r})"

    @property
    def thread_id(self) -> str | None:
        """The id every call in the block carries (None: thread tracking is off)."""
        return self._thread_id

    @property
    def turn_id(self) -> str | None:
        """The turn of the running call (the id of the top-level call of the block
        it belongs to), or None outside a traced call of this thread."""
        frame = current_frame()
        if frame is None or self._thread_id is None or frame.thread_id != self._thread_id:
            return None
        return frame.turn_id

    def __enter__(self) -> ThreadContext:
        if self._token is not None:
            raise RuntimeError(f"{self!r} is already entered; call thread(...) again for a new block")
        self._token = _thread.set(self._thread_id)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        token, self._token = self._token, None
        if token is None:
            return
        try:
            _thread.reset(token)
        except ValueError:
            # Exited in another context than the one that entered (a generator
            # resumed elsewhere): restore what was current before the block.
            _thread.set(token.old_value if token.old_value is not token.MISSING else None)

    async def __aenter__(self) -> ThreadContext:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


def thread(thread_id: str | _Auto | None = _AUTO) -> ThreadContext:
    """Group the calls of a block into a conversation thread (weave's ``weave.thread``).

    ::

        with weave_client.thread("conv-42") as t:
            await chat("hi")        # a turn: turn_id == its own call id
            await chat("and then?") # another turn of the same thread

    Without an argument a new UUIDv7 id is made; ``thread(None)`` turns thread
    tracking off inside the block. Query threads with ``client.threads()`` and
    their calls with ``client.calls(thread_ids=[...])``.
    """
    if isinstance(thread_id, _Auto):
        return ThreadContext(generate_id())
    if thread_id is not None and not isinstance(thread_id, str):
        raise TypeError(f"thread() takes a str id or None, got {type(thread_id).__name__}: {thread_id!r}")
    if thread_id == "":
        raise ValueError("thread() id is empty; pass None to turn thread tracking off")
    return ThreadContext(thread_id)
