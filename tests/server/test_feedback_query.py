"""The feedback query compiler against a real in-memory SQLite ``feedback`` table."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest

from weave_client._models import FeedbackPurgeReq, FeedbackQueryReq, Query, SortBy
from weave_client.server._feedback_query import (
    FEEDBACK_FIELDS,
    QueryError,
    compile_feedback_purge,
    compile_feedback_query,
    row_to_feedback,
)

PROJECT = "ent/proj"
CALL_REF = f"weave:///{PROJECT}/call/c1"

# weave's feedback table (weave/trace_server/feedback.py), payload as JSON text.
FEEDBACK_DDL = """
CREATE TABLE feedback (
    id TEXT PRIMARY KEY, project_id TEXT NOT NULL, weave_ref TEXT NOT NULL, wb_user_id TEXT,
    creator TEXT, created_at TEXT NOT NULL, feedback_type TEXT NOT NULL,
    payload_dump TEXT NOT NULL, annotation_ref TEXT, runnable_ref TEXT, call_ref TEXT,
    trigger_ref TEXT
)
"""


@pytest.fixture
def db() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:")
    conn.row_factory = sqlite3.Row
    conn.execute(FEEDBACK_DDL)
    rows = [
        ("f1", PROJECT, CALL_REF, "wb.reaction", {"emoji": "👍", "detoned": "👍"}, "2025-01-01"),
        ("f2", PROJECT, CALL_REF, "wb.note", {"note": "Looks GOOD"}, "2025-01-02"),
        (
            "f3",
            PROJECT,
            f"weave:///{PROJECT}/call/c2",
            "score",
            {"value": 10, "nested": {"k": [1, 2]}},
            "2025-01-03",
        ),
        ("f4", PROJECT, CALL_REF, "score", {"value": 2}, "2025-01-04"),
        ("f5", "ent/other", CALL_REF, "wb.note", {"note": "elsewhere"}, "2025-01-05"),
    ]
    for id_, project, ref, kind, payload, created in rows:
        conn.execute(
            "INSERT INTO feedback (id, project_id, weave_ref, wb_user_id, created_at, feedback_type,"
            " payload_dump) VALUES (?, ?, ?, 'user', ?, ?, ?)",
            (id_, project, ref, created, kind, json.dumps(payload)),
        )
    yield conn
    conn.close()


def run(db: sqlite3.Connection, **kwargs: Any) -> list[dict[str, Any]]:
    sql, params = compile_feedback_query(
        FeedbackQueryReq(project_id=kwargs.pop("project_id", PROJECT), **kwargs)
    )
    return [row_to_feedback(r) for r in db.execute(sql, params).fetchall()]


def ids(db: sqlite3.Connection, expr: dict[str, Any] | None = None, **kwargs: Any) -> list[str]:
    if expr is not None:
        kwargs["query"] = Query.model_validate({"$expr": expr})
    return [r["id"] for r in run(db, **kwargs)]


def test_all_fields_of_the_project_in_insertion_order(db: sqlite3.Connection) -> None:
    rows = run(db)
    assert [r["id"] for r in rows] == ["f1", "f2", "f3", "f4"]
    assert list(rows[0]) == list(FEEDBACK_FIELDS)
    assert rows[2]["payload"] == {"value": 10, "nested": {"k": [1, 2]}}
    assert rows[0]["feedback_type"] == "wb.reaction" and rows[0]["call_ref"] is None


def test_fields_and_payload_paths_come_back_typed(db: sqlite3.Connection) -> None:
    rows = run(db, fields=["id", "payload.value", "payload.nested.k", "payload.missing"])
    assert rows[2] == {
        "id": "f3",
        "payload.value": 10,
        "payload.nested.k": [1, 2],
        "payload.missing": None,
    }
    assert rows[1]["payload.value"] is None
    assert run(db, fields=["count(*)"]) == [{"count(*)": 4}]


def test_query_on_columns_and_payload(db: sqlite3.Connection) -> None:
    f = lambda name: {"$getField": name}  # noqa: E731
    lit = lambda v: {"$literal": v}  # noqa: E731
    assert ids(db, {"$eq": [f("weave_ref"), lit(CALL_REF)]}) == ["f1", "f2", "f4"]
    assert ids(db, {"$in": [f("feedback_type"), [lit("wb.note"), lit("score")]]}) == [
        "f2",
        "f3",
        "f4",
    ]
    assert ids(db, {"$gt": [f("payload.value"), lit(5)]}) == ["f3"]
    assert ids(db, {"$eq": [f("payload.emoji"), lit("👍")]}) == ["f1"]
    assert ids(
        db,
        {
            "$contains": {
                "input": f("payload.note"),
                "substr": lit("good"),
                "case_insensitive": True,
            }
        },
    ) == ["f2"]
    assert ids(db, {"$not": [{"$eq": [f("payload.value"), lit(10)]}]}) == ["f1", "f2", "f4"]
    assert ids(db, {"$eq": [f("id"), lit("f5")]}) == []  # another project's


def test_sort_limit_offset(db: sqlite3.Connection) -> None:
    by_value = [SortBy(field="payload.value", direction="desc")]
    assert ids(db, sort_by=by_value) == ["f3", "f4", "f1", "f2"]  # missing values last
    assert ids(db, sort_by=[SortBy(field="created_at", direction="desc")]) == [
        "f4",
        "f3",
        "f2",
        "f1",
    ]
    assert ids(db, limit=2, offset=1) == ["f2", "f3"]
    assert ids(db, limit=0) == []
    assert ids(db, offset=3) == ["f4"]


def test_purge_deletes_only_matching_feedback_of_the_project(db: sqlite3.Connection) -> None:
    query = Query.model_validate(
        {"$expr": {"$in": [{"$getField": "id"}, [{"$literal": "f2"}, {"$literal": "f5"}]]}}
    )
    sql, params = compile_feedback_purge(FeedbackPurgeReq(project_id=PROJECT, query=query))
    db.execute(sql, params)
    assert ids(db) == ["f1", "f3", "f4"]
    assert ids(db, project_id="ent/other") == ["f5"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fields": ["id", "nope"]}, r"unknown field 'nope' in fields\[1\]"),
        ({"fields": ["payload_dump"]}, r"unknown field 'payload_dump'"),
        ({"fields": ['payload.a"b']}, r"path part 'a\"b'"),
        (
            {"sort_by": [SortBy(field="x'); DROP TABLE feedback;--", direction="asc")]},
            r"sort_by\[0\]\.field",
        ),
        (
            {"sort_by": [SortBy.model_construct(field="id", direction="up")]},
            r"invalid direction 'up'",
        ),
        ({"limit": -1}, "limit -1"),
        ({"offset": -2}, "offset -2"),
        (
            {
                "query": Query.model_validate(
                    {"$expr": {"$eq": [{"$getField": "payload.a b"}, {"$literal": 1}]}}
                )
            },
            r"path part 'a b' is not a plain name",
        ),
    ],
)
def test_malformed_requests_are_query_errors(
    db: sqlite3.Connection, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(QueryError, match=message):
        compile_feedback_query(FeedbackQueryReq(project_id=PROJECT, **kwargs))
    assert db.execute("SELECT COUNT(*) FROM feedback").fetchone()[0] == 5


def test_hostile_values_are_data(db: sqlite3.Connection) -> None:
    evil = "x'); DROP TABLE feedback;--"
    assert ids(db, {"$eq": [{"$getField": "weave_ref"}, {"$literal": evil}]}) == []
    assert ids(db, project_id=evil) == []
    sql, params = compile_feedback_purge(
        FeedbackPurgeReq(
            project_id=evil,
            query=Query.model_validate({"$expr": {"$eq": [{"$literal": 1}, {"$literal": 1}]}}),
        )
    )
    db.execute(sql, params)
    assert db.execute("SELECT COUNT(*) FROM feedback").fetchone()[0] == 5
