"""Server tier: how ``/call/upsert_batch`` bodies are decoded.

The common batch is decoded by msgspec into typed structs, its JSON values kept as the
text the client sent; anything else goes through the wire models. These tests pin
which path a body takes and that both store the same calls.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from weave_client.server import BackgroundServer, _calls

from .test_server_calls import end, query, start, upsert


@pytest.fixture
def http(local_server: BackgroundServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=local_server.url, timeout=30) as client:
        yield client


@pytest.fixture
def model_batches(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every batch the wire models validate (the server runs in this process)."""
    seen: list[Any] = []
    validate = _calls.CallCreateBatchReq.model_validate

    def spy(obj: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(obj)
        return validate(obj, *args, **kwargs)

    monkeypatch.setattr(_calls.CallCreateBatchReq, "model_validate", spy)
    return seen


def test_the_common_batch_never_reaches_the_wire_models(
    http: httpx.Client, project_id: str, model_batches: list[Any]
) -> None:
    upsert(
        http,
        start(project_id, "a", inputs={"q": "é", "n": [1, 2.5, None]}, display_name="A"),
        end(project_id, "a", output={"text": "ok"}, summary={"usage": {}}),
        start(project_id, "b", parent_id="a", thread_id="t", turn_id="a"),
    )
    assert model_batches == []
    by_id = {c["id"]: c for c in query(http, project_id)}
    assert by_id["a"]["inputs"] == {"q": "é", "n": [1, 2.5, None]}
    assert by_id["a"]["output"] == {"text": "ok"}
    assert by_id["a"]["display_name"] == "A"
    assert by_id["b"]["parent_id"] == "a" and by_id["b"]["thread_id"] == "t"


def test_values_are_stored_as_sent_and_read_back_equal(
    http: httpx.Client, project_id: str
) -> None:
    # Spaces and \\u escapes, as Python's json.dumps writes them: kept as sent, read as values.
    item = start(project_id, "esc", inputs={"s": "café ☕", "nested": {"k": [1, {"z": True}]}})
    body = json.dumps({"batch": [item]}, ensure_ascii=True, indent=2)
    r = http.post("/call/upsert_batch", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
    (call,) = query(http, project_id)
    assert call["inputs"] == {"s": "café ☕", "nested": {"k": [1, {"z": True}]}}
    filtered = query(
        http,
        project_id,
        query={"$expr": {"$eq": [{"$getField": "inputs.s"}, {"$literal": "café ☕"}]}},
    )
    assert [c["id"] for c in filtered] == ["esc"]


def test_refs_with_escaped_slashes_are_recorded(http: httpx.Client, project_id: str) -> None:
    ref = f"weave:///{project_id}/object/thing:abc"
    start_item = json.dumps(start(project_id, "r", inputs={"obj": ref})).replace("/", "\\/")
    end_item = json.dumps(end(project_id, "r", output=ref)).replace("/", "\\/")
    body = '{"batch": [' + start_item + ", " + end_item + "]}"
    r = http.post("/call/upsert_batch", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
    assert [c["id"] for c in query(http, project_id, filter={"input_refs": [ref]})] == ["r"]
    assert [c["id"] for c in query(http, project_id, filter={"output_refs": [ref]})] == ["r"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("inputs", [1, 2]), ("attributes", "x"), ("started_at", "yesterday"), ("op_name", 3)],
)
def test_a_start_the_fast_shape_rejects_is_named_by_the_wire_models(
    http: httpx.Client, project_id: str, model_batches: list[Any], field: str, value: Any
) -> None:
    item = start(project_id, "bad")
    item["req"]["start"][field] = value
    r = http.post("/call/upsert_batch", json={"batch": [start(project_id, "ok"), item]})
    assert 400 <= r.status_code < 500, r.text
    assert field in r.text
    assert len(model_batches) == 1
    assert query(http, project_id) == []  # the batch is one transaction: nothing stored


def test_a_summary_that_is_not_an_object_is_named(
    http: httpx.Client, project_id: str, model_batches: list[Any]
) -> None:
    r = http.post(
        "/call/upsert_batch", json={"batch": [end(project_id, "e", summary=[1])]}
    )
    assert 400 <= r.status_code < 500, r.text
    assert "summary" in r.text
    assert len(model_batches) == 1


def test_a_value_that_is_not_utf8_is_a_client_error(http: httpx.Client, project_id: str) -> None:
    body = json.dumps({"batch": [start(project_id, "u", inputs={"s": "PLACEHOLDER"})]}).encode()
    body = body.replace(b"PLACEHOLDER", b"\xff\xfe")
    r = http.post("/call/upsert_batch", content=body, headers={"content-type": "application/json"})
    assert 400 <= r.status_code < 500, r.text
    assert query(http, project_id) == []


def test_what_the_wire_models_accept_is_stored_as_the_fast_path_would(
    http: httpx.Client, project_id: str, model_batches: list[Any]
) -> None:
    # A timestamp with another offset and a string wb_run_step are not the fast shape;
    # the wire models coerce both.
    upsert(
        http,
        start(project_id, "slow", started_at="2025-01-01T02:00:00+02:00", wb_run_step="3"),
        end(project_id, "slow"),
        start(project_id, "fast2", inputs={"x": 1}),
    )
    assert len(model_batches) == 1
    by_id = {c["id"]: c for c in query(http, project_id)}
    assert by_id["slow"]["started_at"].startswith("2025-01-01T00:00:00")
    assert by_id["slow"]["inputs"] == {"x": 1} == by_id["fast2"]["inputs"]
    assert by_id["slow"]["output"] == {"y": 2}
