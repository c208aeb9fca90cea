"""The process-wide embedded local server: its address at once, the server when needed.

A client with no server configured learns the embedded server's URL in its
constructor (``embedded_url``: binds a free loopback port, stdlib only, microseconds)
and starts the server later, off the event loop (``start_embedded``: imports the
server, opens the database, starts uvicorn on the bound socket, waits until it
accepts connections). Until then a connection to the URL is refused, never sent
elsewhere.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import sys
import threading
from typing import Any

__all__ = ["embedded_url", "start_embedded"]

logger = logging.getLogger("weave_client.server")

_START_SWITCH_INTERVAL = 0.0005
_lock = threading.Lock()
_sock: socket.socket | None = None
_url: str | None = None
_server: Any = None
_pid: int | None = None


def _reset_after_fork() -> None:
    # A forked child inherits the parent's state but not its server thread: its own.
    global _sock, _url, _server, _pid
    if _pid != os.getpid():
        _sock, _url, _server, _pid = None, None, None, os.getpid()


def embedded_url() -> str:
    """The embedded server's URL (``http://127.0.0.1:PORT``); reserves the port, starts nothing."""
    global _sock, _url
    with _lock:
        _reset_after_fork()
        if _url is None:
            # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted connections
            # only when the listening socket says proto=TCP (see BackgroundServer).
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", 0))
            _sock = sock
            _url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        return _url


def start_embedded() -> str:
    """Start the embedded server (once per process) and return its URL.

    Blocks until the server accepts connections: the async client runs it in a
    worker thread. Stores data in ``local_db_path()``; stops at interpreter exit.
    """
    global _server
    url = embedded_url()
    with _lock:
        if _server is None:
            # Starting means importing the server and building its app: pure Python
            # that would hold the GIL for whole switch intervals (5 ms) while the
            # event loop that asked for it waits to run. A short interval meanwhile.
            interval = sys.getswitchinterval()
            sys.setswitchinterval(min(interval, _START_SWITCH_INTERVAL))
            try:
                _start()
            finally:
                sys.setswitchinterval(interval)
    return url


def _start() -> None:
    global _server
    from ._settings import local_db_path
    from .server._background import BackgroundServer

    path = local_db_path()
    assert _sock is not None
    server = BackgroundServer(path, sock=_sock).start()
    atexit.register(server.stop)
    logger.info(
        "weave-client: no trace server configured; serving a local one at %s, "
        "storing traces in %s",
        server.url,
        path,
    )
    _server = server


def embedded_started() -> bool:
    """True once this process's embedded server runs."""
    return _server is not None and _pid == os.getpid()
