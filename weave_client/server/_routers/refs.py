"""The ref route: ``/refs/read_batch`` over the ref store."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from ... import _routes as routes
from ..._models import RefsReadBatchReq, RefsReadBatchRes
from .._refs import RefStore
from ._reply import json_reply

__all__ = ["router"]


def router(refs: RefStore) -> APIRouter:
    """The ref route over ``refs``."""
    r = APIRouter()

    @r.post(routes.REFS_READ_BATCH)
    def refs_read_batch(req: RefsReadBatchReq) -> Response:
        vals = refs.refs_read_batch(req.refs)
        return json_reply(RefsReadBatchRes(vals=vals).model_dump_json())

    return r
