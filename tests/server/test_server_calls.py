"""Server tier: the calls routes of the local server, over plain httpx against a real server."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from weave_client.server import BackgroundServer


@pytest.fixture
def http(local_server: BackgroundServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=local_server.url, timeout=30) as client:
        yield client


def _rows(db_path: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Read the server's database directly: the ground truth for "one row per call"."""
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as conn:
        return conn.execute(sql, params).fetchall()


def start(project_id: str, call_id: str, **extra: Any) -> dict[str, Any]:
    body = {
        "project_id": project_id,
        "id": call_id,
        "trace_id": extra.pop("trace_id", "trace-1"),
        "op_name": extra.pop("op_name", "weave:///e/p/op/predict:abc"),
        "started_at": extra.pop("started_at", "2025-01-01T00:00:00.000000+00:00"),
        "attributes": extra.pop("attributes", {}),
        "inputs": extra.pop("inputs", {"x": 1}),
        **extra,
    }
    return {"mode": "start", "req": {"start": body}}


def end(project_id: str, call_id: str, **extra: Any) -> dict[str, Any]:
    body = {
        "project_id": project_id,
        "id": call_id,
        "ended_at": extra.pop("ended_at", "2025-01-01T00:00:01.500000+00:00"),
        "output": extra.pop("output", {"y": 2}),
        "summary": extra.pop("summary", {}),
        **extra,
    }
    return {"mode": "end", "req": {"end": body}}


def upsert(http: httpx.Client, *items: dict[str, Any]) -> dict[str, Any]:
    r = http.post("/call/upsert_batch", json={"batch": list(items)})
    assert r.status_code == 200, r.text
    return dict(r.json())


def query(http: httpx.Client, project_id: str, **body: Any) -> list[dict[str, Any]]:
    r = http.post("/calls/query", json={"project_id": project_id, **body})
    assert r.status_code == 200, r.text
    return list(r.json()["calls"])


def test_health_and_server_info(http: httpx.Client) -> None:
    assert http.get("/health").json() == {"status": "ok"}
    assert http.get("/server_info").json() == {"min_required_weave_python_version": "0.0.1"}


def test_upsert_batch_replies_in_order_and_is_idempotent(
    http: httpx.Client, local_server: BackgroundServer, project_id: str
) -> None:
    items = [
        start(project_id, "a"),
        end(project_id, "a"),
        start(project_id, "b"),
        end(project_id, "b"),
    ]
    first = upsert(http, *items)
    assert first == {
        "res": [{"id": "a", "trace_id": "trace-1"}, {}, {"id": "b", "trace_id": "trace-1"}, {}]
    }
    # The same batch again (a retry) and each record once more on its own.
    assert upsert(http, *items) == first
    for item in items:
        upsert(http, item)

    rows = _rows(
        local_server.db_path, "SELECT id FROM calls WHERE project_id = ? ORDER BY id", project_id
    )
    assert rows == [("a",), ("b",)]
    calls = query(http, project_id)
    assert [c["id"] for c in calls] == ["a", "b"]
    assert calls[0]["inputs"] == {"x": 1} and calls[0]["output"] == {"y": 2}
    assert calls[0]["summary"]["weave"]["status"] == "success"
    assert calls[0]["summary"]["weave"]["latency_ms"] == 1500


def test_end_before_start_makes_one_complete_call(
    http: httpx.Client, local_server: BackgroundServer, project_id: str
) -> None:
    upsert(http, end(project_id, "late", output="done"))
    # An ended call with no start yet is not visible to readers...
    assert query(http, project_id) == []
    assert http.post("/calls/query_stats", json={"project_id": project_id}).json()["count"] == 0
    upsert(http, start(project_id, "late", inputs={"q": "?"}))
    (call,) = query(http, project_id)
    assert call["id"] == "late"
    assert call["inputs"] == {"q": "?"}
    assert call["output"] == "done"
    assert call["ended_at"] is not None
    assert _rows(
        local_server.db_path, "SELECT COUNT(*) FROM calls WHERE project_id = ?", project_id
    ) == [(1,)]


def test_start_and_end_routes(http: httpx.Client, project_id: str) -> None:
    s = start(project_id, "solo")["req"]
    r = http.post("/call/start", json=s)
    assert r.status_code == 200, r.text
    assert r.json() == {"id": "solo", "trace_id": "trace-1"}
    r = http.post("/call/end", json=end(project_id, "solo", exception="ValueError: boom")["req"])
    assert r.status_code == 200, r.text
    call = http.post("/call/read", json={"project_id": project_id, "id": "solo"}).json()["call"]
    assert call["exception"] == "ValueError: boom"
    assert call["summary"]["weave"]["status"] == "error"


