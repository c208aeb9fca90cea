"""The local server's SQLite database: WAL checkpoints run off the write path."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from weave_client.server._db import Database


def _checkpointers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "weave-server-checkpoint"]


def test_writes_reach_the_database_file_without_the_writer_checkpointing(tmp_path: Path) -> None:
    path = tmp_path / "calls.db"
    db = Database(path)
    try:
        empty = path.stat().st_size
        with db.write() as conn:
            conn.execute("CREATE TABLE t (x TEXT)")
            conn.executemany("INSERT INTO t VALUES (?)", [("x" * 1000,)] * 500)
        # The writer's own checkpoints start only past thousands of pages; the data
        # reaches the main file through the background checkpointer.
        deadline = time.monotonic() + 10
        while path.stat().st_size < empty + 400_000 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert path.stat().st_size >= empty + 400_000
    finally:
        db.close()


def test_close_stops_the_checkpointer(tmp_path: Path) -> None:
    before = len(_checkpointers())
    db = Database(tmp_path / "calls.db")
    assert len(_checkpointers()) == before + 1
    with db.write() as conn:
        conn.execute("CREATE TABLE t (x INTEGER)")
    db.close()
    assert len(_checkpointers()) == before
