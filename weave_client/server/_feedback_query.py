"""Compile ``/feedback/query`` and ``/feedback/purge`` requests to SQLite.

The ``feedback`` table mirrors weave's (``payload`` is stored as JSON text in
``payload_dump``). ``fields`` may name top-level columns, ``payload`` or a
dotted payload path (``payload.note``), and weave's ``count(*)``; ``query`` is
the ``$expr`` language with the same semantics as calls queries (see
``_calls_query``), over these fields; ``sort_by`` takes the same names, a JSON
path sorting present values first, then by number, then by text.

Every client value is a bound parameter; column names come from a whitelist
and payload paths are validated, then bound.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from weave_client._models import FeedbackPurgeReq, FeedbackQueryReq, SortBy
from weave_client.server._query_sql import (
    QueryError,
    Sql,
    compile_condition,
    fmt,
    json_field,
    order_terms,
    sort_direction,
)

__all__ = [
    "FEEDBACK_FIELDS",
    "QueryError",
    "compile_feedback_purge",
    "compile_feedback_query",
    "row_to_feedback",
]

# The fields of a feedback record, in weave's column order; ``payload`` lives in ``payload_dump``.
FEEDBACK_FIELDS: tuple[str, ...] = (
    "id",
    "project_id",
    "weave_ref",
    "wb_user_id",
    "creator",
    "created_at",
    "feedback_type",
    "payload",
    "annotation_ref",
    "runnable_ref",
    "call_ref",
    "trigger_ref",
)
_PLAIN_FIELDS = frozenset(FEEDBACK_FIELDS) - {"payload"}
_COUNT = "count(*)"


def _is_payload(name: str) -> bool:
    return name == "payload" or name.startswith("payload.")


def _field(name: str, where: str) -> Sql:
    """The SQL value of a feedback field name, validated."""
    if name in _PLAIN_FIELDS:
        return Sql(name)
    if _is_payload(name):
        return json_field("payload_dump", name, where)
    raise QueryError(
        f"unknown field {name!r} in {where}; expected one of {', '.join(FEEDBACK_FIELDS)}, "
        "or a dotted path under payload"
    )


def _select_item(name: str, where: str) -> Sql:
    if name.lower() == _COUNT:
        return Sql(f'COUNT(*) AS "{_COUNT}"')
    value = _field(name, where)
    # The alias is the field name itself, safe to quote: a plain column from the
    # whitelist, or a payload path whose parts passed validation (no '"').
    if value.json is not None:
        # '->' yields the JSON text of the value, so row_to_feedback returns it typed.
        return Sql(f'(payload_dump -> ?) AS "{name}"', value.params)
    return Sql(f'{name} AS "{name}"')


def _order_by(sort_by: Sequence[SortBy] | None) -> Sql:
    parts: list[Sql] = []
    for i, s in enumerate(sort_by or ()):
        direction = sort_direction(s.direction, f"sort_by[{i}]")
        parts.extend(order_terms(_field(s.field, f"sort_by[{i}].field"), direction))
    # Then insertion order, which is also the whole order when no sort is given
    # (what weave's SQLite server returns), so limit/offset pages never overlap.
    parts.append(Sql("rowid ASC"))
    return fmt(" ORDER BY " + ", ".join("{}" for _ in parts), *parts)


def _where(project_id: str, req_query: Any) -> Sql:
    conds = [Sql("project_id = ?", (project_id,))]
    if req_query is not None:
        conds.append(compile_condition(req_query, _field))
    return fmt(" AND ".join("{}" for _ in conds), *conds)


def compile_feedback_query(req: FeedbackQueryReq) -> tuple[str, list[Any]]:
    """A parameterized SELECT for ``/feedback/query``; rows go to ``row_to_feedback``.

    Each result column is named after the requested field (all fields when
    ``fields`` is empty). ``limit``/``offset`` as weave's: absent means no
    limit, negative is a ``QueryError``, as is any unknown field or bad path.
    """
    fields = list(req.fields) if req.fields else list(FEEDBACK_FIELDS)
    items = [_select_item(name, f"fields[{i}]") for i, name in enumerate(fields)]
    for name, value in (("limit", req.limit), ("offset", req.offset)):
        if value is not None and value < 0:
            raise QueryError(f"invalid {name} {value}: must not be negative")
    is_count = any(name.lower() == _COUNT for name in fields)
    sql = fmt(
        "SELECT " + ", ".join("{}" for _ in items) + " FROM feedback WHERE {}{} LIMIT ? OFFSET ?",
        *items,
        _where(req.project_id, req.query),
        # An aggregate has one row: ordering it means nothing.
        Sql("") if is_count else _order_by(req.sort_by),
        Sql("", (req.limit if req.limit is not None else -1, req.offset or 0)),
    )
    return sql.sql, list(sql.params)


def compile_feedback_purge(req: FeedbackPurgeReq) -> tuple[str, list[Any]]:
    """A parameterized DELETE of the project's feedback matching ``req.query``.

    Generic over the query language; restricting purges to id matches (as
    weave's server does) is the route's decision.
    """
    sql = fmt("DELETE FROM feedback WHERE {}", _where(req.project_id, req.query))
    return sql.sql, list(sql.params)


def row_to_feedback(row: sqlite3.Row) -> dict[str, Any]:
    """A feedback row as the wire dict: field name -> value, ``payload`` values parsed."""
    result: dict[str, Any] = {}
    for key in row.keys():
        value = row[key]
        if _is_payload(key) and isinstance(value, str | bytes):
            value = json.loads(value)
        result[key] = value
    return result
