"""The calls query compiler against a real in-memory SQLite ``calls`` table.

Rows are inserted directly (the write path is the server's business); each test
compiles a wire request, runs the SQL and checks which calls come back.
"""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from weave_client._models import (
    CallSchema,
    CallsFilter,
    CallsQueryReq,
    CallsQueryStatsReq,
    ConvertOperation,
    ConvertSpec,
    EqOperation,
    GetFieldOperator,
    LiteralOperation,
    Query,
    SortBy,
)
from weave_client.server._calls_query import (
    QueryError,
    compile_calls_query,
    compile_calls_query_stats,
    row_to_call,
    trace_name_of,
)
from weave_client.server._schema import CALLS_DDL, CALLS_JSON_COLUMNS, STORE_DDL, format_timestamp

PROJECT = "ent/proj"
T0 = datetime(2025, 1, 31, 12, 0, 0, tzinfo=UTC)
HOSTILE = [
    "x'); DROP TABLE calls;--",
    'x"); DROP TABLE calls;--',
    "a'b",
    'a"b',
    "]",
    "[0]",
    "$",
    "%",
    "_",
    "\\",
    "' OR 1=1 --",
    '" OR 1=1 --',
]


@pytest.fixture
def db() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:")
    conn.row_factory = sqlite3.Row
    conn.executescript(CALLS_DDL)
    yield conn
    conn.close()


def add(
    db: sqlite3.Connection,
    id: str,
    *,
    project_id: str = PROJECT,
    start_ms: float = 0,
    latency_ms: float | None = 10,
    **fields: Any,
) -> None:
    """Insert one call; ``latency_ms=None`` leaves it running."""
    started = T0 + timedelta(milliseconds=start_ms)
    row: dict[str, Any] = {
        "project_id": project_id,
        "id": id,
        "trace_id": "t-" + id,
        "op_name": f"weave:///{PROJECT}/op/op_{id}:abc",
        "started_at": format_timestamp(started),
        "inputs": {},
        "attributes": {},
    }
    if latency_ms is not None:
        row["ended_at"] = format_timestamp(started + timedelta(milliseconds=latency_ms))
        row["output"] = None
        row["summary"] = {}
    row.update(fields)
    for key in CALLS_JSON_COLUMNS & row.keys():
        row[key] = json.dumps(row[key])
    cols = ", ".join(row)
    db.execute(
        f"INSERT INTO calls ({cols}) VALUES ({', '.join('?' for _ in row)})", list(row.values())
    )


def run(db: sqlite3.Connection, **kwargs: Any) -> list[dict[str, Any]]:
    req = CallsQueryReq(project_id=kwargs.pop("project_id", PROJECT), **kwargs)
    sql, params = compile_calls_query(req)
    assert "?" in sql  # everything the client sent went in as a parameter
    return [row_to_call(r, req.columns) for r in db.execute(sql, params).fetchall()]


def ids(db: sqlite3.Connection, **kwargs: Any) -> list[str]:
    return [c["id"] for c in run(db, **kwargs)]


def q(expr: dict[str, Any]) -> Query:
    return Query.model_validate({"$expr": expr})


def field(name: str) -> dict[str, Any]:
    return {"$getField": name}


def lit(value: Any) -> dict[str, Any]:
    return {"$literal": value}


def where(db: sqlite3.Connection, expr: dict[str, Any]) -> list[str]:
    return sorted(ids(db, query=q(expr)))


def count(db: sqlite3.Connection, **kwargs: Any) -> int:
    sql, params = compile_calls_query_stats(CallsQueryStatsReq(project_id=PROJECT, **kwargs))
    rows = db.execute(sql, params).fetchall()
    assert len(rows) == 1
    return int(rows[0]["count"])


def table_intact(db: sqlite3.Connection) -> int:
    return int(db.execute("SELECT COUNT(*) FROM calls").fetchone()[0])


# ---------------------------------------------------------------------------
# Project scoping, deletion, default order.
# ---------------------------------------------------------------------------


def test_default_order_is_started_at_then_id_and_scoped_to_live_calls_of_the_project(
    db: sqlite3.Connection,
) -> None:
    add(db, "c", start_ms=5)
    add(db, "b", start_ms=0)
    add(db, "a", start_ms=5)
    add(db, "gone", start_ms=1, deleted_at=format_timestamp(T0))
    add(db, "end_only", start_ms=1, started_at=None)  # its start has not arrived yet
    add(db, "other", start_ms=2, project_id="ent/other")
    assert ids(db) == ["b", "a", "c"]
    assert ids(db, project_id="ent/other") == ["other"]
    assert count(db) == 3


# ---------------------------------------------------------------------------
# CallsFilter.
# ---------------------------------------------------------------------------


