"""Live traces' shared pages: one project's new events as messages for every watcher.

The common case of watching (a viewer, ``calls --follow``, monitors of one
project) reads each page once, whatever the number of watchers: SQLite builds
each call's JSON, Python cuts the lines into messages, each framed (and, for
the watchers that took permessage-deflate, compressed) once.
"""

from __future__ import annotations

import sqlite3

import orjson

from ._live_messages import Chunk, chunks_of_text, message
from ._live_sql import PAGE_TEXT

__all__ = ["PAGE_EVENTS", "read_chunks"]

# Events read per page.
PAGE_EVENTS = 5000


def read_chunks(
    conn: sqlite3.Connection, after: int, project_id: str, *, deflate: bool = False
) -> tuple[int, list[Chunk]]:
    """Up to a page of ``project_id``'s events after ``after`` as messages for every
    watcher (each framed once; ``deflate``: compressed once too): (how many events,
    the messages)."""
    row = conn.execute(PAGE_TEXT, (after, project_id, PAGE_EVENTS)).fetchone()
    found = orjson.loads(row[0])
    if not found:
        return 0, []
    calls = dict(zip(orjson.loads(row[1]), row[2].split("\n"), strict=True))
    text = "\n".join([message(kind, seq, calls[rid]) for seq, kind, rid in found])
    return len(found), chunks_of_text(
        text, found[0][0], found[-1][0], len(found), deflate=deflate
    )
