"""Thread routes (conversation threads; see _threads.py)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from ... import _routes as routes
from ..._models import ThreadsQueryReq
from .._threads import ThreadStore
from ._reply import JSONL

__all__ = ["router"]


def router(threads: ThreadStore) -> APIRouter:
    """The thread routes over ``threads``."""
    r = APIRouter()

    @r.post(routes.THREADS_STREAM_QUERY)
    def threads_stream_query(req: ThreadsQueryReq) -> StreamingResponse:
        return StreamingResponse(threads.stream_lines(req), media_type=JSONL)

    return r
