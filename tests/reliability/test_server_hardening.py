"""Server hardening through HTTP (issue 6): hostile field names cannot inject SQL,
oversized bodies get 413 on every write route, odd-but-valid input does not break reads."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.reliability.test_idempotency import _batch
from weave_client.server import BackgroundServer, start_background_server

PROJECT = "ent/hardening"
OTHER = "ent/bystander"

HOSTILE = [
    "x'); DROP TABLE calls;--",
    'x"); DROP TABLE calls;--',
    "inputs.x') OR 1=1 --",
    'inputs."a" OR 1=1',
    "inputs.a' || (SELECT group_concat(id) FROM calls) || '",
    "summary.weave.status; DELETE FROM calls",
    "feedback.[x'); DROP TABLE feedback;--].payload.a",
    "attributes.$[0]",
    "output.%",
    "inputs.\x00",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BackgroundServer, Path]]:
    db = tmp_path_factory.mktemp("hardening") / "trace.db"
    with start_background_server(db_path=db, port=0, max_body_bytes=64_000) as server:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            for project in (PROJECT, OTHER):
                for i in range(3):
                    body = _batch(project, f"{project[-4:]}-{i:04d}-0000-7000-8000-000000000000")
                    assert http.post("/call/upsert_batch", json=body).status_code == 200
        yield server, db


def _row_counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}


def _hostile_requests(field: str) -> list[tuple[str, dict[str, Any]]]:
    get_field = {"$getField": field}
    return [
        (
            "/calls/query",
            {"project_id": PROJECT, "sort_by": [{"field": field, "direction": "asc"}]},
        ),
        (
            "/calls/query",
            {"project_id": PROJECT, "query": {"$expr": {"$eq": [get_field, {"$literal": "1"}]}}},
        ),
        (
            "/calls/query",
            {
                "project_id": PROJECT,
                "query": {"$expr": {"$contains": {"input": get_field, "substr": "'"}}},
            },
        ),
        ("/calls/query", {"project_id": PROJECT, "filter": {"op_names": [field]}}),
        ("/calls/query", {"project_id": PROJECT, "filter": {"call_ids": [field]}}),
        ("/calls/query", {"project_id": PROJECT, "columns": [field]}),
        (
            "/calls/query_stats",
            {"project_id": PROJECT, "query": {"$expr": {"$gt": [get_field, {"$literal": 0}]}}},
        ),
        ("/calls/query", {"project_id": field}),
        (
            "/feedback/query",
            {"project_id": PROJECT, "sort_by": [{"field": field, "direction": "asc"}]},
        ),
        ("/objs/query", {"project_id": PROJECT, "filter": {"object_ids": [field]}}),
    ]


@pytest.mark.parametrize("field", HOSTILE)
def test_hostile_field_names_cannot_inject_sql(
    server: tuple[BackgroundServer, Path], field: str
) -> None:
    background, db = server
    before = _row_counts(db)
    with httpx.Client(base_url=background.url, timeout=30) as http:
        for path, body in _hostile_requests(field):
            r = http.post(path, json=body)
            # Refused (naming the field) or answered; never a server error.
            assert r.status_code in (200, 400, 422), (path, body, r.status_code, r.text)
            if r.status_code == 200 and path == "/calls/query":
                # Never another project's calls, whatever the string did.
                ids = {c["id"] for c in r.json()["calls"]}
                assert all(not i.startswith("nder") for i in ids), ids
            if r.status_code == 400 and "sort_by" in body and path == "/calls/query":
                # The message names the field (repr-escaped, so control characters show).
                assert repr(field)[1:-1] in r.json()["reason"], r.text
        # Every table, every row, still there.
        assert _row_counts(db) == before
        ours = http.post("/calls/query", json={"project_id": PROJECT}).json()["calls"]
        theirs = http.post("/calls/query", json={"project_id": OTHER}).json()["calls"]
    assert len(ours) == 3 and len(theirs) == 3


@pytest.mark.parametrize(
    ("path", "kwargs"),
    [
        ("/call/upsert_batch", {"json": _batch(PROJECT, "big") | {"pad": "x" * 100_000}}),
        (
            "/obj/create",
            {"json": {"obj": {"project_id": PROJECT, "object_id": "big", "val": "x" * 100_000}}},
        ),
        (
            "/table/create",
            {"json": {"table": {"project_id": PROJECT, "rows": [{"x": "y" * 100_000}]}}},
        ),
        (
            "/file/create",
            {"data": {"project_id": PROJECT}, "files": {"file": ("big.bin", b"z" * 100_000)}},
        ),
    ],
)
def test_oversized_writes_get_413(
    server: tuple[BackgroundServer, Path], path: str, kwargs: dict[str, Any]
) -> None:
    background, db = server
    before = _row_counts(db)
    with httpx.Client(base_url=background.url, timeout=30) as http:
        r = http.post(path, **kwargs)
    assert r.status_code == 413, (path, r.status_code, r.text[:300])
    assert "64000" in r.text
    assert _row_counts(db) == before


def test_calls_from_year_312_are_stored_and_read(server: tuple[BackgroundServer, Path]) -> None:
    # Found by the fuzz run: %Y does not pad years below 1000, so such a call was
    # stored as "312-02-17..." and every later read of the project failed with a 500.
    background, _ = server
    body = _batch("ent/ancient", "ancient-0000-0000-7000-8000-000000000000")
    body["batch"][0]["req"]["start"]["started_at"] = "0312-02-17T12:13:25Z"  # type: ignore[index]
    with httpx.Client(base_url=background.url, timeout=30) as http:
        assert http.post("/call/upsert_batch", json=body).status_code == 200
        r = http.post("/calls/stream_query", json={"project_id": "ent/ancient"})
        assert r.status_code == 200, r.text[:300]
        r = http.post("/calls/query", json={"project_id": "ent/ancient"})
    assert r.status_code == 200, r.text[:300]
    (call,) = r.json()["calls"]
    assert call["started_at"].startswith("0312-02-17")
