"""Server tier: ``/threads/stream_query`` over plain httpx, on both servers where weave has
the figure (``server_url``: ours, then weave's reference in the compat tier), and the
calls-table migration that adds the thread columns to a database made before them."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from weave_client.server import start_background_server

from .test_server_calls import end, start


@pytest.fixture
def http(server_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server_url, timeout=30) as client:
        yield client


def ts(seconds: float) -> str:
    whole = int(seconds)
    micros = round((seconds - whole) * 1e6)
    return f"2025-01-01T00:{whole // 60:02d}:{whole % 60:02d}.{micros:06d}+00:00"


def turn(project_id: str, call_id: str, thread_id: str, at: float, took: float | None,
         turn_id: str | None = None, parent_id: str | None = None) -> list[dict[str, Any]]:
    items = [
        start(project_id, call_id, started_at=ts(at), thread_id=thread_id,
              turn_id=turn_id or call_id, parent_id=parent_id, trace_id=f"trace-{call_id}")
    ]
    if took is not None:
        items.append(end(project_id, call_id, ended_at=ts(at + took)))
    return items


def threads(http: httpx.Client, project_id: str, **body: Any) -> list[dict[str, Any]]:
    r = http.post("/threads/stream_query", json={"project_id": project_id, **body})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/jsonl")
    return [json.loads(line) for line in r.text.splitlines() if line]


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture
def seeded(http: httpx.Client, project_id: str) -> str:
    # weave's server keys calls by id alone: ids are unique per test (the project's name).
    p = project_id.split("/")[1] + "-"
    batch = [
        # "alpha": three turns of 1 s, 3 s and 2 s; a nested call in the first turn.
        *turn(project_id, p + "a1", "alpha", 0, 1),
        *turn(project_id, p + "a1-child", "alpha", 0.5, 0.2, turn_id=p + "a1", parent_id=p + "a1"),
        *turn(project_id, p + "a2", "alpha", 10, 3),
        *turn(project_id, p + "a3", "alpha", 20, 2),
        # "beta": one turn, ending last.
        *turn(project_id, p + "b1", "beta", 30, 5),
        # A call outside any thread.
        start(project_id, p + "loose", started_at=ts(40), trace_id="trace-loose"),
    ]
    r = http.post("/call/upsert_batch", json={"batch": batch})
    assert r.status_code == 200, r.text
    return project_id


def test_threads_have_weaves_figures_over_their_turns(
    http: httpx.Client, seeded: str, server_kind: str
) -> None:
    got = threads(http, seeded)
    assert [t["thread_id"] for t in got] == ["beta", "alpha"]  # latest activity first
    beta, alpha = got
    p = seeded.split("/")[1] + "-"
    assert set(alpha) == {
        "thread_id",
        "turn_count",
        "start_time",
        "last_updated",
        "first_turn_id",
        "last_turn_id",
        "p50_turn_duration_ms",
        "p99_turn_duration_ms",
    }
    # Turn calls only: the nested call is not counted.
    assert (alpha["turn_count"], alpha["first_turn_id"], alpha["last_turn_id"]) == (3, p + "a1", p + "a3")
    assert when(alpha["start_time"]) == when(ts(0))
    assert when(alpha["last_updated"]) == when(ts(22))
    assert (beta["turn_count"], beta["first_turn_id"], beta["last_turn_id"]) == (1, p + "b1", p + "b1")
    if server_kind == "local":
        # weave's SQLite server reports -1; ours computes them as its ClickHouse server does.
        assert alpha["p50_turn_duration_ms"] == pytest.approx(2000)
        assert alpha["p99_turn_duration_ms"] == pytest.approx(2980)
        assert beta["p50_turn_duration_ms"] == pytest.approx(5000)


def test_threads_filter_sort_and_page(http: httpx.Client, seeded: str) -> None:
    def ids(**body: Any) -> list[str]:
        return [t["thread_id"] for t in threads(http, seeded, **body)]

    assert ids(filter={"thread_ids": ["alpha"]}) == ["alpha"]
    assert ids(filter={"thread_ids": ["nope"]}) == []
    assert ids(sort_by=[{"field": "thread_id", "direction": "asc"}]) == ["alpha", "beta"]
    assert ids(sort_by=[{"field": "turn_count", "direction": "desc"}]) == ["alpha", "beta"]
    assert ids(sort_by=[{"field": "start_time", "direction": "asc"}]) == ["alpha", "beta"]
    assert ids(limit=1) == ["beta"]
    assert ids(limit=1, offset=1) == ["alpha"]
    # Turns started after 00:00:15 (a3 of alpha, b1 of beta).
    after = threads(http, seeded, filter={"after_datetime": "2025-01-01T00:00:15Z"})
    assert [(t["thread_id"], t["turn_count"]) for t in after] == [("beta", 1), ("alpha", 1)]
    assert threads(http, seeded + "-empty") == []


def test_local_threads_route_errors_and_unended_turns(
    local_server_url: str, project_id: str
) -> None:
    with httpx.Client(base_url=local_server_url, timeout=30) as http:
        r = http.post(
            "/threads/stream_query",
            json={"project_id": project_id, "sort_by": [{"field": "nope", "direction": "asc"}]},
        )
        assert r.status_code == 400 and "sort_by: field 'nope'" in r.json()["reason"]
        r = http.post("/threads/stream_query", json={"project_id": project_id, "limit": -1})
        assert r.status_code == 400 and "limit" in r.json()["reason"]
        r = http.post("/threads/stream_query", json={})
        assert r.status_code == 422
        # A thread whose only turn is still running: listed, dated by its start.
        batch = turn(project_id, "r1", "running", 5, None)
        assert http.post("/call/upsert_batch", json={"batch": batch}).status_code == 200
        (running,) = threads(http, project_id)
        assert running["turn_count"] == 1 and running["last_turn_id"] == "r1"
        assert when(running["last_updated"]) == when(ts(5))
        assert running["p50_turn_duration_ms"] is None


# The calls table as the first releases made it: no thread columns.
_OLD_CALLS_DDL = """
CREATE TABLE calls (
    project_id TEXT NOT NULL, id TEXT NOT NULL, trace_id TEXT, parent_id TEXT, op_name TEXT,
    display_name TEXT, started_at TEXT, ended_at TEXT, exception TEXT,
    attributes TEXT NOT NULL DEFAULT '{}', inputs TEXT NOT NULL DEFAULT '{}', output TEXT,
    summary TEXT, input_refs TEXT NOT NULL DEFAULT '[]', output_refs TEXT NOT NULL DEFAULT '[]',
    wb_user_id TEXT, wb_run_id TEXT, deleted_at TEXT, PRIMARY KEY (project_id, id)
)
"""


def test_a_database_made_before_the_thread_columns_is_migrated(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as conn:
        conn.execute(_OLD_CALLS_DDL)
        conn.execute(
            "INSERT INTO calls (project_id, id, trace_id, op_name, started_at) "
            "VALUES ('e/p', 'old', 't', 'predict', '2025-01-01T00:00:00.000000+00:00')"
        )
    for _ in range(2):  # opening it again is a no-op
        with start_background_server(db, port=0) as server, httpx.Client(
            base_url=server.url, timeout=30
        ) as http:
            batch = turn("e/p", "new", "conv", 1, 1)
            http.post("/call/upsert_batch", json={"batch": batch}).raise_for_status()
            calls = http.post("/calls/query", json={"project_id": "e/p"}).json()["calls"]
            assert {c["id"]: c["thread_id"] for c in calls} == {"old": None, "new": "conv"}
            assert [t["thread_id"] for t in threads(http, "e/p")] == ["conv"]
    with sqlite3.connect(db) as conn:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(calls)")}
        indexes = {row[1] for row in conn.execute("PRAGMA index_list(calls)")}
    assert {"thread_id", "turn_id"} <= columns
    assert "calls_thread" in indexes
