"""The calls side of the local server: the write path and the query routes' storage.

Writes are upserts keyed by (project_id, id): a start fills the start columns,
an end the end columns, in either order and any number of times, so a retried
batch never makes a duplicate. ``/call/upsert_batch`` is the hot path: its body
is parsed with orjson and checked by hand (pydantic per item would cost more
than the database), and only a body the fast check does not accept goes
through the wire models, which then either accept it or name the bad field.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
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
    EndedCallSchemaForInsert,
    StartedCallSchemaForInsert,
)
from . import _calls_query
from ._common import InvalidRequest, NotFound, dump_json, extract_refs, load_json, now_timestamp
from ._costs import attach_costs
from ._db import Database
from ._schema import format_timestamp

__all__ = ["CallStore"]

# The columns a start and an end of a call write, in the order of their row tuples.
_START_COLUMNS = (
    "trace_id", "parent_id", "thread_id", "turn_id", "op_name", "display_name",
    "started_at", "attributes", "inputs", "input_refs", "wb_user_id", "wb_run_id",
)  # fmt: skip
_END_COLUMNS = ("ended_at", "exception", "output", "output_refs", "summary")


def _upsert_sql(columns: tuple[str, ...]) -> str:
    """An idempotent upsert of ``columns`` into the (project_id, id) row of ``calls``.

    A start or end sent again (a retry) overwrites the row with the same values;
    a start without a display name keeps the one the row already has.
    """
    names = ("project_id", "id", *columns)
    updates = ",\n    ".join(
        "display_name = COALESCE(excluded.display_name, calls.display_name)"
        if c == "display_name"
        else f"{c} = excluded.{c}"
        for c in columns
    )
    return (
        f"INSERT INTO calls ({', '.join(names)})\n"
        f"VALUES ({', '.join('?' * len(names))})\n"
        f"ON CONFLICT (project_id, id) DO UPDATE SET\n    {updates}\n"
    )


_START_SQL = _upsert_sql(_START_COLUMNS)
_END_SQL = _upsert_sql(_END_COLUMNS)
# A start and an end of the same call in one batch become one row.
_FULL_SQL = _upsert_sql(_START_COLUMNS + _END_COLUMNS)

# The hosted service's limit on one /calls/delete.
_MAX_DELETE_CALLS = 1000

StartRow = tuple[Any, ...]
EndRow = tuple[Any, ...]



def _input_refs(inputs: dict[str, Any], text: str) -> str:
    """Refs among the input values, as JSON text (what the ``input_refs`` filter reads)."""
    # The substring test skips the walk (and any allocation) for values without refs.
    if ":///" not in text:
        return "[]"
    return dump_json(extract_refs(list(inputs.values())))


def _output_refs(output: Any, text: str) -> str:
    """Refs in the output: among its values for a dict, else the output itself, as weave does."""
    if ":///" not in text:
        return "[]"
    return dump_json(extract_refs(list(output.values()) if isinstance(output, dict) else output))


def _timestamp(value: Any) -> str | None:
    """Stored form of a wire timestamp string, or None when the fast path cannot read it."""
    if type(value) is not str:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    # The two common spellings of UTC with microseconds are rewritten as text;
    # formatting a datetime costs ten times the parse.
    if len(value) == 32 and value[19] == "." and value.endswith("+00:00"):
        return value
    if len(value) == 27 and value[19] == "." and value[26] in "Zz":
        return value[:26] + "+00:00"
    return format_timestamp(parsed)


def _new_id() -> str:
    return str(uuid.uuid4())


def _fast_start(s: Any) -> StartRow | None:
    """The row of a start given as parsed JSON, or None to defer to the wire model."""
    if type(s) is not dict:
        return None
    get = s.get
    project_id = get("project_id")
    op_name = get("op_name")
    attributes = get("attributes")
    inputs = get("inputs")
    if (
        type(project_id) is not str
        or type(op_name) is not str
        or type(attributes) is not dict
        or type(inputs) is not dict
    ):
        return None
    optional = (
        get("id"),
        get("trace_id"),
        get("parent_id"),
        get("thread_id"),
        get("turn_id"),
        get("display_name"),
        get("wb_user_id"),
        get("wb_run_id"),
    )  # optional strings
    for v in optional:
        if v is not None and type(v) is not str:
            return None
    step = get("wb_run_step")
    if step is not None and type(step) is not int:
        return None
    started_at = _timestamp(get("started_at"))
    if started_at is None:
        return None
    call_id, trace_id, parent_id, thread_id, turn_id, display_name, user_id, run_id = optional
    inputs_text = dump_json(inputs)
    return (
        project_id,
        call_id or _new_id(),
        trace_id or _new_id(),
        parent_id,
        thread_id,
        turn_id,
        op_name,
        display_name,
        started_at,
        dump_json(attributes),
        inputs_text,
        _input_refs(inputs, inputs_text),
        user_id,
        run_id,
    )


def _fast_end(e: Any) -> EndRow | None:
    """The row of an end given as parsed JSON, or None to defer to the wire model."""
    if type(e) is not dict:
        return None
    project_id = e.get("project_id")
    call_id = e.get("id")
    summary = e.get("summary")
    exception = e.get("exception")
    if (
        type(project_id) is not str
        or type(call_id) is not str
        or type(summary) is not dict
        or (exception is not None and type(exception) is not str)
    ):
        return None
    ended_at = _timestamp(e.get("ended_at"))
    if ended_at is None:
        return None
    output = e.get("output")
    output_text = dump_json(output)
    return (
        project_id,
        call_id,
        ended_at,
        exception,
        output_text,
        _output_refs(output, output_text),
        dump_json(summary),
    )


def _model_start(s: StartedCallSchemaForInsert) -> StartRow:
    inputs_text = dump_json(s.inputs)
    return (
        s.project_id,
        s.id or _new_id(),
        s.trace_id or _new_id(),
        s.parent_id,
        s.thread_id,
        s.turn_id,
        s.op_name,
        s.display_name,
        format_timestamp(s.started_at),
        dump_json(s.attributes),
        inputs_text,
        _input_refs(s.inputs, inputs_text),
        s.wb_user_id,
        s.wb_run_id,
    )


def _model_end(e: EndedCallSchemaForInsert) -> EndRow:
    output_text = dump_json(e.output)
    return (
        e.project_id,
        e.id,
        format_timestamp(e.ended_at),
        e.exception,
        output_text,
        _output_refs(e.output, output_text),
        dump_json(dict(e.summary)),
    )


def _parse_batch_fast(body: Any) -> tuple[list[StartRow], list[EndRow], list[Any]] | None:
    """Rows and replies of an upsert batch, or None if any item needs the wire model."""
    if type(body) is not dict:
        return None
    batch = body.get("batch")
    if type(batch) is not list:
        return None
    starts: list[StartRow] = []
    ends: list[EndRow] = []
    replies: list[Any] = []
    for item in batch:
        if type(item) is not dict:
            return None
        mode = item.get("mode")
        req = item.get("req")
        if type(req) is not dict:
            return None
        if mode == "start" or (mode is None and "start" in req):
            row = _fast_start(req.get("start"))
            if row is None:
                return None
            starts.append(row)
            replies.append({"id": row[1], "trace_id": row[2]})
        elif mode == "end" or (mode is None and "end" in req):
            end_row = _fast_end(req.get("end"))
            if end_row is None:
                return None
            ends.append(end_row)
            replies.append({})
        else:
            return None
    return starts, ends, replies


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
                conn.executemany(_FULL_SQL, full)
            if only_starts:
                conn.executemany(_START_SQL, only_starts)
            if end_by_key:
                conn.executemany(_END_SQL, end_by_key.values())
            if self.changes is not None:
                self.changes.record_write(conn, only_starts, full, end_by_key)
        if self.changes is not None:
            self.changes.committed()

    def upsert_batch_json(self, body: bytes) -> bytes:
        """Apply a ``/call/upsert_batch`` body; returns the JSON reply.

        Raises ``json.JSONDecodeError`` for a body that is not JSON and pydantic's
        ``ValidationError`` for one the wire model rejects.
        """
        parsed = load_json(body)
        fast = _parse_batch_fast(parsed)
        if fast is not None:
            starts, ends, replies = fast
        else:
            req = CallCreateBatchReq.model_validate(parsed)
            starts, ends, replies = [], [], []
            for item in req.batch:
                if isinstance(item.req, CallStartReq):
                    row = _model_start(item.req.start)
                    starts.append(row)
                    replies.append({"id": row[1], "trace_id": row[2]})
                else:
                    ends.append(_model_end(item.req.end))
                    replies.append({})
        self._write(starts, ends)
        return orjson.dumps({"res": replies})

    def start(self, req: CallStartReq) -> CallStartRes:
        """``/call/start``: upsert one start."""
        row = _model_start(req.start)
        self._write([row], [])
        return CallStartRes(id=row[1], trace_id=row[2])

    def end(self, req: CallEndReq) -> None:
        """``/call/end``: upsert one end."""
        self._write([], [_model_end(req.end)])

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
