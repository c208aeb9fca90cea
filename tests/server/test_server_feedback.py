"""Server tier: the feedback routes of the local server, over plain httpx."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from weave_client.server import BackgroundServer


@pytest.fixture
def http(local_server: BackgroundServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=local_server.url, timeout=30) as client:
        yield client


def add(
    http: httpx.Client, project_id: str, ref: str, ftype: str, payload: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    r = http.post(
        "/feedback/create",
        json={
            "project_id": project_id,
            "weave_ref": ref,
            "feedback_type": ftype,
            "payload": payload,
            **extra,
        },
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def fq(http: httpx.Client, project_id: str, **body: Any) -> list[dict[str, Any]]:
    r = http.post("/feedback/query", json={"project_id": project_id, **body})
    assert r.status_code == 200, r.text
    return list(r.json()["result"])


def eq(field: str, value: Any) -> dict[str, Any]:
    return {"$expr": {"$eq": [{"$getField": field}, {"$literal": value}]}}


def test_create_and_query(http: httpx.Client, project_id: str) -> None:
    call_a = f"weave:///{project_id}/call/a"
    call_b = f"weave:///{project_id}/call/b"
    r1 = add(http, project_id, call_a, "wandb.note.1", {"note": "first"}, creator="ann")
    add(http, project_id, call_a, "wandb.reaction.1", {"emoji": "👍"})
    add(http, project_id, call_b, "custom", {"score": 7, "tags": ["x"]})
    assert r1["id"] and r1["created_at"] and r1["wb_user_id"]
    assert r1["payload"] == {}

    everything = fq(http, project_id)
    assert len(everything) == 3
    first = everything[0]
    assert first["id"] == r1["id"] and first["creator"] == "ann"
    assert first["payload"] == {"note": "first"} and first["weave_ref"] == call_a
    assert first["project_id"] == project_id

    on_a = fq(
        http, project_id, query=eq("weave_ref", call_a), fields=["feedback_type", "payload.note"]
    )
    assert on_a == [
        {"feedback_type": "wandb.note.1", "payload.note": "first"},
        {"feedback_type": "wandb.reaction.1", "payload.note": None},
    ]
    scored = fq(
        http,
        project_id,
        query={"$expr": {"$gt": [{"$getField": "payload.score"}, {"$literal": 5}]}},
        fields=["weave_ref"],
    )
    assert scored == [{"weave_ref": call_b}]
    newest_first = fq(
        http, project_id, sort_by=[{"field": "created_at", "direction": "desc"}], limit=2
    )
    assert [f["feedback_type"] for f in newest_first] == ["custom", "wandb.reaction.1"]
    assert [f["feedback_type"] for f in fq(http, project_id, offset=2)] == ["custom"]


def test_purge_by_id_only(http: httpx.Client, project_id: str) -> None:
    ref = f"weave:///{project_id}/call/p"
    ids = [add(http, project_id, ref, "custom", {"i": i})["id"] for i in range(3)]
    r = http.post("/feedback/purge", json={"project_id": project_id, "query": eq("id", ids[0])})
    assert r.status_code == 200, r.text
    r = http.post(
        "/feedback/purge",
        json={
            "project_id": project_id,
            "query": {"$expr": {"$in": [{"$getField": "id"}, [{"$literal": ids[1]}]]}},
        },
    )
    assert r.status_code == 200, r.text
    assert [f["id"] for f in fq(http, project_id)] == [ids[2]]
    r = http.post("/feedback/purge", json={"project_id": project_id, "query": eq("weave_ref", ref)})
    assert r.status_code == 400 and "id" in r.json()["reason"]
    assert len(fq(http, project_id)) == 1


def test_replace(http: httpx.Client, project_id: str) -> None:
    ref = f"weave:///{project_id}/call/r"
    old = add(http, project_id, ref, "wandb.note.1", {"note": "draft"})
    r = http.post(
        "/feedback/replace",
        json={
            "project_id": project_id,
            "weave_ref": ref,
            "feedback_type": "wandb.note.1",
            "payload": {"note": "final"},
            "feedback_id": old["id"],
        },
    )
    assert r.status_code == 200, r.text
    new_id = r.json()["id"]
    assert new_id != old["id"]
    assert [(f["id"], f["payload"]) for f in fq(http, project_id)] == [(new_id, {"note": "final"})]


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        ({"weave_ref": "not-a-ref", "feedback_type": "custom", "payload": {}}, 400, "weave_ref"),
        (
            {
                "weave_ref": "weave:///e/p/call/x",
                "feedback_type": "wandb.note.1",
                "payload": {"note": ""},
            },
            400,
            "payload.note",
        ),
        (
            {
                "weave_ref": "weave:///e/p/call/x",
                "feedback_type": "wandb.reaction.1",
                "payload": {},
            },
            400,
            "payload.emoji",
        ),
        (
            {
                "weave_ref": "weave:///e/p/call/x",
                "feedback_type": "custom",
                "payload": {"big": "x" * (1 << 20)},
            },
            400,
            "payload",
        ),
        ({"weave_ref": "weave:///e/p/call/x", "feedback_type": "custom"}, 422, "payload"),
    ],
)
def test_create_errors(
    http: httpx.Client, project_id: str, body: dict[str, Any], status: int, needle: str
) -> None:
    r = http.post("/feedback/create", json={"project_id": project_id, **body})
    assert r.status_code == status, r.text
    assert needle in r.json()["reason"]


def test_query_errors_name_the_field(http: httpx.Client, project_id: str) -> None:
    r = http.post("/feedback/query", json={"project_id": project_id, "fields": ["nope"]})
    assert r.status_code == 400 and "nope" in r.json()["reason"]
    r = http.post("/feedback/query", json={"project_id": project_id, "query": eq("bogus", 1)})
    assert r.status_code == 400 and "bogus" in r.json()["reason"]


def test_batch_create_stores_all_in_order_or_none(http: httpx.Client, project_id: str) -> None:
    # Newer weave's /feedback/batch/create (the client sends evaluation scores through it).
    call = f"weave:///{project_id}/call/a"

    def item(i: int, **extra: Any) -> dict[str, Any]:
        return {
            "project_id": project_id,
            "weave_ref": call,
            "feedback_type": "wandb.runnable.exact",
            "payload": {"output": i},
            "runnable_ref": f"weave:///{project_id}/op/exact:abc",
            "call_ref": f"weave:///{project_id}/call/s{i}",
            **extra,
        }

    r = http.post("/feedback/batch/create", json={"batch": [item(i) for i in range(3)]})
    assert r.status_code == 200, r.text
    res = r.json()["res"]
    assert len(res) == 3 and len({x["id"] for x in res}) == 3
    stored = fq(http, project_id, sort_by=[{"field": "created_at", "direction": "asc"}])
    assert sorted(f["payload"]["output"] for f in stored) == [0, 1, 2]
    by_id = {f["id"]: f for f in stored}
    assert [by_id[x["id"]]["call_ref"] for x in res] == [
        f"weave:///{project_id}/call/s{i}" for i in range(3)
    ]
    assert {f["runnable_ref"] for f in stored} == {f"weave:///{project_id}/op/exact:abc"}

    # One bad record: a 400 naming it, and nothing of the batch stored.
    bad = [item(10), item(11, runnable_ref="not-a-ref"), item(12)]
    r = http.post("/feedback/batch/create", json={"batch": bad})
    assert r.status_code == 400 and r.json()["reason"].startswith("batch[1].runnable_ref")
    assert len(fq(http, project_id)) == 3