def test_op_names_exact_wildcard_and_plain_name(db: sqlite3.Connection) -> None:
    add(db, "v1", op_name=f"weave:///{PROJECT}/op/predict:v1")
    add(db, "v2", op_name=f"weave:///{PROJECT}/op/predict:v2")
    add(db, "longer", op_name=f"weave:///{PROJECT}/op/predict_more:v1")
    add(db, "plain", op_name="predict")
    add(db, "elsewhere", op_name="weave:///ent/other/op/predict:v1")
    add(db, "pct", op_name=f"weave:///{PROJECT}/op/pre%:v1")

    def ops(*names: str) -> list[str]:
        return sorted(ids(db, filter=CallsFilter(op_names=list(names))))

    assert ops(f"weave:///{PROJECT}/op/predict:v1") == ["v1"]
    assert ops(f"weave:///{PROJECT}/op/predict:*") == ["v1", "v2"]
    # A plain name matches the literal op_name and every version of this project's op.
    assert ops("predict") == ["plain", "v1", "v2"]
    # '%' and '_' are not wildcards; matching is case-sensitive.
    assert ops(f"weave:///{PROJECT}/op/pre%:*") == ["pct"]
    assert ops("pre%") == ["pct"]
    assert ops("PREDICT") == []
    assert ops("predic_") == []
    assert ops("predict", f"weave:///{PROJECT}/op/predict_more:*") == [
        "longer",
        "plain",
        "v1",
        "v2",
    ]
    assert len(ids(db, filter=CallsFilter(op_names=[]))) == 6  # empty list: no filter, as weave


def test_input_and_output_refs_match_whole_refs(db: sqlite3.Connection) -> None:
    ref_a = f"weave:///{PROJECT}/object/a:1"
    add(db, "in", input_refs=[ref_a, "weave:///x/y/object/b:2"])
    add(db, "in_prefix", input_refs=[ref_a + "23"])
    add(db, "out", output_refs=[ref_a])
    add(db, "none")
    assert ids(db, filter=CallsFilter(input_refs=[ref_a])) == ["in"]
    assert ids(db, filter=CallsFilter(output_refs=[ref_a])) == ["out"]
    assert ids(db, filter=CallsFilter(input_refs=["nope", ref_a + "23"])) == ["in_prefix"]
    assert ids(db, filter=CallsFilter(input_refs=[ref_a], output_refs=[ref_a])) == []


def test_id_filters_roots_users_runs_threads_turns(db: sqlite3.Connection) -> None:
    add(db, "root", start_ms=0, trace_id="T1", wb_user_id="u1", wb_run_id="r1", thread_id="th1")
    add(db, "kid", start_ms=1, trace_id="T1", parent_id="root", wb_user_id="u2", turn_id="tu1")
    add(db, "kid2", start_ms=2, trace_id="T1", parent_id="root", wb_run_id="r2")
    add(db, "other", start_ms=3, trace_id="T2")
    assert ids(db, filter=CallsFilter(parent_ids=["root"])) == ["kid", "kid2"]
    assert ids(db, filter=CallsFilter(trace_ids=["T1"])) == ["root", "kid", "kid2"]
    assert ids(db, filter=CallsFilter(trace_ids=["T2", "T9"])) == ["other"]
    assert ids(db, filter=CallsFilter(call_ids=["kid2", "other", "missing"])) == ["kid2", "other"]
    assert ids(db, filter=CallsFilter(trace_roots_only=True)) == ["root", "other"]
    assert len(ids(db, filter=CallsFilter(trace_roots_only=False))) == 4
    assert ids(db, filter=CallsFilter(wb_user_ids=["u2"])) == ["kid"]
    assert ids(db, filter=CallsFilter(wb_run_ids=["r1", "r2"])) == ["root", "kid2"]
    assert ids(db, filter=CallsFilter(thread_ids=["th1"])) == ["root"]
    assert ids(db, filter=CallsFilter(turn_ids=["tu1"])) == ["kid"]
    assert ids(db, filter=CallsFilter(thread_ids=[])) == []  # as the hosted service
    assert ids(
        db, filter=CallsFilter(trace_ids=["T1"], parent_ids=["root"], wb_user_ids=["u2"])
    ) == ["kid"]


def test_long_id_lists_are_one_parameter(db: sqlite3.Connection) -> None:
    for i in range(5):
        add(db, f"c{i}", start_ms=i)
    wanted = [f"c{i}" for i in range(0, 5, 2)] + [f"missing{i}" for i in range(40_000)]
    assert ids(db, filter=CallsFilter(call_ids=wanted)) == ["c0", "c2", "c4"]


# ---------------------------------------------------------------------------
# The $expr language.
# ---------------------------------------------------------------------------


@pytest.fixture
def typed(db: sqlite3.Connection) -> sqlite3.Connection:
    add(db, "s", inputs={"x": "abc", "n": 5, "flag": True, "tags": ["a", "b"], "obj": {"k": 1}})
    add(db, "big", inputs={"x": "ABCD", "n": 10, "flag": False, "nested": {"deep": {"v": 2.5}}})
    add(db, "strnum", inputs={"x": "x%y", "n": "12", "flag": "true"})
    add(db, "null", inputs={"x": None, "n": None})
    add(db, "missing", inputs={})
    return db


