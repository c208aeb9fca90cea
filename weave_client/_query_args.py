"""The query arguments of the client's reads, checked and built without I/O.

Shared by both flavours: filters given as models, dicts or keywords; ``sort_by``
in its string forms; ``$expr`` queries; op names as the server matches them. A
bad argument raises before any request is sent, naming the argument.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeAlias

import pydantic

from ._models import CallSchema, CallsFilter, CallsQueryReq, ObjectVersionFilter, Query, SortBy
from ._refs import OpRef, Ref, is_ref_uri, parse_ref

__all__ = [
    "CALLS_FILTER_FIELDS",
    "OBJECT_FILTER_FIELDS",
    "SortByLike",
    "SortKey",
    "as_list",
    "calls_query_req",
    "check_page",
    "check_sort_field",
    "check_thread_sort_field",
    "eq",
    "merge_filter",
    "op_name_patterns",
    "query_of",
    "ref_uri",
    "sort_by_entries",
]

SortKey: TypeAlias = str | SortBy | Mapping[str, Any]
"""``"started_at"``, ``"-started_at"``, ``"summary.weave.latency_ms desc"``, a ``SortBy``
or its dict (``{"field": ..., "direction": "asc"|"desc"}``)."""
SortByLike: TypeAlias = SortKey | Sequence[SortKey]
"""One sort key or a list of them (the first sorts first)."""

CALLS_FILTER_FIELDS = frozenset(CallsFilter.model_fields)
OBJECT_FILTER_FIELDS = frozenset(ObjectVersionFilter.model_fields)


def check_page(limit: int | None, offset: int | None) -> None:
    """``ValueError`` for a negative or non-int ``limit``/``offset``."""
    if limit is not None and (not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be a non-negative int, got {limit!r}")
    if offset is not None and (not isinstance(offset, int) or offset < 0):
        raise ValueError(f"offset must be a non-negative int, got {offset!r}")


def as_list(value: Any) -> list[Any]:
    """One value (a str, bytes or ref) as a one-item list, else the values as a list."""
    if isinstance(value, (str, bytes, Ref)):
        return [value]
    return list(value)


def merge_filter(
    filter: Any, fields: Mapping[str, Any], allowed: frozenset[str], where: str
) -> dict[str, Any]:
    """A filter given as a model or dict, plus its fields given as keywords, as one dict."""
    if filter is None:
        merged: dict[str, Any] = {}
    elif isinstance(filter, pydantic.BaseModel):
        merged = filter.model_dump(exclude_none=True)
    elif isinstance(filter, Mapping):
        merged = dict(filter)
    else:
        raise TypeError(
            f"{where} filter must be a dict or a filter model, got {type(filter).__name__}"
        )
    for key, value in fields.items():
        if key in merged:
            raise TypeError(f"{where} got filter field {key!r} twice (in filter= and as a keyword)")
        merged[key] = value
    unknown = sorted(set(merged) - allowed)
    if unknown:
        raise TypeError(
            f"{where} got unknown filter field(s) {', '.join(map(repr, unknown))} "
            f"(known: {', '.join(sorted(allowed))})"
        )
    return {k: v for k, v in merged.items() if v is not None}


def op_name_patterns(names: Any, entity: str, project: str) -> list[str]:
    """Op names as the server matches them: refs as given, plain names both ways.

    A traced op's calls carry its ref (``weave:///e/p/op/name:digest``), matched
    by the wildcard ``name:*``; calls logged with a bare op name match it exactly.
    """
    out: list[str] = []
    for name in as_list(names):
        if isinstance(name, OpRef):
            out.append(name.uri())
        elif isinstance(name, str) and is_ref_uri(name):
            out.append(name)
        elif isinstance(name, str) and name:
            out.append(name)
            out.append(f"weave:///{entity}/{project}/op/{name}:*")
        else:
            raise ValueError(f"op_names entries must be op names or refs, got {name!r}")
    return out


def calls_query_req(
    entity: str,
    project: str,
    filter: CallsFilter | Mapping[str, Any] | None,
    filter_fields: Mapping[str, Any],
    *,
    limit: int | None = None,
    offset: int | None = None,
    sort_by: SortByLike | None = None,
    query: Query | Mapping[str, Any] | None = None,
    columns: Sequence[str] | None = None,
    include_costs: bool = False,
    include_feedback: bool = False,
) -> CallsQueryReq:
    """The ``/calls/query`` request of ``calls()``'s arguments, checked."""
    check_page(limit, offset)
    merged = merge_filter(filter, filter_fields, CALLS_FILTER_FIELDS, "calls()")
    if merged.get("op_names") is not None:
        merged["op_names"] = op_name_patterns(merged["op_names"], entity, project)
    for key in ("input_refs", "output_refs"):
        if merged.get(key) is not None:
            merged[key] = [r.uri() if isinstance(r, Ref) else r for r in as_list(merged[key])]
    try:
        calls_filter = CallsFilter.model_validate(merged) if merged else None
    except pydantic.ValidationError as e:
        raise ValueError(f"invalid calls filter {merged!r}: {e}") from None
    return CallsQueryReq(
        project_id=f"{entity}/{project}",
        filter=calls_filter,
        limit=limit,
        offset=offset,
        sort_by=sort_by_entries(sort_by),
        query=query_of(query),
        columns=list(columns) if columns is not None else None,
        include_costs=include_costs,
        include_feedback=include_feedback,
    )


