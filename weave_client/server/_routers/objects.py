"""Object routes (``/obj/*``, ``/objs/query``) over the object store."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from ... import _routes as routes
from ..._models import (
    ObjCreateReq,
    ObjCreateRes,
    ObjDeleteReq,
    ObjDeleteRes,
    ObjQueryReq,
    ObjQueryRes,
    ObjReadReq,
    ObjReadRes,
)
from .._objects import ObjectStore
from ._reply import json_reply

__all__ = ["router"]


def router(objects: ObjectStore) -> APIRouter:
    """The object routes over ``objects``."""
    r = APIRouter()

    @r.post(routes.OBJ_CREATE)
    def obj_create(req: ObjCreateReq) -> ObjCreateRes:
        return ObjCreateRes(digest=objects.obj_create(req))

    @r.post(routes.OBJ_READ)
    def obj_read(req: ObjReadReq) -> Response:
        return json_reply(ObjReadRes(obj=objects.obj_read(req)).model_dump_json())

    @r.post(routes.OBJS_QUERY)
    def objs_query(req: ObjQueryReq) -> Response:
        return json_reply(ObjQueryRes(objs=objects.objs_query(req)).model_dump_json())

    @r.post(routes.OBJ_DELETE)
    def obj_delete(req: ObjDeleteReq) -> ObjDeleteRes:
        return ObjDeleteRes(num_deleted=objects.obj_delete(req))

    return r