def test_eq_on_json_values_by_type(typed: sqlite3.Connection) -> None:
    assert where(typed, {"$eq": [field("inputs.x"), lit("abc")]}) == ["s"]
    assert where(typed, {"$eq": [lit("abc"), field("inputs.x")]}) == ["s"]
    assert where(typed, {"$eq": [field("inputs.n"), lit(5)]}) == ["s"]
    assert where(typed, {"$eq": [field("inputs.n"), lit(5.0)]}) == ["s"]
    # A number stored as a string is a string: only $convert makes it a number.
    assert where(typed, {"$eq": [field("inputs.n"), lit(12)]}) == []
    assert where(typed, {"$eq": [field("inputs.n"), lit("12")]}) == ["strnum"]
    assert where(typed, {"$eq": [field("inputs.flag"), lit(True)]}) == ["s"]
    assert where(typed, {"$eq": [field("inputs.flag"), lit(False)]}) == ["big"]
    assert where(typed, {"$eq": [field("inputs.nested.deep.v"), lit(2.5)]}) == ["big"]
    assert where(typed, {"$eq": [field("inputs.tags.1"), lit("b")]}) == ["s"]
    assert where(typed, {"$eq": [field("inputs.obj"), lit({"k": lit(1)})]}) == ["s"]


def test_null_means_missing_or_null(typed: sqlite3.Connection) -> None:
    assert where(typed, {"$eq": [field("inputs.x"), lit(None)]}) == ["missing", "null"]
    assert where(typed, {"$eq": [lit(None), field("inputs.n")]}) == ["missing", "null"]
    assert where(typed, {"$eq": [field("parent_id"), lit(None)]}) == [
        "big",
        "missing",
        "null",
        "s",
        "strnum",
    ]
    assert where(typed, {"$not": [{"$eq": [field("inputs.x"), lit(None)]}]}) == [
        "big",
        "s",
        "strnum",
    ]


def test_comparisons_are_two_valued_so_not_includes_missing(typed: sqlite3.Connection) -> None:
    assert where(typed, {"$not": [{"$eq": [field("inputs.x"), lit("abc")]}]}) == [
        "big",
        "missing",
        "null",
        "strnum",
    ]
    assert where(typed, {"$not": [{"$gt": [field("inputs.n"), lit(6)]}]}) == [
        "missing",
        "null",
        "s",
    ]


def test_gt_gte_numbers_and_convert(typed: sqlite3.Connection) -> None:
    # Mixed types order as in Mongo: null < numbers < strings, so the string "12" is > 5.
    assert where(typed, {"$gt": [field("inputs.n"), lit(5)]}) == ["big", "strnum"]
    assert where(typed, {"$gte": [field("inputs.n"), lit(5)]}) == ["big", "s", "strnum"]
    assert where(typed, {"$gt": [field("inputs.n"), lit("1")]}) == ["strnum"]
    as_double = {"$convert": {"input": field("inputs.n"), "to": "double"}}
    assert where(typed, {"$gt": [as_double, lit(5)]}) == ["big", "strnum"]
    assert where(typed, {"$gte": [as_double, lit(12.0)]}) == ["strnum"]
    as_int = {"$convert": {"input": field("inputs.nested.deep.v"), "to": "int"}}
    assert where(typed, {"$eq": [as_int, lit(2)]}) == ["big"]
    # A string that is not a number converts to nothing (not SQLite's 0).
    x_double = {"$convert": {"input": field("inputs.x"), "to": "double"}}
    assert where(typed, {"$eq": [x_double, lit(0)]}) == []
    assert where(typed, {"$eq": [x_double, lit(None)]}) == ["big", "missing", "null", "s", "strnum"]


def test_convert_string_bool_exists(typed: sqlite3.Connection) -> None:
    as_str = {"$convert": {"input": field("inputs.n"), "to": "string"}}
    assert where(typed, {"$eq": [as_str, lit("5")]}) == ["s"]
    assert where(typed, {"$eq": [as_str, lit("12")]}) == ["strnum"]
    flag_str = {"$convert": {"input": field("inputs.flag"), "to": "string"}}
    assert where(typed, {"$eq": [flag_str, lit("true")]}) == ["s", "strnum"]
    flag_bool = {"$convert": {"input": field("inputs.flag"), "to": "bool"}}
    assert where(typed, {"$eq": [flag_bool, lit(True)]}) == ["s", "strnum"]
    assert where(typed, {"$eq": [flag_bool, lit(False)]}) == ["big"]
    n_bool = {"$convert": {"input": field("inputs.n"), "to": "bool"}}
    assert where(typed, {"$eq": [n_bool, lit(True)]}) == ["big", "s"]
    exists = {"$convert": {"input": field("inputs.n"), "to": "exists"}}
    assert where(typed, {"$and": [exists]}) == ["big", "s", "strnum"]
    assert where(typed, {"$not": [exists]}) == ["missing", "null"]
    assert (
        where(typed, {"$and": [{"$convert": {"input": field("parent_id"), "to": "exists"}}]}) == []
    )
    # Converting a top-level text column.
    id_double = {"$convert": {"input": field("wb_run_id"), "to": "double"}}
    assert where(typed, {"$eq": [id_double, lit(None)]}) == [
        "big",
        "missing",
        "null",
        "s",
        "strnum",
    ]


