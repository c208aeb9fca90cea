"""Token prices of a project: add, list and purge them (``/cost/*`` routes).

The client's ``add_cost`` / ``costs`` / ``purge_costs`` are thin calls into
these functions. Prices added here override the server's default ones for
calls that started after their ``effective_date``; calls read with
``include_costs=True`` carry ``summary.weave.costs`` priced with them.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import pydantic

from .._models import (
    CostCreateInput,
    CostCreateReq,
    CostCreateRes,
    CostPurgeReq,
    CostQueryOutput,
    CostQueryReq,
    Query,
)

if TYPE_CHECKING:
    from ._client import AsyncWeaveClient

__all__ = ["add_cost", "purge_costs", "query_costs"]


def _price(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative number (USD per token), got {value!r}")
    return float(value)


async def add_cost(
    client: AsyncWeaveClient,
    llm_id: str,
    prompt_token_cost: float,
    completion_token_cost: float,
    effective_date: datetime.datetime | None = None,
    prompt_token_cost_unit: str = "USD",
    completion_token_cost_unit: str = "USD",
    provider_id: str | None = None,
) -> CostCreateRes:
    """Add one model's price to the client's project; see ``AsyncWeaveClient.add_cost``."""
    if not isinstance(llm_id, str) or not llm_id:
        raise ValueError(f"llm_id must be a non-empty str, got {llm_id!r}")
    if effective_date is not None and not isinstance(effective_date, datetime.datetime):
        raise TypeError(f"effective_date must be a datetime, got {effective_date!r}")
    cost = CostCreateInput(
        prompt_token_cost=_price("prompt_token_cost", prompt_token_cost),
        completion_token_cost=_price("completion_token_cost", completion_token_cost),
        prompt_token_cost_unit=prompt_token_cost_unit,
        completion_token_cost_unit=completion_token_cost_unit,
        effective_date=effective_date,
        provider_id=provider_id,
    )
    await client._ready()
    return await client._api.cost_create(
        CostCreateReq(project_id=client.project_id, costs={llm_id: cost})
    )


async def query_costs(
    client: AsyncWeaveClient,
    llm_ids: str | Iterable[str] | None = None,
    query: Query | Mapping[str, Any] | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[CostQueryOutput]:
    """The project's prices (for ``llm_ids`` and/or matching ``query``); see ``costs``."""
    for name, value in (("limit", limit), ("offset", offset)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    conditions: list[dict[str, Any]] = []
    if llm_ids is not None:
        ids = [llm_ids] if isinstance(llm_ids, str) else list(llm_ids)
        for llm_id in ids:
            if not isinstance(llm_id, str) or not llm_id:
                raise ValueError(f"llm_ids must be non-empty strs, got {llm_id!r}")
        conditions.append({"$in": [{"$getField": "llm_id"}, [{"$literal": i} for i in ids]]})
    if query is not None:
        expr = query.model_dump(by_alias=True)["$expr"] if isinstance(query, Query) else (
            query.get("$expr", query) if isinstance(query, Mapping) else None
        )
        if expr is None:
            raise TypeError(f"query must be a Query or a dict, got {type(query).__name__}")
        conditions.append(dict(expr))
    req_query = None
    if conditions:
        expr = conditions[0] if len(conditions) == 1 else {"$and": conditions}
        try:
            req_query = Query.model_validate({"$expr": expr})
        except pydantic.ValidationError as e:
            raise ValueError(f"invalid costs query {expr!r}: {e}") from None
    await client._ready()
    res = await client._api.cost_query(
        CostQueryReq(project_id=client.project_id, query=req_query, limit=limit, offset=offset)
    )
    return res.results


async def purge_costs(client: AsyncWeaveClient, ids: str | Iterable[str]) -> None:
    """Delete the project's prices with these ids; see ``purge_costs``."""
    id_list = [ids] if isinstance(ids, str) else list(ids)
    for cost_id in id_list:
        if not isinstance(cost_id, str) or not cost_id:
            raise ValueError(f"cost ids must be non-empty strs, got {cost_id!r}")
    if not id_list:
        return
    expr: dict[str, Any] = {"$in": [{"$getField": "id"}, [{"$literal": i} for i in id_list]]}
    await client._ready()
    await client._api.cost_purge(
        CostPurgeReq(project_id=client.project_id, query=Query.model_validate({"$expr": expr}))
    )
