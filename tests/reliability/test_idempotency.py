"""Retried call records: is a repeated start/end stored once? (issue 6)

A retry after a lost answer ("502 after forwarding", a timeout, a reset) sends
records the server may already have stored. Our server upserts by call id, so a
repeat is harmless; the hosted service (ClickHouse, deduplicated by id) is too.
weave 0.51.59's SQLite reference server is not: its ``calls.id`` is a primary key
and a repeated start fails the request. This test pins both behaviours down.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from tests.conftest import start_reference_server
from tests.reliability.helpers import stored_calls


def _batch(project_id: str, call_id: str) -> dict[str, object]:
    start = {
        "project_id": project_id,
        "id": call_id,
        "trace_id": call_id,
        "op_name": "retried",
        "started_at": "2024-01-01T00:00:00.000Z",
        "attributes": {},
        "inputs": {"x": 1},
    }
    end = {
        "project_id": project_id,
        "id": call_id,
        "ended_at": "2024-01-01T00:00:01.000Z",
        "output": 2,
        "summary": {},
    }
    return {
        "batch": [{"mode": "start", "req": {"start": start}}, {"mode": "end", "req": {"end": end}}]
    }


def _post_twice(server_url: str, project_id: str) -> tuple[str, list[httpx.Response]]:
    call_id = str(uuid.uuid4())
    body = _batch(project_id, call_id)
    with httpx.Client(base_url=server_url, timeout=30) as http:
        return call_id, [http.post("/call/upsert_batch", json=body) for _ in range(2)]


def test_our_server_stores_a_repeated_batch_once(local_server_url: str, project_id: str) -> None:
    call_id, (first, second) = _post_twice(local_server_url, project_id)
    assert first.status_code == 200, first.text
    assert second.status_code == 200, second.text
    calls = stored_calls(local_server_url, project_id)
    assert [c["id"] for c in calls] == [call_id]
    assert calls[0]["output"] == 2 and calls[0]["ended_at"] is not None


@pytest.mark.compat
def test_reference_server_rejects_a_repeated_start(tmp_path: Path, project_id: str) -> None:
    # A private reference server: after the failed repeat, weave 0.51.59's SQLite
    # server leaves its connection inside the failed transaction ("database is
    # locked" for later writes), which would break the session's shared one.
    server = start_reference_server(tmp_path / "reference.log")
    try:
        call_id, (first, second) = _post_twice(server.url, project_id)
        calls = stored_calls(server.url, project_id)
    finally:
        server.stop()
    assert first.status_code == 200, first.text
    assert second.status_code >= 500, second.text
    # Still one row: the repeat did not duplicate the call, it failed the request.
    assert [c["id"] for c in calls] == [call_id]
    print(f"\n[reference] repeated start -> HTTP {second.status_code} (IntegrityError on calls.id)")