def test_in_with_and_without_null(typed: sqlite3.Connection) -> None:
    assert where(typed, {"$in": [field("inputs.x"), [lit("abc"), lit("ABCD"), lit("zzz")]]}) == [
        "big",
        "s",
    ]
    assert where(typed, {"$in": [field("inputs.n"), [lit(10), lit(None)]]}) == [
        "big",
        "missing",
        "null",
    ]
    assert where(typed, {"$in": [field("inputs.n"), []]}) == []
    assert where(typed, {"$not": [{"$in": [field("inputs.x"), [lit("abc")]]}]}) == [
        "big",
        "missing",
        "null",
        "strnum",
    ]


def test_contains_substring_case_and_wildcards(typed: sqlite3.Connection) -> None:
    def contains(substr: str, ci: bool | None = None) -> list[str]:
        spec: dict[str, Any] = {"input": field("inputs.x"), "substr": lit(substr)}
        if ci is not None:
            spec["case_insensitive"] = ci
        return where(typed, {"$contains": spec})

    assert contains("bc") == ["s"]
    assert contains("bc", ci=True) == ["big", "s"]
    assert contains("BC", ci=False) == ["big"]
    assert contains("%") == ["strnum"]  # '%' is a character, not a wildcard
    assert contains("_") == []
    assert contains("") == ["big", "s", "strnum"]  # every present string contains ''
    assert where(
        typed,
        {
            "$not": [
                {
                    "$contains": {
                        "input": field("inputs.x"),
                        "substr": lit("b"),
                        "case_insensitive": True,
                    }
                }
            ]
        },
    ) == ["missing", "null", "strnum"]


def test_and_or_not_nesting_and_truthy_operands(typed: sqlite3.Connection) -> None:
    x_is = lambda v: {"$eq": [field("inputs.x"), lit(v)]}  # noqa: E731
    assert where(typed, {"$or": [x_is("abc"), x_is("ABCD")]}) == ["big", "s"]
    assert where(
        typed,
        {"$and": [{"$or": [x_is("abc"), x_is("ABCD")]}, {"$gt": [field("inputs.n"), lit(6)]}]},
    ) == ["big"]
    assert where(typed, {"$and": [x_is("abc")]}) == ["s"]
    assert where(typed, {"$not": [{"$not": [x_is("abc")]}]}) == ["s"]
    # A plain value as a condition: null, false and 0 are false.
    assert where(typed, {"$and": [field("inputs.flag")]}) == ["s", "strnum"]
    assert where(typed, {"$not": [field("inputs.flag")]}) == ["big", "missing", "null"]


def test_top_level_fields_in_queries(db: sqlite3.Connection) -> None:
    add(db, "a", display_name="Alpha run", op_name="weave:///ent/proj/op/alpha:1", start_ms=0)
    add(db, "b", op_name="beta", start_ms=10, exception="boom")
    assert where(db, {"$eq": [field("op_name"), lit("beta")]}) == ["b"]
    assert where(
        db,
        {
            "$contains": {
                "input": field("display_name"),
                "substr": lit("alpha"),
                "case_insensitive": True,
            }
        },
    ) == ["a"]
    assert where(
        db, {"$gt": [field("started_at"), lit(format_timestamp(T0 + timedelta(milliseconds=5)))]}
    ) == ["b"]
    assert where(db, {"$and": [{"$convert": {"input": field("exception"), "to": "exists"}}]}) == [
        "b"
    ]


# ---------------------------------------------------------------------------
# Derived summary.weave fields: filters, sorts, and agreement with row_to_call.
# ---------------------------------------------------------------------------


@pytest.fixture
def statuses(db: sqlite3.Connection) -> sqlite3.Connection:
    add(db, "ok", start_ms=0, latency_ms=30, op_name=f"weave:///{PROJECT}/op/zeta:d1")
    add(db, "err", start_ms=1, latency_ms=5, exception="ValueError: bad", display_name="Mid")
    add(db, "run", start_ms=2, latency_ms=None, op_name="alpha")
    add(
        db,
        "kid_err",
        start_ms=3,
        latency_ms=100,
        summary={"status_counts": {"error": 2, "success": 1}},
    )
    return db


def test_status_filter_and_sort(statuses: sqlite3.Connection) -> None:
    status = field("summary.weave.status")
    for value, expected in [
        ("success", ["ok"]),
        ("error", ["err"]),
        ("running", ["run"]),
        ("descendant_error", ["kid_err"]),
    ]:
        assert where(statuses, {"$eq": [status, lit(value)]}) == expected
        assert [
            c["summary"]["weave"]["status"]
            for c in run(statuses, query=q({"$eq": [status, lit(value)]}))
        ] == [value]
    assert ids(statuses, sort_by=[SortBy(field="summary.weave.status", direction="asc")]) == [
        "kid_err",
        "err",
        "run",
        "ok",
    ]


