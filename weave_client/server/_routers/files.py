"""File routes (``/file/create``, ``/file/content``) over the file store."""

from __future__ import annotations

from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Form, UploadFile
from fastapi.responses import Response

from ... import _routes as routes
from ..._models import FileContentReadReq, FileCreateRes
from .._files import FileStore

__all__ = ["router"]


def router(files: FileStore) -> APIRouter:
    """The file routes over ``files``."""
    r = APIRouter()

    @r.post(routes.FILE_CREATE)
    @r.post(routes.FILE_CREATE_ALIAS, include_in_schema=False)
    async def file_create(project_id: Annotated[str, Form()], file: UploadFile) -> FileCreateRes:
        content = await file.read()
        digest = await anyio.to_thread.run_sync(files.file_create, project_id, content)
        return FileCreateRes(digest=digest)

    @r.post(routes.FILE_CONTENT)
    @r.post(routes.FILE_CONTENT_ALIAS, include_in_schema=False)
    def file_content(req: FileContentReadReq) -> Response:
        return Response(
            content=files.file_content(req.project_id, req.digest),
            media_type="application/octet-stream",
        )

    return r
