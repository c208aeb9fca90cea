"""The compat tier's fixture itself: weave's reference server answers the routes we rely on.

Plain httpx against ``tests/compat/reference_server.py`` (weave==0.51.59 in .venv-compat),
including the two gaps of 0.51.59 the script fills: ``/call/upsert_batch`` and the JSONL
stream routes.
"""

from __future__ import annotations

import datetime
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import start_reference_server


@pytest.fixture
def http(reference_server_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=reference_server_url, timeout=30.0) as client:
        yield client


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat()


def _start(project_id: str, call_id: str, trace_id: str, **extra: Any) -> dict[str, Any]:
    start = {
        "project_id": project_id,
        "id": call_id,
        "trace_id": trace_id,
        "op_name": f"weave:///{project_id}/op/add:abc123",
        "started_at": _now(),
        "attributes": {"weave": {"client": "test"}},
        "inputs": {"x": 1, "y": 2},
        **extra,
    }
    return {"mode": "start", "req": {"start": start}}


def _end(project_id: str, call_id: str, output: Any) -> dict[str, Any]:
    end = {
        "project_id": project_id,
        "id": call_id,
        "ended_at": _now(),
        "output": output,
        "summary": {},
    }
    return {"mode": "end", "req": {"end": end}}


def _post(http: httpx.Client, route: str, body: dict[str, Any]) -> Any:
    response = http.post(route, json=body)
    assert response.status_code == 200, f"{route}: {response.status_code} {response.text}"
    return response.json()


def test_health_and_server_info(http: httpx.Client) -> None:
    health = http.get("/health")
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}

    info = http.get("/server_info")
    assert info.status_code == 200
    assert info.json() == {"min_required_weave_python_version": "0.0.1"}


def test_upsert_batch_then_calls_query(http: httpx.Client, project_id: str) -> None:
    root, child, trace = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    batch = [
        _start(project_id, root, trace),
        _start(project_id, child, trace, parent_id=root),
        _end(project_id, child, 2),
        _end(project_id, root, 3),
    ]
    res = _post(http, "/call/upsert_batch", {"batch": batch})
    assert res == {
        "res": [{"id": root, "trace_id": trace}, {"id": child, "trace_id": trace}, {}, {}]
    }

    calls = _post(http, "/calls/query", {"project_id": project_id})["calls"]
    by_id = {c["id"]: c for c in calls}
    assert set(by_id) == {root, child}
    assert by_id[root]["output"] == 3
    assert by_id[root]["inputs"] == {"x": 1, "y": 2}
    assert by_id[root]["parent_id"] is None
    assert by_id[child]["parent_id"] == root
    # project ids and refs come back in the external "entity/project" form
    assert by_id[root]["project_id"] == project_id
    assert by_id[root]["op_name"] == f"weave:///{project_id}/op/add:abc123"
    # the server derives summary.weave on read and attributes the call to a user
    assert by_id[root]["summary"]["weave"]["status"] == "success"
    assert by_id[root]["summary"]["weave"]["trace_name"] == "add"
    assert by_id[root]["wb_user_id"]

    # another project sees nothing of it
    other = project_id + "-other"
    assert _post(http, "/calls/query", {"project_id": other})["calls"] == []


def test_upsert_batch_rejects_mismatched_mode(http: httpx.Client, project_id: str) -> None:
    item = _end(project_id, str(uuid.uuid4()), 1)
    item["mode"] = "start"
    response = http.post("/call/upsert_batch", json={"batch": [item]})
    assert response.status_code == 400
    assert "batch[0]" in response.json()["reason"]


def test_calls_stream_query_is_jsonl(http: httpx.Client, project_id: str) -> None:
    trace = str(uuid.uuid4())
    ids = [str(uuid.uuid4()) for _ in range(3)]
    batch = [_start(project_id, i, trace) for i in ids] + [
        _end(project_id, i, n) for n, i in enumerate(ids)
    ]
    _post(http, "/call/upsert_batch", {"batch": batch})

    response = http.post(
        "/calls/stream_query",
        json={"project_id": project_id, "sort_by": [{"field": "started_at", "direction": "asc"}]},
    )
    assert response.status_code == 200
    lines = response.text.splitlines()
    assert len(lines) == 3
    assert response.text.endswith("\n")
    calls = [json.loads(line) for line in lines]
    assert [c["id"] for c in calls] == ids
    assert [c["output"] for c in calls] == [0, 1, 2]

    empty = http.post("/calls/stream_query", json={"project_id": project_id + "-none"})
    assert empty.status_code == 200
    assert empty.text == ""