# Roots a calls sort field can start with: the call's own fields (nested paths
# under inputs/output/attributes/summary) and feedback.[type].payload.<path>.
_SORT_ROOTS = frozenset(CallSchema.model_fields) | {"feedback"}


def check_sort_field(entry: SortBy) -> SortBy:
    """Refuse a sort field no server knows before sending it (a typo, a misspelt direction)."""
    field = entry.field
    root = field.split(".", 1)[0]
    if root not in _SORT_ROOTS or (root != "feedback" and any(c.isspace() for c in field)):
        raise ValueError(
            f"invalid sort_by field {field!r}: expected a call field"
            f" ({', '.join(sorted(_SORT_ROOTS - {'feedback'}))}), a dotted path under inputs,"
            " output, attributes or summary, or feedback.[<type>].payload.<path>;"
            " directions are 'asc' or 'desc'"
        )
    return entry


def sort_by_entries(
    sort_by: SortByLike | None, check: Callable[[SortBy], SortBy] | None = None
) -> list[SortBy] | None:
    """``sort_by`` in any of its forms as ``SortBy`` entries, each checked by ``check``
    (default: a calls sort field)."""
    if sort_by is None:
        return None
    items = [sort_by] if isinstance(sort_by, (str, SortBy, Mapping)) else list(sort_by)
    out = []
    for item in items:
        if isinstance(item, SortBy):
            out.append(item)
        elif isinstance(item, Mapping):
            try:
                out.append(SortBy.model_validate(dict(item)))
            except pydantic.ValidationError as e:
                raise ValueError(f"invalid sort_by entry {dict(item)!r}: {e}") from None
        elif isinstance(item, str) and item.strip():
            text = item.strip()
            direction = "asc"
            if text.startswith("-"):
                text, direction = text[1:], "desc"
            else:
                field, _, word = text.rpartition(" ")
                if field and word.lower() in ("asc", "desc"):
                    text, direction = field.strip(), word.lower()
            out.append(SortBy(field=text, direction=direction))
        else:
            raise ValueError(
                f"invalid sort_by entry {item!r} (use 'field', '-field', 'field desc' or SortBy)"
            )
    return [(check or check_sort_field)(entry) for entry in out]


_THREAD_SORT_FIELDS = (
    "thread_id",
    "turn_count",
    "start_time",
    "last_updated",
    "p50_turn_duration_ms",
    "p99_turn_duration_ms",
)


def check_thread_sort_field(entry: SortBy) -> SortBy:
    """Refuse a ``threads()`` sort field the threads route does not sort by."""
    if entry.field not in _THREAD_SORT_FIELDS:
        raise ValueError(
            f"invalid threads() sort_by field {entry.field!r}: expected one of "
            f"{', '.join(_THREAD_SORT_FIELDS)}"
        )
    return entry


def query_of(query: Query | Mapping[str, Any] | None) -> Query | None:
    """A ``Query`` from itself, its dict (``{"$expr": ...}``) or the bare expression."""
    if query is None or isinstance(query, Query):
        return query
    if not isinstance(query, Mapping):
        raise TypeError(f"query must be a Query or a dict, got {type(query).__name__}")
    body = dict(query) if "$expr" in query else {"$expr": dict(query)}
    try:
        return Query.model_validate(body)
    except pydantic.ValidationError as e:
        raise ValueError(f"invalid query {body!r}: {e}") from None



def eq(field: str, value: Any) -> dict[str, Any]:
    """The ``$expr`` of ``field == value``."""
    return {"$eq": [{"$getField": field}, {"$literal": value}]}


def ref_uri(target: Any) -> str:
    """The ``weave:///`` URI of a call (anything with a ``.ref``), a ref or a URI string."""
    if isinstance(target, Ref):
        return target.uri()
    if isinstance(target, str):
        return parse_ref(target).uri()
    ref = getattr(target, "ref", None)
    if isinstance(ref, Ref):
        return ref.uri()
    raise TypeError(f"expected a Call, a Ref or a weave:/// URI, got {type(target).__name__}")