def test_latency_filter_and_sort_running_last(statuses: sqlite3.Connection) -> None:
    latency = field("summary.weave.latency_ms")
    assert where(statuses, {"$gt": [latency, lit(10)]}) == ["kid_err", "ok"]
    assert where(statuses, {"$eq": [latency, lit(None)]}) == ["run"]
    by = lambda d: ids(statuses, sort_by=[SortBy(field="summary.weave.latency_ms", direction=d)])  # noqa: E731
    assert by("asc") == ["err", "ok", "kid_err", "run"]
    assert by("desc") == ["kid_err", "ok", "err", "run"]


def test_trace_name_filter_and_sort(statuses: sqlite3.Connection) -> None:
    name = field("summary.weave.trace_name")
    assert where(statuses, {"$eq": [name, lit("zeta")]}) == ["ok"]
    assert where(statuses, {"$eq": [name, lit("Mid")]}) == ["err"]
    assert where(statuses, {"$eq": [name, lit("alpha")]}) == ["run"]
    assert where(statuses, {"$eq": [name, lit("op_kid_err")]}) == ["kid_err"]
    got = run(statuses, sort_by=[SortBy(field="summary.weave.trace_name", direction="asc")])
    assert [c["summary"]["weave"]["trace_name"] for c in got] == [
        "Mid",
        "alpha",
        "op_kid_err",
        "zeta",
    ]


def test_trace_name_sql_agrees_with_python(db: sqlite3.Connection) -> None:
    names = [
        f"weave:///{PROJECT}/op/plain:abc",
        "weave:///e/p/op/with-dash_and.dot:v9",
        "weave:///e/p/op/noversion",
        "weave-trace-internal:///UHJvag==/op/internal:xyz",
        "not a ref",
        "weave:///e/p/op/a:b:c",
        "",
    ]
    for i, op_name in enumerate(names):
        add(db, f"c{i}", op_name=op_name, start_ms=i)
    for call in run(db):
        expected = trace_name_of(call["op_name"], None)
        assert call["summary"]["weave"]["trace_name"] == expected
        found = ids(db, query=q({"$eq": [field("summary.weave.trace_name"), lit(expected)]}))
        assert call["id"] in found, (call["op_name"], expected)
    assert trace_name_of(f"weave:///{PROJECT}/op/plain:abc", None) == "plain"
    assert trace_name_of("weave-trace-internal:///UHJvag==/op/internal:xyz", None) == "internal"
    assert trace_name_of("weave:///e/p/op/a:b:c", "Shown") == "Shown"


