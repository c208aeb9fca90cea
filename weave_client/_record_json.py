"""Queued call records and their wire form: ``record_body`` (the
StartedCallSchemaForInsert / EndedCallSchemaForInsert fields) and ``encode_record``,
the direct writer of one ``/call/upsert_batch`` item as JSON bytes, with its caches.

I/O-free and flavour-free; it runs on the sender's side, off the traced call's path.
"""

from __future__ import annotations

import json
import json.encoder as json_encoder
import math
from datetime import UTC, datetime
from typing import Any

from ._call_attributes import default_attributes
from ._ids import format_id
from ._summary import SHARED_SUMMARY_JSON

__all__ = [
    "Record",
    "encode_body",
    "encode_record",
    "iso_timestamp",
    "record_body",
    "record_call_id",
]


# A queued record is a flat tuple, not the nested wire dict: 100,000 queued calls
# must stay well under 100 MB. ``record_body`` builds the wire form when encoding.
#   start: ("start", project_id, id, op_name, display_name, trace_id, parent_id,
#           started_at, attributes (None: the shared default), inputs, thread_id, turn_id)
#   end:   ("end", project_id, id, ended_at, output, summary, exception)
Record = tuple[Any, ...]

_START_FIELDS = (
    "project_id",
    "id",
    "op_name",
    "display_name",
    "trace_id",
    "parent_id",
    "started_at",
    "attributes",
    "inputs",
    "thread_id",
    "turn_id",
)
_END_FIELDS = ("project_id", "id", "ended_at", "output", "summary", "exception")


def record_body(record: Record) -> dict[str, Any]:
    """The StartedCallSchemaForInsert / EndedCallSchemaForInsert fields of a record,
    timestamps as ISO strings."""
    if record[0] == "start":
        body = dict(zip(_START_FIELDS, record[1:], strict=True))
        body["started_at"] = iso_timestamp(body["started_at"])
        if body["attributes"] is None:
            body["attributes"] = default_attributes()
        # Sent only inside a thread block: most calls have neither.
        if body["thread_id"] is None:
            del body["thread_id"], body["turn_id"]
        for key in ("id", "trace_id", "parent_id"):
            if type(body[key]) is int:
                body[key] = format_id(body[key])
    else:
        body = dict(zip(_END_FIELDS, record[1:], strict=True))
        body["ended_at"] = iso_timestamp(body["ended_at"])
        if type(body["id"]) is int:
            body["id"] = format_id(body["id"])
    return body


# The last whole second formatted by iso_timestamp: records of one batch mostly
# share it, and formatting the date part is most of the cost of a timestamp.
_last_second: tuple[float, str] = (math.nan, "")


def iso_timestamp(seconds: float) -> str:
    """``2025-01-31T12:00:00.123456Z``: the form pydantic writes for an aware datetime.

    The same text as ``datetime.fromtimestamp(seconds, UTC).strftime(...)``
    (microseconds rounded half to even, as datetime does), at a third of the cost.
    """
    global _last_second
    frac, whole = math.modf(seconds)
    micros = round(frac * 1e6)
    if micros >= 1_000_000:
        whole += 1.0
        micros -= 1_000_000
    elif micros < 0:
        whole -= 1.0
        micros += 1_000_000
    cached_whole, prefix = _last_second
    if whole != cached_whole:
        prefix = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _last_second = (whole, prefix)
    return f"{prefix}.{micros:06d}Z"


# The default attributes (client info) are the same on every call outside an
# attributes() scope and about half of a start record's JSON: encoded once.
_default_attributes_json: str | None = None
# The last other attributes written and their text: the same read-only dict repeats
# (a client's ``attributes=``; calls in one attributes() scope share theirs).
_last_attrs: tuple[Any, str] = (object(), "")


