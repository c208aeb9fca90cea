"""Server tier: the cost routes of the local server and ``include_costs`` pricing, over httpx."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from weave_client._prices import DEFAULT_PRICES
from weave_client.server import BackgroundServer

T_CALL = "2025-06-01T12:00:00+00:00"


@pytest.fixture
def http(local_server: BackgroundServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=local_server.url, timeout=30) as client:
        yield client


def post(http: httpx.Client, route: str, body: dict[str, Any], status: int = 200) -> Any:
    r = http.post(route, json=body)
    assert r.status_code == status, r.text
    return r.json()


def add_price(http: httpx.Client, project_id: str, llm_id: str, prompt: float, completion: float,
              **extra: Any) -> str:
    res = post(http, "/cost/create", {"project_id": project_id, "costs": {
        llm_id: {"prompt_token_cost": prompt, "completion_token_cost": completion, **extra}}})
    ((got_llm, cost_id),) = res["ids"]
    assert got_llm == llm_id
    return str(cost_id)


def log_call(http: httpx.Client, project_id: str, usage: dict[str, Any]) -> str:
    call_id = str(uuid.uuid4())
    start = {"project_id": project_id, "id": call_id, "op_name": "llm", "trace_id": call_id,
             "started_at": T_CALL, "attributes": {}, "inputs": {}}
    end = {"project_id": project_id, "id": call_id, "ended_at": T_CALL, "output": None,
           "summary": {"usage": usage}}
    post(http, "/call/upsert_batch", {"batch": [
        {"mode": "start", "req": {"start": start}}, {"mode": "end", "req": {"end": end}}]})
    return call_id


def costs_of(http: httpx.Client, project_id: str, call_id: str, stream: bool = False) -> Any:
    body = {"project_id": project_id, "filter": {"call_ids": [call_id]}, "include_costs": True}
    if stream:
        r = http.post("/calls/stream_query", json=body)
        assert r.status_code == 200, r.text
        (line,) = r.text.splitlines()
        call = json.loads(line)
    else:
        (call,) = post(http, "/calls/query", body)["calls"]
    return (call["summary"].get("weave") or {}).get("costs")


def test_create_query_purge(http: httpx.Client, project_id: str) -> None:
    a = add_price(http, project_id, "my-model", 1e-6, 2e-6, provider_id="acme",
                  effective_date="2025-01-01T00:00:00Z")
    b = add_price(http, project_id, "other-model", 3e-6, 4e-6)
    results = post(http, "/cost/query", {"project_id": project_id})["results"]
    assert [r["id"] for r in results] == [a, b]
    first = results[0]
    assert first["llm_id"] == "my-model" and first["provider_id"] == "acme"
    assert first["prompt_token_cost"] == 1e-6 and first["completion_token_cost"] == 2e-6
    assert first["prompt_token_cost_unit"] == "USD"
    assert first["effective_date"].startswith("2025-01-01T00:00:00")
    assert results[1]["provider_id"] == "default"
    only = post(http, "/cost/query", {
        "project_id": project_id, "fields": ["id", "llm_id"],
        "query": {"$expr": {"$eq": [{"$getField": "llm_id"}, {"$literal": "other-model"}]}}})
    assert only["results"] == [{"id": b, "llm_id": "other-model"}]
    assert post(http, "/cost/query", {"project_id": project_id + "-x"})["results"] == []
    # Purges go by id only, as weave's server requires.
    post(http, "/cost/purge", {"project_id": project_id, "query": {"$expr": {
        "$eq": [{"$getField": "llm_id"}, {"$literal": "my-model"}]}}}, status=400)
    post(http, "/cost/purge", {"project_id": project_id, "query": {"$expr": {
        "$eq": [{"$getField": "id"}, {"$literal": a}]}}})
    assert [r["id"] for r in post(http, "/cost/query", {"project_id": project_id})["results"]] == [b]


def test_bad_requests(http: httpx.Client, project_id: str) -> None:
    detail = post(http, "/cost/create", {"project_id": project_id, "costs": {
        "m": {"prompt_token_cost": -1, "completion_token_cost": 0}}}, status=400)["reason"]
    assert "prompt_token_cost" in detail
    post(http, "/cost/create", {"project_id": project_id, "costs": {}}, status=400)
    detail = post(http, "/cost/query", {"project_id": project_id, "fields": ["nope"]}, status=400)
    assert "nope" in detail["reason"]


def test_include_costs_uses_the_default_price(http: httpx.Client, project_id: str) -> None:
    usage = {"gpt-4o-mini": {"requests": 2, "prompt_tokens": 1000, "completion_tokens": 500,
                             "total_tokens": 1500},
             "no-such-model": {"requests": 1, "prompt_tokens": 5}}
    call_id = log_call(http, project_id, usage)
    for stream in (False, True):
        costs = costs_of(http, project_id, call_id, stream)
        assert set(costs) == {"gpt-4o-mini"}  # an unpriced model gets no entry
        cost = costs["gpt-4o-mini"]
        price = DEFAULT_PRICES["gpt-4o-mini"]
        assert cost["prompt_tokens_total_cost"] == pytest.approx(1000 * price.prompt_token_cost)
        assert cost["completion_tokens_total_cost"] == pytest.approx(500 * price.completion_token_cost)
        assert (cost["requests"], cost["prompt_tokens"], cost["completion_tokens"],
                cost["total_tokens"]) == (2, 1000, 500, 1500)
        assert cost["pricing_level"] == "default" and cost["provider_id"] == "openai"
    # Without include_costs, nothing is added.
    (call,) = post(http, "/calls/query", {"project_id": project_id})["calls"]
    assert "costs" not in (call["summary"].get("weave") or {})


def test_anthropic_usage_and_dated_model_ids(http: httpx.Client, project_id: str) -> None:
    call_id = log_call(http, project_id, {"claude-3-5-haiku-20241022": {
        "requests": 1, "input_tokens": 100, "output_tokens": 10}})
    cost = costs_of(http, project_id, call_id)["claude-3-5-haiku-20241022"]
    price = DEFAULT_PRICES["claude-3-5-haiku"]
    assert cost["prompt_tokens"] == 100 and cost["completion_tokens"] == 10
    assert cost["prompt_tokens_total_cost"] == pytest.approx(100 * price.prompt_token_cost)


def test_project_prices_win_when_in_effect(http: httpx.Client, project_id: str) -> None:
    call_id = log_call(http, project_id, {"gpt-4o": {"requests": 1, "prompt_tokens": 10,
                                                     "completion_tokens": 10}})
    # Effective after the call started: the default price still applies.
    add_price(http, project_id, "gpt-4o", 1.0, 1.0, effective_date="2026-01-01T00:00:00Z")
    assert costs_of(http, project_id, call_id)["gpt-4o"]["pricing_level"] == "default"
    older = add_price(http, project_id, "gpt-4o", 0.5, 0.25, effective_date="2025-01-01T00:00:00Z")
    newer = add_price(http, project_id, "gpt-4o", 0.1, 0.2, effective_date="2025-05-01T00:00:00Z")
    cost = costs_of(http, project_id, call_id)["gpt-4o"]
    assert cost["pricing_level"] == "project" and cost["pricing_level_id"] == project_id
    assert cost["prompt_token_cost"] == 0.1 and cost["prompt_tokens_total_cost"] == pytest.approx(1.0)
    assert cost["completion_tokens_total_cost"] == pytest.approx(2.0)
    post(http, "/cost/purge", {"project_id": project_id, "query": {"$expr": {
        "$in": [{"$getField": "id"}, [{"$literal": newer}]]}}})
    assert costs_of(http, project_id, call_id)["gpt-4o"]["prompt_token_cost"] == 0.5
    assert older
