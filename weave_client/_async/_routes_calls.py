"""The calls routes of the trace API: starts, ends, reads, queries, threads.

A mixin of ``AsyncAPIClient`` (one method per route, named and typed as weave's
``TraceServerInterface``); every method goes through the client's transport core.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from .. import _routes as routes
from .._models import (
    CallCreateBatchReq,
    CallCreateBatchRes,
    CallEndReq,
    CallEndRes,
    CallReadReq,
    CallReadRes,
    CallSchema,
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
    ThreadSchema,
    ThreadsQueryReq,
)
from ._streaming import AsyncStream

if TYPE_CHECKING:
    from pydantic import BaseModel

__all__ = ["AsyncCallsRoutes"]

T = TypeVar("T")


class AsyncCallsRoutes:
    """The ``/call/*``, ``/calls/*`` and ``/threads/*`` routes of ``AsyncAPIClient``."""

    if TYPE_CHECKING:  # the transport core, defined by AsyncAPIClient

        async def _post(self, path: str, req: BaseModel, cast_to: type[T]) -> T: ...
        async def _post_jsonl(self, path: str, req: BaseModel, item_type: type[T]) -> list[T]: ...
        async def _post_raw(
            self, path: str, body: bytes, *, accept: str | None = None
        ) -> bytes: ...
        def _post_stream(self, path: str, req: BaseModel, item_type: type[T]) -> AsyncStream[T]: ...

    async def call_start(self, req: CallStartReq) -> CallStartRes:
        """``POST /call/start``: record that a call started."""
        return await self._post(routes.CALL_START, req, CallStartRes)

    async def call_end(self, req: CallEndReq) -> CallEndRes:
        """``POST /call/end``: record a call's end (output or exception, summary)."""
        return await self._post(routes.CALL_END, req, CallEndRes)

    async def call_start_batch(self, req: CallCreateBatchReq) -> CallCreateBatchRes:
        """``POST /call/upsert_batch``: many starts and ends in one request, in order."""
        return await self._post(routes.CALL_UPSERT_BATCH, req, CallCreateBatchRes)

    async def call_start_batch_encoded(self, body: bytes) -> None:
        """``POST /call/upsert_batch`` with an already-encoded body; the reply is not parsed.

        For the background sender, which encodes batches off the event loop and
        needs nothing from the reply (one id pair per record) but its status.
        """
        await self._post_raw(routes.CALL_UPSERT_BATCH, body)

    async def call_read(self, req: CallReadReq) -> CallReadRes:
        """``POST /call/read``: one call by id (``call`` is None when there is none)."""
        return await self._post(routes.CALL_READ, req, CallReadRes)

    async def call_update(self, req: CallUpdateReq) -> CallUpdateRes:
        """``POST /call/update``: change a call's display name."""
        return await self._post(routes.CALL_UPDATE, req, CallUpdateRes)

    async def calls_query(self, req: CallsQueryReq) -> CallsQueryRes:
        """All calls matching ``req``, as one list.

        Read from ``/calls/stream_query`` as weave's own client does (the hosted
        service deprecated ``/calls/query``); the whole reply is read inside the
        retry loop, so a cut connection is retried rather than returning part.
        """
        calls = await self._post_jsonl(routes.CALLS_STREAM_QUERY, req, CallSchema)
        return CallsQueryRes(calls=calls)

    def calls_query_stream(self, req: CallsQueryReq) -> AsyncStream[CallSchema]:
        """``POST /calls/stream_query``: the matching calls, one at a time (flat memory)."""
        return self._post_stream(routes.CALLS_STREAM_QUERY, req, CallSchema)

    async def threads_query(self, req: ThreadsQueryReq) -> list[ThreadSchema]:
        """``POST /threads/stream_query``: conversation threads with their turn figures."""
        return await self._post_jsonl(routes.THREADS_STREAM_QUERY, req, ThreadSchema)

    async def calls_query_stats(self, req: CallsQueryStatsReq) -> CallsQueryStatsRes:
        """``POST /calls/query_stats``: how many calls match."""
        return await self._post(routes.CALLS_QUERY_STATS, req, CallsQueryStatsRes)

    async def calls_delete(self, req: CallsDeleteReq) -> CallsDeleteRes:
        """``POST /calls/delete``: delete calls and their descendants."""
        return await self._post(routes.CALLS_DELETE, req, CallsDeleteRes)
