"""A threaded HTTP server on 127.0.0.1 for tests: the base of the fault server and proxy."""

from __future__ import annotations

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self


class QuietThreadingServer(ThreadingHTTPServer):
    """Daemon handler threads; dropped client connections are expected, not tracebacks."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128
    # Clients drop keep-alive connections (after a timeout, say) while a handler
    # waits for the next request: that is normal in these tests.
    quiet_errors: tuple[type[BaseException], ...] = (ConnectionError,)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], self.quiet_errors):
            return
        super().handle_error(request, client_address)


class LoopbackHTTPServer:
    """Serves ``handler`` on a daemon thread; a context manager, or ``start()``/``stop()``."""

    def __init__(
        self,
        handler: type[BaseHTTPRequestHandler],
        *,
        host: str,
        port: int,
        name: str,
        server_class: type[QuietThreadingServer] = QuietThreadingServer,
    ) -> None:
        self._stopped = threading.Event()
        self._httpd = server_class((host, port), handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name=name,
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
