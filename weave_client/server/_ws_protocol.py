"""The server's WebSocket protocol: uvicorn's wsproto one, plus messages framed once.

A live-traces page goes to every watcher as the same text. Through ASGI each
``send_text`` is encoded to UTF-8 and framed again for each connection: three
copies of 64 KB per watcher, on the event loop, under the GIL (about 60 µs a
message on the 2-core VM, where fresh large buffers page-fault, against 10 µs
when they do not). A :class:`~._live_messages.SharedText` carries its frame,
built once in the worker thread that reads the page, and
:class:`SharedFrameWSProtocol` writes that frame to the transport as it is.

Compression: a client that offers permessage-deflate (every browser does) gets
it with ``server_no_context_takeover`` (RFC 7692 lets a server add that to any
offer), so each message is compressed on its own and one compressed frame
(``SharedText.deflated``, made once, at zlib's fastest level, where the page is
read) can go to every such watcher: 14 times fewer bytes to write on the bench's
calls. wsproto compresses the other messages (a few small
ones) itself.

Only complete, unmasked text frames are written this way; with no context
taken over, wsproto keeps no per-message state for those. Anything else, and
any message on a connection that is not open, goes through uvicorn's own
``send``. Under another ASGI server a ``SharedText`` is just a ``str``.

Hand-off: the scope's ``extensions[HAND_OFF]["hand_off"]`` gives an open
connection's socket to another process (``_live_process``: the live watchers
are served by a niced child), with the permessage-deflate parameters agreed;
uvicorn then lets go of the connection without closing it.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.websockets.wsproto_impl import WSProtocol
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import AcceptConnection, Event
from wsproto.extensions import PerMessageDeflate

from ._live_messages import SharedText
from ._live_process import HAND_OFF

__all__ = ["HAND_OFF", "WS_OPTIONS", "GiveSocket", "SharedFrameWSProtocol"]

# What takes a handed-off connection: (a duplicate of its socket's fd, which the
# callee does not close; the agreed permessage-deflate parameters or None).
GiveSocket = Callable[[int, "str | None"], None]


class _SharedDeflateConnection(WSConnection):
    """wsproto's server connection, accepting permessage-deflate (when uvicorn does)
    with ``server_no_context_takeover``."""

    def __init__(self) -> None:
        super().__init__(ConnectionType.SERVER)
        self.deflate: PerMessageDeflate | None = None

    def send(self, event: Event) -> bytes:
        if isinstance(event, AcceptConnection) and any(
            isinstance(e, PerMessageDeflate) for e in event.extensions
        ):
            self.deflate = PerMessageDeflate(server_no_context_takeover=True)
            others = [e for e in event.extensions if not isinstance(e, PerMessageDeflate)]
            event = dataclasses.replace(event, extensions=[self.deflate, *others])
        return super().send(event)

    @property
    def deflating(self) -> bool:
        """Whether the client took permessage-deflate (known once the handshake is sent)."""
        return self.deflate is not None and self.deflate.enabled()

    def agreed_deflate(self) -> str | None:
        """The permessage-deflate parameters agreed (as an offer wsproto's ``accept``
        takes), None when the client did not take it."""
        d = self.deflate
        if d is None or not d.enabled():
            return None
        params = [
            "permessage-deflate",
            f"client_max_window_bits={d.client_max_window_bits}",
            f"server_max_window_bits={d.server_max_window_bits}",
            "server_no_context_takeover",
        ]
        if d.client_no_context_takeover:
            params.append("client_no_context_takeover")
        return "; ".join(params)


class SharedFrameWSProtocol(WSProtocol):
    """uvicorn's wsproto protocol; a :class:`SharedText` goes out as its own frame."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conn: _SharedDeflateConnection = _SharedDeflateConnection()

    def handle_connect(self, event: Any) -> None:
        super().handle_connect(event)
        extensions: dict[str, Any] = self.scope.setdefault("extensions", {})
        extensions[HAND_OFF] = {"hand_off": self.hand_off}

    def hand_off(self, give: GiveSocket) -> bool:
        """Give this connection away: ``give`` gets a duplicate of its socket and the
        agreed permessage-deflate parameters; then this server lets go of it without
        a close frame (the socket stays open in the taker's process).

        False, with the connection left as it was, when it is not open, has bytes
        still waiting to go out, or ``give`` raises ``OSError``.
        """
        sock = self.transport.get_extra_info("socket")
        if not self._open() or sock is None or self.transport.get_write_buffer_size():
            return False
        fd = os.dup(sock.fileno())
        try:
            give(fd, self.conn.agreed_deflate())
        except OSError:
            return False
        finally:
            os.close(fd)
        self.close_sent = True  # uvicorn sends nothing more: no close frame, no ping
        stop_keepalive = getattr(self, "stop_keepalive", None)  # (not in older uvicorns)
        if stop_keepalive is not None:
            stop_keepalive()
        self.transport.abort()  # closes this process's descriptor only
        return True

    async def send(self, message: Any) -> None:
        text = message.get("text")
        if type(text) is not SharedText or message["type"] != "websocket.send":
            await super().send(message)
            return
        await self.writable.wait()
        if not self._open():
            # uvicorn's send says what is wrong (disconnected, closing...) as it always has.
            await super().send({"type": "websocket.send", "text": str(text)})
            return
        self.transport.write(text.deflated if self.conn.deflating else text.frame)

    def _open(self) -> bool:
        """Whether a message may go out now (what uvicorn's own send checks first)."""
        try:
            return not (
                self.disconnected
                or self.close_sent
                or self.response_started
                or not self.handshake_complete
                or self.conn.state is not ConnectionState.OPEN
                or self.transport.is_closing()
            )
        except AttributeError:  # another uvicorn's internals: its own send, always
            return False


# The WebSocket options of every uvicorn server here (``uvicorn.Config(**WS_OPTIONS)``).
WS_OPTIONS: dict[str, Any] = {"ws": SharedFrameWSProtocol, "ws_per_message_deflate": True}
