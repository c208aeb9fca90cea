"""The server's WebSocket protocol: uvicorn's wsproto one, plus messages framed once.

A live-traces page goes to every watcher as the same text. Through ASGI each
``send_text`` is encoded to UTF-8 and framed again for each connection: three
copies of 64 KB per watcher, on the event loop, under the GIL (about 60 µs a
message on the 2-core VM, where fresh large buffers page-fault, against 10 µs
when they do not). A :class:`~._live_messages.SharedText` carries its frame,
built once in the worker thread that reads the page, and
:class:`SharedFrameWSProtocol` writes that frame to the transport as it is.

Only complete, unmasked text frames with no extension are written this way
(the servers turn permessage-deflate off, so no extension is ever negotiated);
wsproto keeps no per-message state for those. Anything else, and any message
on a connection that is not open, goes through uvicorn's own ``send``.
Under another ASGI server a ``SharedText`` is just a ``str``.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.websockets.wsproto_impl import WSProtocol
from wsproto.connection import ConnectionState

from ._live_messages import SharedText

__all__ = ["WS_OPTIONS", "SharedFrameWSProtocol"]


class SharedFrameWSProtocol(WSProtocol):
    """uvicorn's wsproto protocol; a :class:`SharedText` goes out as its own frame."""

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
        self.transport.write(text.frame)

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
# Live traces go to local clients: compressing each message (browsers offer
# permessage-deflate) would cost the server's event loop more than it saves.
WS_OPTIONS: dict[str, Any] = {"ws": SharedFrameWSProtocol, "ws_per_message_deflate": False}
