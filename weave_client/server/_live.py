"""Live traces: the broadcaster behind ``/calls/watch`` (the route: ``_live_route``).

Every change to a call is numbered in SQLite: the write path
(``CallStore.changes``) appends a row to ``call_events`` (``seq``, project,
call id, kind) in the transaction that stores the change, so the sequence is
monotonic and survives restarts (one row per start or end, inserted by one
statement per run of events of a project and kind; triggers on ``calls`` were
measured at three times the cost of a row per statement). After each commit it
calls :meth:`Broadcaster.committed`; with nobody watching that is one
attribute test.

One dispatcher task per broadcaster reads the new events (one query whatever
the number of watchers), turns each into its JSON message once, and puts it on
the bounded queue of every watcher whose filter it matches. A watcher whose
queue is full is closed with :data:`CLOSE_TOO_SLOW`; nobody else waits for it.
Under ``python -m weave_client serve`` (``process=True``) the server hands
each subscribed watcher off to a niced child process with a broadcaster of its
own over the same file (``_live_process``), and :meth:`Broadcaster.committed`
wakes that child.

Protocol: the client sends one JSON message ``{"project_id": ..., "filter":
{CallsFilter fields}, "since": seq | null}``; the server answers
``{"kind": "ready", "seq": N}`` once it has replayed the stored events after
``since`` (none when ``since`` is null; with ``"pruned_through": M`` added when
events after ``since`` up to M were already pruned, see below), then ``{"kind": "start" | "end" |
"update" | "delete", "seq": N, "call": {CallSchema}}`` as calls change. The
call is the one stored when the event is sent (a start event of a call that
already ended carries its end too). Resuming with ``since`` = the last seq
received gives every later event once.

``call_events`` keeps the newest ``keep_events`` events (pruned by the write
path as it goes past them, by a tenth of that at a time), so the table does not
grow with the calls forever; a replay from further back says what it missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio.to_thread
import orjson

from .._live import WatchSubscribe
from .._models import CallsFilter
from ._db import Readers
from ._live_messages import Chunk, Event, chunks_of_events, message
from ._live_pages import PAGE_EVENTS, read_chunks
from ._live_process import HAND_OFF, LiveProcess
from ._live_sql import (
    FIELD,
    FULL_ENDED_AT,
    INSERT_EVENT,
    PAGE_ALL,
    PAGE_PROJECT,
    insert_events,
)

__all__ = [
    "DEFAULT_KEEP_EVENTS",
    "DEFAULT_WATCH_QUEUE",
    "PAGE_EVENTS",
    "Broadcaster",
    "CallMatcher",
    "WatchSocket",
    "Watcher",
]

logger = logging.getLogger("weave_client.server")

# Events a watcher may have waiting before it is closed as too slow.
DEFAULT_WATCH_QUEUE = 10_000
# Events call_events keeps (the newest); a reconnect from further back is told what it missed.
DEFAULT_KEEP_EVENTS = 1_000_000
# Most events one write prunes.
_PRUNE_ROWS = 10_000
# Events read per query (dispatcher and replay).
_PAGE = PAGE_EVENTS
# After a read that found at least _BUSY_EVENTS events, the dispatcher waits
# _BUSY_PAUSE seconds before the next (one event at a time goes out at once).
_BUSY_EVENTS = 100
_BUSY_PAUSE = 0.2
# Seconds between looks for events written by other processes on the same database.
_LOOK_INTERVAL = 0.5

_PARENT = FIELD["parent_id"]
_OP = FIELD["op_name"]


class WatchSocket(Protocol):
    """What the route speaks to: Starlette's WebSocket, or a connection handed off to
    the live process (``_live_socket``)."""

    @property
    def scope(self) -> Mapping[str, Any]: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    async def accept(self) -> None: ...

    async def receive_text(self) -> str: ...

    async def receive(self) -> Any: ...

    async def send_text(self, data: str) -> None: ...

    async def close(self, code: int = 1000, reason: str | None = None) -> None: ...


class CallMatcher:
    """``CallsFilter`` semantics of the query compiler, in Python, for one project.

    ``input_refs``/``output_refs`` are not supported here (the subscribe
    message is refused naming them).
    """

    def __init__(self, project_id: str, f: CallsFilter | None) -> None:
        self.project_id = project_id
        f = f or CallsFilter()
        if f.input_refs or f.output_refs:
            raise ValueError("filter.input_refs and filter.output_refs are not supported by watch")
        self._exact: set[str] = set()
        self._prefixes: list[str] = []
        for name in f.op_names or ():
            if name.endswith(":*"):
                self._prefixes.append(name[:-1])
            elif name.startswith(("weave:///", "weave-trace-internal:///")):
                self._exact.add(name)
            else:
                self._exact.add(name)
                self._prefixes.append(f"weave:///{project_id}/op/{name}:")
        self._ops = bool(f.op_names)
        self._sets: list[tuple[int, set[str]]] = []
        for key, values in (
            ("parent_id", f.parent_ids),
            ("trace_id", f.trace_ids),
            ("id", f.call_ids),
            ("wb_user_id", f.wb_user_ids),
            ("wb_run_id", f.wb_run_ids),
        ):
            if values:
                self._sets.append((FIELD[key], set(values)))
        # As the query compiler: an empty list of thread or turn ids matches nothing.
        for key, maybe in (("thread_id", f.thread_ids), ("turn_id", f.turn_ids)):
            if maybe is not None:
                self._sets.append((FIELD[key], set(maybe)))
        self._roots_only = bool(f.trace_roots_only)
        # Takes every event of its project (the viewer's list, `calls --follow`).
        self.takes_all = not (self._ops or self._sets or self._roots_only)
        # Watchers with equal keys select the same events.
        self.key = (project_id, f.model_dump_json(exclude_none=True))

    def select(self, events: list[Event]) -> list[Event]:
        """The events of ``events`` that match, in order."""
        pid = self.project_id
        if self.takes_all:
            return [e for e in events if e.project_id == pid]
        return [e for e in events if e.project_id == pid and self(e)]

    def __call__(self, event: Event) -> bool:
        if event.project_id != self.project_id:
            return False
        call = event.call
        if self._roots_only and call[_PARENT] is not None:
            return False
        if self._ops:
            op = call[_OP] or ""
            if op not in self._exact and not any(op.startswith(p) for p in self._prefixes):
                return False
        return all(call[index] in values for index, values in self._sets)


@dataclass(eq=False)
class Watcher:
    """One connected client: its filter and its bounded queue of messages to send."""

    matches: CallMatcher
    maxsize: int
    # The client offered permessage-deflate: shared pages are compressed for it once.
    deflate: bool = False
    pending: deque[Chunk] = field(default_factory=deque)
    waiting: int = 0  # events in pending
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    overflowed: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, chunks: list[Chunk], count: int) -> bool:
        """Queue ``chunks`` (``count`` events); False (and ``overflowed`` set) when that
        would put more than ``maxsize`` events in its queue."""
        if self.waiting + count > self.maxsize:
            self.overflowed.set()
            return False
        self.pending.extend(chunks)
        self.waiting += count
        self.ready.set()
        return True

    def take(self) -> Chunk:
        chunk = self.pending.popleft()
        self.waiting -= chunk.count
        return chunk


class Broadcaster:
    """Fans the stored call events out to the connected watchers.

    The write path (``CallStore.changes``) records events and calls :meth:`committed`.
    """

    def __init__(
        self,
        db: Readers,
        *,
        queue_size: int = DEFAULT_WATCH_QUEUE,
        keep_events: int = DEFAULT_KEEP_EVENTS,
        process: bool = False,
    ) -> None:
        """``process``: hand watchers off to a niced child process (``_live_process``)."""
        if queue_size < 1:
            raise ValueError(f"watch queue_size: must be at least 1, got {queue_size!r}")
        if keep_events < 1:
            raise ValueError(f"keep_events: must be at least 1, got {keep_events!r}")
        self.db = db
        self.queue_size = queue_size
        self.keep_events = keep_events
        self._live = LiveProcess(db.path, queue_size) if process else None
        # The write path prunes call_events once the newest seq reaches this.
        self._next_prune = 0
        self._watchers: set[Watcher] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._lock: asyncio.Lock | None = None
        self._task: asyncio.Task[None] | None = None
        self._pending = False
        # The last seq the dispatcher handed out (None while nobody watches).
        self._pos: int | None = None

    # -- the write path's hooks (CallStore.changes) ---------------------------------

    def record_write(
        self,
        conn: sqlite3.Connection,
        starts: list[tuple[Any, ...]],
        full: list[tuple[Any, ...]],
        ends: Mapping[tuple[str, str], tuple[Any, ...]],
    ) -> None:
        """Number the stored starts and ends (in the write's transaction).

        Starts come first, in batch order, then the ends in the order of their
        ``ended_at`` (a child before its parent). A call stored whole (start and
        end in one batch) gets one ``end`` event.
        """
        events = [(r[0], r[1], "start") for r in starts]
        if full or ends:
            ended = [(r[FULL_ENDED_AT], r[0], r[1]) for r in full]
            ended.extend((r[2], p, c) for (p, c), r in ends.items())
            ended.sort(key=lambda e: e[0])
            events.extend((p, c, "end") for _, p, c in ended)
        insert_events(conn, events)
        self._prune(conn)

    def _prune(self, conn: sqlite3.Connection) -> None:
        """Drop the events older than the newest ``keep_events`` (in the write's
        transaction), once every ``keep_events // 10`` events: a range delete on the key,
        of at most _PRUNE_ROWS rows per write (a backlog, say of a database from before
        pruning, goes over the next writes, none of them waiting long on it)."""
        (last,) = conn.execute("SELECT last_insert_rowid()").fetchone()
        if last < self._next_prune:
            return
        deleted = conn.execute(
            "DELETE FROM call_events WHERE seq <= min(?, "
            "(SELECT MIN(seq) FROM call_events) + ? - 1)",
            (last - self.keep_events, _PRUNE_ROWS),
        ).rowcount
        if deleted < _PRUNE_ROWS:
            self._next_prune = last + max(1, self.keep_events // 10)

    def record_update(self, conn: sqlite3.Connection, project_id: str, call_id: str) -> None:
        conn.execute(INSERT_EVENT, (project_id, call_id, "update"))

    def record_delete(self, conn: sqlite3.Connection, project_id: str, deleted_at: str) -> None:
        conn.execute(
            "INSERT INTO call_events (project_id, call_id, kind) "
            "SELECT project_id, id, 'delete' FROM calls WHERE project_id = ? AND deleted_at = ?",
            (project_id, deleted_at),
        )

    def committed(self) -> None:
        """Say that calls were stored. Cheap with nobody watching; safe from any thread."""
        live = self._live
        if live is not None and live.serving:
            live.wake()
        if not self._watchers or self._pending:
            return
        self._pending = True
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closing
                loop.call_soon_threadsafe(wake.set)

    # -- reads ---------------------------------------------------------------------

    def _head(self) -> int:
        with self.db.read() as conn:
            (head,) = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM call_events").fetchone()
        return int(head)

    def read(self, after: int, project_id: str | None = None) -> list[Event]:
        """Up to a page of events after ``after`` (of one project, or all), in order."""
        with self.db.read() as conn:
            return self._page(conn, after, project_id)

    def replay_page(self, after: int, project_id: str) -> tuple[list[Event], int | None]:
        """:meth:`read`, and the newest pruned seq when events after ``after`` were
        pruned (None when none were), both read in one snapshot."""
        with self.db.read() as conn:
            conn.execute("BEGIN")
            try:
                (oldest,) = conn.execute("SELECT MIN(seq) FROM call_events").fetchone()
                events = self._page(conn, after, project_id)
            finally:
                conn.execute("COMMIT")
        pruned = oldest - 1 if oldest is not None and oldest - 1 > after else None
        return events, pruned

    def _page(self, conn: sqlite3.Connection, after: int, project_id: str | None) -> list[Event]:
        if project_id is None:
            row = conn.execute(PAGE_ALL, (after, _PAGE)).fetchone()
        else:
            row = conn.execute(PAGE_PROJECT, (after, project_id, _PAGE)).fetchone()
        found = orjson.loads(row[0])
        if not found:
            return []
        calls = {
            meta[0]: (meta, text)
            for meta, text in zip(orjson.loads(row[1]), row[2].split("\n"), strict=True)
        }
        events = []
        for seq, kind, rid in found:
            meta, text = calls[rid]
            events.append(Event(seq, meta[1], meta, message(kind, seq, text)))
        return events

    # -- watchers --------------------------------------------------------------------

    async def register(self, watcher: Watcher) -> int:
        """Add a watcher; returns the newest seq stored now (it gets every later event).

        Its queue also gets the events after the dispatcher's position up to
        that seq (not yet handed out); the sender skips those.
        """
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._wake = asyncio.Event()
            self._lock = asyncio.Lock()
        assert self._lock is not None
        async with self._lock:
            head = await anyio.to_thread.run_sync(self._head)
            if self._pos is None:
                self._pos = head
            self._watchers.add(watcher)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._dispatch(), name="weave-calls-watch")
        return head

    def unregister(self, watcher: Watcher) -> None:
        self._watchers.discard(watcher)

    def read_chunks(
        self, after: int, project_id: str, deflate: bool = False
    ) -> tuple[int, list[Chunk]]:
        """Up to a page of one project's events after ``after``, as messages for every
        watcher (each framed once, and compressed once with ``deflate``): (how many
        events, the messages). Blocking."""
        with self.db.read() as conn:
            return read_chunks(conn, after, project_id, deflate=deflate)

    async def hand_off(self, ws: WatchSocket, sub: WatchSubscribe) -> bool:
        """Give a subscribed watcher's connection to the live process; False when it
        is to be served here (no such process, or no hand-off under this ASGI server)."""
        live = self._live
        offer = ws.scope.get("extensions", {}).get(HAND_OFF) if live is not None else None
        if live is None or offer is None or not await anyio.to_thread.run_sync(live.start):
            return False
        subscribe = sub.model_dump_json()
        return bool(offer["hand_off"](lambda fd, deflate: live.give(fd, subscribe, deflate)))

    def close(self) -> None:
        """Stop the live process, if any (the database is closed by its owner)."""
        if self._live is not None:
            self._live.close()

    def _one_project(self) -> str | None:
        """The project, when every watcher takes every event of that one project."""
        projects = {w.matches.project_id for w in self._watchers}
        if len(projects) == 1 and all(w.matches.takes_all for w in self._watchers):
            return projects.pop()
        return None

    async def _hand_out(self, pos: int) -> tuple[int, bool]:
        """Queue the next page of events after ``pos`` for the watchers it matches;
        returns how many events were read and whether the page was full."""
        project = self._one_project()
        if project is not None:
            # The common case (a viewer, `calls --follow`, monitors of one project): the
            # page's messages are made in a worker thread (SQLite builds each call's
            # JSON; no per-event objects, no selection) and shared by every watcher.
            deflate = any(w.deflate for w in self._watchers)
            count, chunks = await anyio.to_thread.run_sync(self.read_chunks, pos, project, deflate)
            if count:
                for watcher in list(self._watchers):
                    if not watcher.offer(chunks, count):
                        self._watchers.discard(watcher)
                self._pos = chunks[-1].last
            return count, count >= _PAGE
        events = await anyio.to_thread.run_sync(self.read, pos)
        # Watchers with the same filter share the selection and its messages.
        shared: dict[tuple[str, str], tuple[list[Chunk], int]] = {}
        for watcher in list(self._watchers):
            key = watcher.matches.key
            if key not in shared:
                selected = watcher.matches.select(events)
                shared[key] = (chunks_of_events(selected, shared=True), len(selected))
            chunks, selected_count = shared[key]
            if selected_count and not watcher.offer(chunks, selected_count):
                self._watchers.discard(watcher)
        if events:
            self._pos = events[-1].seq
        return len(events), len(events) >= _PAGE

    async def _dispatch(self) -> None:
        assert self._wake is not None and self._lock is not None
        while True:
            # Also look every so often while watched: another process's server
            # may write to the same database file (the embedded servers do).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), _LOOK_INTERVAL)
            self._wake.clear()
            self._pending = False
            async with self._lock:
                if not self._watchers:
                    # Nobody watches: stop (register() starts a new dispatcher).
                    self._pos = None
                    self._task = None
                    return
                found = 0
                while self._pos is not None:
                    try:
                        count, full = await self._hand_out(self._pos)
                    except Exception:
                        logger.exception("calls/watch: reading call events failed")
                        break
                    found += count
                    if not full:
                        break
            if found >= _BUSY_EVENTS:
                # Under load, let the next events gather: a call's start and end then
                # mostly share a page (its JSON built once) and the reads are fewer.
                await asyncio.sleep(_BUSY_PAUSE)
