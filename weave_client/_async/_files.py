"""Files: content-addressed bytes (``/file/create``, ``/file/content``), cached by digest."""

from __future__ import annotations

import base64
import logging
from collections.abc import Mapping

from .. import _routes as routes
from .._cache import MISSING, is_digest
from .._digest import bytes_digest
from .._errors import APIResponseValidationError, NotFoundError
from .._models import FileContentReadReq, FileCreateReq
from .._serialize import PendingFile
from ._session import AsyncSession

__all__ = ["AsyncFiles"]

logger = logging.getLogger("weave_client")


class AsyncFiles:
    """Upload and read files of a client's session (bytes values, op sources)."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    def _remember(self, project_id: str, digest: str, content: bytes) -> None:
        self._session.cache.put(
            "file", project_id, "", digest, base64.b64encode(content).decode("ascii")
        )

    async def upload(self, files: Mapping[str, PendingFile], project_id: str) -> None:
        """Upload the file content encoded values refer to, skipping known ones."""
        for digest, pending in files.items():
            if self._session.cache.get("file", project_id, "", digest) is not MISSING:
                continue
            res = await self._session.api.file_create(
                FileCreateReq(project_id=project_id, name=pending.name, content=pending.content)
            )
            if res.digest != digest:
                logger.warning(
                    "weave_client: server digest %s differs from the local %s for file %s",
                    res.digest,
                    digest,
                    pending.name,
                )
            self._remember(project_id, digest, pending.content)

    async def read(self, project_id: str, digest: str) -> bytes:
        """The content of file ``digest`` of ``project_id`` (cached by digest)."""
        cached = self._session.cache.get("file", project_id, "", digest)
        if cached is not MISSING:
            return base64.b64decode(cached)
        res = await self._session.api.file_content_read(
            FileContentReadReq(project_id=project_id, digest=digest)
        )
        self._remember(project_id, digest, res.content)
        return res.content

    async def save_file(self, content: bytes, name: str = "file") -> str:
        """``client.save_file``: store ``content``; the server's digest, checked."""
        if not isinstance(content, (bytes, bytearray, memoryview)):
            raise TypeError(
                f"save_file(content=...) takes bytes, got {type(content).__name__}"
                + (" (encode text first, e.g. text.encode())" if isinstance(content, str) else "")
            )
        if not isinstance(name, str):
            raise TypeError(f"save_file(name=...) takes a str, got {type(name).__name__}")
        if not name:
            raise ValueError("save_file(name=...) must not be empty")
        data = bytes(content)
        digest = bytes_digest(data)
        session = self._session
        await session.ready()
        res = await session.api.file_create(
            FileCreateReq(project_id=session.project_id, name=name, content=data)
        )
        if res.digest != digest:
            # Returning it would hand out a digest that names other content than ours.
            raise APIResponseValidationError(
                f"the server stored file {name!r} under digest {res.digest!r}, "
                f"but its content digests to {digest!r}",
                route=routes.FILE_CREATE,
            )
        self._remember(session.project_id, digest, data)
        return digest

    async def read_file(self, digest: str) -> bytes:
        """``client.read_file``: the content of file ``digest`` of the client's project."""
        if not isinstance(digest, str):
            raise TypeError(f"read_file(digest=...) takes a str, got {type(digest).__name__}")
        if not is_digest(digest):
            raise ValueError(
                f"read_file(digest=...) takes a file digest as save_file() returns, got {digest!r}"
            )
        session = self._session
        await session.ready()
        try:
            return await self.read(session.project_id, digest)
        except NotFoundError as e:
            raise NotFoundError(
                f"no file with digest {digest!r} in {session.project_id}",
                status_code=e.status_code,
                route=e.route,
                body=e.body,
                request_id=e.request_id,
            ) from e