def encode_record(record: Record) -> bytes:
    """One upsert_batch item as compact JSON bytes (runs on the sender's side).

    The item's frame is written directly, each value with one reused C encoder
    (``json.dumps`` with options builds a new encoder per call: most of the cost);
    the texts that repeat from record to record (project, op name, the shared
    attributes and summaries) are written once. A record the direct path cannot
    write (a NaN somewhere) goes the general way.
    """
    global _default_attributes_json, _last_attrs
    try:
        if record[0] == "start":
            (
                _, project_id, call_id, op_name, display_name, trace_id, parent_id,
                started, attrs, inputs, thread_id, turn_id,
            ) = record  # fmt: skip
            if attrs is None:  # the shared default (see make_start)
                if _default_attributes_json is None:
                    _default_attributes_json = _encode(default_attributes())
                attrs_json = _default_attributes_json
            elif attrs is _last_attrs[0]:
                attrs_json = _last_attrs[1]  # a client's attributes=, on each of its calls
            else:
                attrs_json = _encode(attrs)
                _last_attrs = (attrs, attrs_json)
            # Sent only inside a thread block, as record_body does.
            thread = (
                ""
                if thread_id is None
                else f',"thread_id":{_encode(thread_id)},"turn_id":{_encode(turn_id)}'
            )
            text = (
                f'{{"mode":"start","req":{{"start":{{"project_id":{_name_json(project_id)}'
                f',"id":{_id_json(call_id)},"op_name":{_name_json(op_name)}'
                f',"display_name":{_name_json(display_name)},"trace_id":{_id_json(trace_id)}'
                f',"parent_id":{_id_json(parent_id)},"started_at":"{iso_timestamp(started)}"'
                f',"inputs":{_encode(inputs)},"attributes":{attrs_json}{thread}}}}}}}'
            )
        else:
            _, project_id, call_id, ended, output, summary, exception = record
            summary_json = SHARED_SUMMARY_JSON.get(id(summary)) or _encode(summary)
            text = (
                f'{{"mode":"end","req":{{"end":{{"project_id":{_name_json(project_id)}'
                f',"id":{_id_json(call_id)},"ended_at":"{iso_timestamp(ended)}"'
                f',"output":{_encode(output)},"summary":{summary_json}'
                f',"exception":{_encode(exception)}}}}}}}'
            )
    except (ValueError, TypeError, RecursionError):
        return encode_body(record[0], record_body(record))
    return text.encode()


# Texts of project ids, op names and display names written lately: the same few
# repeat in every record.
_name_texts: dict[Any, str] = {}


def _name_json(value: Any) -> str:
    """A name field (str or None) as JSON, from the cache when written before."""
    text = _name_texts.get(value)
    if text is None:
        text = _encode(value)
        if type(value) is str and len(value) <= 512:
            if len(_name_texts) >= 1024:
                _name_texts.clear()
            _name_texts[value] = text
    return text


# Id texts written lately: a call's end (and its children's parent ids) follow its
# start closely, so most ids are written more than once.
_id_texts: dict[int, str] = {}


def _id_json(value: Any) -> str:
    """An id field: the quoted UUID text of an id integer, else the value as JSON."""
    if type(value) is not int:
        return _encode(value)
    text = _id_texts.get(value)
    if text is None:
        if len(_id_texts) >= 8192:
            _id_texts.clear()
        text = _id_texts[value] = '"' + format_id(value) + '"'
    return text


def encode_body(mode: str, body: dict[str, Any]) -> bytes:
    """``{"mode": mode, "req": {mode: body}}`` as compact JSON bytes."""
    wire = {"mode": mode, "req": {mode: body}}
    try:
        text = json.dumps(wire, separators=(",", ":"), allow_nan=False, default=_json_default)
    except ValueError:
        # NaN/Infinity are not JSON: write them as the strings Python prints.
        text = json.dumps(
            _finite(wire), separators=(",", ":"), allow_nan=False, default=_json_default
        )
    return text.encode()


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _json_default(value: Any) -> Any:
    # The encoder hands us JSON-able data; anything else is a bug upstream, and
    # its repr keeps the call rather than losing the whole batch.
    return repr(value)


# One encoder for every value of a record (compact, NaN refused so encode_body can
# write it as a string, anything odd as its repr). The C encoder itself, made once:
# JSONEncoder.encode builds a new one on every call, which costs more than the work.
_c_make_encoder: Any = getattr(json_encoder, "c_make_encoder", None)
_c_encoder = (
    _c_make_encoder(
        None,  # no cycle check: a cyclic value recurses and takes the general path
        _json_default,
        json_encoder.encode_basestring_ascii,
        None,
        ":",
        ",",
        False,
        False,
        False,
    )
    if _c_make_encoder is not None
    else None
)


def _encode(value: Any) -> str:
    cls = type(value)
    if cls is str:
        return json_encoder.encode_basestring_ascii(value)
    if value is None:
        return "null"
    if cls is int:
        return int.__repr__(value)
    if _c_encoder is None:
        return json.dumps(value, separators=(",", ":"), allow_nan=False, default=_json_default)
    return "".join(_c_encoder(value, 0))


def record_call_id(record: Record) -> str:
    """The call id a record belongs to (for log lines)."""
    value = record[2]
    return format_id(value) if type(value) is int else str(value)
