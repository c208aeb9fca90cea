"""Live traces served by a niced child process: the server hands each watcher's
connection off to it.

Why a process: reading the new calls and writing them to every watcher costs
CPU in proportion to the watchers; in the server's process that work competes
with ingestion (its event loop, its GIL), even with the reads in a niced helper
process (the server still wrote every message to every socket). A child of
lower priority that does both mostly takes the CPU time ingestion leaves.
Measured on 2 cores with 10 watchers (``scripts/benchmarks/bench_live.py``,
README "Benchmark"): the server's own CPU for the fan-out fell from 4-7 ms per
1,000 calls to about none, and ingestion went from 79-95% of its rate without
watchers to 94-108%. The price: under sustained overload the watchers wait for
idle CPU, so they lag and catch up when the load drops (one that falls 10,000
events behind is closed as too slow, as in the server).

How: the server accepts a ``/calls/watch`` connection and reads its subscribe
message as always; then, under uvicorn with this package's WebSocket protocol
(``_ws_protocol.HAND_OFF``), it passes the socket to the child over a Unix
datagram socket (``SCM_RIGHTS``), with the subscribe message and the agreed
permessage-deflate parameters, and lets go of it. The child
(``_live_child``) serves it exactly as the server would: the same route code
over a broadcaster of its own that reads the database file. The server's write
path wakes it with a byte on its stdin after each commit; its stdin closing
stops it. Both are in one session, so the child's niceness counts against the
server (see ``spawn_module``).

Should the child fail (it could not start, it died), the reason is logged once
and watchers are served in the server from then on. A watcher whose connection
the dead child held is disconnected; resuming with ``since`` it misses nothing.
Where the hand-off is not possible (no ``socket.send_fds``, as on Windows;
another ASGI server) watchers are served in the server.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import threading

import orjson

from .._child_process import spawn_module, stop_child, wait_ready

__all__ = ["HAND_OFF", "MAX_HAND_OFF", "READY", "LiveProcess"]

logger = logging.getLogger("weave_client.server")

# The scope extension through which this package's uvicorn protocol offers the
# hand-off (``_ws_protocol``); absent under other ASGI servers.
HAND_OFF = "weave_client.hand_off"
# The child's first line: it has loaded its modules and listens for hand-offs.
READY = b"weave-client live process ready\n"
_START_TIMEOUT = 60.0
_STOP_TIMEOUT = 5.0
# The most bytes of one hand-off message (the subscribe message with its filter).
MAX_HAND_OFF = 1 << 16


class LiveProcess:
    """The child serving watchers handed off to it (started at the first); thread-safe."""

    def __init__(self, db_path: str, queue_size: int) -> None:
        self.db_path = db_path
        self.queue_size = queue_size
        self._lock = threading.Lock()
        # Guards the wake pipe's descriptor: never written once closed (or reused).
        self._wake_lock = threading.Lock()
        self._child: subprocess.Popen[bytes] | None = None
        self._channel: socket.socket | None = None
        self._wake_fd = -1
        # Set at the first hand-off: from then on each commit wakes the child.
        self.serving = False
        # Watchers handed off so far, and how many of them took permessage-deflate.
        self.handed_off = 0
        self.handed_off_deflating = 0
        self._failed = not hasattr(socket, "send_fds")
        self._closed = False

    def start(self) -> bool:
        """Start the child if it is not running (blocking: about 0.5 s, once); whether
        watchers can be handed to it."""
        with self._lock:
            if self._failed or self._closed:
                return False
            try:
                if self._child is None:
                    self._start()
                elif (code := self._child.poll()) is not None:
                    raise EOFError(f"the live process exited (exit code {code})")
            except (OSError, EOFError) as exc:
                self._fail(exc)
                return False
            return True

    def _start(self) -> None:
        parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._channel = parent_end  # (closed by _stop, should the start fail)
        parent_end.setblocking(False)
        try:
            fd = child_end.fileno()
            args = [self.db_path, str(self.queue_size), str(fd)]
            child = self._child = spawn_module(
                "weave_client.server._live_child", args, pass_fds=(fd,), own_session=False
            )
        finally:
            child_end.close()
        if not wait_ready(child, READY, _START_TIMEOUT):
            raise EOFError(f"the live process did not start (exit code {child.poll()})")
        assert child.stdin is not None
        os.set_blocking(child.stdin.fileno(), False)
        with self._wake_lock:
            self._wake_fd = child.stdin.fileno()

    def give(self, fd: int, subscribe: str, deflate: str | None) -> None:
        """Hand a watcher's socket (``fd``, not closed here) to the child, with its
        subscribe message and permessage-deflate parameters. Raises ``OSError`` when
        it cannot (the connection then stays with the server); a failure of the child
        is logged once, and no later watcher is handed to it."""
        message = orjson.dumps({"subscribe": subscribe, "deflate": deflate})
        if len(message) > MAX_HAND_OFF:
            raise OSError(f"a subscribe message of {len(message)} bytes is served in the server")
        with self._lock:
            if self._channel is None:
                raise OSError("the live process is not running")
            try:
                socket.send_fds(self._channel, [message], [fd])
            except BlockingIOError:
                raise  # hand-offs waiting in the child: this one is served in the server
            except OSError as exc:
                self._fail(exc)
                raise
            self.serving = True
            self.handed_off += 1
            self.handed_off_deflating += deflate is not None

    def wake(self) -> None:
        """Say that calls were stored (from the write path, any thread; never blocks)."""
        if not self.serving:
            return
        with self._wake_lock:
            if self._wake_fd >= 0:
                try:
                    os.write(self._wake_fd, b".")
                except OSError:  # bytes already wait (the pipe is full), or the child is gone
                    pass

    def close(self) -> None:
        """Stop the child (it also stops by itself when this process exits)."""
        with self._lock:
            self._closed = True
            self._stop()

    def _fail(self, exc: BaseException) -> None:
        self._failed = True
        logger.error(
            "calls/watch: the live process failed (%s: %s); "
            "serving watchers in the server process from now on",
            type(exc).__name__,
            exc,
        )
        self._stop()

    def _stop(self) -> None:
        self.serving = False
        with self._wake_lock:
            self._wake_fd = -1
        child, self._child = self._child, None
        channel, self._channel = self._channel, None
        if channel is not None:
            channel.close()
        if child is not None:
            stop_child(child, _STOP_TIMEOUT, "the live process")