def test_start_without_ids_gets_generated_ones(http: httpx.Client, project_id: str) -> None:
    item = start(project_id, "x")
    del item["req"]["start"]["id"]
    del item["req"]["start"]["trace_id"]
    (res,) = upsert(http, item)["res"]
    assert res["id"] and res["trace_id"] and res["id"] != res["trace_id"]
    assert [c["id"] for c in query(http, project_id)] == [res["id"]]


def test_timestamps_in_other_spellings_are_normalised(http: httpx.Client, project_id: str) -> None:
    # Not the fast path's spelling: an offset other than UTC, and a naive time (taken as UTC).
    upsert(
        http,
        start(project_id, "tz", started_at="2025-01-01T02:00:00+02:00"),
        end(project_id, "tz", ended_at="2025-01-01T00:00:02"),
    )
    (call,) = query(http, project_id)
    assert call["started_at"].startswith("2025-01-01T00:00:00")
    assert call["summary"]["weave"]["latency_ms"] == 2000


def test_refs_in_inputs_and_outputs_are_recorded(http: httpx.Client, project_id: str) -> None:
    ref = f"weave:///{project_id}/object/thing:abc"
    upsert(
        http,
        start(project_id, "r", inputs={"obj": ref, "n": 1}),
        end(project_id, "r", output={"made": [ref]}),
        start(project_id, "plain"),
    )
    by_input = query(http, project_id, filter={"input_refs": [ref]})
    by_output = query(http, project_id, filter={"output_refs": [ref]})
    assert [c["id"] for c in by_input] == ["r"]
    assert [c["id"] for c in by_output] == ["r"]


