"""Running the local server in-process: a uvicorn server on a daemon thread."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from pathlib import Path
from types import TracebackType

import uvicorn

from .._settings import local_db_path
from ._app import DEFAULT_MAX_BODY_BYTES, create_app
from ._live import DEFAULT_KEEP_EVENTS, DEFAULT_WATCH_QUEUE
from ._ws_protocol import WS_OPTIONS

__all__ = ["BackgroundServer", "embedded_server_url", "local_db_path", "start_background_server"]

logger = logging.getLogger("weave_client.server")

_START_TIMEOUT = 30.0


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class BackgroundServer:
    """A local trace server serving on a real socket from a daemon thread.

    ``url`` is where it listens (``http://127.0.0.1:PORT``). ``stop()`` (or
    leaving a ``with`` block) shuts it down and closes its database.
    """

    def __init__(
        self,
        db_path: str | Path,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        watch_queue_size: int = DEFAULT_WATCH_QUEUE,
        keep_events: int = DEFAULT_KEEP_EVENTS,
        watch_process: bool = False,
        sock: socket.socket | None = None,
    ) -> None:
        self.db_path = Path(db_path)
        self.host = host
        self._app = create_app(
            db_path,
            api_key=api_key,
            max_body_bytes=max_body_bytes,
            watch_queue_size=watch_queue_size,
            keep_events=keep_events,
            watch_process=watch_process,
        )
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # Bind here, not in uvicorn, so port 0 gives us the real port before start.
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted connections
        # only when the listening socket says proto=TCP; with proto 0 every reply
        # waited on Nagle + delayed ACK (~40 ms), tripling the time of a batch upload.
        # ``sock``: a socket the caller bound already (the embedded server's, whose
        # URL a client knows before the server starts).
        if sock is not None:
            self._sock = sock
        else:
            self._sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                self._sock.bind((host, port))
            except OSError:
                self._sock.close()
                self._app.state.close()
                raise
        self.port: int = self._sock.getsockname()[1]
        self.url = _url(host, self.port)
        config = uvicorn.Config(
            self._app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            # Keep-alive a little longer than clients' pools expect to reuse.
            timeout_keep_alive=30,
            # stop() must not hang on a client that keeps a stream open.
                timeout_graceful_shutdown=5,
            **WS_OPTIONS,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._sock]},
            name=f"weave-client-server:{self.port}",
            daemon=True,
        )
        self._stopped = False
        self._pid = os.getpid()

    def start(self) -> BackgroundServer:
        """Start serving; returns once the socket accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive():
                self._app.state.close()
                raise RuntimeError(f"local trace server on {self.url} failed to start")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"local trace server on {self.url} did not start in time")
            time.sleep(0.005)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop serving, wait for the thread, close the database. Idempotent."""
        if self._stopped or self._pid != os.getpid():
            # (In a forked child the server thread does not exist and the
            # database handles are the parent's: leave them alone.)
            return
        self._stopped = True
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._sock.close()
        self._app.state.close()

    def __enter__(self) -> BackgroundServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"BackgroundServer(url={self.url!r}, db_path={str(self.db_path)!r})"


def start_background_server(
    db_path: str | Path,
    host: str = "127.0.0.1",
    port: int = 0,
    api_key: str | None = None,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    watch_queue_size: int = DEFAULT_WATCH_QUEUE,
    keep_events: int = DEFAULT_KEEP_EVENTS,
    watch_process: bool = False,
) -> BackgroundServer:
    """Start a local trace server on ``db_path`` in a daemon thread; returns once it accepts connections.

    ``port=0`` picks a free port (read it from ``.port``/``.url``). A
    ``/calls/watch`` client with more than ``watch_queue_size`` events waiting
    is closed as too slow; the newest ``keep_events`` call events are kept for
    its replays (``since``). ``watch_process=True`` serves the watchers from a
    niced child process (see ``create_app``).
    """
    return BackgroundServer(
        db_path,
        host,
        port,
        api_key,
        max_body_bytes=max_body_bytes,
        watch_queue_size=watch_queue_size,
        keep_events=keep_events,
        watch_process=watch_process,
    ).start()


def embedded_server_url() -> str:
    """URL of the process-wide embedded server, started on first use.

    It listens on 127.0.0.1 on a free port, stores data in :func:`local_db_path`,
    logs one INFO line saying where, and stops at interpreter exit.
    """
    from .._embedded import start_embedded

    return start_embedded()
