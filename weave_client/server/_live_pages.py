"""Live traces' shared pages: one project's new events as messages for every watcher,
read in a worker thread or in a child process of lower CPU priority.

Reading a page (SQLite building each call's JSON, Python cutting it into messages)
costs the server about half as much CPU as storing the calls did. On a busy machine
that work competes with ingestion. Lowering the priority of the thread that does it
does not help: the thread holds the GIL between its SQLite steps, and a low-priority
thread holding the GIL stalls ingestion whenever the scheduler leaves it waiting. A
child process has its own GIL, so niced it mostly takes the CPU time ingestion leaves.
Measured on 2 cores with 10 watchers (README, "Benchmark"): ingestion at 79-95% of its
rate without watchers, against 74-88% with the reads in a thread (the server's event
loop still writes every message to every watcher); the server's own CPU for the
fan-out fell from 13-20 to 4-7 ms per 1,000 calls. The price: under sustained overload
the pages wait for idle CPU, so the watchers lag and catch up when the load drops
(they are not closed for it: a watcher's queue only holds pages handed out).

:class:`ChildPages` runs ``python -m weave_client.server._live_pages DB`` and asks it
for pages over its stdin and stdout, one at a time. Should the child fail (it could
not start, it died), the reason is logged once and pages are read in this process
from then on; no event is lost, the dispatcher reads the same page again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import IO, Literal, TypeVar

import orjson

from .._child_process import spawn_module, stop_child, wait_ready
from ._db import Database
from ._live_messages import Chunk, SharedText, chunks_of_text, message
from ._live_sql import PAGE_TEXT

__all__ = ["PAGE_EVENTS", "ChildPages", "WatchPages", "main", "read_chunks"]

logger = logging.getLogger("weave_client.server")

# Where pages are read: a worker thread of the server, or a niced child process.
WatchPages = Literal["thread", "process"]
# Events read per page.
PAGE_EVENTS = 5000
# The child's niceness: below the server (0), above nothing else it competes with.
_NICE = 10
_START_TIMEOUT = 60.0
_STOP_TIMEOUT = 5.0
# The child's first line: it has loaded its modules and opened the database.
_READY = b"weave-client page reader ready\n"
_T = TypeVar("_T")


def read_chunks(conn: sqlite3.Connection, after: int, project_id: str) -> tuple[int, list[Chunk]]:
    """Up to a page of ``project_id``'s events after ``after`` as messages for every
    watcher (each framed once): (how many events, the messages)."""
    row = conn.execute(PAGE_TEXT, (after, project_id, PAGE_EVENTS)).fetchone()
    found = orjson.loads(row[0])
    if not found:
        return 0, []
    calls = dict(zip(orjson.loads(row[1]), row[2].split("\n"), strict=True))
    text = "\n".join([message(kind, seq, calls[rid]) for seq, kind, rid in found])
    return len(found), chunks_of_text(text, found[0][0], found[-1][0], len(found))


class ChildPages:
    """Pages read by a niced child process (started at the first read); thread-safe."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._lock = threading.Lock()
        self._child: subprocess.Popen[bytes] | None = None
        self._failed = False
        self._closed = False

    def start(self) -> None:
        """Start the child now, if it is not running (blocking: about 0.3 s, once)."""
        with self._lock:
            if self._child is None and not self._failed and not self._closed:
                self._guarded(self._start)

    def read_chunks(self, after: int, project_id: str) -> tuple[int, list[Chunk]]:
        """:func:`read_chunks` in the child; in this process once the child failed."""
        with self._lock:
            if not self._failed and not self._closed:
                found = self._guarded(lambda: self._ask(after, project_id))
                if found is not None:
                    return found
        with self.db.read() as conn:
            return read_chunks(conn, after, project_id)

    def _guarded(self, work: Callable[[], _T]) -> _T | None:
        """``work()``, or None once a failure of the child is logged and the child stopped."""
        try:
            return work()
        except (OSError, ValueError, EOFError) as exc:
            self._failed = True
            logger.error(
                "calls/watch: the page reader process failed (%s: %s); "
                "reading pages in the server process from now on",
                type(exc).__name__,
                exc,
            )
            self._stop()
            return None

    def _start(self) -> subprocess.Popen[bytes]:
        child = self._child = spawn_module(__name__, [str(self.db.path)])
        if not wait_ready(child, _READY, _START_TIMEOUT):
            raise EOFError(f"the page reader process did not start (exit code {child.poll()})")
        return child

    def _ask(self, after: int, project_id: str) -> tuple[int, list[Chunk]]:
        child = self._child or self._start()
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write(orjson.dumps([after, project_id]) + b"\n")
        child.stdin.flush()
        return _read_reply(child.stdout)

    def close(self) -> None:
        """Stop the child (it also stops by itself when this process exits)."""
        with self._lock:
            self._closed = True
            self._stop()

    def _stop(self) -> None:
        child, self._child = self._child, None
        if child is not None:
            stop_child(child, _STOP_TIMEOUT, "the live page reader process")


# -- the pipe protocol ---------------------------------------------------------------
# Request: one line, the JSON array [after, project_id]. Reply: a line "COUNT MESSAGES",
# then per message a line "FIRST LAST COUNT SIZE" and its WebSocket frame (SIZE bytes).


def _write_reply(out: IO[bytes], count: int, chunks: list[Chunk]) -> None:
    parts = [b"%d %d\n" % (count, len(chunks))]
    for chunk in chunks:
        text = chunk.text if isinstance(chunk.text, SharedText) else SharedText(chunk.text)
        parts.append(b"%d %d %d %d\n" % (chunk.first, chunk.last, chunk.count, len(text.frame)))
        parts.append(text.frame)
    out.write(b"".join(parts))
    out.flush()


def _read_reply(stream: IO[bytes]) -> tuple[int, list[Chunk]]:
    head = stream.readline()
    if not head:
        raise EOFError("the page reader process exited")
    count, messages = map(int, head.split())
    chunks = []
    for _ in range(messages):
        first, last, events, size = map(int, stream.readline().split())
        frame = stream.read(size)
        if len(frame) != size:
            raise EOFError("the page reader process exited in the middle of a reply")
        chunks.append(Chunk(first, last, events, SharedText.from_frame(frame)))
    return count, chunks


def main(argv: list[str]) -> int:
    """The child: answer page requests on stdin until it closes."""
    (db_path,) = argv
    with contextlib.suppress(AttributeError, OSError):  # (no os.nice on Windows)
        os.nice(_NICE)
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("PRAGMA cache_size=-32768")
    out = sys.stdout.buffer
    try:
        out.write(_READY)
        out.flush()
        for line in sys.stdin.buffer:
            after, project_id = orjson.loads(line)
            count, chunks = read_chunks(conn, after, project_id)
            _write_reply(out, count, chunks)
    except BrokenPipeError:  # the server is gone
        pass
    finally:
        conn.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
