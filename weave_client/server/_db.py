"""The SQLite database of the local trace server: connections, WAL, one writer.

SQLite allows one writer at a time, so every write goes through one connection
under a lock (no ``SQLITE_BUSY`` retries, and a batch is one transaction).
Readers take their own connections from a small pool; in WAL mode they never
block the writer nor each other. WAL checkpoints (copying committed pages into
the database file) run on a thread of their own, so a commit does not pay for
them while the next write waits on the lock. Connections are made with
``check_same_thread=False`` because a streamed response is iterated from
whichever worker thread Starlette picks for each chunk.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ._schema import CALLS_ADDED_COLUMNS, CALLS_DDL, CALLS_MIGRATED_DDL, STORE_DDL

__all__ = ["Database", "Readers"]

logger = logging.getLogger("weave_client.server")

# Idle read connections kept for reuse; more may exist while busy.
_POOL_SIZE = 8
# Least seconds between two background checkpoints while writes keep coming.
_CHECKPOINT_INTERVAL = 0.25
# The writer checkpoints by itself past this many WAL pages (4 KiB each): a net
# for a checkpointer that cannot keep up, never reached in normal running.
_WRITER_CHECKPOINT_PAGES = 16_384


class Readers:
    """Pooled read connections to one SQLite file (what a process that only reads it,
    such as the live watchers' process, opens)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._pool_lock = threading.Lock()
        self._pool: list[sqlite3.Connection] = []
        self._closed = False

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: autocommit, transactions are explicit (BEGIN IMMEDIATE).
        conn = sqlite3.connect(
            self.path, check_same_thread=False, isolation_level=None, timeout=30.0
        )
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        # In WAL mode NORMAL loses no committed data on an application crash,
        # only (possibly) the last transactions on a power cut, and saves an
        # fsync per commit.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA cache_size=-32768")  # 32 MiB: the calls indexes stay in memory
        return conn

    def acquire(self) -> sqlite3.Connection:
        """A read connection; give it back with :meth:`release`."""
        with self._pool_lock:
            if self._closed:
                raise RuntimeError(f"database {self.path} is closed")
            if self._pool:
                return self._pool.pop()
        return self._connect()

    def release(self, conn: sqlite3.Connection) -> None:
        """Return a read connection to the pool (or close it when the pool is full)."""
        if conn.in_transaction:
            conn.rollback()
        with self._pool_lock:
            if not self._closed and len(self._pool) < _POOL_SIZE:
                self._pool.append(conn)
                return
        conn.close()

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A pooled read connection for the duration of the block."""
        conn = self.acquire()
        try:
            yield conn
        finally:
            self.release(conn)

    def close(self) -> None:
        """Close every connection; later use raises."""
        with self._pool_lock:
            self._closed = True
            pool, self._pool = self._pool, []
        for conn in pool:
            conn.close()


class Database(Readers):
    """One SQLite file in WAL mode, with a single writer and pooled readers."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        if self.path != ":memory:" and not self.path.startswith("file:"):
            Path(self.path).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
        self._write_lock = threading.Lock()
        self._writer = self._connect()
        self._writer.executescript(CALLS_DDL + STORE_DDL)
        self._migrate()
        self._written = threading.Event()
        self._closing = threading.Event()
        self._checkpointer: threading.Thread | None = None
        mode = self._writer.execute("PRAGMA journal_mode").fetchone()[0]
        if mode == "wal":
            self._writer.execute(f"PRAGMA wal_autocheckpoint={_WRITER_CHECKPOINT_PAGES}")
            self._checkpointer = threading.Thread(
                target=self._checkpoint_loop, name="weave-server-checkpoint", daemon=True
            )
            self._checkpointer.start()

    def _migrate(self) -> None:
        """Bring a database made by an earlier release up to the current schema.

        Only additive steps (new nullable columns, new indexes), each a no-op
        when already applied, so opening a database twice or with an older
        server running elsewhere stays safe.
        """
        conn = self._writer
        have = {row["name"] for row in conn.execute("PRAGMA table_info(calls)")}
        for column, sql_type in CALLS_ADDED_COLUMNS:
            if column not in have:
                conn.execute(f"ALTER TABLE calls ADD COLUMN {column} {sql_type}")
        conn.executescript(CALLS_MIGRATED_DDL)

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction on the writer connection (rolled back on error)."""
        with self._write_lock:
            if self._closed:
                raise RuntimeError(f"database {self.path} is closed")
            conn = self._writer
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        self._written.set()

    def _checkpoint_loop(self) -> None:
        """Copy the WAL into the database file after writes, at most every
        ``_CHECKPOINT_INTERVAL`` seconds, on this thread's own connection.

        A passive checkpoint never waits for the writer or readers: it copies
        what no reader still needs, and the writer starts the WAL over once all
        of it is copied.
        """
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        failures = 0
        try:
            while True:
                self._written.wait()
                if self._closed:
                    return
                if self._closing.wait(_CHECKPOINT_INTERVAL):
                    return  # closing: the last checkpoint is SQLite's, at the writer's close
                self._written.clear()
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error:
                    # The writer's own checkpoints (past _WRITER_CHECKPOINT_PAGES) take
                    # over; said at the first failure and every 100th, with the count.
                    failures += 1
                    if failures % 100 == 1:
                        logger.exception(
                            "local server: WAL checkpoints of %s failing (%d so far)",
                            self.path,
                            failures,
                        )
                    continue
                if failures:
                    logger.warning(
                        "local server: WAL checkpoints of %s work again after %d failures",
                        self.path,
                        failures,
                    )
                    failures = 0
        finally:
            conn.close()

    def close(self) -> None:
        """Close every connection; later use raises."""
        with self._write_lock:
            if self._closed:
                return
            super().close()
            self._writer.close()
        self._closing.set()  # the checkpointer stops at once
        self._written.set()
        if self._checkpointer is not None and self._checkpointer is not threading.current_thread():
            self._checkpointer.join(timeout=5)
