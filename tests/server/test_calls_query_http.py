"""Calls queries end to end over HTTP: filters, ``$expr``, sorts and derived fields.

Parametrized over our local server and weave's reference server (``server_url``)
for the semantics the two share, so the compiler is checked against the
reference's answers; what only ours promises (4xx naming the bad field, hostile
names refused) runs against the local server alone.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

T0 = datetime(2025, 3, 1, 9, 0, 0, 250_000, tzinfo=UTC)


def ts(ms: int) -> str:
    return (T0 + timedelta(milliseconds=ms)).isoformat()


@pytest.fixture
def http(server_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server_url, timeout=30) as client:
        yield client


def post(http: httpx.Client, route: str, body: dict[str, Any]) -> Any:
    res = http.post(route, json=body)
    assert res.status_code == 200, (route, res.status_code, res.text)
    return res.json()


@pytest.fixture
def tree(http: httpx.Client, project_id: str) -> dict[str, str]:
    """Three calls: a finished root with an erroring child, and a running root with a display name."""
    op = lambda name, v: f"weave:///{project_id}/op/{name}:{v}"  # noqa: E731
    # Unique ids: the reference server keys calls by id alone, across projects.
    ids = {key: str(uuid.uuid4()) for key in ("root", "kid", "run")}

    def start(
        key: str, ms: int, op_name: str, inputs: dict[str, Any], **extra: Any
    ) -> dict[str, Any]:
        body = {
            "project_id": project_id,
            "id": ids[key],
            "trace_id": extra.pop("trace_id", "trace-" + key),
            "op_name": op_name,
            "started_at": ts(ms),
            "attributes": {},
            "inputs": inputs,
            **extra,
        }
        return {"mode": "start", "req": {"start": body}}

    def end(key: str, ms: int, output: Any, exception: str | None = None) -> dict[str, Any]:
        body = {
            "project_id": project_id,
            "id": ids[key],
            "ended_at": ts(ms),
            "output": output,
            "summary": {},
            "exception": exception,
        }
        return {"mode": "end", "req": {"end": body}}

    batch = [
        start("root", 0, op("predict", "v1"), {"x": 1, "model": "gpt"}, trace_id="trace-root"),
        start("kid", 10, op("tool", "v1"), {"x": 5}, trace_id="trace-root", parent_id=ids["root"]),
        end("kid", 30, None, exception="ValueError: bad"),
        end("root", 100, {"score": 0.9}),
        start(
            "run",
            200,
            op("predict", "v2"),
            {"x": 10, "model": "claude"},
            display_name="Special Run",
        ),
    ]
    post(http, "/call/upsert_batch", {"batch": batch})
    return ids


def query(http: httpx.Client, project_id: str, **body: Any) -> list[dict[str, Any]]:
    calls = post(http, "/calls/query", {"project_id": project_id, **body})["calls"]
    assert isinstance(calls, list)
    return calls


def names(http: httpx.Client, project_id: str, tree: dict[str, str], **body: Any) -> list[str]:
    by_id = {v: k for k, v in tree.items()}
    return [by_id[c["id"]] for c in query(http, project_id, **body)]


def expr(e: dict[str, Any]) -> dict[str, Any]:
    return {"$expr": e}


F = lambda name: {"$getField": name}  # noqa: E731
L = lambda value: {"$literal": value}  # noqa: E731


def test_filters_agree_with_the_reference(
    http: httpx.Client, project_id: str, tree: dict[str, str]
) -> None:
    n = lambda **body: names(http, project_id, tree, **body)  # noqa: E731
    assert n() == ["root", "kid", "run"]
    assert n(filter={"op_names": [f"weave:///{project_id}/op/predict:*"]}) == ["root", "run"]
    assert n(filter={"op_names": [f"weave:///{project_id}/op/tool:v1"]}) == ["kid"]
    assert n(filter={"parent_ids": [tree["root"]]}) == ["kid"]
    assert n(filter={"trace_roots_only": True}) == ["root", "run"]
    assert n(filter={"trace_ids": ["trace-root"]}) == ["root", "kid"]
    assert n(filter={"call_ids": [tree["run"], tree["kid"]]}) == ["kid", "run"]
    assert n(limit=2, offset=1) == ["kid", "run"]


def test_expr_sorts_and_derived_fields_agree_with_the_reference(
    http: httpx.Client, project_id: str, tree: dict[str, str]
) -> None:
    n = lambda **body: names(http, project_id, tree, **body)  # noqa: E731
    assert n(query=expr({"$eq": [F("inputs.model"), L("gpt")]})) == ["root"]
    as_double = {"$convert": {"input": F("inputs.x"), "to": "double"}}
    assert n(query=expr({"$gt": [as_double, L(2)]})) == ["kid", "run"]
    contains = {"input": F("display_name"), "substr": L("special"), "case_insensitive": True}
    assert n(query=expr({"$contains": contains})) == ["run"]
    assert n(query=expr({"$eq": [F("summary.weave.status"), L("error")]})) == ["kid"]
    assert n(query=expr({"$eq": [F("summary.weave.status"), L("running")]})) == ["run"]
    assert n(sort_by=[{"field": "inputs.x", "direction": "desc"}]) == ["run", "kid", "root"]
    assert n(sort_by=[{"field": "summary.weave.latency_ms", "direction": "desc"}]) == [
        "root",
        "kid",
        "run",
    ]
    assert n(sort_by=[{"field": "started_at", "direction": "desc"}]) == ["run", "kid", "root"]

    calls = {c["id"]: c for c in query(http, project_id)}
    root, kid, run = (calls[tree[k]] for k in ("root", "kid", "run"))
    assert root["summary"]["weave"]["status"] == "success"
    assert root["summary"]["weave"]["latency_ms"] == 100
    assert root["summary"]["weave"]["trace_name"] == "predict"
    assert root["output"] == {"score": 0.9}
    assert kid["summary"]["weave"]["status"] == "error" and kid["exception"] == "ValueError: bad"
    assert run["summary"]["weave"]["status"] == "running" and run["ended_at"] is None
    assert "latency_ms" not in run["summary"]["weave"]

    stats = post(
        http,
        "/calls/query_stats",
        {"project_id": project_id, "query": expr({"$gt": [as_double, L(2)]})},
    )
    assert stats["count"] == 2
    assert post(http, "/calls/query_stats", {"project_id": project_id, "limit": 2})["count"] == 2


def test_stream_query_returns_the_same_calls(
    http: httpx.Client, project_id: str, tree: dict[str, str]
) -> None:
    body = {"project_id": project_id, "sort_by": [{"field": "inputs.x", "direction": "asc"}]}
    with http.stream("POST", "/calls/stream_query", json=body) as res:
        assert res.status_code == 200
        lines = [json.loads(line) for line in res.iter_lines() if line.strip()]
    assert [c["id"] for c in lines] == [tree["root"], tree["kid"], tree["run"]]


# -- our server only ------------------------------------------------------------------------


@pytest.fixture
def local_http(local_server_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=local_server_url, timeout=30) as client:
        yield client


def test_malformed_queries_get_a_400_naming_the_bad_part(
    local_http: httpx.Client, project_id: str
) -> None:
    post(local_http, "/call/start", {"start": {
        "project_id": project_id, "id": "c1", "trace_id": "t1", "op_name": "op",
        "started_at": ts(0), "attributes": {}, "inputs": {"x": 1},
    }})  # fmt: skip
    cases = [
        ({"sort_by": [{"field": "nope", "direction": "asc"}]}, "nope"),
        (
            {"sort_by": [{"field": "inputs.x'); DROP TABLE calls;--", "direction": "asc"}]},
            "DROP TABLE",
        ),
        ({"query": expr({"$eq": [F('inputs.a"]'), L(1)]})}, 'a\\"]'),
        ({"query": expr({"$or": []})}, "$or"),
        ({"limit": -1}, "limit"),
    ]
    for body, part in cases:
        res = local_http.post("/calls/query", json={"project_id": project_id, **body})
        assert res.status_code == 400, (body, res.status_code, res.text)
        assert part in res.text, (body, res.text)
    # Nothing was dropped or damaged: the call is still there.
    assert [c["id"] for c in query(local_http, project_id)] == ["c1"]


def test_columns_restrict_the_returned_calls(local_http: httpx.Client, project_id: str) -> None:
    post(local_http, "/call/start", {"start": {
        "project_id": project_id, "id": "c1", "trace_id": "t1", "op_name": "op",
        "started_at": ts(0), "attributes": {"a": 1}, "inputs": {"x": 1},
    }})  # fmt: skip
    (call,) = query(local_http, project_id, columns=["id", "inputs"])
    assert call["inputs"] == {"x": 1}
    assert call["attributes"] == {}  # not selected: CallSchema's empty default
    # Derived whatever the columns, from the selected fields only, as the hosted service.
    assert call["summary"] == {"weave": {"status": "running", "trace_name": "op"}}


def test_calls_filter_and_sort_by_feedback(local_http: httpx.Client, project_id: str) -> None:
    for i, call_id in enumerate(["c1", "c2", "c3"]):
        post(local_http, "/call/start", {"start": {
            "project_id": project_id, "id": call_id, "trace_id": "t", "op_name": "op",
            "started_at": ts(i), "attributes": {}, "inputs": {},
        }})  # fmt: skip
    for call_id, value in [("c1", 3), ("c2", 9)]:
        post(local_http, "/feedback/create", {
            "project_id": project_id, "weave_ref": f"weave:///{project_id}/call/{call_id}",
            "feedback_type": "score", "payload": {"value": value},
        })  # fmt: skip
    score = "feedback.[score].payload.value"
    found = query(local_http, project_id, query=expr({"$gte": [F(score), L(3)]}))
    assert [c["id"] for c in found] == ["c1", "c2"]
    ordered = query(local_http, project_id, sort_by=[{"field": score, "direction": "desc"}])
    assert [c["id"] for c in ordered] == ["c2", "c1", "c3"]
