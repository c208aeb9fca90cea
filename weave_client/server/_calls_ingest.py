"""The write path's parsing: ``/call/upsert_batch`` bodies into rows, and their SQL.

A start fills the start columns, an end the end columns, in either order and any
number of times (upserts keyed by (project_id, id)), so a retried batch never makes
a duplicate. The body is decoded by msgspec into the common batch's shape (pydantic
per item would cost more than the database); only a body that shape does not accept
goes through the wire models, which then either accept it or name the bad field.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec

from .._models import EndedCallSchemaForInsert, StartedCallSchemaForInsert
from ._common import dump_json, extract_refs, load_json
from ._schema import format_timestamp

__all__ = [
    "END_SQL",
    "FULL_SQL",
    "START_COLUMNS",
    "START_SQL",
    "EndRow",
    "StartRow",
    "decode_batch_fast",
    "model_end",
    "model_start",
]

# The columns a start and an end of a call write, in the order of their row tuples.
START_COLUMNS = (
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


START_SQL = _upsert_sql(START_COLUMNS)
END_SQL = _upsert_sql(_END_COLUMNS)
# A start and an end of the same call in one batch become one row.
FULL_SQL = _upsert_sql(START_COLUMNS + _END_COLUMNS)

StartRow = tuple[Any, ...]
EndRow = tuple[Any, ...]


def _has_refs(text: str) -> bool:
    # A substring test skips parsing (and any allocation) for values without refs;
    # "\\/" is a slash escaped, which JSON allows inside "weave:///".
    return ":///" in text or "\\/" in text


def _input_refs(text: str) -> str:
    """Refs among the input values (JSON text ``text``), as JSON text (what the
    ``input_refs`` filter reads)."""
    if not _has_refs(text):
        return "[]"
    inputs = load_json(text)
    return dump_json(extract_refs(list(inputs.values())))


def _output_refs(text: str) -> str:
    """Refs in the output: among its values for a dict, else the output itself, as weave does."""
    if not _has_refs(text):
        return "[]"
    output = load_json(text)
    return dump_json(extract_refs(list(output.values()) if isinstance(output, dict) else output))


def _timestamp(value: str) -> str | None:
    """Stored form of a wire timestamp string, or None when the fast path cannot read it."""
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


def _start_row(
    s: StartedCallSchemaForInsert | _Start, started_at: str, attributes: str, inputs: str
) -> StartRow:
    """The row of a start (a wire model or a decoded struct: the same field names),
    given its stored timestamp and JSON texts."""
    return (
        s.project_id,
        s.id or _new_id(),
        s.trace_id or _new_id(),
        s.parent_id,
        s.thread_id,
        s.turn_id,
        s.op_name,
        s.display_name,
        started_at,
        attributes,
        inputs,
        _input_refs(inputs),
        s.wb_user_id,
        s.wb_run_id,
    )


def model_start(s: StartedCallSchemaForInsert) -> StartRow:
    return _start_row(
        s, format_timestamp(s.started_at), dump_json(s.attributes), dump_json(s.inputs)
    )


def model_end(e: EndedCallSchemaForInsert) -> EndRow:
    output_text = dump_json(e.output)
    return (
        e.project_id,
        e.id,
        format_timestamp(e.ended_at),
        e.exception,
        output_text,
        _output_refs(output_text),
        dump_json(dict(e.summary)),
    )


# The shape of the common batch, decoded by msgspec: a value the row stores as JSON
# text stays the bytes the client sent (``Raw``, never parsed into Python objects and
# dumped again), and the structs are not tracked by the garbage collector. A body
# these types reject goes through the wire models instead, which accept it or name
# the bad field.


class _Start(msgspec.Struct, gc=False):
    project_id: str
    op_name: str
    started_at: str
    attributes: msgspec.Raw
    inputs: msgspec.Raw
    id: str | None = None
    trace_id: str | None = None
    parent_id: str | None = None
    thread_id: str | None = None
    turn_id: str | None = None
    display_name: str | None = None
    wb_user_id: str | None = None
    wb_run_id: str | None = None
    wb_run_step: int | None = None


class _End(msgspec.Struct, gc=False):
    project_id: str
    id: str
    ended_at: str
    summary: msgspec.Raw
    output: msgspec.Raw = msgspec.Raw(b"null")
    exception: str | None = None


class _Req(msgspec.Struct, gc=False):
    start: _Start | None = None
    end: _End | None = None


class _Item(msgspec.Struct, gc=False):
    req: _Req
    mode: str | None = None


class _Batch(msgspec.Struct, gc=False):
    batch: list[_Item]


_decode_batch = msgspec.json.Decoder(_Batch).decode


def _object_text(raw: msgspec.Raw) -> str | None:
    """The JSON text of a value that must be an object, or None when it is not one."""
    text = str(raw, "utf-8")
    return text if text[:1] == "{" else None


def _fast_start(s: _Start) -> StartRow | None:
    """The row of a decoded start, or None to defer to the wire model."""
    started_at = _timestamp(s.started_at)
    attributes = _object_text(s.attributes)
    inputs = _object_text(s.inputs)
    if started_at is None or attributes is None or inputs is None:
        return None
    return _start_row(s, started_at, attributes, inputs)


def _fast_end(e: _End) -> EndRow | None:
    """The row of a decoded end, or None to defer to the wire model."""
    ended_at = _timestamp(e.ended_at)
    summary = _object_text(e.summary)
    if ended_at is None or summary is None:
        return None
    output = str(e.output, "utf-8")
    return (e.project_id, e.id, ended_at, e.exception, output, _output_refs(output), summary)


def decode_batch_fast(body: bytes) -> tuple[list[StartRow], list[EndRow], list[Any]] | None:
    """Rows and replies of an upsert batch body, or None if it needs the wire models."""
    try:
        batch = _decode_batch(body).batch
    except msgspec.DecodeError:  # not this shape, or not strict JSON (NaN): the slow path
        return None
    starts: list[StartRow] = []
    ends: list[EndRow] = []
    replies: list[Any] = []
    try:
        for item in batch:
            mode = item.mode
            req = item.req
            if mode == "start" or (mode is None and req.start is not None):
                if req.start is None or (row := _fast_start(req.start)) is None:
                    return None
                starts.append(row)
                replies.append({"id": row[1], "trace_id": row[2]})
            elif mode == "end" or (mode is None and req.end is not None):
                if req.end is None or (end_row := _fast_end(req.end)) is None:
                    return None
                ends.append(end_row)
                replies.append({})
            else:
                return None
    except UnicodeDecodeError:  # a value that is not UTF-8: the wire models say so
        return None
    return starts, ends, replies