def test_nan_in_values_is_stored_as_null_and_stays_queryable(
    http: httpx.Client, project_id: str
) -> None:
    body = json.dumps(
        {"batch": [start(project_id, "nan", inputs={"x": float("nan"), "k": "v"})]}
    )  # json.dumps writes NaN, as Python clients do
    r = http.post("/call/upsert_batch", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
    calls = query(
        http,
        project_id,
        query={"$expr": {"$eq": [{"$getField": "inputs.k"}, {"$literal": "v"}]}},
    )
    assert [c["inputs"] for c in calls] == [{"x": None, "k": "v"}]


def test_call_read_missing_is_null_as_the_hosted_service_answers(
    http: httpx.Client, project_id: str
) -> None:
    r = http.post("/call/read", json={"project_id": project_id, "id": "nope"})
    assert r.status_code == 200
    assert r.json() == {"call": None}


def test_call_update_sets_display_name(http: httpx.Client, project_id: str) -> None:
    upsert(http, start(project_id, "u", display_name="old"))
    r = http.post(
        "/call/update", json={"project_id": project_id, "call_id": "u", "display_name": "new"}
    )
    assert r.status_code == 200, r.text
    (call,) = query(http, project_id)
    assert call["display_name"] == "new"
    assert call["summary"]["weave"]["trace_name"] == "new"
    # A retried start without a display name keeps the new one.
    item = start(project_id, "u")
    upsert(http, item)
    assert query(http, project_id)[0]["display_name"] == "new"


def test_call_update_errors(http: httpx.Client, project_id: str) -> None:
    r = http.post(
        "/call/update", json={"project_id": project_id, "call_id": "ghost", "display_name": "x"}
    )
    assert r.status_code == 404
    assert "ghost" in r.json()["reason"]
    upsert(http, start(project_id, "u"))
    r = http.post("/call/update", json={"project_id": project_id, "call_id": "u"})
    assert r.status_code == 400
    assert "display_name" in r.json()["reason"]


def test_delete_removes_descendants_only(http: httpx.Client, project_id: str) -> None:
    #   root -> child -> grandchild ; root -> child2 ; other (separate trace)
    upsert(
        http,
        start(project_id, "root"),
        start(project_id, "child", parent_id="root"),
        start(project_id, "grandchild", parent_id="child"),
        start(project_id, "child2", parent_id="root"),
        start(project_id, "other", trace_id="trace-2"),
    )
    r = http.post("/calls/delete", json={"project_id": project_id, "call_ids": ["child"]})
    assert r.status_code == 200, r.text
    assert sorted(c["id"] for c in query(http, project_id)) == ["child2", "other", "root"]
    http.post("/calls/delete", json={"project_id": project_id, "call_ids": ["root"]})
    assert [c["id"] for c in query(http, project_id)] == ["other"]
    r = http.post("/calls/query_stats", json={"project_id": project_id})
    assert r.json()["count"] == 1


def test_stream_query_is_jsonl_matching_query(http: httpx.Client, project_id: str) -> None:
    items = []
    for i in range(450):  # more than one chunk of the server's cursor reads
        call_id = f"c{i:04d}"
        items += [
            start(
                project_id,
                call_id,
                started_at=f"2025-01-01T00:{i // 60:02d}:{i % 60:02d}.000000+00:00",
            ),
            end(project_id, call_id, output=i),
        ]
    upsert(http, *items)
    body = {"project_id": project_id, "sort_by": [{"field": "started_at", "direction": "desc"}]}
    with http.stream("POST", "/calls/stream_query", json=body) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/jsonl")
        lines = [json.loads(line) for line in r.iter_lines() if line]
    assert len(lines) == 450
    assert [c["output"] for c in lines] == list(range(449, -1, -1))
    assert lines == query(http, project_id, **{k: v for k, v in body.items() if k != "project_id"})


def test_stream_query_with_a_bad_query_fails_before_streaming(
    http: httpx.Client, project_id: str
) -> None:
    r = http.post(
        "/calls/stream_query",
        json={
            "project_id": project_id,
            "sort_by": [{"field": "no_such_field", "direction": "asc"}],
        },
    )
    assert r.status_code == 400
    assert "no_such_field" in r.json()["reason"]


def test_query_stats_and_limits(http: httpx.Client, project_id: str) -> None:
    upsert(http, *(start(project_id, f"s{i}") for i in range(5)))
    stats = http.post("/calls/query_stats", json={"project_id": project_id}).json()
    assert stats["count"] == 5
    assert (
        http.post("/calls/query_stats", json={"project_id": project_id, "limit": 2}).json()["count"]
        == 2
    )
    r = http.post("/calls/query_stats", json={"project_id": project_id, "limit": 0})
    assert r.status_code == 400
    assert "limit" in r.json()["reason"]
    assert len(query(http, project_id, limit=2, offset=1)) == 2


def test_include_feedback_puts_feedback_in_summary(http: httpx.Client, project_id: str) -> None:
    upsert(http, start(project_id, "fb"), end(project_id, "fb"))
    r = http.post(
        "/feedback/create",
        json={
            "project_id": project_id,
            "weave_ref": f"weave:///{project_id}/call/fb",
            "feedback_type": "wandb.reaction.1",
            "payload": {"emoji": "👍"},
        },
    )
    assert r.status_code == 200, r.text
    (call,) = query(http, project_id, include_feedback=True)
    (fb,) = call["summary"]["weave"]["feedback"]
    assert fb["feedback_type"] == "wandb.reaction.1"
    assert fb["payload"] == {
        "emoji": "👍",
        "alias": ":thumbs_up:",
        "detoned": "👍",
        "detoned_alias": ":thumbs_up:",
    }
    assert fb["id"] == r.json()["id"]


def test_concurrent_batches_all_land(
    http: httpx.Client, local_server: BackgroundServer, project_id: str
) -> None:
    def send(n: int) -> int:
        with httpx.Client(base_url=local_server.url, timeout=30) as client:
            items = []
            for i in range(50):
                items += [start(project_id, f"t{n}-{i}"), end(project_id, f"t{n}-{i}")]
            return client.post("/call/upsert_batch", json={"batch": items}).status_code

    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(send, range(8))) == [200] * 8
    assert http.post("/calls/query_stats", json={"project_id": project_id}).json()["count"] == 400


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"batch": [{"mode": "start", "req": {"start": {"project_id": "e/p"}}}]}, "op_name"),
        (
            {"batch": [{"mode": "end", "req": {"end": {"project_id": "e/p", "id": "x"}}}]},
            "ended_at",
        ),
        ({"batch": [{"mode": "start", "req": {"start": {}}} for _ in range(1)]}, "started_at"),
        ({"batch": [{"mode": "sideways", "req": {}}]}, "batch.0"),
        ({"batch": "nope"}, "batch"),
        ({}, "batch"),
    ],
)
def test_malformed_upsert_batch_names_the_field(http: httpx.Client, body: Any, needle: str) -> None:
    r = http.post("/call/upsert_batch", json=body)
    assert r.status_code == 422, r.text
    assert needle in r.json()["reason"]


