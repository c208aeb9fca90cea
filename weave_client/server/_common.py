"""Shared pieces of the local server: its errors, JSON text, timestamps, and refs and names
checked with the client's rules (weave_client/_refs.py)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from .. import _refs as refs
from .._errors import InvalidNameError, InvalidRefError
from .._models import (
    EqOperation,
    GetFieldOperator,
    InOperation,
    LiteralOperation,
    OrOperation,
    Query,
    SortBy,
)
from .._refs import SCHEME
from ._schema import format_timestamp

__all__ = [
    "InvalidRequest",
    "NotFound",
    "ObjectDeleted",
    "ParsedRef",
    "check_object_name",
    "dump_json",
    "extract_refs",
    "load_json",
    "non_negative",
    "now_timestamp",
    "parse_ref",
    "purge_ids",
    "quote_json_path",
    "sort_direction",
]


class InvalidRequest(ValueError):
    """A request the server understands but refuses (HTTP 400); the message names the field."""


class NotFound(LookupError):
    """The call, object, table, row or file does not exist (HTTP 404)."""


class ObjectDeleted(NotFound):
    """The object version was deleted (HTTP 404 whose body adds ``deleted_at``)."""

    def __init__(self, message: str, deleted_at: datetime) -> None:
        super().__init__(message)
        self.deleted_at = deleted_at


# allow_nan=False: SQLite's JSON functions reject NaN/Infinity, so such a value
# would make every later query over its row fail. They are stored as null,
# which is also what orjson and the hosted client's pydantic encoding do.
_ENCODER = json.JSONEncoder(allow_nan=False)


def dump_json(value: Any) -> str:
    """The JSON text stored for a value (NaN and infinities become null).

    This text is for storage only, never digested (digests need weave's exact
    ``json.dumps`` text), so the fast compact encoder is used when it can.
    """
    try:
        return orjson.dumps(value).decode()
    except (TypeError, orjson.JSONEncodeError):
        pass  # e.g. an integer beyond 64 bits: the stdlib encodes those
    try:
        return _ENCODER.encode(value)
    except ValueError:
        return _ENCODER.encode(_replace_non_finite(value))


def load_json(data: bytes | str) -> Any:
    """Parse a request body; NaN/Infinity literals (which Python clients send) are accepted."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)  # raises json.JSONDecodeError for a body that is not JSON


def _replace_non_finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _replace_non_finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_replace_non_finite(v) for v in value]
    return value


def now_timestamp() -> str:
    """The current time in the stored timestamp form."""
    return format_timestamp(datetime.now(UTC))


def non_negative(value: int | None, where: str) -> None:
    """Raise :class:`InvalidRequest` naming ``where`` for a negative limit or offset."""
    if value is not None and value < 0:
        raise InvalidRequest(f"{where}: must be >= 0, got {value}")


def sort_direction(sort: SortBy) -> str:
    """``DESC`` or ``ASC``: the SQL of a sort's direction."""
    return "DESC" if sort.direction == "desc" else "ASC"


def quote_json_path(dotted: str, *, where: str) -> str:
    """SQLite JSON path for a dotted field path: ``a.b.0`` -> ``$."a"."b"[0]``."""
    parts = dotted.split(".")
    if not dotted or any(p == "" for p in parts):
        raise InvalidRequest(f"{where}: {dotted!r} is not a valid dotted field path")
    out = ["$"]
    for part in parts:
        if part.isdigit():
            out.append(f"[{part}]")
        else:
            out.append('."' + part.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "".join(out)


# ---------------------------------------------------------------------------
# Refs: parsed by the client's parser (weave_client/_refs.py), seen as the server uses them
# ---------------------------------------------------------------------------

WEAVE_SCHEME = SCHEME


@dataclass(frozen=True)
class ParsedRef:
    """A parsed ``weave:///`` URI as the server uses it."""

    project_id: str
    kind: str  # object, op, table or call
    name: str  # object name, table digest or call id
    version: str = ""  # object/op digest, "latest" or "v{N}"
    extra: tuple[str, ...] = field(default=())


def parse_ref(uri: str, *, where: str = "ref") -> ParsedRef:
    """Parse a ``weave:///`` URI; raises :class:`InvalidRequest` naming ``where`` and what is wrong."""
    try:
        ref = refs.parse_ref(uri)
    except InvalidRefError as exc:
        raise InvalidRequest(f"{where}: {exc}") from None
    if isinstance(ref, refs.ObjectRef):  # OpRef included
        kind = "op" if isinstance(ref, refs.OpRef) else "object"
        return ParsedRef(ref.project_id, kind, ref.name, ref.digest, ref.extra)
    if isinstance(ref, refs.TableRef):
        return ParsedRef(ref.project_id, "table", ref.digest, "", ref.extra)
    return ParsedRef(ref.project_id, "call", ref.id, "", ref.extra)


def check_object_name(name: str, *, where: str) -> None:
    """The client's name rule (``validate_object_name``); :class:`InvalidRequest` naming ``where``."""
    try:
        refs.validate_object_name(name)
    except InvalidNameError as exc:
        raise InvalidRequest(f"{where}: {exc}") from None


_REF_PREFIXES = (SCHEME, "wandb-artifact:///")


def extract_refs(value: Any) -> list[str]:
    """Every ref string inside a JSON value (what weave stores as input/output refs)."""
    refs: list[str] = []
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            stack.extend(reversed(list(v.values())))
        elif isinstance(v, list):
            stack.extend(reversed(v))
        elif isinstance(v, str) and v.startswith(_REF_PREFIXES):
            refs.append(v)
    return refs


def purge_ids(query: Query, what: str) -> list[str]:
    """The ids a purge query names (``what``: feedback, costs); anything but a query by
    id is refused, as weave refuses it."""
    rule = f"query: {what} can only be purged by id ($eq or $in on id, or $or of $eq on id)"

    def is_id(op: Any) -> bool:
        return isinstance(op, GetFieldOperator) and op.get_field_ == "id"

    def literal_str(op: Any) -> str:
        if isinstance(op, LiteralOperation) and isinstance(op.literal_, str):
            return op.literal_
        raise InvalidRequest(rule)

    def eq_id(op: Any) -> str:
        if isinstance(op, EqOperation) and is_id(op.eq_[0]):
            return literal_str(op.eq_[1])
        raise InvalidRequest(rule)

    expr = query.expr_
    if isinstance(expr, EqOperation):
        return [eq_id(expr)]
    if isinstance(expr, InOperation) and is_id(expr.in_[0]):
        return [literal_str(v) for v in expr.in_[1]]
    if isinstance(expr, OrOperation):
        return [eq_id(op) for op in expr.or_]
    raise InvalidRequest(rule)
