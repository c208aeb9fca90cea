"""SQL building blocks shared by the local server's query compilers.

The ``$expr`` query language (weave's ``interface/query.py``), JSON-path fields
and sort keys compile the same way for every table that speaks them (calls,
feedback); each compiler supplies its own field resolver. See
``_calls_query`` for the value semantics.

Injection safety rests on two rules kept here: every client value is a bound
parameter (``Sql.params``), and a JSON path is built from parts that passed
``PATH_PART`` and is itself bound, never spliced into the SQL text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from weave_client._models import (
    AndOperation,
    ContainsOperation,
    ConvertOperation,
    EqOperation,
    GetFieldOperator,
    GteOperation,
    GtOperation,
    InOperation,
    LiteralOperation,
    NotOperation,
    OrOperation,
    Query,
)

__all__ = [
    "PATH_PART",
    "FieldResolver",
    "QueryError",
    "Sql",
    "as_condition",
    "compile_condition",
    "convert",
    "fmt",
    "json_field",
    "json_list_param",
    "json_type_of",
    "order_terms",
    "sort_direction",
    "to_double",
    "to_string",
]


class QueryError(ValueError):
    """A query the server cannot run: the message names the bad part."""


# One part of a dotted path: word characters plus the few symbols model names
# use (``gpt-4o``, ``openai/gpt-4o``, ``claude@v2``). Quotes, brackets, dots,
# spaces and ``$`` never pass, so a part is always a safe quoted JSON-path label.
PATH_PART = re.compile(r"[\w\-/:@+]+")


# ---------------------------------------------------------------------------
# SQL fragments: text plus the parameters its ``?`` slots take, in order.
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Sql:
    """A piece of SQL text and the values of its ``?`` slots, in order."""

    sql: str
    params: tuple[Any, ...] = ()
    # Set when the value is ``json_extract(column, path)``: casts and sorts then
    # consult ``json_type`` for the exact JSON type rather than SQLite's view of it.
    json: tuple[str, str] | None = None
    # True for the output of an operation ($eq, $and, ...): already a 0/1 condition.
    is_condition: bool = False
    # True for a $convert to a number or bool: NULL there is a failed conversion,
    # and comparisons with it follow SQL's three-valued logic (see _compare).
    unknown_if_null: bool = False


def fmt(template: str, *parts: Sql, is_condition: bool = False) -> Sql:
    """Fill ``{}`` slots with fragments, in order, carrying their parameters along."""
    params: list[Any] = []
    for part in parts:
        params.extend(part.params)
    return Sql(template.format(*(p.sql for p in parts)), tuple(params), is_condition=is_condition)


def _param(value: Any) -> Sql:
    return Sql("?", (value,))


def json_list_param(values: Sequence[str]) -> Sql:
    # One bound JSON array instead of one slot per id: no limit on list length.
    return Sql("(SELECT value FROM json_each(?))", (json.dumps(list(values)),))


def _json_path(parts: Sequence[str]) -> str:
    return "$" + "".join(f"[{p}]" if p.isdigit() else f'."{p}"' for p in parts)


def json_type_of(src: tuple[str, str]) -> Sql:
    column, path = src
    return Sql(f"json_type({column}, ?)", (path,))


def json_field(column: str, name: str, where: str) -> Sql:
    """``json_extract`` of the dotted path after ``column`` in ``name`` (``column.a.b``).

    ``column`` must come from the caller's whitelist; the path is validated and bound.
    """
    _, dot, rest = name.partition(".")
    if not dot:
        path = "$"
    else:
        parts = rest.split(".")
        for part in parts:
            if not PATH_PART.fullmatch(part):
                raise QueryError(
                    f"invalid field {name!r} in {where}: path part {part!r} is not a plain "
                    "name (letters, digits, '_', '-', '/', ':', '@', '+')"
                )
        path = _json_path(parts)
    return Sql(f"json_extract({column}, ?)", (path,), json=(column, path))


# ---------------------------------------------------------------------------
# $convert, JSON-aware.
# ---------------------------------------------------------------------------


def _numeric_text(x: Sql) -> Sql:
    # SQLite's CAST turns 'abc' into 0; a numeric string parses, anything else is NULL.
    return fmt(
        "(CASE WHEN json_valid({}) THEN (CASE WHEN json_type({}) IN ('integer', 'real')"
        " THEN CAST({} AS REAL) END) END)",
        x,
        x,
        x,
    )


def _text_bool(x: Sql) -> Sql:
    return fmt(
        "(CASE lower({}) WHEN 'true' THEN 1 WHEN '1' THEN 1 WHEN 'false' THEN 0 WHEN '0' THEN 0 END)",
        x,
    )


def to_double(x: Sql) -> Sql:
    if x.json is not None:
        plain = Sql(x.sql, x.params)
        return fmt(
            "(CASE {} WHEN 'integer' THEN CAST({} AS REAL) WHEN 'real' THEN {}"
            " WHEN 'true' THEN 1.0 WHEN 'false' THEN 0.0 WHEN 'text' THEN {} END)",
            json_type_of(x.json),
            plain,
            plain,
            _numeric_text(plain),
        )
    return fmt(
        "(CASE typeof({}) WHEN 'integer' THEN CAST({} AS REAL) WHEN 'real' THEN {}"
        " WHEN 'text' THEN {} END)",
        x,
        x,
        x,
        _numeric_text(x),
    )


def to_string(x: Sql) -> Sql:
    if x.json is not None:
        plain = Sql(x.sql, x.params)
        return fmt(
            "(CASE {} WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' ELSE CAST({} AS TEXT) END)",
            json_type_of(x.json),
            plain,
        )
    return fmt("CAST({} AS TEXT)", x)


def _to_bool(x: Sql) -> Sql:
    if x.json is not None:
        plain = Sql(x.sql, x.params)
        return fmt(
            "(CASE {} WHEN 'true' THEN 1 WHEN 'false' THEN 0 WHEN 'integer' THEN {} != 0"
            " WHEN 'real' THEN {} != 0 WHEN 'text' THEN {} END)",
            json_type_of(x.json),
            plain,
            plain,
            _text_bool(plain),
        )
    return fmt(
        "(CASE typeof({}) WHEN 'integer' THEN {} != 0 WHEN 'real' THEN {} != 0"
        " WHEN 'text' THEN {} END)",
        x,
        x,
        x,
        _text_bool(x),
    )


def _exists(x: Sql) -> Sql:
    if x.json is not None:
        kind = json_type_of(x.json)
        return fmt("({} IS NOT NULL AND {} != 'null')", kind, kind, is_condition=True)
    return fmt("({} IS NOT NULL)", x, is_condition=True)


def _unknown_if_null(x: Sql) -> Sql:
    return Sql(x.sql, x.params, unknown_if_null=True)


def convert(x: Sql, to: str) -> Sql:
    if to == "double":
        return _unknown_if_null(to_double(x))
    if to == "int":
        return _unknown_if_null(fmt("CAST({} AS INTEGER)", to_double(x)))
    if to == "string":
        return to_string(x)
    if to == "bool":
        return _unknown_if_null(_to_bool(x))
    if to == "exists":
        return _exists(x)
    raise QueryError(
        f"unknown $convert target {to!r}; expected one of double, int, string, bool, exists"
    )


# ---------------------------------------------------------------------------
# The $expr language.
# ---------------------------------------------------------------------------


def _literal_value(value: Any) -> Any:
    """A literal with nested ``{"$literal": ...}`` wrappers of dicts and lists removed."""
    if isinstance(value, LiteralOperation):
        return _literal_value(value.literal_)
    if isinstance(value, dict):
        return {k: _literal_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_literal_value(v) for v in value]
    return value


def _literal(op: LiteralOperation) -> Sql:
    value = _literal_value(op)
    if value is None:
        return Sql("NULL")
    if isinstance(value, dict | list):
        # A JSON field holding an object or array reads back as minified JSON text.
        return Sql("json(?)", (json.dumps(value),))
    return _param(value)


def _is_null_literal(operand: Any) -> bool:
    return isinstance(operand, LiteralOperation) and operand.literal_ is None


def as_condition(x: Sql) -> Sql:
    if x.is_condition:
        return x
    # A plain value used as a condition: Mongo truthiness (null, false and 0 are false).
    return fmt("COALESCE(({}) <> 0, 0)", x, is_condition=True)


def _two_valued(template: str, *parts: Sql) -> Sql:
    # NULL (a missing field) makes a comparison false, not unknown, so $not flips it.
    return fmt("COALESCE(" + template + ", 0)", *parts, is_condition=True)


def _compare(template: str, lhs: Sql, rhs: Sql) -> Sql:
    """``$eq``/``$gt``/``$gte``: two-valued, except over a numeric or bool ``$convert``.

    A failed conversion (a missing field, ``"abc"`` to int) is NULL, and as on the
    hosted service (ClickHouse's ``toInt64OrNull``) the comparison is then unknown:
    neither it nor its ``$not`` selects the row (SQL's three-valued logic). weave's
    SQLite server instead casts such a value to 0.
    """
    if lhs.unknown_if_null or rhs.unknown_if_null:
        return fmt(template, lhs, rhs, is_condition=True)
    return _two_valued(template, lhs, rhs)


FieldResolver = Callable[[str, str], "Sql"]
"""Maps a field name (and where it appeared, for messages) to its SQL value."""


class _ExprCompiler:
    def __init__(self, where: str, resolve: FieldResolver) -> None:
        self.where = where
        self.resolve = resolve

    def operand(self, op: Any) -> Sql:
        if isinstance(op, LiteralOperation):
            return _literal(op)
        if isinstance(op, GetFieldOperator):
            return self.resolve(op.get_field_, self.where)
        if isinstance(op, ConvertOperation):
            return convert(self.operand(op.convert_.input), op.convert_.to)
        return self.operation(op)

    def operation(self, op: Any) -> Sql:
        if isinstance(op, AndOperation | OrOperation):
            parts, name, glue = (
                (op.and_, "$and", " AND ")
                if isinstance(op, AndOperation)
                else (op.or_, "$or", " OR ")
            )
            if not parts:
                raise QueryError(f"empty {name} in {self.where}: it needs at least one operand")
            terms = [as_condition(self.operand(p)) for p in parts]
            if len(terms) == 1:
                return terms[0]
            return fmt("(" + glue.join("{}" for _ in terms) + ")", *terms, is_condition=True)
        if isinstance(op, NotOperation):
            return fmt("(NOT {})", as_condition(self.operand(op.not_[0])), is_condition=True)
        if isinstance(op, EqOperation):
            lhs, rhs = op.eq_
            if _is_null_literal(rhs) or _is_null_literal(lhs):
                other = lhs if _is_null_literal(rhs) else rhs
                return fmt("({} IS NULL)", self.operand(other), is_condition=True)
            return _compare("({} = {})", self.operand(lhs), self.operand(rhs))
        if isinstance(op, GtOperation):
            return _compare("({} > {})", self.operand(op.gt_[0]), self.operand(op.gt_[1]))
        if isinstance(op, GteOperation):
            return _compare("({} >= {})", self.operand(op.gte_[0]), self.operand(op.gte_[1]))
        if isinstance(op, InOperation):
            lhs, choices = op.in_
            value = self.operand(lhs)
            non_null = [c for c in choices if not _is_null_literal(c)]
            conds: list[Sql] = []
            if non_null:
                items = [self.operand(c) for c in non_null]
                slots = ", ".join("{}" for _ in items)
                conds.append(_two_valued("({} IN (" + slots + "))", value, *items))
            if len(non_null) != len(choices):
                conds.append(fmt("({} IS NULL)", value, is_condition=True))
            if not conds:
                return Sql("0", is_condition=True)  # membership in an empty list
            return fmt("(" + " OR ".join("{}" for _ in conds) + ")", *conds, is_condition=True)
        if isinstance(op, ContainsOperation):
            spec = op.contains_
            haystack = to_string(self.operand(spec.input))
            needle = to_string(self.operand(spec.substr))
            if spec.case_insensitive:
                haystack, needle = fmt("lower({})", haystack), fmt("lower({})", needle)
            return _two_valued("(instr({}, {}) > 0)", haystack, needle)
        raise QueryError(f"unknown operator {type(op).__name__} in {self.where}")


def compile_condition(query: Query, resolve: FieldResolver, where: str = "query.$expr") -> Sql:
    """The 0/1 SQL condition of a query's ``$expr``, fields resolved by ``resolve``."""
    return as_condition(_ExprCompiler(where, resolve).operand(query.expr_))


def sort_direction(direction: Any, where: str) -> str:
    """``ASC`` or ``DESC`` for a wire direction (any case), else a QueryError."""
    upper = str(direction).upper()
    if upper not in ("ASC", "DESC"):
        raise QueryError(f"invalid direction {direction!r} in {where}; expected 'asc' or 'desc'")
    return upper


def order_terms(value: Sql, direction: str) -> list[Sql]:
    """ORDER BY terms for one sort key; NULLs last in both directions, as the hosted service."""
    if value.json is None:
        return [fmt(f"{{}} {direction} NULLS LAST", value)]
    # A JSON value: present values first, then by number, then by text (hosted semantics).
    kind = json_type_of(value.json)
    return [
        fmt("({} IS NULL OR {} = 'null') ASC", kind, kind),
        fmt(f"{{}} {direction} NULLS LAST", to_double(value)),
        fmt(f"{{}} {direction} NULLS LAST", to_string(value)),
    ]
