"""A stream of typed items, parsed one JSONL line at a time from a streaming response.

The response is opened lazily (on entering the context or at the first item) and read in
chunks, so memory holds one chunk and one line however many lines arrive. A
stream that stops early, by a broken connection or a half-written last line,
raises ``APIConnectionError``: a cut stream never looks like a complete one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import Generic, Protocol, Self, TypeVar

import httpx

from .._errors import APIConnectionError, APITimeoutError, ClientClosedError
from .._http import parse_jsonl_line

__all__ = ["AsyncStream"]

T = TypeVar("T")


class _ResponseOpener(Protocol):
    """Sends the request (with the client's retries) and returns the unread response."""

    async def __call__(self) -> httpx.Response: ...


class AsyncStream(Generic[T]):
    """An iterator and context manager over a JSONL response of ``T`` items.

    Leaving the context, closing the stream, or iterating to the end releases
    the connection.
    """

    def __init__(
        self,
        open_response: _ResponseOpener,
        item_type: type[T],
        *,
        route: str,
        secrets: Sequence[str] = (),
    ) -> None:
        self._open_response = open_response
        self._item_type = item_type
        self._route = route
        self._secrets = tuple(secrets)
        self._response: httpx.Response | None = None
        self._chunks: AsyncIterator[bytes] | None = None
        self._buffer = bytearray()
        self._scanned = 0  # bytes of _buffer already searched for a newline
        self._count = 0
        self._finished = False
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "finished" if self._finished else "open"
        name = getattr(self._item_type, "__name__", repr(self._item_type))
        return f"{type(self).__name__}[{name}](route={self._route!r}, items={self._count}, {state})"

    @property
    def items_read(self) -> int:
        """How many items have been returned so far."""
        return self._count

    async def __aenter__(self) -> Self:
        await self._open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> T:
        if self._closed:
            raise ClientClosedError(
                f"This stream from {self._route} was closed after {self._count} items; "
                "start a new query to read again"
            )
        while True:
            line = self._next_line()
            terminated = True
            if line is None and self._finished:
                # The server may omit the last newline; a half line is a cut.
                line, terminated = bytes(self._buffer), False
                self._buffer.clear()
                if not line.strip():
                    await self.aclose()
                    raise StopAsyncIteration
            if line is None:
                await self._read_chunk()
            elif line.strip():
                try:
                    return self._parse(line, terminated=terminated)
                except BaseException:
                    await self.aclose()
                    raise

    async def aclose(self) -> None:
        """Stop reading and release the connection. Safe to call more than once."""
        self._closed = True
        response, self._response = self._response, None
        self._chunks = None
        if response is not None:
            await response.aclose()

    # --- internals ---------------------------------------------------------

    async def _open(self) -> httpx.Response:
        if self._closed:
            raise ClientClosedError(f"This stream from {self._route} was closed")
        if self._response is None:
            self._response = await self._open_response()
            self._chunks = self._response.aiter_bytes()
        return self._response

    def _next_line(self) -> bytes | None:
        newline = self._buffer.find(b"\n", self._scanned)
        if newline < 0:
            self._scanned = len(self._buffer)
            return None
        line = bytes(self._buffer[:newline])
        del self._buffer[: newline + 1]
        self._scanned = 0
        return line

    async def _read_chunk(self) -> None:
        await self._open()
        assert self._chunks is not None
        try:
            chunk = await anext(self._chunks)
        except StopAsyncIteration:
            self._finished = True
            return
        except httpx.TimeoutException as exc:
            await self.aclose()
            raise APITimeoutError(
                f"The JSONL stream from {self._route} timed out after {self._count} items "
                f"({type(exc).__name__}); the result is incomplete",
                route=self._route,
            ) from exc
        except httpx.HTTPError as exc:
            await self.aclose()
            raise APIConnectionError(
                f"The JSONL stream from {self._route} was cut after {self._count} items "
                f"({type(exc).__name__}: {exc}); the result is incomplete",
                route=self._route,
            ) from exc
        self._buffer += chunk

    def _parse(self, line: bytes, *, terminated: bool) -> T:
        item = parse_jsonl_line(
            self._item_type,
            line,
            route=self._route,
            index=self._count,
            terminated=terminated,
            secrets=self._secrets,
        )
        self._count += 1
        return item
