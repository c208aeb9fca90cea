"""The write path's parsing: ``/call/upsert_batch`` bodies into rows, and their SQL.

A start fills the start columns, an end the end columns, in either order and any
number of times (upserts keyed by (project_id, id)), so a retried batch never makes
a duplicate. The body is parsed with orjson and checked by hand (pydantic per item
would cost more than the database); only a body the fast check does not accept goes
through the wire models, which then either accept it or name the bad field.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from .._models import EndedCallSchemaForInsert, StartedCallSchemaForInsert
from ._common import dump_json, extract_refs
from ._schema import format_timestamp

__all__ = [
    "END_SQL",
    "FULL_SQL",
    "START_COLUMNS",
    "START_SQL",
    "EndRow",
    "StartRow",
    "model_end",
    "model_start",
    "parse_batch_fast",
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


def model_start(s: StartedCallSchemaForInsert) -> StartRow:
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


def model_end(e: EndedCallSchemaForInsert) -> EndRow:
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


def parse_batch_fast(body: Any) -> tuple[list[StartRow], list[EndRow], list[Any]] | None:
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
