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
    from ._session import AsyncSession

__all__ = ["AsyncCostsMethods", "add_cost", "purge_costs", "query_costs"]


def _price(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a non-negative number (USD per token), got {value!r}")
    return float(value)


async def add_cost(
    session: AsyncSession,
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
    await session.ready()
    return await session.api.cost_create(
        CostCreateReq(project_id=session.project_id, costs={llm_id: cost})
    )


async def query_costs(
    session: AsyncSession,
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
    await session.ready()
    res = await session.api.cost_query(
        CostQueryReq(project_id=session.project_id, query=req_query, limit=limit, offset=offset)
    )
    return res.results


async def purge_costs(session: AsyncSession, ids: str | Iterable[str]) -> None:
    """Delete the project's prices with these ids; see ``purge_costs``."""
    id_list = [ids] if isinstance(ids, str) else list(ids)
    for cost_id in id_list:
        if not isinstance(cost_id, str) or not cost_id:
            raise ValueError(f"cost ids must be non-empty strs, got {cost_id!r}")
    if not id_list:
        return
    expr: dict[str, Any] = {"$in": [{"$getField": "id"}, [{"$literal": i} for i in id_list]]}
    await session.ready()
    await session.api.cost_purge(
        CostPurgeReq(project_id=session.project_id, query=Query.model_validate({"$expr": expr}))
    )


class AsyncCostsMethods:
    """The client's token-price methods (``AsyncWeaveClient`` derives from this)."""

    _session: AsyncSession

    async def add_cost(
        self,
        llm_id: str,
        prompt_token_cost: float,
        completion_token_cost: float,
        effective_date: datetime.datetime | None = None,
        prompt_token_cost_unit: str = "USD",
        completion_token_cost_unit: str = "USD",
        provider_id: str | None = None,
    ) -> CostCreateRes:
        """Set a model's token prices (USD per token) for this project, as weave's ``add_cost``.

        Calls that started from ``effective_date`` (default: now) on are priced with
        it when read with ``include_costs=True``, ahead of the server's defaults.
        Returns the ``CostCreateRes`` (``ids``: ``(llm_id, cost id)`` pairs).
        """
        return await add_cost(
            self._session, llm_id, prompt_token_cost, completion_token_cost, effective_date,
            prompt_token_cost_unit, completion_token_cost_unit, provider_id,
        )

    async def costs(
        self,
        llm_ids: str | Iterable[str] | None = None,
        *,
        query: Query | Mapping[str, Any] | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[CostQueryOutput]:
        """This project's token prices: all, those of ``llm_ids``, and/or matching ``query``."""
        return await query_costs(self._session, llm_ids, query, limit, offset)

    async def purge_costs(self, ids: str | Iterable[str]) -> None:
        """Delete this project's token prices by cost id (one or several)."""
        await purge_costs(self._session, ids)
