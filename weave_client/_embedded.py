"""The process-wide embedded local server: its address at once, the server when needed.

A client with no server configured learns the embedded server's URL in its
constructor (``embedded_url``: binds a free loopback port, stdlib only, microseconds)
and starts the server later, off the event loop (``start_embedded``). The server
runs in a child process (``python -m weave_client serve --embedded``) that inherits
the bound socket: importing FastAPI and pydantic, building the app and serving
requests then never hold this process's GIL (a traced program's event loop keeps
running meanwhile). The child serves until this process closes the pipe on its
stdin: at interpreter exit, or when this process dies in any way. Until it
listens, a connection to the URL is refused, never sent elsewhere.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import subprocess
import threading
from typing import Any

from ._child_process import spawn_module, stop_child, wait_ready

__all__ = ["embedded_url", "start_embedded"]

logger = logging.getLogger("weave_client.server")

_START_TIMEOUT = 60.0
_STOP_TIMEOUT = 10.0
# The line the child writes on stdout once it accepts connections.
READY_LINE = b"weave-client embedded server ready\n"
_lock = threading.Lock()
_sock: socket.socket | None = None
_url: str | None = None
_server: Any = None
_pid: int | None = None


def _reset_after_fork() -> None:
    # A forked child inherits the parent's state but not its server: it starts its own.
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

    Blocks until the server accepts connections (the async client runs it in a
    worker thread). Stores data in ``local_db_path()``; stops at interpreter exit.
    """
    url = embedded_url()
    with _lock:
        if _server is None:
            _start()
    return url


class _ChildServer:
    """The embedded server's process; ``stop()`` closes its stdin and waits for it."""

    def __init__(self, proc: subprocess.Popen[bytes], url: str) -> None:
        self.proc = proc
        self.url = url
        self._pid = os.getpid()

    def stop(self, timeout: float = _STOP_TIMEOUT) -> None:
        """Let the server finish its requests and close its database. Idempotent."""
        if self._pid != os.getpid():
            return  # a forked child: the server is the parent's
        stop_child(self.proc, timeout, "the embedded server")


def _start() -> None:
    global _server, _sock
    from ._settings import local_db_path

    path = local_db_path()
    sock = _sock
    assert sock is not None
    proc = spawn_module(
        "weave_client",
        ["serve", "--embedded-fd", str(sock.fileno()), "--db", str(path), "--log-level", "warning"],
        pass_fds=(sock.fileno(),),
    )
    server = _ChildServer(proc, _url or "")
    if not wait_ready(proc, READY_LINE, _START_TIMEOUT):
        server.stop(timeout=1.0)
        raise RuntimeError(
            f"the embedded local trace server on {_url} did not start"
            f" (exit status {proc.poll()}); see its messages above"
        )
    # The child holds the listening socket now; without this process's copy, a
    # dead child means refused connections rather than requests that hang.
    sock.close()
    _sock = None
    atexit.register(server.stop)
    logger.info(
        "weave-client: no trace server configured; serving a local one at %s, storing traces in %s",
        _url,
        path,
    )
    _server = server


def embedded_started() -> bool:
    """True once this process's embedded server runs."""
    return _server is not None and _pid == os.getpid()
