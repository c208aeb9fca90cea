"""Feedback routes (``/feedback/*``) over the feedback store."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from ... import _routes as routes
from ..._models import (
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
from .._feedback import FeedbackStore
from ._reply import json_reply

__all__ = ["router"]


def router(feedback: FeedbackStore) -> APIRouter:
    """The feedback routes over ``feedback``."""
    r = APIRouter()

    @r.post(routes.FEEDBACK_CREATE)
    def feedback_create(req: FeedbackCreateReq) -> FeedbackCreateRes:
        return FeedbackCreateRes.model_validate(feedback.create(req))

    @r.post(routes.FEEDBACK_BATCH_CREATE)
    def feedback_batch_create(req: FeedbackCreateBatchReq) -> FeedbackCreateBatchRes:
        return FeedbackCreateBatchRes.model_validate({"res": feedback.create_batch(req.batch)})

    @r.post(routes.FEEDBACK_QUERY)
    def feedback_query(req: FeedbackQueryReq) -> Response:
        return json_reply(FeedbackQueryRes(result=feedback.query(req)).model_dump_json())

    @r.post(routes.FEEDBACK_PURGE)
    def feedback_purge(req: FeedbackPurgeReq) -> FeedbackPurgeRes:
        feedback.purge(req)
        return FeedbackPurgeRes()

    @r.post(routes.FEEDBACK_REPLACE)
    def feedback_replace(req: FeedbackReplaceReq) -> FeedbackReplaceRes:
        return FeedbackReplaceRes.model_validate(feedback.replace(req))

    return r
