"""Reading what a ref points at: objects, tables, calls, and the paths inside them.

``get()`` of the client: an object (a saved Dataset as a ``AsyncDataset``), a table as
a ``AsyncTable``, a call as a ``AsyncCall``, and extra paths (``/key/x/index/0``, ``/id/<row>``)
walked through values, tables and nested refs. A path that leads nowhere in a value
the client read raises ``RefPathError`` (no request failed); an HTTP answer that
says "not there" raises ``NotFoundError`` (``CallNotFoundError`` for a call).
"""

from __future__ import annotations

import dataclasses
import weakref
from typing import TYPE_CHECKING, Any

from .._cache import MISSING
from .._errors import InvalidRefError, NotFoundError, RefPathError
from .._models import RefsReadBatchReq, TableQueryReq, TableRowFilter
from .._refs import CallRef, ObjectRef, Ref, TableRef, is_ref_uri, parse_ref
from .._serialize import WeaveObject
from ._calls import AsyncCalls
from ._dataset import AsyncDataset
from ._objects import AsyncObjects
from ._session import AsyncSession
from ._tables import AsyncTables

if TYPE_CHECKING:
    from ._client import AsyncWeaveClient

__all__ = ["AsyncRefsReader"]


class AsyncRefsReader:
    """Resolve refs of a client's session (calls are read through the calls area)."""

    def __init__(
        self,
        session: AsyncSession,
        objects: AsyncObjects,
        tables: AsyncTables,
        calls: AsyncCalls,
        client: AsyncWeaveClient,
    ) -> None:
        self._session = session
        self._objects = objects
        self._tables = tables
        self._calls = calls
        # The client a saved Dataset read back belongs to (held weakly: the client
        # holds this reader; see AsyncCalls).
        self._client_ref = weakref.ref(client)

    async def get(self, ref: ObjectRef | TableRef | CallRef | str) -> Any:
        """``client.get``: the value ``ref`` (or its URI) points at."""
        if isinstance(ref, str):
            ref = parse_ref(ref)
        if not isinstance(ref, Ref):
            raise TypeError(
                f"get() takes an ObjectRef, TableRef, CallRef or weave:/// URI, "
                f"got {type(ref).__name__}"
            )
        await self._session.ready()
        if isinstance(ref, CallRef):
            if ref.extra:
                return await self._read_ref_path(ref.uri(), ref.project_id)
            return await self._calls.read(ref.id, ref.project_id)
        if isinstance(ref, TableRef):
            if ref.extra:
                return await self._read_table_path(ref)
            return self._tables.handle(ref)
        assert isinstance(ref, ObjectRef)
        val, digest = await self._objects.read(ref.project_id, ref.name, ref.digest)
        if ref.extra:
            # Let the server walk the path: it crosses into tables and nested refs.
            resolved = dataclasses.replace(ref, digest=digest)
            return await self._read_ref_path(resolved.uri(), ref.project_id)
        value = await self.decode(val, ref.project_id)
        if isinstance(value, WeaveObject) and value._class_name == "Dataset":
            # A saved Dataset comes back as one, its rows read lazily.
            return AsyncDataset.from_stored(value, self._client(), dataclasses.replace(ref, digest=digest))
        return value

    def _client(self) -> AsyncWeaveClient:
        client = self._client_ref()
        if client is None:  # pragma: no cover - the client calls in through itself
            raise ReferenceError("the client of this reader was garbage-collected")
        return client

    async def decode(self, val: Any, project_id: str) -> Any:
        """A stored value as a client value; a table ref value (a published table) as a Table."""
        if is_ref_uri(val):
            target = parse_ref(val)
            if isinstance(target, TableRef) and not target.extra:
                return self._tables.handle(target)
        return await self._objects.decode_stored(val, project_id)

    async def _read_table_path(self, ref: TableRef) -> Any:
        """A row of a table (``/id/{row_digest}`` or ``/index/{i}``), then the rest of the path.

        Resolved here rather than by ``/refs/read_batch``: weave's own server does
        not read table refs there.
        """
        edge, value, rest = ref.extra[0], ref.extra[1], ref.extra[2:]
        table = self._tables.handle(ref.without_extra())
        if edge == "id":
            res = await self._session.api.table_query(
                TableQueryReq(
                    project_id=ref.project_id,
                    digest=ref.digest,
                    filter=TableRowFilter(row_digests=[value]),
                    limit=1,
                )
            )
            if not res.rows:
                raise RefPathError(
                    f"no row {value} in table {ref.without_extra().uri()}",
                    uri=ref.uri(),
                    path=f"/id/{value}",
                )
            val = res.rows[0].val
        elif edge == "index":
            try:
                row = await table._row_at(int(value))
            except IndexError as e:
                raise RefPathError(str(e), uri=ref.uri(), path=f"/index/{value}") from None
            val = row.val
        else:
            raise InvalidRefError(
                f"a table ref continues with /id/{{row_digest}} or /index/{{i}}, "
                f"not /{edge}/: {ref.uri()}"
            )
        return await self._walk(val, rest, ref)

    async def _walk(self, val: Any, path: tuple[str, ...], ref: Ref) -> Any:
        """Follow ``key``/``attr``/``index`` edges through a stored value, crossing refs."""
        for i in range(0, len(path), 2):
            if is_ref_uri(val):
                target = parse_ref(val)
                return await self.get(target._with_extra(*path[i:]))
            edge, value = path[i], path[i + 1]
            try:
                if edge == "index":
                    val = val[int(value)]
                elif edge in ("key", "attr") and isinstance(val, dict):
                    val = val[value]
                else:
                    raise TypeError(f"cannot follow /{edge}/ into a {type(val).__name__}")
            except (KeyError, IndexError, TypeError, ValueError) as e:
                raise RefPathError(
                    f"nothing at /{edge}/{value} in {ref.uri()}: {e}",
                    uri=ref.uri(),
                    path=f"/{edge}/{value}",
                ) from None
        return await self.decode(val, ref.project_id)

    async def _read_ref_path(self, uri: str, project_id: str) -> Any:
        cache = self._session.cache
        cached = cache.get("ref", project_id, uri, _digest_of(uri))
        if cached is not MISSING:
            return await self.decode(cached, project_id)
        try:
            res = await self._session.api.refs_read_batch(RefsReadBatchReq(refs=[uri]))
        except NotFoundError as e:
            raise NotFoundError(
                f"nothing stored at {uri}",
                status_code=e.status_code,
                route=e.route,
                body=e.body,
                request_id=e.request_id,
            ) from e
        if not res.vals:
            raise RefPathError(f"nothing stored at {uri}", uri=uri, path="")
        val = res.vals[0]
        cache.put("ref", project_id, uri, _digest_of(uri), val)
        return await self.decode(val, project_id)


def _digest_of(uri: str) -> str:
    """The content digest of a ref URI's base (``latest``/``vN`` are not digests)."""
    ref = parse_ref(uri)
    if isinstance(ref, (ObjectRef, TableRef)):
        return ref.digest
    return "latest"  # call refs are mutable: never cached
