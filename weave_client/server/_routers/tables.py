"""Table routes (``/table/*``) over the table store."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from ... import _routes as routes
from ..._models import (
    TableCreateReq,
    TableCreateRes,
    TableQueryReq,
    TableQueryStatsReq,
    TableQueryStatsRes,
    TableUpdateReq,
    TableUpdateRes,
)
from .._tables import TableStore
from ._reply import JSONL, json_body, json_reply, run_json_route

__all__ = ["BODY_MODELS", "router"]

# The wire models of the bodies these routes read by hand (see document_bodies).
BODY_MODELS = (TableCreateReq, TableUpdateReq)


def router(tables: TableStore) -> APIRouter:
    """The table routes over ``tables``."""
    r = APIRouter()

    # Tables of 100,000 rows arrive here: the bodies are parsed with orjson and
    # checked by hand (see TableStore.table_update_json), as /call/upsert_batch's;
    # the OpenAPI still documents the wire models (see document_bodies).
    @r.post(
        routes.TABLE_CREATE,
        response_model=TableCreateRes,
        openapi_extra=json_body(TableCreateReq),
    )
    async def table_create(request: Request) -> Response:
        return await run_json_route(tables.table_create_json, await request.body())

    @r.post(
        routes.TABLE_UPDATE,
        response_model=TableUpdateRes,
        openapi_extra=json_body(TableUpdateReq),
    )
    async def table_update(request: Request) -> Response:
        return await run_json_route(tables.table_update_json, await request.body())

    @r.post(routes.TABLE_QUERY)
    def table_query(req: TableQueryReq) -> Response:
        return json_reply(tables.table_query_json(req))

    @r.post(routes.TABLE_QUERY_STREAM)
    def table_query_stream(req: TableQueryReq) -> StreamingResponse:
        return StreamingResponse(tables.table_query_stream(req), media_type=JSONL)

    @r.post(routes.TABLE_QUERY_STATS)
    def table_query_stats(req: TableQueryStatsReq) -> TableQueryStatsRes:
        return TableQueryStatsRes(count=tables.table_query_stats(req.project_id, req.digest))

    return r
