"""The calls side of the local server: the write path and the query routes' storage.

Writes are upserts keyed by (project_id, id) (``_calls_ingest`` parses the bodies
and holds their SQL); reads go through ``_calls_query``. The live broadcaster
(``_live.py``) hears every change through the ``ChangeLog`` it is given.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

import orjson

from .._models import (
    CallCreateBatchReq,
    CallEndReq,
    CallReadReq,
    CallSchema,
    CallsDeleteReq,
    CallsFilter,
    CallsQueryReq,
    CallsQueryStatsReq,
    CallsQueryStatsRes,
    CallStartReq,
    CallStartRes,
    CallUpdateReq,
)
from . import _calls_query
from ._calls_ingest import (
    END_SQL,
    FULL_SQL,
    START_SQL,
    EndRow,
    StartRow,
    decode_batch_fast,
    model_end,
    model_start,
)
from ._common import InvalidRequest, NotFound, load_json, now_timestamp
from ._costs import attach_costs
from ._db import Database

__all__ = ["CallStore"]

# The hosted service's limit on one /calls/delete.
_MAX_DELETE_CALLS = 1000

RefsReader = Callable[[list[str]], list[Any]]


class ChangeLog(Protocol):
    """Where the write path reports changes of calls (the live broadcaster, ``_live.py``).

    The ``record_*`` methods run inside the write transaction; ``committed``
    after it.
    """

    def record_write(
        self,
        conn: sqlite3.Connection,
        starts: list[StartRow],
        full: list[tuple[Any, ...]],
        ends: Mapping[tuple[str, str], EndRow],
    ) -> None: ...

    def record_update(self, conn: sqlite3.Connection, project_id: str, call_id: str) -> None: ...

    def record_delete(self, conn: sqlite3.Connection, project_id: str, deleted_at: str) -> None: ...

    def committed(self) -> None: ...


class CallStore:
    """Storage of calls: upserts, reads through the query compiler, update, delete.

    ``read_refs`` resolves ``weave:///`` refs for ``expand_columns`` (the
    object store's ``refs_read_batch``).
    """

    def __init__(self, db: Database, read_refs: RefsReader | None = None) -> None:
        self.db = db
        self.read_refs = read_refs
        self.changes: ChangeLog | None = None

    # -- writes -------------------------------------------------------------

    def _write(self, starts: list[StartRow], ends: list[EndRow]) -> None:
        """Upsert starts and ends (each list in batch order) in one transaction.

        Starts and ends set disjoint columns, so applying the starts, then the
        ends, gives the rows the batch order would; a later record of the same
        kind overrides an earlier one. A call whose start and end are both here
        is written as one row, which halves the work for the common batch.
        """
        start_by_key: dict[tuple[str, str], StartRow] = {}
        for row in starts:
            key = (row[0], row[1])
            prev = start_by_key.get(key)
            if prev is not None and row[7] is None and prev[7] is not None:
                row = (*row[:7], prev[7], *row[8:])  # a missing display name keeps the earlier one
            start_by_key[key] = row
        end_by_key: dict[tuple[str, str], EndRow] = {}
        for row in ends:
            end_by_key[(row[0], row[1])] = row
        full: list[tuple[Any, ...]] = []
        only_starts: list[StartRow] = []
        for key, start_row in start_by_key.items():
            end_row = end_by_key.pop(key, None)
            if end_row is None:
                only_starts.append(start_row)
            else:
                full.append(start_row + end_row[2:])
        with self.db.write() as conn:
            if full:
                conn.executemany(FULL_SQL, full)
            if only_starts:
                conn.executemany(START_SQL, only_starts)
            if end_by_key:
                conn.executemany(END_SQL, end_by_key.values())
            if self.changes is not None:
                self.changes.record_write(conn, only_starts, full, end_by_key)
        if self.changes is not None:
            self.changes.committed()

    def upsert_batch_json(self, body: bytes) -> bytes:
        """Apply a ``/call/upsert_batch`` body; returns the JSON reply.

        Raises ``json.JSONDecodeError`` for a body that is not JSON and pydantic's
        ``ValidationError`` for one the wire model rejects.
        """
        fast = decode_batch_fast(body)
        if fast is not None:
            starts, ends, replies = fast
        else:
            req = CallCreateBatchReq.model_validate(load_json(body))
            starts, ends, replies = [], [], []
            for item in req.batch:
                if isinstance(item.req, CallStartReq):
                    row = model_start(item.req.start)
                    starts.append(row)
                    replies.append({"id": row[1], "trace_id": row[2]})
                else:
                    ends.append(model_end(item.req.end))
                    replies.append({})
        self._write(starts, ends)
        return orjson.dumps({"res": replies})

    def start(self, req: CallStartReq) -> CallStartRes:
        """``/call/start``: upsert one start."""
        row = model_start(req.start)
        self._write([row], [])
        return CallStartRes(id=row[1], trace_id=row[2])

    def end(self, req: CallEndReq) -> None:
        """``/call/end``: upsert one end."""
        self._write([], [model_end(req.end)])

    def update(self, req: CallUpdateReq) -> None:
        """``/call/update``: set the display name."""
        if req.display_name is None:
            raise InvalidRequest("display_name: one of [display_name] is required for call update")
        with self.db.write() as conn:
            cur = conn.execute(
                "UPDATE calls SET display_name = ? "
                "WHERE project_id = ? AND id = ? AND deleted_at IS NULL",
                (req.display_name, req.project_id, req.call_id),
            )
            if cur.rowcount == 0:
                raise NotFound(f"call {req.call_id!r} not found in project {req.project_id!r}")
            if self.changes is not None:
                self.changes.record_update(conn, req.project_id, req.call_id)
        if self.changes is not None:
            self.changes.committed()

    def delete(self, req: CallsDeleteReq) -> int:
        """``/calls/delete``: soft-delete the calls and all their descendants; returns the count."""
        if not req.call_ids:
            return 0
        if len(req.call_ids) > _MAX_DELETE_CALLS:
            raise InvalidRequest(
                f"call_ids: {len(req.call_ids)} given; delete at most {_MAX_DELETE_CALLS} "
                "calls at once"
            )
        marks = ", ".join("?" * len(req.call_ids))
        sql = f"""
            WITH RECURSIVE doomed(id) AS (
                SELECT id FROM calls WHERE project_id = ? AND id IN ({marks})
                UNION
                SELECT c.id FROM calls c JOIN doomed d ON c.parent_id = d.id
                WHERE c.project_id = ?
            )
            UPDATE calls SET deleted_at = ?
            WHERE project_id = ? AND deleted_at IS NULL AND id IN (SELECT id FROM doomed)
        """
        deleted_at = now_timestamp()
        params = [req.project_id, *req.call_ids, req.project_id, deleted_at, req.project_id]
        with self.db.write() as conn:
            count: int = conn.execute(sql, params).rowcount
            if self.changes is not None and count:
                self.changes.record_delete(conn, req.project_id, deleted_at)
        if self.changes is not None:
            self.changes.committed()
        return count

    # -- reads --------------------------------------------------------------

    def _calls(self, conn: sqlite3.Connection, req: CallsQueryReq) -> list[dict[str, Any]]:
        sql, params = _calls_query.compile_calls_query(req)
        calls = _rows_to_calls(conn.execute(sql, params).fetchall(), req)
        if req.include_total_storage_size:
            _attach_total_storage(conn, req.project_id, calls)
        return calls

    def query(self, req: CallsQueryReq) -> list[CallSchema]:
        """``/calls/query``: the calls, validated as wire models."""
        with self.db.read() as conn:
            calls = self._calls(conn, req)
            if req.include_feedback:
                _attach_feedback(conn, req.project_id, calls)
            if req.include_costs:
                attach_costs(conn, req.project_id, calls)
        self._expand(req, calls)
        return [CallSchema.model_validate(c) for c in calls]

    def _expand(self, req: CallsQueryReq, calls: list[dict[str, Any]]) -> None:
        """Replace the object refs at ``expand_columns`` by their values, as weave's server does.

        The value gets a ``_ref`` key holding the ref it replaced (when it is a
        dict). A ref that cannot be read is left as it was.
        """
        if not req.expand_columns or req.return_expanded_column_values is False:
            return
        if self.read_refs is None:
            return
        columns = sorted(req.expand_columns, key=lambda c: c.count("."))
        for call in calls:
            for column in columns:
                parts = column.split(".")
                parent: Any = call
                for part in parts[:-1]:
                    parent = parent.get(part) if isinstance(parent, dict) else None
                if not isinstance(parent, dict):
                    continue
                ref = parent.get(parts[-1])
                if not (isinstance(ref, str) and ref.startswith("weave:///")):
                    continue
                kind = ref[len("weave:///") :].split("/")[2:3]
                if kind not in (["object"], ["op"]):
                    continue
                try:
                    (value,) = self.read_refs([ref])
                except (NotFound, InvalidRequest):
                    continue
                if isinstance(value, dict):
                    value = {**value, "_ref": ref}
                parent[parts[-1]] = value

    def read(self, req: CallReadReq) -> CallSchema | None:
        """``/call/read``: one call, or None (as the hosted service answers ``{"call": null}``)."""
        calls = self.query(
            CallsQueryReq(
                project_id=req.project_id,
                filter=CallsFilter(call_ids=[req.id]),
                limit=1,
                include_storage_size=req.include_storage_size,
                include_total_storage_size=req.include_total_storage_size,
            )
        )
        return calls[0] if calls else None

    def query_stats(self, req: CallsQueryStatsReq) -> CallsQueryStatsRes:
        """``/calls/query_stats``: how many calls the query matches (and, on request, their size).

        ``total_storage_size_bytes`` is, as on weave's server, the sum of the
        trace totals of the matching root calls.
        """
        if req.limit is not None and req.limit < 1:
            raise InvalidRequest(f"limit: must be a positive integer, got {req.limit}")
        sql, params = _calls_query.compile_calls_query_stats(req)
        total: int | None = None
        with self.db.read() as conn:
            row = conn.execute(sql, params).fetchone()
            if req.include_total_storage_size:
                roots_req = CallsQueryReq(
                    project_id=req.project_id,
                    filter=req.filter,
                    query=req.query,
                    limit=req.limit,
                    columns=["id", "trace_id", "parent_id"],
                )
                roots_sql, roots_params = _calls_query.compile_calls_query(roots_req)
                traces = sorted(
                    {
                        r["trace_id"]
                        for r in conn.execute(roots_sql, roots_params)
                        if r["parent_id"] is None
                    }
                )
                (total,) = conn.execute(
                    f"SELECT COALESCE(SUM({_SIZE_SQL}), 0) FROM calls WHERE project_id = ? "
                    "AND deleted_at IS NULL AND trace_id IN (SELECT value FROM json_each(?))",
                    [req.project_id, json.dumps(traces)],
                ).fetchone()
        count = int(row["count"]) if row is not None else 0
        return CallsQueryStatsRes(count=count, total_storage_size_bytes=total)

    def stream_lines(self, req: CallsQueryReq, *, chunk: int = 200) -> Iterator[bytes]:
        """``/calls/stream_query``: JSONL, one call per line, read from the cursor in chunks.

        The query is compiled before the first chunk is yielded, so a bad query
        fails the request (400) instead of truncating a 200 stream.
        """
        sql, params = _calls_query.compile_calls_query(req)
        conn = self.db.acquire()
        try:
            cursor = conn.execute(sql, params)
        except BaseException:
            self.db.release(conn)
            raise
        return self._stream(conn, cursor, req, chunk)

    def _stream(
        self, conn: sqlite3.Connection, cursor: sqlite3.Cursor, req: CallsQueryReq, chunk: int
    ) -> Iterator[bytes]:
        try:
            while rows := cursor.fetchmany(chunk):
                calls = _rows_to_calls(rows, req)
                if req.include_total_storage_size:
                    _attach_total_storage(conn, req.project_id, calls)
                if req.include_feedback:
                    _attach_feedback(conn, req.project_id, calls)
                if req.include_costs:
                    attach_costs(conn, req.project_id, calls)
                self._expand(req, calls)
                yield b"".join(
                    CallSchema.model_validate(c).model_dump_json().encode() + b"\n" for c in calls
                )
        finally:
            cursor.close()
            self.db.release(conn)


# What weave counts as a call's storage: its JSON columns.
_SIZE_COLUMNS = ("attributes", "inputs", "output", "summary")
_SIZE_SQL = " + ".join(f"COALESCE(length({c}), 0)" for c in _SIZE_COLUMNS)


def _rows_to_calls(rows: list[sqlite3.Row], req: CallsQueryReq) -> list[dict[str, Any]]:
    # (The compiler already leaves out calls whose end arrived before their start.)
    calls = [_calls_query.row_to_call(row, req.columns) for row in rows]
    if req.include_storage_size:
        for row, call in zip(rows, calls, strict=True):
            keys = row.keys()
            call["storage_size_bytes"] = sum(
                len(row[c]) for c in _SIZE_COLUMNS if c in keys and row[c] is not None
            )
    return calls


def _attach_total_storage(
    conn: sqlite3.Connection, project_id: str, calls: list[dict[str, Any]]
) -> None:
    """``total_storage_size_bytes`` of each root call: the storage of its whole trace."""
    traces = {c["trace_id"] for c in calls if c.get("parent_id") is None}
    if not traces:
        return
    totals = dict(
        conn.execute(
            f"SELECT trace_id, SUM({_SIZE_SQL}) FROM calls WHERE project_id = ? "
            "AND deleted_at IS NULL AND trace_id IN (SELECT value FROM json_each(?)) "
            "GROUP BY trace_id",
            [project_id, json.dumps(sorted(traces))],
        ).fetchall()
    )
    for call in calls:
        if call.get("parent_id") is None:
            call["total_storage_size_bytes"] = totals.get(call["trace_id"])


def _attach_feedback(
    conn: sqlite3.Connection, project_id: str, calls: list[dict[str, Any]]
) -> None:
    """Put each call's feedback under ``summary.weave.feedback``, as weave's server does."""
    if not calls:
        return
    by_ref = {f"weave:///{project_id}/call/{c['id']}": c for c in calls}
    found: dict[str, list[dict[str, Any]]] = {ref: [] for ref in by_ref}
    refs = list(by_ref)
    for start in range(0, len(refs), 500):
        part = refs[start : start + 500]
        marks = ", ".join("?" * len(part))
        for row in conn.execute(
            "SELECT id, feedback_type, weave_ref, payload_dump, creator, created_at, wb_user_id "
            f"FROM feedback WHERE project_id = ? AND weave_ref IN ({marks}) ORDER BY created_at",
            [project_id, *part],
        ):
            found[row["weave_ref"]].append(
                {
                    "id": row["id"],
                    "feedback_type": row["feedback_type"],
                    "weave_ref": row["weave_ref"],
                    "payload": json.loads(row["payload_dump"]),
                    "creator": row["creator"],
                    "created_at": row["created_at"],
                    "wb_user_id": row["wb_user_id"],
                }
            )
    for ref, call in by_ref.items():
        summary = call.get("summary") or {}
        weave = dict(summary.get("weave") or {})
        weave["feedback"] = found[ref]
        call["summary"] = {**summary, "weave": weave}
