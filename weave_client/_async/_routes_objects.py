"""The objects, refs and files routes of the trace API.

A mixin of ``AsyncAPIClient`` (one method per route, named and typed as weave's
``TraceServerInterface``); every method goes through the client's transport core.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from .. import _routes as routes
from .._models import (
    FileContentReadReq,
    FileContentReadRes,
    FileCreateReq,
    FileCreateRes,
    ObjCreateReq,
    ObjCreateRes,
    ObjDeleteReq,
    ObjDeleteRes,
    ObjQueryReq,
    ObjQueryRes,
    ObjReadReq,
    ObjReadRes,
    RefsReadBatchReq,
    RefsReadBatchRes,
)

if TYPE_CHECKING:
    from pydantic import BaseModel

__all__ = ["AsyncObjectsRoutes"]

T = TypeVar("T")


class AsyncObjectsRoutes:
    """The ``/obj/*``, ``/objs/*``, ``/refs/*`` and ``/file/*`` routes of ``AsyncAPIClient``."""

    if TYPE_CHECKING:  # the transport core, defined by AsyncAPIClient

        async def _post(self, path: str, req: BaseModel, cast_to: type[T]) -> T: ...
        async def _post_raw(
            self, path: str, body: BaseModel, *, accept: str | None = None
        ) -> bytes: ...
        async def _post_form(
            self, path: str, data: Mapping[str, Any], files: Mapping[str, Any], cast_to: type[T]
        ) -> T: ...

    async def obj_create(self, req: ObjCreateReq) -> ObjCreateRes:
        """``POST /obj/create``: store an object version; returns its digest."""
        return await self._post(routes.OBJ_CREATE, req, ObjCreateRes)

    async def obj_read(self, req: ObjReadReq) -> ObjReadRes:
        """``POST /obj/read``: one object version by digest, ``latest`` or ``v{N}``."""
        return await self._post(routes.OBJ_READ, req, ObjReadRes)

    async def objs_query(self, req: ObjQueryReq) -> ObjQueryRes:
        """``POST /objs/query``: object versions matching a filter."""
        return await self._post(routes.OBJS_QUERY, req, ObjQueryRes)

    async def obj_delete(self, req: ObjDeleteReq) -> ObjDeleteRes:
        """``POST /obj/delete``: delete some or all versions of an object."""
        return await self._post(routes.OBJ_DELETE, req, ObjDeleteRes)

    async def refs_read_batch(self, req: RefsReadBatchReq) -> RefsReadBatchRes:
        """``POST /refs/read_batch``: the values behind many ``weave:///`` refs."""
        return await self._post(routes.REFS_READ_BATCH, req, RefsReadBatchRes)

    async def file_create(self, req: FileCreateReq) -> FileCreateRes:
        """``POST /file/create`` (multipart ``project_id`` + ``file``): store bytes."""
        return await self._post_form(
            routes.FILE_CREATE,
            {"project_id": req.project_id},
            {"file": (req.name, req.content)},
            FileCreateRes,
        )

    async def file_content_read(self, req: FileContentReadReq) -> FileContentReadRes:
        """``POST /file/content``: a stored file's bytes."""
        content = await self._post_raw(routes.FILE_CONTENT, req, accept="application/octet-stream")
        return FileContentReadRes(content=content)
