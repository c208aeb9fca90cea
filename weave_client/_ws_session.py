"""The WebSocket session class of each flavour for live traces (``client.calls_live()``).

httpx-ws's async session is used as it is. Its sync session hands received
messages from a reader thread to the caller through a bounded queue, and its
exit joins that thread: when the caller stops reading while messages keep
coming, the thread blocks on the full queue and the exit never returns.
:class:`LiveSession` empties the queue while it waits for the threads.
"""

from __future__ import annotations

import queue
import threading
from types import TracebackType

from httpx_ws import AsyncWebSocketSession, WebSocketSession

__all__ = ["AsyncLiveSession", "LiveSession"]

AsyncLiveSession = AsyncWebSocketSession


class LiveSession(WebSocketSession):
    """httpx-ws's sync session whose exit cannot hang on a full receive queue."""

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
        threads: list[threading.Thread | None] = [
            self._background_receive_task,
            self._background_keepalive_ping_task,
        ]
        for thread in threads:
            while thread is not None and thread.is_alive():
                # Nobody reads any more: drop what the thread is waiting to put.
                try:
                    self._events.get(timeout=0.05)
                except queue.Empty:
                    pass
