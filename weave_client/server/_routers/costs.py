"""Cost routes (project token prices; the built-in table is the default level)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from ... import _routes as routes
from ..._models import (
    CostCreateReq,
    CostCreateRes,
    CostPurgeReq,
    CostPurgeRes,
    CostQueryReq,
    CostQueryRes,
)
from .._costs import CostStore
from ._reply import json_reply

__all__ = ["router"]


def router(costs: CostStore) -> APIRouter:
    """The cost routes over ``costs``."""
    r = APIRouter()

    @r.post(routes.COST_CREATE)
    def cost_create(req: CostCreateReq) -> CostCreateRes:
        return CostCreateRes(ids=costs.create(req))

    @r.post(routes.COST_QUERY)
    def cost_query(req: CostQueryReq) -> Response:
        return json_reply(
            CostQueryRes.model_validate({"results": costs.query(req)}).model_dump_json(
                exclude_unset=True
            )
        )

    @r.post(routes.COST_PURGE)
    def cost_purge(req: CostPurgeReq) -> CostPurgeRes:
        costs.purge(req)
        return CostPurgeRes()

    return r