def test_latency_sql_agrees_with_python_to_the_millisecond(db: sqlite3.Connection) -> None:
    rng = random.Random(1234)
    latencies: list[int] = []
    for i in range(60):
        micros = rng.choice(
            [0, 999, 1000, 1001, 999_999, 86_400_000_000 + 1, rng.randrange(10**10)]
        )
        started = T0 + timedelta(microseconds=rng.randrange(10**12))
        ended = started + timedelta(microseconds=micros)
        db.execute(
            "INSERT INTO calls (project_id, id, trace_id, op_name, started_at, ended_at, summary)"
            " VALUES (?, ?, ?, ?, ?, ?, '{}')",
            (PROJECT, f"c{i}", "t", "op", format_timestamp(started), format_timestamp(ended)),
        )
        latencies.append(micros // 1000)
    calls = {c["id"]: c for c in run(db)}
    for i, expected in enumerate(latencies):
        assert calls[f"c{i}"]["summary"]["weave"]["latency_ms"] == expected
        found = ids(db, query=q({"$eq": [field("summary.weave.latency_ms"), lit(expected)]}))
        assert f"c{i}" in found


# ---------------------------------------------------------------------------
# Sorting.
# ---------------------------------------------------------------------------


def test_sort_json_numbers_numerically_missing_last(db: sqlite3.Connection) -> None:
    add(db, "ten", inputs={"n": 10}, start_ms=0)
    add(db, "two", inputs={"n": 2}, start_ms=1)
    add(db, "half", inputs={"n": 0.5}, start_ms=2)
    add(db, "str", inputs={"n": "b"}, start_ms=3)
    add(db, "none", inputs={}, start_ms=4)
    add(db, "null", inputs={"n": None}, start_ms=5)
    by = lambda d: ids(db, sort_by=[SortBy(field="inputs.n", direction=d)])  # noqa: E731
    assert by("asc") == ["half", "two", "ten", "str", "none", "null"]
    assert by("desc") == ["ten", "two", "half", "str", "none", "null"]


def test_sort_multiple_keys_and_top_level_nulls_last(db: sqlite3.Connection) -> None:
    add(db, "a", attributes={"env": "prod"}, display_name="z", start_ms=3)
    add(db, "b", attributes={"env": "dev"}, start_ms=2)
    add(db, "c", attributes={"env": "prod"}, display_name="a", start_ms=1)
    add(db, "d", attributes={"env": "dev"}, display_name="m", start_ms=0)
    keys = [
        SortBy(field="attributes.env", direction="desc"),
        SortBy(field="display_name", direction="asc"),
    ]
    assert ids(db, sort_by=keys) == ["c", "a", "d", "b"]
    assert ids(db, sort_by=[SortBy(field="display_name", direction="desc")]) == ["a", "d", "c", "b"]
    assert ids(db, sort_by=[SortBy(field="started_at", direction="desc")]) == ["a", "b", "c", "d"]
    assert ids(db, sort_by=[SortBy(field="id", direction="desc")]) == ["d", "c", "b", "a"]


def test_sort_on_output_and_summary_usage_paths(db: sqlite3.Connection) -> None:
    add(db, "x", output={"score": {"f1": 0.9}}, summary={"usage": {"gpt-4o": {"total_tokens": 50}}})
    add(
        db, "y", output={"score": {"f1": 0.4}}, summary={"usage": {"gpt-4o": {"total_tokens": 500}}}
    )
    add(db, "z", output=3)
    assert ids(db, sort_by=[SortBy(field="output.score.f1", direction="asc")]) == ["y", "x", "z"]
    assert ids(
        db, sort_by=[SortBy(field="summary.usage.gpt-4o.total_tokens", direction="desc")]
    ) == [
        "y",
        "x",
        "z",
    ]
    assert where(db, {"$gt": [field("summary.usage.gpt-4o.total_tokens"), lit(100)]}) == ["y"]


# ---------------------------------------------------------------------------
# Limit, offset, stats.
# ---------------------------------------------------------------------------


def test_limit_offset_pages_cover_everything_once(db: sqlite3.Connection) -> None:
    for i in range(10):
        add(db, f"c{i}", start_ms=i // 3)  # ties on started_at: id breaks them
    pages = [ids(db, limit=3, offset=o) for o in range(0, 12, 3)]
    assert [len(p) for p in pages] == [3, 3, 3, 1]
    assert [i for page in pages for i in page] == ids(db) == [f"c{i}" for i in range(10)]
    assert ids(db, offset=8) == ["c8", "c9"]
    assert len(ids(db, limit=0)) == 10  # weave's SQLite server: 0 means no limit


def test_stats_count_with_filters_query_and_limit(typed: sqlite3.Connection) -> None:
    assert count(typed) == 5
    assert count(typed, query=q({"$gt": [field("inputs.n"), lit(7)]})) == 2
    assert count(typed, filter=CallsFilter(call_ids=["s", "big", "nope"])) == 2
    assert count(typed, limit=3) == 3
    assert count(typed, limit=30) == 5
    with pytest.raises(QueryError, match="limit 0"):
        compile_calls_query_stats(CallsQueryStatsReq(project_id=PROJECT, limit=0))


# ---------------------------------------------------------------------------
# Rows to calls, columns.
# ---------------------------------------------------------------------------


def test_row_to_call_is_a_valid_call_schema(db: sqlite3.Connection) -> None:
    add(
        db,
        "c",
        inputs={"a": [1, 2]},
        attributes={"weave": {"client_version": "0.1"}},
        output={"answer": 42},
        summary={"usage": {"m": {"requests": 1}}, "weave": {"extra": "kept", "status": "stale"}},
        display_name="",
        latency_ms=1234.5678,
    )
    (call,) = run(db)
    assert call["inputs"] == {"a": [1, 2]}
    assert call["output"] == {"answer": 42}
    assert call["display_name"] is None
    assert call["summary"] == {
        "usage": {"m": {"requests": 1}},
        "weave": {"extra": "kept", "status": "success", "latency_ms": 1234, "trace_name": "op_c"},
    }
    assert call["started_at"] == format_timestamp(T0)
    assert "input_refs" not in call
    schema = CallSchema.model_validate(call)
    assert schema.started_at == T0
    assert schema.ended_at == T0 + timedelta(microseconds=1_234_568)


def test_row_to_call_running_call_and_display_name(db: sqlite3.Connection) -> None:
    add(db, "r", latency_ms=None, display_name="Shown")
    (call,) = run(db)
    assert call["ended_at"] is None and call["output"] is None
    assert call["summary"] == {
        "weave": {"status": "running", "trace_name": "Shown", "display_name": "Shown"}
    }
    CallSchema.model_validate(call)


def test_columns_restrict_the_call(db: sqlite3.Connection) -> None:
    add(db, "c", inputs={"x": 1}, output="out", exception="E", display_name="D")
    (call,) = run(db, columns=["inputs.x", "no_such_column", "wb_run_step"])
    assert set(call) == {
        "id",
        "trace_id",
        "project_id",
        "op_name",
        "started_at",
        "inputs",
        "attributes",
        "summary",
    }
    assert call["attributes"] == {} and call["inputs"] == {"x": 1}
    # As the hosted service: the summary is derived from the selected fields only, so
    # without ended_at and exception the call reads as running.
    assert call["summary"] == {"weave": {"status": "running", "trace_name": "op_c"}}
    (call,) = run(db, columns=["summary"])
    assert call["summary"]["weave"]["status"] == "error"
    assert call["summary"]["weave"]["latency_ms"] == 10
    # ...and with `summary` come the fields it is derived from.
    assert call["ended_at"] is not None and call["exception"] == "E"
    assert call["display_name"] == "D"
    CallSchema.model_validate(call)


# ---------------------------------------------------------------------------
# Malformed requests.
# ---------------------------------------------------------------------------


def compile_with(**kwargs: Any) -> None:
    compile_calls_query(CallsQueryReq(project_id=PROJECT, **kwargs))


def test_unknown_and_malformed_fields_are_query_errors() -> None:
    with pytest.raises(QueryError, match=r"unknown field 'nope' in sort_by\[0\]\.field"):
        compile_with(sort_by=[SortBy(field="nope", direction="asc")])
    with pytest.raises(QueryError, match=r"sort_by\[1\]"):
        compile_with(
            sort_by=[SortBy(field="id", direction="asc"), SortBy(field="input.x", direction="asc")]
        )
    with pytest.raises(QueryError, match=r"unknown field 'secret_column' in query\.\$expr"):
        compile_with(query=q({"$eq": [field("secret_column"), lit(1)]}))
    with pytest.raises(QueryError, match=r"path part 'a b'"):
        compile_with(query=q({"$eq": [field("inputs.a b"), lit(1)]}))
    with pytest.raises(QueryError, match=r"path part ''"):
        compile_with(query=q({"$eq": [field("inputs..x"), lit(1)]}))
    with pytest.raises(QueryError, match="wb_run_step"):
        compile_with(sort_by=[SortBy(field="wb_run_step", direction="asc")])


def test_bad_direction_convert_target_operator_and_empty_lists() -> None:
    with pytest.raises(QueryError, match=r"invalid direction 'sideways' in sort_by\[0\]"):
        compile_with(sort_by=[SortBy.model_construct(field="id", direction="sideways")])
    bad_convert = Query.model_construct(
        expr_=EqOperation.model_construct(
            eq_=(
                ConvertOperation.model_construct(
                    convert_=ConvertSpec.model_construct(
                        input=GetFieldOperator.model_construct(get_field_="id"), to="float"
                    )
                ),
                LiteralOperation.model_construct(literal_=1),
            )
        )
    )
    with pytest.raises(QueryError, match="unknown \\$convert target 'float'"):
        compile_with(query=bad_convert)
    weird = Query.model_construct(
        expr_=EqOperation.model_construct(
            eq_=(object(), LiteralOperation.model_construct(literal_=1))
        )
    )
    with pytest.raises(QueryError, match="unknown operator object"):
        compile_with(query=weird)
    with pytest.raises(QueryError, match=r"empty \$or"):
        compile_with(query=q({"$or": []}))
    with pytest.raises(QueryError, match=r"empty \$and"):
        compile_with(query=q({"$and": []}))
    with pytest.raises(QueryError, match="limit -1"):
        compile_with(limit=-1)
    with pytest.raises(QueryError, match="offset -5"):
        compile_with(offset=-5)


def test_query_error_is_a_value_error() -> None:
    assert issubclass(QueryError, ValueError)


# ---------------------------------------------------------------------------
# Injection: hostile strings are data, never SQL.
# ---------------------------------------------------------------------------


def test_hostile_values_are_plain_data(db: sqlite3.Connection) -> None:
    for i, evil in enumerate(HOSTILE):
        add(
            db,
            f"c{i}",
            start_ms=i,
            op_name=evil,
            display_name=evil,
            inputs={"v": evil},
            wb_user_id=evil,
        )
    before = table_intact(db)
    for i, evil in enumerate(HOSTILE):
        expect = [f"c{i}"]
        assert ids(db, filter=CallsFilter(op_names=[evil])) == expect, evil
        assert ids(db, filter=CallsFilter(wb_user_ids=[evil], call_ids=[f"c{i}", evil])) == expect
        assert where(db, {"$eq": [field("inputs.v"), lit(evil)]}) == expect
        assert where(db, {"$eq": [field("display_name"), lit(evil)]}) == expect
        assert f"c{i}" in where(
            db, {"$contains": {"input": field("inputs.v"), "substr": lit(evil)}}
        )
        assert where(db, {"$in": [field("op_name"), [lit(evil), lit("nothing")]]}) == expect
        assert ids(db, project_id=evil) == []
        assert ids(db, filter=CallsFilter(input_refs=[evil], output_refs=[evil])) == []
    assert table_intact(db) == before


@pytest.mark.parametrize(
    "evil", [*HOSTILE, "inputs.x'); DROP TABLE calls;--", 'inputs.a"]', "inputs.a[0]", "inputs.$"]
)
def test_hostile_field_names_are_rejected(db: sqlite3.Connection, evil: str) -> None:
    add(db, "c")
    with pytest.raises(QueryError) as info:
        compile_with(sort_by=[SortBy(field=evil, direction="asc")])
    bad_part = evil.removeprefix("inputs.")  # the message names the offending part
    assert repr(bad_part) in str(info.value)
    with pytest.raises(QueryError):
        compile_with(query=q({"$eq": [field(evil), lit(1)]}))
    with pytest.raises(QueryError):
        compile_with(query=q({"$or": [{"$convert": {"input": field(evil), "to": "exists"}}]}))
    assert table_intact(db) == 1


def test_hostile_json_keys_stored_in_data_can_be_reached_only_by_safe_names(
    db: sqlite3.Connection,
) -> None:
    add(db, "c", inputs={'a"b': 1, "gpt-4o": {"x": 1}, "openai/gpt-4o": 2})
    assert where(db, {"$eq": [field("inputs.gpt-4o.x"), lit(1)]}) == ["c"]
    assert where(db, {"$eq": [field("inputs.openai/gpt-4o"), lit(2)]}) == ["c"]
    with pytest.raises(QueryError):
        where(db, {"$eq": [field('inputs.a"b'), lit(1)]})


def test_literal_models_work_when_built_in_python(db: sqlite3.Connection) -> None:
    add(db, "c", inputs={"x": "y"})
    query = Query(
        expr_=EqOperation(
            eq_=(GetFieldOperator(get_field_="inputs.x"), LiteralOperation(literal_="y"))
        )
    )
    assert ids(db, query=query) == ["c"]


# ---------------------------------------------------------------------------
# Feedback fields: feedback.[type].payload.path, as the hosted service.
# ---------------------------------------------------------------------------


def add_feedback(
    db: sqlite3.Connection, call_id: str, kind: str, payload: dict[str, Any], at: int
) -> None:
    db.execute(
        "INSERT INTO feedback (id, project_id, weave_ref, created_at, feedback_type, payload_dump)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (
            f"fb-{call_id}-{at}",
            PROJECT,
            f"weave:///{PROJECT}/call/{call_id}",
            format_timestamp(T0 + timedelta(seconds=at)),
            kind,
            json.dumps(payload),
        ),
    )


@pytest.fixture
def rated(db: sqlite3.Connection) -> sqlite3.Connection:
    db.executescript(STORE_DDL)
    for i, name in enumerate(["a", "b", "c", "d"]):
        add(db, name, start_ms=i)
    add_feedback(db, "a", "wb.reaction", {"emoji": "👍"}, 1)
    add_feedback(db, "b", "wb.reaction", {"emoji": "👎"}, 2)
    add_feedback(db, "b", "wb.reaction", {"emoji": "👍"}, 3)  # the latest counts
    add_feedback(db, "a", "score", {"value": 3}, 4)
    add_feedback(db, "c", "score", {"value": 7}, 5)
    add_feedback(db, "d", "wb.note", {"note": "check this"}, 6)
    return db


def test_feedback_fields_filter_and_sort(rated: sqlite3.Connection) -> None:
    emoji = field("feedback.[wb.reaction].payload.emoji")
    assert where(rated, {"$eq": [emoji, lit("👍")]}) == ["a", "b"]
    assert where(rated, {"$eq": [emoji, lit(None)]}) == ["c", "d"]
    assert where(rated, {"$gt": [field("feedback.[score].payload.value"), lit(5)]}) == ["c"]
    any_note = {"$contains": {"input": field("feedback.[*].payload.note"), "substr": lit("check")}}
    assert where(rated, any_note) == ["d"]
    by_score = [SortBy(field="feedback.[score].payload.value", direction="desc")]
    assert ids(rated, sort_by=by_score) == ["c", "a", "b", "d"]
    hostile_type = field("feedback.[x'); DROP TABLE calls;--].payload")
    assert where(rated, {"$eq": [hostile_type, lit(None)]}) == ["a", "b", "c", "d"]
    assert table_intact(rated) == 4


@pytest.mark.parametrize(
    "name",
    [
        "feedback",
        "feedback.wb.reaction.payload",
        "feedback.[x].nope",
        "feedback.[x].payload.a b",
        "feedback.[].payload",
    ],
)
def test_malformed_feedback_fields_are_query_errors(name: str) -> None:
    with pytest.raises(QueryError, match=r"feedback|path part"):
        compile_with(sort_by=[SortBy(field=name, direction="asc")])


def test_latency_in_sql_floors_the_seconds_fraction_as_python_does(
    db: sqlite3.Connection,
) -> None:
    # strftime('%s') of a timestamp rounds its fraction to milliseconds first:
    # xx:00.999600 read as xx:01 made a 999 ms call 1,999 ms in filters and sorts.
    add(db, "edge", start_ms=0, latency_ms=999.6)
    add(db, "slow", start_ms=1, latency_ms=1500)
    latency = field("summary.weave.latency_ms")
    assert where(db, {"$gt": [latency, lit(1200)]}) == ["slow"]
    assert where(db, {"$eq": [latency, lit(999)]}) == ["edge"]
    (edge,) = run(db, query=q({"$eq": [latency, lit(999)]}))
    assert edge["summary"]["weave"]["latency_ms"] == 999
