"""The feedback and cost routes of the trace API.

A mixin of ``AsyncAPIClient`` (one method per route, named and typed as weave's
``TraceServerInterface``); every method goes through the client's transport core.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from .. import _routes as routes
from .._models import (
    CostCreateReq,
    CostCreateRes,
    CostPurgeReq,
    CostPurgeRes,
    CostQueryReq,
    CostQueryRes,
    FeedbackCreateBatchReq,
    FeedbackCreateBatchRes,
    FeedbackCreateReq,
    FeedbackCreateRes,
    FeedbackPurgeReq,
    FeedbackPurgeRes,
    FeedbackQueryReq,
    FeedbackQueryRes,
    FeedbackReplaceReq,
    FeedbackReplaceRes,
)

if TYPE_CHECKING:
    from pydantic import BaseModel

__all__ = ["AsyncFeedbackRoutes"]

T = TypeVar("T")


class AsyncFeedbackRoutes:
    """The ``/feedback/*`` and ``/cost/*`` routes of ``AsyncAPIClient``."""

    if TYPE_CHECKING:  # the transport core, defined by AsyncAPIClient

        async def _post(self, path: str, req: BaseModel, cast_to: type[T]) -> T: ...

    async def feedback_create(self, req: FeedbackCreateReq) -> FeedbackCreateRes:
        """``POST /feedback/create``: attach feedback to a ref."""
        return await self._post(routes.FEEDBACK_CREATE, req, FeedbackCreateRes)

    async def feedback_create_batch(self, req: FeedbackCreateBatchReq) -> FeedbackCreateBatchRes:
        """``POST /feedback/batch/create``: several feedback records at once (newer servers)."""
        return await self._post(routes.FEEDBACK_BATCH_CREATE, req, FeedbackCreateBatchRes)

    async def feedback_query(self, req: FeedbackQueryReq) -> FeedbackQueryRes:
        """``POST /feedback/query``: feedback records matching a query."""
        return await self._post(routes.FEEDBACK_QUERY, req, FeedbackQueryRes)

    async def feedback_purge(self, req: FeedbackPurgeReq) -> FeedbackPurgeRes:
        """``POST /feedback/purge``: delete the feedback matching a query."""
        return await self._post(routes.FEEDBACK_PURGE, req, FeedbackPurgeRes)

    async def feedback_replace(self, req: FeedbackReplaceReq) -> FeedbackReplaceRes:
        """``POST /feedback/replace``: replace one feedback record with another."""
        return await self._post(routes.FEEDBACK_REPLACE, req, FeedbackReplaceRes)

    async def cost_create(self, req: CostCreateReq) -> CostCreateRes:
        """``POST /cost/create``: add token prices for models of a project."""
        return await self._post(routes.COST_CREATE, req, CostCreateRes)

    async def cost_query(self, req: CostQueryReq) -> CostQueryRes:
        """``POST /cost/query``: a project's token prices matching a query."""
        return await self._post(routes.COST_QUERY, req, CostQueryRes)

    async def cost_purge(self, req: CostPurgeReq) -> CostPurgeRes:
        """``POST /cost/purge``: delete token prices by id."""
        return await self._post(routes.COST_PURGE, req, CostPurgeRes)
