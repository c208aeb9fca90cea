"""Compile ``/calls/query`` and ``/calls/query_stats`` requests to SQLite.

The local server keeps calls in the ``calls`` table of ``_schema.py``; this
module turns a wire request (``CallsFilter``, the ``$expr`` query language,
``sort_by``, ``limit``/``offset``, ``columns``) into one parameterized SELECT,
and turns a result row back into a ``CallSchema``-shaped dict with
``summary.weave`` derived as the hosted service derives it.

Injection safety: every value the client sends (ids, names, literals, JSON
paths) is a bound parameter. The only names that reach the SQL text are column
names from a fixed whitelist; a JSON path is validated part by part and then
bound as the path argument of ``json_extract``.

Value semantics of the query language: Mongo's aggregation semantics (the
language's model), kept wherever weave's servers agree with them:

- ``$getField`` on a dotted JSON path (``inputs.x.y``, ``output.0``) yields the
  JSON value with SQLite's native type: strings as text, numbers as numbers,
  ``true``/``false`` as 1/0, objects and arrays as minified JSON text, and
  NULL when the key is missing or JSON ``null``. A part made of digits indexes
  a list, as weave does.
- Comparisons are two-valued as in Mongo's aggregation language: a comparison
  involving a missing value is false, never NULL, so ``$not`` of it is true.
  ``$eq`` with a ``null`` literal tests for missing-or-null. The exception, as
  on the hosted service: a ``$convert`` to ``double``/``int``/``bool`` that
  fails (missing, or not a number) is NULL, and ``$eq``/``$gt``/``$gte`` over
  it follow SQL's three-valued logic, so neither they nor their ``$not``
  select the row.
- Numbers compare with numbers and strings with strings; values of different
  types order as in Mongo (null < numbers < strings), so a number stored as a
  string (``"12"``) equals the literal 12 only through ``$convert``
  (``double``/``int`` parse numeric strings; anything else becomes NULL
  instead of SQLite's silent 0).
- ``$contains`` is a plain substring test (no wildcards), ASCII case folding
  with ``case_insensitive``.
- ``summary.weave.status``, ``summary.weave.latency_ms`` and
  ``summary.weave.trace_name`` are derived in SQL from the stored columns, so
  they filter and sort exactly as ``row_to_call`` reports them.
- ``feedback.[type].payload.path`` (type ``*`` for any) reads the call's most
  recent feedback of that type, as the hosted service's feedback fields do.
- Sorting puts NULLs (missing values, running calls' latency) last in both
  directions, and a JSON path sorts present values first, then by number,
  then by text, as the hosted service does; ``id`` breaks ties, so pages
  never overlap.

Where weave's own SQLite server differs, it wins on what a client sees: a
``limit`` of 0 means no limit, and the request options this server does not
compute (``expand_columns``, ``include_costs``, ``include_storage_size``) are
accepted and left to the caller.
"""

from __future__ import annotations

import functools
import json
import re
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from weave_client._models import CallsFilter, CallsQueryReq, CallsQueryStatsReq, Query, SortBy
from weave_client._refs import SCHEME
from weave_client.server._query_sql import (
    QueryError,
    Sql,
    compile_condition,
    fmt,
    json_field,
    json_list_param,
    order_terms,
    sort_direction,
)
from weave_client.server._schema import CALLS_JSON_COLUMNS

__all__ = [
    "CALL_COLUMNS",
    "QueryError",
    "compile_calls_query",
    "compile_calls_query_stats",
    "derive_weave_summary",
    "row_to_call",
    "selected_columns",
    "trace_name_of",
]


# The columns of ``calls`` a query returns, in ``CallSchema`` field order.
# ``input_refs``/``output_refs`` are stored for filtering only; CallSchema has no such fields.
CALL_COLUMNS: tuple[str, ...] = (
    "id",
    "project_id",
    "op_name",
    "display_name",
    "trace_id",
    "parent_id",
    "thread_id",
    "turn_id",
    "started_at",
    "attributes",
    "inputs",
    "ended_at",
    "exception",
    "output",
    "summary",
    "wb_user_id",
    "wb_run_id",
    "deleted_at",
)

