"""A ``/calls/watch`` connection handed off to the live process: its WebSocket
after the handshake and the subscribe message, spoken with wsproto.

The server accepted the connection and read the client's subscribe message;
the live process gets the socket (``_live_process``), the subscribe message
and the permessage-deflate parameters the handshake agreed, and serves the
rest with :func:`~._live.watch_route`, which sees this class as it sees
Starlette's WebSocket. A :class:`~._live_messages.SharedText` goes out as its
frame, built once for every watcher (compressed when the client took
permessage-deflate, which is always without server context takeover here).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from starlette.websockets import WebSocketDisconnect
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import CloseConnection, Ping, TextMessage
from wsproto.extensions import Extension, PerMessageDeflate

from ._live_messages import SharedText

__all__ = ["HandedOffWebSocket"]

# Seconds a closing connection has to take its close frame before it is cut.
_CLOSE_TIMEOUT = 10.0


class HandedOffWebSocket(asyncio.Protocol):
    """A watcher's WebSocket in the live process (an asyncio protocol on its socket)."""

    def __init__(self, subscribe: str, deflate: str | None) -> None:
        """``subscribe``: the client's subscribe message; ``deflate``: the agreed
        permessage-deflate parameters (``permessage-deflate; ...``), None without."""
        extensions: list[Extension] = []
        if deflate is not None:
            extension = PerMessageDeflate()
            if extension.accept(deflate) is None:
                raise ValueError(f"permessage-deflate parameters: {deflate!r}")
            extensions.append(extension)
        self._conn = Connection(ConnectionType.SERVER, extensions=extensions)
        self._deflating = deflate is not None
        self._subscribe: str | None = subscribe
        # No hand-off offered here: the route serves the watcher in this process.
        self.scope: Mapping[str, Any] = {"type": "websocket", "extensions": {}}
        self.headers: Mapping[str, str] = {
            "sec-websocket-extensions": "permessage-deflate" if deflate else ""
        }
        self._transport: asyncio.Transport | None = None
        self._writable = asyncio.Event()
        self._writable.set()
        self._closed = asyncio.Event()
        self._close_code = 1006

    # -- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._conn.receive_data(data)
        for event in self._conn.events():
            if isinstance(event, Ping):
                self._write(self._conn.send(event.response()))
            elif isinstance(event, CloseConnection):
                if self._conn.state is ConnectionState.REMOTE_CLOSING:
                    self._write(self._conn.send(event.response()))
                self._gone(event.code)
                if self._transport is not None:
                    self._transport.close()
            # Clients send nothing else after subscribing (messages are ignored).

    def eof_received(self) -> bool:
        self._gone(1006)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._gone(1006)
        self._writable.set()  # a paused transport that is lost never resumes

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # -- what watch_route uses (as on Starlette's WebSocket) ---------------------------

    async def accept(self) -> None:
        """Accepted already, by the server that handed the connection off."""

    async def receive_text(self) -> str:
        """The subscribe message (the only one a client sends)."""
        if self._subscribe is None:
            await self.receive()
        text, self._subscribe = self._subscribe, None
        assert text is not None
        return text

    async def receive(self) -> dict[str, Any]:
        """Wait until the client leaves (raises ``WebSocketDisconnect``)."""
        await self._closed.wait()
        raise WebSocketDisconnect(self._close_code)

    async def send_text(self, data: str) -> None:
        await self._writable.wait()
        if self._closed.is_set():
            raise WebSocketDisconnect(self._close_code)
        if type(data) is SharedText:
            self._write(data.deflated if self._deflating else data.frame)
        else:
            self._write(self._conn.send(TextMessage(data=data)))

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        """Send a close frame; the socket is closed once it is written (or after
        _CLOSE_TIMEOUT seconds for a client that does not read)."""
        if self._closed.is_set() or self._transport is None:
            return
        if self._conn.state is ConnectionState.OPEN:
            self._write(self._conn.send(CloseConnection(code=code, reason=reason or "")))
        self._gone(code)
        transport = self._transport
        transport.close()
        asyncio.get_running_loop().call_later(_CLOSE_TIMEOUT, transport.abort)

    # -- inside ------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def _gone(self, code: int) -> None:
        """The connection is over (closed by either side, or lost): say so once."""
        if not self._closed.is_set():
            self._close_code = code
            self._closed.set()

