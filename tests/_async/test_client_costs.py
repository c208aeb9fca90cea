"""Token prices through the client: add_cost, costs, purge_costs, and calls priced with them."""

from __future__ import annotations

import datetime

import pytest

from weave_client import AsyncWeaveClient, async_op


async def test_add_list_purge(local_client: AsyncWeaveClient) -> None:
    res = await local_client.add_cost(
        "my-llm", 1e-6, 3e-6, provider_id="acme",
        effective_date=datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC),
    )
    ((llm_id, cost_id),) = res.ids
    assert llm_id == "my-llm"
    await local_client.add_cost("other-llm", 2e-6, 4e-6)
    prices = await local_client.costs()
    assert [p.llm_id for p in prices] == ["my-llm", "other-llm"]
    (mine,) = await local_client.costs("my-llm")
    assert mine.id == cost_id and mine.provider_id == "acme"
    assert mine.prompt_token_cost == 1e-6 and mine.completion_token_cost == 3e-6
    assert mine.effective_date == datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
    by_query = await local_client.costs(
        query={"$eq": [{"$getField": "provider_id"}, {"$literal": "acme"}]}
    )
    assert [p.id for p in by_query] == [cost_id]
    await local_client.purge_costs(cost_id)
    assert [p.llm_id for p in await local_client.costs()] == ["other-llm"]
    await local_client.purge_costs([])  # nothing to do


async def test_bad_arguments(local_client: AsyncWeaveClient) -> None:
    with pytest.raises(ValueError, match="prompt_token_cost"):
        await local_client.add_cost("m", -1.0, 0.0)
    with pytest.raises(ValueError, match="llm_id"):
        await local_client.add_cost("", 1.0, 0.0)
    with pytest.raises(ValueError, match="limit"):
        await local_client.costs(limit=-1)
    with pytest.raises(ValueError, match="cost ids"):
        await local_client.purge_costs([""])


async def test_calls_priced_with_the_project_price(local_client: AsyncWeaveClient) -> None:
    @async_op
    async def fake_llm(prompt: str) -> dict[str, object]:
        return {"model": "house-model", "usage": {"prompt_tokens": 100, "completion_tokens": 20}}

    @async_op
    async def pipeline() -> None:
        await fake_llm("a")
        await fake_llm("b")

    await local_client.add_cost(
        "house-model", 0.01, 0.02,
        effective_date=datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC),
    )
    await pipeline()
    calls = await local_client.calls(include_costs=True, trace_roots_only=True)
    (root,) = calls
    cost = root.summary["weave"]["costs"]["house-model"]
    assert cost["requests"] == 2
    assert cost["prompt_tokens_total_cost"] == pytest.approx(200 * 0.01)
    assert cost["completion_tokens_total_cost"] == pytest.approx(40 * 0.02)
    assert cost["pricing_level"] == "project"
    plain = await local_client.calls(trace_roots_only=True)
    assert "costs" not in plain[0].summary.get("weave", {})