# Always selected whatever ``columns`` says, as weave requires them to build a CallSchema.
_REQUIRED_COLUMNS: tuple[str, ...] = ("id", "trace_id", "project_id", "op_name", "started_at")
# What deriving ``summary.weave`` reads besides the summary itself.
_SUMMARY_INPUT_COLUMNS: tuple[str, ...] = (
    "started_at",
    "ended_at",
    "exception",
    "display_name",
    "op_name",
)
# Plain (non-JSON) columns usable in $getField and sort_by.
_PLAIN_FIELDS: frozenset[str] = frozenset(c for c in CALL_COLUMNS if c not in CALLS_JSON_COLUMNS)
# Fields of CallSchema this server does not store: accepted in ``columns``, never filled.
_UNSTORED_FIELDS: frozenset[str] = frozenset(
    {"wb_run_step", "storage_size_bytes", "total_storage_size_bytes"}
)

_WILDCARD_VERSION = ":*"
_REF_PREFIXES: tuple[str, ...] = (SCHEME, "weave-trace-internal:///")

# ---------------------------------------------------------------------------
# Derived summary fields, in SQL (for filters and sorts) and in Python (on read).
# ---------------------------------------------------------------------------

_STATUS_SQL = (
    "(CASE WHEN exception IS NOT NULL THEN 'error'"
    " WHEN ended_at IS NULL THEN 'running'"
    " WHEN COALESCE(json_extract(summary, '$.status_counts.error'), 0) > 0 THEN 'descendant_error'"
    " ELSE 'success' END)"
)

# Whole microseconds between the two fixed-width timestamps (see _schema.format_timestamp),
# floored to milliseconds exactly as Python's timedelta arithmetic does in derive_weave_summary.
# The whole seconds come from the text without its fraction: strftime('%s') of the whole
# text rounds the fraction to milliseconds first, so xx:59.9996 counted as the next second.
_MICROS_SQL = (
    "((CAST(strftime('%s', substr(ended_at, 1, 19)) AS INTEGER)"
    " - CAST(strftime('%s', substr(started_at, 1, 19)) AS INTEGER))"
    " * 1000000 + CAST(substr(ended_at, 21, 6) AS INTEGER)"
    " - CAST(substr(started_at, 21, 6) AS INTEGER))"
)
_LATENCY_SQL = (
    "(CASE WHEN ended_at IS NULL OR started_at IS NULL THEN NULL"
    f" WHEN {_MICROS_SQL} >= 0 THEN {_MICROS_SQL} / 1000"
    f" ELSE -((999 - {_MICROS_SQL}) / 1000) END)"
)


def _trace_name_sql() -> str:
    # The op's name part of a ref ``weave:///entity/project/op/name:digest``:
    # the last path segment before the first ':' after the scheme (weave's
    # hosted builder uses the regex '/([^/:]*):' for the same thing).
    rest = "substr(op_name, instr(op_name, ':///') + 4)"
    head = f"(CASE WHEN instr({rest}, ':') > 0 THEN substr({rest}, 1, instr({rest}, ':') - 1) ELSE {rest} END)"
    last = f"substr({head}, length(rtrim({head}, replace({head}, '/', ''))) + 1)"
    is_ref = " OR ".join(f"substr(op_name, 1, {len(p)}) = '{p}'" for p in _REF_PREFIXES)
    return (
        "(CASE WHEN display_name IS NOT NULL AND display_name != '' THEN display_name"
        f" WHEN {is_ref} THEN {last}"
        " ELSE op_name END)"
    )


_TRACE_NAME_SQL = _trace_name_sql()

_DERIVED_FIELDS: dict[str, str] = {
    "summary.weave.status": _STATUS_SQL,
    "summary.weave.latency_ms": _LATENCY_SQL,
    "summary.weave.trace_name": _TRACE_NAME_SQL,
}


def trace_name_of(op_name: str | None, display_name: str | None) -> str | None:
    """The name the UI shows for a call: its display name, else its op's name."""
    if display_name:
        return display_name
    if op_name is None:
        return None
    for prefix in _REF_PREFIXES:
        if op_name.startswith(prefix):
            rest = op_name[op_name.index(":///") + 4 :]
            head = rest.split(":", 1)[0]
            return head.rsplit("/", 1)[-1]
    return op_name


