"""Call records as request items: encoding helpers of the background sender (no I/O).

The size limit of one record and its truncation marker, the client's API key
kept out of recorded calls, and the write-ahead log lines of display-name
updates. Shared by both flavours of the sender.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from ._tracing import CallUpdate, OpSave, Record, encode_body, record_body, record_call_id

__all__ = [
    "MAX_ITEM_BYTES",
    "TRUNCATED_MARKER",
    "UPDATE_MODE",
    "SecretBytes",
    "decode_update",
    "encode_update",
    "item_name",
    "line_call_id",
    "redact_payload",
    "secret_bytes",
    "truncate_record",
]

logger = logging.getLogger("weave_client")

# The hosted service caps one call's payload; weave's client warns above this.
MAX_ITEM_BYTES = int(3.5 * 1024 * 1024)
TRUNCATED_MARKER = "<weave_client: value truncated, {size} bytes over the {limit}-byte call limit>"


def redact_payload(payload: bytes, secret: SecretBytes | None) -> bytes:
    """The record's JSON with the client's own API key replaced by ``REDACTED``."""
    if secret is not None and secret.value in payload:
        return payload.replace(secret.value, b"REDACTED")
    return payload


def truncate_record(record: Record, payload: bytes, limit: int) -> bytes:
    """``payload`` (the encoded ``record``) cut below ``limit`` bytes: its largest
    values replaced with a visible marker, with a warning naming the call."""
    call_id = record_call_id(record)
    logger.warning(
        "weave_client: call %s %s record is %d bytes, over the %d-byte limit;"
        " its largest values are replaced with a truncation marker",
        call_id,
        record[0],
        len(payload),
        limit,
    )
    mode = record[0]
    body = record_body(record)
    fields = ("inputs", "attributes") if mode == "start" else ("output", "summary")
    for field in fields:
        value = body.get(field)
        if isinstance(value, dict):
            smaller = dict(value)
            sizes = sorted(
                ((len(json.dumps(v, default=repr)), k) for k, v in smaller.items()),
                reverse=True,
            )
        else:
            smaller, sizes = {}, []
        for size, key in sizes:
            smaller[key] = TRUNCATED_MARKER.format(size=size, limit=limit)
            body[field] = smaller
            payload = encode_body(mode, body)
            if len(payload) <= limit:
                return payload
        if field in body and body[field] is not None:
            size = len(json.dumps(body[field], default=repr))
            marker = TRUNCATED_MARKER.format(size=size, limit=limit)
            body[field] = {"_truncated": marker} if field != "output" else marker
            payload = encode_body(mode, body)
            if len(payload) <= limit:
                return payload
    return payload


def line_call_id(line: bytes) -> str:
    try:
        req = json.loads(line)["req"]
        return str((req.get("start") or req.get("end"))["id"])
    except (ValueError, KeyError, TypeError):
        return "(unreadable)"


UPDATE_MODE = "call_update"


def item_name(item: Record | OpSave | CallUpdate) -> str:
    """What a queued item is about, for log lines."""
    if isinstance(item, OpSave):
        return item.name
    if isinstance(item, CallUpdate):
        return item.call_id
    return record_call_id(item)


def encode_update(update: CallUpdate) -> bytes:
    """A ``CallUpdate`` as one write-ahead log line."""
    return json.dumps(
        {
            "mode": UPDATE_MODE,
            "project_id": update.project_id,
            "call_id": update.call_id,
            "display_name": update.display_name,
        },
        separators=(",", ":"),
    ).encode()


def decode_update(value: dict[str, Any]) -> CallUpdate:
    return CallUpdate(
        project_id=str(value["project_id"]),
        call_id=str(value["call_id"]),
        display_name=value.get("display_name"),
    )


class SecretBytes:
    """The API key as bytes, never shown in a repr and never pickled."""

    __slots__ = ("value",)

    def __init__(self, value: bytes) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "'***'"

    def __reduce__(self) -> Any:
        raise TypeError("an API key cannot be pickled")


def secret_bytes(secret: str | None) -> SecretBytes | None:
    """The secret as it appears inside a JSON string, or None when not searched for.

    A short or all-numeric value could match the JSON around the values (a
    number, a key) and break the record; such values are not searched for.
    """
    if not secret or len(secret) < 8 or all(c in "0123456789.eE+-" for c in secret):
        return None
    return SecretBytes(json.dumps(secret)[1:-1].encode())
