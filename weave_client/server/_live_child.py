"""The live process (see ``_live_process``): serves the ``/calls/watch`` connections
the server hands off to it.

    python -m weave_client.server._live_child DB QUEUE_SIZE CHANNEL_FD

It reads the database file (never writes it), takes connections from the Unix
datagram socket ``CHANNEL_FD`` (a JSON message and a socket each), is woken by
bytes on its stdin after each commit, and exits when its stdin closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys

import orjson

from ._db import Readers
from ._live import Broadcaster
from ._live_process import MAX_HAND_OFF, READY
from ._live_route import watch_route
from ._live_socket import HandedOffWebSocket

__all__ = ["main"]

logger = logging.getLogger("weave_client.server")

# The child's niceness: below the server (0), above nothing else it competes with.
_NICE = 10


class _LiveChild:
    """The child's state: its broadcaster, and a task per watcher."""

    def __init__(self, db_path: str, queue_size: int, channel_fd: int) -> None:
        self.readers = Readers(db_path)
        self.broadcaster = Broadcaster(self.readers, queue_size=queue_size)
        self.channel = socket.socket(fileno=channel_fd)
        self.channel.setblocking(False)
        self.stopped = asyncio.Event()
        self.watchers: set[asyncio.Task[None]] = set()
        self.sockets: set[HandedOffWebSocket] = set()

    def on_wake(self) -> None:
        """Bytes on stdin: calls were stored; end of file: stop."""
        if os.read(sys.stdin.fileno(), 4096):
            self.broadcaster.committed()
        else:
            self.stopped.set()

    def on_hand_off(self) -> None:
        """Connections waiting on the channel: serve each."""
        while True:
            try:
                message, fds, _, _ = socket.recv_fds(self.channel, MAX_HAND_OFF, 1)
            except BlockingIOError:
                return
            if not message and not fds:  # the server closed its end
                self.stopped.set()
                return
            for fd in fds:
                task = asyncio.get_running_loop().create_task(self._serve(fd, message))
                self.watchers.add(task)
                task.add_done_callback(self.watchers.discard)

    async def _serve(self, fd: int, message: bytes) -> None:
        sock = socket.socket(fileno=fd)
        try:
            params = orjson.loads(message)
            ws = HandedOffWebSocket(params["subscribe"], params["deflate"])
            await asyncio.get_running_loop().connect_accepted_socket(lambda: ws, sock=sock)
        except (ValueError, KeyError, TypeError, OSError) as exc:
            logger.error("cannot serve a handed-off watcher (%r): %r", message[:200], exc)
            sock.close()
            return
        self.sockets.add(ws)
        try:
            await watch_route(ws, self.broadcaster)
        except Exception:  # (the route handles a watcher's own failures; this is a bug)
            logger.exception("serving a handed-off watcher failed")
        finally:
            self.sockets.discard(ws)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        loop.add_reader(sys.stdin.fileno(), self.on_wake)
        loop.add_reader(self.channel.fileno(), self.on_hand_off)
        out = sys.stdout.buffer
        out.write(READY)
        out.flush()
        try:
            await self.stopped.wait()
        finally:
            loop.remove_reader(sys.stdin.fileno())
            loop.remove_reader(self.channel.fileno())
            # As uvicorn does at shutdown: 1012, the client may come back (with since).
            for ws in list(self.sockets):
                await ws.close(1012, "the server is shutting down")
            for task in list(self.watchers):
                task.cancel()
            await asyncio.gather(*self.watchers, return_exceptions=True)
            self.channel.close()
            self.readers.close()


def main(argv: list[str]) -> int:
    """The live process: serve handed-off watchers until stdin closes."""
    db_path, queue_size, channel_fd = argv
    with contextlib.suppress(AttributeError, OSError):  # (no os.nice on Windows)
        os.nice(_NICE)
    logging.basicConfig(format="weave-client live process: %(levelname)s: %(message)s")
    asyncio.run(_LiveChild(db_path, int(queue_size), int(channel_fd)).run())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
