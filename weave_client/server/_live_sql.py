"""The SQL of live traces: the ``call_events`` table, writing a batch's events, and the
page query that turns new events into their JSON messages (built by SQLite, each
call's JSON once per page). ``_live.py`` runs the route and the dispatcher over it.
"""

from __future__ import annotations

import sqlite3

import orjson

from ._calls_ingest import START_COLUMNS
from ._calls_query import (
    _LATENCY_SQL,
    _MICROS_SQL,
    _STATUS_SQL,
    _TRACE_NAME_SQL,
    CALL_COLUMNS,
)
from ._db import Database
from ._schema import CALLS_JSON_COLUMNS

__all__ = [
    "EVENTS_DDL",
    "FIELD",
    "FILTER_FIELDS",
    "FULL_ENDED_AT",
    "INSERT_EVENT",
    "PAGE_ALL",
    "PAGE_PROJECT",
    "PAGE_TEXT",
    "insert_events",
    "install",
]

EVENTS_DDL = """
CREATE TABLE IF NOT EXISTS call_events (
    seq        INTEGER PRIMARY KEY,
    project_id TEXT NOT NULL,
    call_id    TEXT NOT NULL,
    kind       TEXT NOT NULL
)
"""
# Where ended_at is in a row of a call stored whole (CallStore's start row + end row[2:]).
FULL_ENDED_AT = 2 + len(START_COLUMNS)
INSERT_EVENT = "INSERT INTO call_events (project_id, call_id, kind) VALUES (?, ?, ?)"
# A run of events of one project and kind in one statement (a quarter of the cost of a
# row per event): the call ids as a JSON array, inserted in array order (seq order).
_INSERT_RUN = (
    "INSERT INTO call_events (project_id, call_id, kind) "
    "SELECT ?, value, ? FROM json_each(?) ORDER BY key"
)


def insert_events(conn: sqlite3.Connection, events: list[tuple[str, str, str]]) -> None:
    """Append ``events`` ((project_id, call_id, kind), in order) to ``call_events``."""
    i, n = 0, len(events)
    while i < n:
        project_id, _, kind = events[i]
        j = i + 1
        while j < n and events[j][2] == kind and events[j][0] == project_id:
            j += 1
        ids = orjson.dumps([e[1] for e in events[i:j]]).decode()
        if "\\u0000" in ids:  # (SQLite's JSON strings stop at NUL: no run for those)
            conn.executemany(INSERT_EVENT, events[i:j])
        else:
            conn.execute(_INSERT_RUN, (project_id, kind, ids))
        i = j


def _summary_sql() -> str:
    """``summary`` with ``summary.weave`` derived, in SQL, as ``derive_weave_summary`` does.

    A JSON merge patch: the derived keys replace stored ones, a null one
    (latency of a running call, an empty display name) is left out.
    """
    derived = (
        f"json_object('status', {_STATUS_SQL}, 'latency_ms', {_LATENCY_SQL}, "
        f"'trace_name', {_TRACE_NAME_SQL}, 'display_name', NULLIF(c.display_name, ''))"
    )
    return f"json_patch(COALESCE(c.summary, '{{}}'), json_object('weave', {derived}))"


def _call_json_sql() -> str:
    """The call in the trace API's ``CallSchema`` as JSON text, built by SQLite (no Python)."""
    parts = []
    for column in CALL_COLUMNS:
        if column == "summary":
            expr = _summary_sql()
        elif column == "display_name":
            expr = "NULLIF(c.display_name, '')"
        elif column in CALLS_JSON_COLUMNS:
            expr = f"json(c.{column})"
        else:
            expr = f"c.{column}"
        parts.append(f"'{column}', {expr}")
    return "json_object(" + ", ".join(parts) + ")"


# A page of events is one row (one SQLite step, one GIL hand-off, whatever its
# length): a JSON array of its events' [seq, kind, call rowid]; a JSON array of each
# distinct call's [rowid, project_id, *FILTER_FIELDS]; and those calls' JSON, built
# by SQLite, one per line (JSON text has no raw newline). A call's start and end are
# mostly in the same page: its JSON is built once for both (Python wraps it in each
# event's message). The derived summary's latency and trace name use sub-expressions
# that the query compiler's SQL repeats; they are computed once per call here.
FILTER_FIELDS = (
    "id", "op_name", "trace_id", "parent_id", "thread_id", "turn_id", "wb_user_id", "wb_run_id",
)  # fmt: skip
FIELD = {name: 2 + i for i, name in enumerate(FILTER_FIELDS)}
_REST = "substr(op_name, instr(op_name, ':///') + 4)"
_HEAD = (
    f"(CASE WHEN instr({_REST}, ':') > 0 THEN substr({_REST}, 1, instr({_REST}, ':') - 1) "
    f"ELSE {_REST} END)"
)


def _once(sql: str, part: str, column: str) -> str:
    """``sql`` with every ``part`` replaced by ``column`` (which must occur)."""
    if part not in sql:
        raise RuntimeError(f"calls/watch: {part[:40]!r}... not in the summary SQL")
    return sql.replace(part, column)


_PAGE_CTES = (
    "WITH page AS MATERIALIZED ("
    "SELECT e.seq, e.kind, c.rowid AS rid FROM call_events AS e "
    "JOIN calls AS c ON c.project_id = e.project_id AND c.id = e.call_id "
    # (An end stored before its start is announced when the start arrives.)
    "AND c.started_at IS NOT NULL "
    "WHERE {where} ORDER BY e.seq LIMIT ?), "
    f"pre AS MATERIALIZED (SELECT c.rowid AS rid, {_MICROS_SQL} AS micros, {_HEAD} AS head "
    "FROM calls AS c WHERE c.rowid IN (SELECT rid FROM page)) "
)
_CALL_SQL = _once(_once(_call_json_sql(), _MICROS_SQL, "p.micros"), _HEAD, "p.head")
_PAGE_SQL = (
    _PAGE_CTES
    + "SELECT (SELECT json_group_array(json_array(seq, kind, rid)) FROM page), "
    "json_group_array(json(meta)), group_concat(call, char(10)) FROM ("
    "SELECT json_array(p.rid, c.project_id, "
    + ", ".join(f"c.{name}" for name in FILTER_FIELDS)
    + f") AS meta, {_CALL_SQL} AS call FROM pre AS p JOIN calls AS c ON c.rowid = p.rid)"
)
# The page for watchers that take every event of one project: the events' [seq, kind,
# call rowid] as a JSON array, the page's calls' rowids as another, and those calls'
# JSON one per line in the same order (no filter columns: nothing is selected).
PAGE_TEXT = _PAGE_CTES.replace("{where}", "e.seq > ? AND e.project_id = ?") + (
    "SELECT (SELECT json_group_array(json_array(seq, kind, rid)) FROM page), "
    "json_group_array(rid), group_concat(call, char(10)) FROM ("
    f"SELECT p.rid, {_CALL_SQL} AS call FROM pre AS p JOIN calls AS c ON c.rowid = p.rid)"
)
PAGE_ALL = _PAGE_SQL.replace("{where}", "e.seq > ?")
PAGE_PROJECT = _PAGE_SQL.replace("{where}", "e.seq > ? AND e.project_id = ?")


def install(db: Database) -> None:
    """Create the events table (idempotent)."""
    with db.write() as conn:
        conn.execute(EVENTS_DDL)