def _parse_timestamp(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def derive_weave_summary(
    summary: dict[str, Any] | None,
    *,
    op_name: str | None,
    started_at: str | None,
    ended_at: str | None,
    exception: str | None,
    display_name: str | None,
) -> dict[str, Any]:
    """The stored summary with ``summary.weave`` derived as the hosted service does.

    ``status`` is error / running / descendant_error / success, ``latency_ms``
    is set once the call ended, and ``trace_name`` is the display name or the
    op's name; a non-empty display name is also reported as
    ``summary.weave.display_name``, as weave 0.51.59 does. Stored ``weave``
    keys the server does not derive are kept.
    """
    result = dict(summary or {})
    stored_weave = result.pop("weave", None)
    weave: dict[str, Any] = dict(stored_weave) if isinstance(stored_weave, dict) else {}

    counts = result.get("status_counts")
    descendant_errors = counts.get("error", 0) if isinstance(counts, dict) else 0
    if exception is not None:
        weave["status"] = "error"
    elif ended_at is None:
        weave["status"] = "running"
    elif isinstance(descendant_errors, int | float) and descendant_errors > 0:
        weave["status"] = "descendant_error"
    else:
        weave["status"] = "success"

    start, end = _parse_timestamp(started_at), _parse_timestamp(ended_at)
    if start is not None and end is not None:
        weave["latency_ms"] = (end - start) // timedelta(milliseconds=1)

    weave["trace_name"] = trace_name_of(op_name, display_name)
    if display_name:
        weave["display_name"] = display_name
    result["weave"] = weave
    return result


# ---------------------------------------------------------------------------
# Fields: $getField and sort_by names.
# ---------------------------------------------------------------------------


def _field(name: str, where: str) -> Sql:
    """The SQL value of a field name, validated; ``where`` says where it came from."""
    if name in _PLAIN_FIELDS:
        return Sql(name)
    if name in _DERIVED_FIELDS:
        return Sql(_DERIVED_FIELDS[name])
    root = name.partition(".")[0]
    if root in CALLS_JSON_COLUMNS:
        return json_field(root, name, where)
    if root == "feedback":
        return _feedback_field(name, where)
    if name in _UNSTORED_FIELDS:
        raise QueryError(f"field {name!r} in {where} is not stored by this server")
    known = ", ".join(sorted(_PLAIN_FIELDS | set(_DERIVED_FIELDS)))
    raise QueryError(
        f"unknown field {name!r} in {where}; expected one of {known}, "
        "or a dotted path under inputs, output, attributes or summary, "
        "or feedback.[<type>].payload.<path>"
    )


_FEEDBACK_FIELD = re.compile(r"feedback\.\[(?P<type>[^\]]+)\]\.(?P<rest>.+)")


def _feedback_field(name: str, where: str) -> Sql:
    """``feedback.[type].payload.path`` (or ``.runnable_ref``/``.trigger_ref``), as the hosted service.

    The value of the call's most recent feedback of that type (``*``: any type),
    read from the server's ``feedback`` table by the call's ref.
    """
    match = _FEEDBACK_FIELD.fullmatch(name)
    if match is None:
        raise QueryError(
            f"invalid feedback field {name!r} in {where}; expected "
            "feedback.[<type or *>].payload.<path>, .runnable_ref or .trigger_ref"
        )
    kind, rest = match["type"], match["rest"]
    if rest == "payload" or rest.startswith("payload."):
        value = json_field("f.payload_dump", rest, where)
        value = Sql(value.sql, value.params)  # a subquery value, not a column path
    elif rest in ("runnable_ref", "trigger_ref"):
        value = Sql(f"f.{rest}")
    else:
        raise QueryError(
            f"invalid feedback field {name!r} in {where}: after the type comes payload[.<path>], "
            "runnable_ref or trigger_ref"
        )
    of_type = Sql("") if kind == "*" else Sql(" AND f.feedback_type = ?", (kind,))
    return fmt(
        "(SELECT {} FROM feedback AS f WHERE f.project_id = calls.project_id"
        " AND f.weave_ref = 'weave:///' || calls.project_id || '/call/' || calls.id{}"
        " ORDER BY f.created_at DESC, f.rowid DESC LIMIT 1)",
        value,
        of_type,
    )


# ---------------------------------------------------------------------------
# CallsFilter.
# ---------------------------------------------------------------------------


def _in_list(column: str, values: Sequence[str]) -> Sql:
    return fmt(f"{column} IN {{}}", json_list_param(values))


def _prefix(column: str, prefix: str) -> Sql:
    # substr, not LIKE: LIKE folds case and treats '%'/'_' in names as wildcards.
    return Sql(f"substr({column}, 1, ?) = ?", (len(prefix), prefix))


def _op_names_condition(project_id: str, op_names: Sequence[str]) -> Sql:
    exact: list[str] = []
    alternatives: list[Sql] = []
    for name in op_names:
        if name.endswith(_WILDCARD_VERSION):
            # 'weave:///e/p/op/name:*' - any version of that op.
            alternatives.append(_prefix("op_name", name[: -len(_WILDCARD_VERSION) + 1]))
        elif name.startswith(_REF_PREFIXES):
            exact.append(name)
        else:
            # A plain op name: calls logged under that literal name, or under any
            # version of this project's op of that name.
            exact.append(name)
            alternatives.append(_prefix("op_name", f"{SCHEME}{project_id}/op/{name}:"))
    if exact:
        alternatives.insert(0, _in_list("op_name", exact))
    return fmt("(" + " OR ".join("{}" for _ in alternatives) + ")", *alternatives)


def _refs_condition(column: str, refs: Sequence[str]) -> Sql:
    return fmt(
        f"EXISTS (SELECT 1 FROM json_each(calls.{column}) AS r WHERE r.value IN {{}})",
        json_list_param(refs),
    )


def _filter_conditions(project_id: str, f: CallsFilter) -> list[Sql]:
    conds: list[Sql] = []
    # As weave: an empty list for these means "no filter" ...
    if f.op_names:
        conds.append(_op_names_condition(project_id, f.op_names))
    if f.input_refs:
        conds.append(_refs_condition("input_refs", f.input_refs))
    if f.output_refs:
        conds.append(_refs_condition("output_refs", f.output_refs))
    for column, values in (
        ("parent_id", f.parent_ids),
        ("trace_id", f.trace_ids),
        ("id", f.call_ids),
        ("wb_user_id", f.wb_user_ids),
        ("wb_run_id", f.wb_run_ids),
    ):
        if values:
            conds.append(_in_list(column, values))
    # ... but for thread and turn ids the hosted service tests `is not None`, so
    # an empty list matches nothing there, and here.
    for column, maybe in (("thread_id", f.thread_ids), ("turn_id", f.turn_ids)):
        if maybe is not None:
            conds.append(_in_list(column, maybe))
    if f.trace_roots_only:
        conds.append(Sql("parent_id IS NULL"))
    return conds


def _where(project_id: str, call_filter: CallsFilter | None, query: Query | None) -> Sql:
    conds = [
        Sql("project_id = ?", (project_id,)),
        Sql("deleted_at IS NULL"),
        # A call whose end arrived before its start is not visible until the start lands;
        # excluding it here keeps limit, offset and counts right.
        Sql("started_at IS NOT NULL"),
    ]
    if call_filter is not None:
        conds.extend(_filter_conditions(project_id, call_filter))
    if query is not None:
        conds.append(compile_condition(query, _field))
    return fmt(" AND ".join("{}" for _ in conds), *conds)


# ---------------------------------------------------------------------------
# ORDER BY, LIMIT, columns.
# ---------------------------------------------------------------------------


def _order_by(sort_by: Sequence[SortBy] | None) -> Sql:
    if sort_by is None:
        keys: list[tuple[str, str]] = [("started_at", "ASC")]
    else:
        keys = [
            (s.field, sort_direction(s.direction, f"sort_by[{i}]")) for i, s in enumerate(sort_by)
        ]
    parts: list[Sql] = []
    for i, (name, direction) in enumerate(keys):
        parts.extend(order_terms(_field(name, f"sort_by[{i}].field"), direction))
    if not any(name == "id" for name, _ in keys):
        parts.append(Sql("id ASC"))  # a total order, so limit/offset pages never overlap
    return fmt(" ORDER BY " + ", ".join("{}" for _ in parts), *parts)


def _limit_offset(limit: int | None, offset: int | None) -> Sql:
    if limit is not None and limit < 0:
        raise QueryError(f"invalid limit {limit}: must not be negative")
    if offset is not None and offset < 0:
        raise QueryError(f"invalid offset {offset}: must not be negative")
    # weave's SQLite server reads `limit or -1`: a limit of 0 means no limit.
    return Sql(" LIMIT ? OFFSET ?", (limit or -1, offset or 0))


def _top_level(names: Iterable[str]) -> set[str]:
    return {name.split(".", 1)[0] for name in names}


def selected_columns(columns: Sequence[str] | None, include_costs: bool = False) -> list[str]:
    """The ``calls`` columns a query with these ``columns`` selects (all when None)."""
    if not columns:
        return list(CALL_COLUMNS)
    wanted = _top_level(columns) | set(_REQUIRED_COLUMNS)
    if "summary" in wanted or include_costs:
        wanted |= {"summary", *_SUMMARY_INPUT_COLUMNS}
    # Names outside the table (e.g. wb_run_step) are ignored, as weave ignores them.
    return [c for c in CALL_COLUMNS if c in wanted]


# ---------------------------------------------------------------------------
# Public entry points.
# ---------------------------------------------------------------------------


def compile_calls_query(req: CallsQueryReq) -> tuple[str, list[Any]]:
    """A parameterized SELECT of the calls ``req`` asks for, in order.

    Covers every ``CallsFilter`` field, the ``$expr`` query, ``sort_by`` (top-level,
    dotted JSON and derived ``summary.weave.*`` fields), ``limit``/``offset`` and
    ``columns``; soft-deleted calls and calls whose start has not
    arrived yet are never returned. Feed each row to
    ``row_to_call(row, req.columns)``. ``expand_columns``, ``include_costs`` and
    ``include_feedback`` are accepted and left to the caller. Raises ``QueryError``
    for anything malformed.
    """
    columns = selected_columns(req.columns, bool(req.include_costs))
    where = _where(req.project_id, req.filter, req.query)
    sql = fmt(
        f"SELECT {', '.join(columns)} FROM calls WHERE {{}}{{}}{{}}",
        where,
        _order_by(req.sort_by),
        _limit_offset(req.limit, req.offset),
    )
    return sql.sql, list(sql.params)


def compile_calls_query_stats(req: CallsQueryStatsReq) -> tuple[str, list[Any]]:
    """A parameterized query returning one row with column ``count``.

    Same filter and query semantics as ``compile_calls_query``; the count is
    capped at ``req.limit`` as weave caps it, and a limit below 1 is a ``QueryError``.
    """
    if req.limit is not None and req.limit < 1:
        raise QueryError(f"invalid limit {req.limit}: must be a positive integer")
    where = _where(req.project_id, req.filter, req.query)
    limit = Sql(" LIMIT ?", (req.limit if req.limit is not None else -1,))
    sql = fmt("SELECT COUNT(*) AS count FROM (SELECT 1 FROM calls WHERE {}{})", where, limit)
    return sql.sql, list(sql.params)


def _load_json(value: Any) -> Any:
    if value == "{}":  # most inputs, attributes and summaries: skip the decoder
        return {}
    return json.loads(value) if isinstance(value, str | bytes) else value


def _returned_columns(columns: Sequence[str] | None) -> set[str]:
    """The top-level fields a call of a query with these ``columns`` carries.

    As the hosted service: the requested ones, those CallSchema requires, and
    with ``summary`` the fields its ``weave`` part is derived from (``ended_at``,
    ``exception``, ``display_name``).
    """
    if not columns:
        return set(CALL_COLUMNS)
    wanted = _top_level(columns) | set(_REQUIRED_COLUMNS)
    if "summary" in wanted:
        wanted |= {"ended_at", "exception", "display_name"}
    return wanted


@functools.lru_cache(maxsize=256)
def _fill_plan(
    present: tuple[str, ...], columns: tuple[str, ...] | None
) -> tuple[tuple[str, bool], ...]:
    """Which columns of a row to fill, in CallSchema order, and whether each is JSON.

    Cached: every row of a result has the same keys, so this is worked out once.
    """
    wanted = _returned_columns(columns)
    return tuple(
        (column, column in CALLS_JSON_COLUMNS)
        for column in CALL_COLUMNS
        if column in present and column in wanted
    )


def row_to_call(row: sqlite3.Row, columns: Sequence[str] | None = None) -> dict[str, Any]:
    """A ``CallSchema``-shaped dict from a ``calls`` row.

    JSON columns are parsed, timestamps stay the ISO strings they are stored as,
    an empty display name reads as None, and ``summary.weave`` is derived (see
    ``derive_weave_summary``). With ``columns``, only those top-level fields (plus
    the ones CallSchema requires, and those ``summary`` is derived from) are filled.
    """
    present = tuple(row.keys())
    call: dict[str, Any] = {}
    for column, is_json in _fill_plan(present, tuple(columns) if columns else None):
        value = row[column]
        call[column] = _load_json(value) if is_json and value is not None else value
    if call.get("display_name") == "":
        call["display_name"] = None
    # The summary is derived whatever the columns, from the fields they return, as
    # the hosted service (a selection without ``summary`` or ``ended_at`` reads as
    # running: ask for ``summary`` to get a call's status).
    summary = call.get("summary")
    call["summary"] = derive_weave_summary(
        summary if isinstance(summary, dict) else None,
        op_name=call.get("op_name"),
        started_at=call.get("started_at"),
        ended_at=call.get("ended_at"),
        exception=call.get("exception"),
        display_name=call.get("display_name") or None,
    )
    # CallSchema requires these dicts even when a column selection left them out.
    call.setdefault("attributes", {})
    call.setdefault("inputs", {})
    return call
