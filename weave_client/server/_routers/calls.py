"""Call routes (``/call/*``, ``/calls/*`` but the watch socket) over the call store."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from ... import _routes as routes
from ..._models import (
    CallEndReq,
    CallEndRes,
    CallReadReq,
    CallReadRes,
    CallsDeleteReq,
    CallsDeleteRes,
    CallsQueryReq,
    CallsQueryRes,
    CallsQueryStatsReq,
    CallsQueryStatsRes,
    CallStartReq,
    CallStartRes,
    CallUpdateReq,
    CallUpdateRes,
)
from .._calls import CallStore
from ._reply import JSONL, json_reply, run_json_route

__all__ = ["router"]


def router(calls: CallStore) -> APIRouter:
    """The call routes over ``calls``."""
    r = APIRouter()

    @r.post(routes.CALL_UPSERT_BATCH)
    async def call_upsert_batch(request: Request) -> Response:
        return await run_json_route(calls.upsert_batch_json, await request.body())

    @r.post(routes.CALL_START)
    def call_start(req: CallStartReq) -> CallStartRes:
        return calls.start(req)

    @r.post(routes.CALL_END)
    def call_end(req: CallEndReq) -> CallEndRes:
        calls.end(req)
        return CallEndRes()

    @r.post(routes.CALL_READ)
    def call_read(req: CallReadReq) -> Response:
        return json_reply(CallReadRes(call=calls.read(req)).model_dump_json())

    @r.post(routes.CALL_UPDATE)
    def call_update(req: CallUpdateReq) -> CallUpdateRes:
        calls.update(req)
        return CallUpdateRes()

    @r.post(routes.CALLS_DELETE)
    def calls_delete(req: CallsDeleteReq) -> CallsDeleteRes:
        calls.delete(req)
        return CallsDeleteRes()

    @r.post(routes.CALLS_QUERY)
    def calls_query(req: CallsQueryReq) -> Response:
        return json_reply(CallsQueryRes(calls=calls.query(req)).model_dump_json())

    @r.post(routes.CALLS_STREAM_QUERY)
    def calls_stream_query(req: CallsQueryReq) -> StreamingResponse:
        return StreamingResponse(calls.stream_lines(req), media_type=JSONL)

    @r.post(routes.CALLS_QUERY_STATS)
    def calls_query_stats(req: CallsQueryStatsReq) -> CallsQueryStatsRes:
        return calls.query_stats(req)

    return r