def test_upsert_batch_that_is_not_json_is_400(http: httpx.Client) -> None:
    r = http.post(
        "/call/upsert_batch", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
    assert "JSON" in r.json()["reason"]


def test_a_bad_item_stores_nothing_of_its_batch(
    http: httpx.Client, local_server: BackgroundServer, project_id: str
) -> None:
    bad = start(project_id, "bad")
    del bad["req"]["start"]["op_name"]
    r = http.post("/call/upsert_batch", json={"batch": [start(project_id, "good"), bad]})
    assert r.status_code == 422
    assert _rows(
        local_server.db_path, "SELECT COUNT(*) FROM calls WHERE project_id = ?", project_id
    ) == [(0,)]


def test_expand_columns_replaces_object_refs(http: httpx.Client, project_id: str) -> None:
    def create(object_id: str, val: Any) -> str:
        r = http.post(
            "/obj/create",
            json={"obj": {"project_id": project_id, "object_id": object_id, "val": val}},
        )
        assert r.status_code == 200, r.text
        return f"weave:///{project_id}/object/{object_id}:{r.json()['digest']}"

    prompt = create("prompt", {"text": "hi"})
    model = create("model", {"name": "m", "prompt": prompt})
    upsert(
        http,
        start(
            project_id,
            "e",
            inputs={"model": model, "missing": f"weave:///{project_id}/object/no:abc"},
        ),
    )
    (call,) = query(
        http, project_id, expand_columns=["inputs.model.prompt", "inputs.model", "inputs.missing"]
    )
    assert call["inputs"]["model"] == {
        "name": "m",
        "prompt": {"text": "hi", "_ref": prompt},
        "_ref": model,
    }
    assert call["inputs"]["missing"].startswith("weave:///")  # unreadable: left as it was
    (plain,) = query(
        http, project_id, expand_columns=["inputs.model"], return_expanded_column_values=False
    )
    assert plain["inputs"]["model"] == model


def test_storage_sizes(http: httpx.Client, project_id: str) -> None:
    upsert(
        http,
        start(project_id, "root", inputs={"text": "x" * 100}),
        end(project_id, "root"),
        start(project_id, "kid", parent_id="root", inputs={"text": "y" * 50}),
    )
    calls = {
        c["id"]: c
        for c in query(http, project_id, include_storage_size=True, include_total_storage_size=True)
    }
    root, kid = calls["root"], calls["kid"]
    assert root["storage_size_bytes"] > 100 and kid["storage_size_bytes"] > 50
    assert (
        root["total_storage_size_bytes"] == root["storage_size_bytes"] + kid["storage_size_bytes"]
    )
    assert kid["total_storage_size_bytes"] is None  # only roots carry the trace total
    plain = query(http, project_id)
    assert all(
        c["storage_size_bytes"] is None and c["total_storage_size_bytes"] is None for c in plain
    )


def test_delete_more_than_the_hosted_limit_is_400(http: httpx.Client, project_id: str) -> None:
    ids = [f"id{i}" for i in range(1001)]
    r = http.post("/calls/delete", json={"project_id": project_id, "call_ids": ids})
    assert r.status_code == 400
    assert "call_ids" in r.json()["reason"] and "1000" in r.json()["reason"]


def test_repeated_records_in_one_batch_apply_in_order(http: httpx.Client, project_id: str) -> None:
    upsert(
        http,
        start(project_id, "d", display_name="first", inputs={"x": 1}),
        end(project_id, "d", output="one"),
        start(project_id, "d", inputs={"x": 2}),  # later start: new inputs, keeps the name
        end(project_id, "d", output="two"),
        end(project_id, "only-end", output="e"),
        start(project_id, "only-start"),
    )
    calls = {c["id"]: c for c in query(http, project_id)}
    assert set(calls) == {"d", "only-start"}
    d = calls["d"]
    assert (d["display_name"], d["inputs"], d["output"]) == ("first", {"x": 2}, "two")
    assert calls["only-start"]["ended_at"] is None
    upsert(http, start(project_id, "only-end"))
    assert {c["id"]: c["output"] for c in query(http, project_id)}["only-end"] == "e"


def test_stream_query_memory_stays_flat(http: httpx.Client, project_id: str) -> None:
    """Streaming 16 MB of calls must not hold them all at once (server and client in this process)."""
    import tracemalloc

    pad = "x" * 2000
    for first in range(0, 8000, 1000):
        upsert(
            http,
            *(
                start(project_id, f"m{i}", inputs={"pad": pad, "i": i})
                for i in range(first, first + 1000)
            ),
        )
    tracemalloc.start()
    try:
        seen = 0
        with http.stream("POST", "/calls/stream_query", json={"project_id": project_id}) as r:
            assert r.status_code == 200
            for line in r.iter_lines():
                if line:
                    seen += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seen == 8000
    assert peak < 8 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB while streaming ~16 MB of calls"


def test_query_stats_total_storage(http: httpx.Client, project_id: str) -> None:
    upsert(
        http,
        start(project_id, "r1", trace_id="t1"),
        start(project_id, "k1", trace_id="t1", parent_id="r1"),
        start(project_id, "r2", trace_id="t2"),
    )
    sizes = {
        c["id"]: c["storage_size_bytes"] for c in query(http, project_id, include_storage_size=True)
    }
    r = http.post(
        "/calls/query_stats", json={"project_id": project_id, "include_total_storage_size": True}
    )
    assert r.json() == {"count": 3, "total_storage_size_bytes": sum(sizes.values())}
    only_t2 = http.post(
        "/calls/query_stats",
        json={
            "project_id": project_id,
            "filter": {"trace_ids": ["t2"]},
            "include_total_storage_size": True,
        },
    )
    assert only_t2.json() == {"count": 1, "total_storage_size_bytes": sizes["r2"]}