def test_obj_create_read_round_trip(http: httpx.Client, project_id: str) -> None:
    val = {"data": "value", "n": [1, 2, 3]}
    created = _post(
        http, "/obj/create", {"obj": {"project_id": project_id, "object_id": "thing", "val": val}}
    )
    digest = created["digest"]
    assert isinstance(digest, str) and digest

    # identical content: same digest, no new version
    again = _post(
        http, "/obj/create", {"obj": {"project_id": project_id, "object_id": "thing", "val": val}}
    )
    assert again["digest"] == digest

    for version in (digest, "latest", "v0"):
        obj = _post(
            http, "/obj/read", {"project_id": project_id, "object_id": "thing", "digest": version}
        )["obj"]
        assert obj["val"] == val
        assert obj["digest"] == digest
        assert obj["version_index"] == 0
        assert obj["project_id"] == project_id


def test_missing_object_is_404_with_reason(http: httpx.Client, project_id: str) -> None:
    response = http.post(
        "/obj/read", json={"project_id": project_id, "object_id": "nope", "digest": "latest"}
    )
    assert response.status_code == 404
    assert "nope" in response.json()["reason"]


def test_table_query_stream_is_jsonl(http: httpx.Client, project_id: str) -> None:
    rows = [{"i": i} for i in range(4)]
    created = _post(http, "/table/create", {"table": {"project_id": project_id, "rows": rows}})
    response = http.post(
        "/table/query_stream", json={"project_id": project_id, "digest": created["digest"]}
    )
    assert response.status_code == 200
    got = [json.loads(line) for line in response.text.splitlines()]
    assert [r["val"] for r in got] == rows
    assert [r["digest"] for r in got] == created["row_digests"]


def test_missing_compat_venv_fails_with_bootstrap_hint(tmp_path: Path) -> None:
    with pytest.raises(pytest.fail.Exception, match=r"\./scripts/bootstrap"):
        start_reference_server(tmp_path / "server.log", python=tmp_path / "no-such-python")


def test_json_body_without_content_type(http: httpx.Client, project_id: str) -> None:
    # weave's own client posts `data=<json bytes>` with no Content-Type; the hosted service
    # (and so any server weave's client talks to) parses it as JSON.
    body = json.dumps({"project_id": project_id}).encode()
    request = http.build_request("POST", "/calls/query", content=body)
    request.headers.pop("Content-Type", None)
    assert "content-type" not in request.headers
    response = http.send(request)
    assert response.status_code == 200, response.text
    assert response.json() == {"calls": []}


def test_failed_write_does_not_lock_later_writes(http: httpx.Client, project_id: str) -> None:
    # weave's SQLite server answers a repeated call start with an IntegrityError; unhandled,
    # its connection kept the write lock and every later write (of every test on the
    # session's server) failed with "database is locked" after a 5 s wait.
    call_id = str(uuid.uuid4())
    item = _start(project_id, call_id, call_id)
    first = http.post("/call/start", json=item["req"])
    assert first.status_code == 200, first.text
    again = http.post("/call/start", json=item["req"])
    assert again.status_code == 500
    assert "UNIQUE constraint failed: calls.id" in again.json()["reason"]

    other = str(uuid.uuid4())
    later = http.post("/call/start", json=_start(project_id, other, other)["req"], timeout=3.0)
    assert later.status_code == 200, later.text
    calls = _post(http, "/calls/query", {"project_id": project_id})["calls"]
    assert sorted(c["id"] for c in calls) == sorted([call_id, other])


def test_errors_use_the_hosted_status_and_reason(http: httpx.Client, project_id: str) -> None:
    bad_limit = http.post("/calls/query_stats", json={"project_id": project_id, "limit": 0})
    assert bad_limit.status_code == 400
    assert bad_limit.json() == {"reason": "Limit must be a positive integer"}

    created = _post(
        http, "/obj/create", {"obj": {"project_id": project_id, "object_id": "o", "val": 1}}
    )
    deleted = _post(
        http,
        "/obj/delete",
        {"project_id": project_id, "object_id": "o", "digests": [created["digest"]]},
    )
    assert deleted == {"num_deleted": 1}
    gone = http.post(
        "/obj/read",
        json={"project_id": project_id, "object_id": "o", "digest": created["digest"]},
    )
    assert gone.status_code == 404
    body = gone.json()
    assert "deleted" in body["reason"]
    datetime.datetime.fromisoformat(body["deleted_at"])
