"""Tables: rows uploaded in chunks under the server's request limit, published by name.

A 413 from a server with a lower limit than ours halves the request size for the
rest of the client's life, so any number of rows gets through. ``AsyncTable`` handles
read their rows through this area.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from .._cache import MISSING
from .._errors import RequestTooLargeError, UnsaveableValueError
from .._models import (
    TableAppendSpec,
    TableAppendSpecPayload,
    TableCreateReq,
    TableQueryReq,
    TableQueryStatsReq,
    TableRowSchema,
    TableSchemaForInsert,
    TableUpdateReq,
)
from .._refs import ObjectRef, TableRef, is_ref_uri, parse_ref, validate_object_name
from .._saved import SavedObjects
from .._serialize import EncodedValue, PendingFile, encode_for_save
from ._files import AsyncFiles
from ._objects import AsyncObjects
from ._session import AsyncSession
from ._table import AsyncTable

__all__ = ["AsyncTables"]

logger = logging.getLogger("weave_client")

_APPEND_WRAPPER_BYTES = len('{"append":{"row":}},')


class AsyncTables:
    """Create, publish, read and append to tables of a client's session."""

    def __init__(
        self,
        session: AsyncSession,
        files: AsyncFiles,
        objects: AsyncObjects,
        saved: SavedObjects,
        max_request_bytes: int,
    ) -> None:
        self._session = session
        self._files = files
        self._objects = objects
        self._saved = saved
        self.max_request_bytes = max_request_bytes

    # --- what Table handles use ------------------------------------------------

    async def count(self, table_ref: TableRef) -> int:
        """The number of rows of a table version (cached: a digest names its rows)."""
        cache = self._session.cache
        project_id, digest = table_ref.project_id, table_ref.digest
        cached = cache.get("table-count", project_id, "", digest)
        if cached is not MISSING:
            return int(cached)
        res = await self._session.api.table_query_stats(
            TableQueryStatsReq(project_id=project_id, digest=digest)
        )
        cache.put("table-count", project_id, "", digest, res.count)
        return res.count

    async def query(self, table_ref: TableRef, offset: int, limit: int) -> list[TableRowSchema]:
        """A page of a table version's rows (cached: a digest names its rows forever)."""
        cache = self._session.cache
        project_id, digest = table_ref.project_id, table_ref.digest
        page = f"{offset}:{limit}"
        cached = cache.get("table-page", project_id, page, digest)
        if cached is not MISSING:
            return [TableRowSchema.model_validate(row) for row in cached]
        res = await self._session.api.table_query(
            TableQueryReq(project_id=project_id, digest=digest, offset=offset, limit=limit)
        )
        cache.put("table-page", project_id, page, digest, [r.model_dump() for r in res.rows])
        return res.rows

    async def decode_row(self, val: Any, project_id: str) -> Any:
        """A stored row as a client value."""
        return await self._objects.decode_stored(val, project_id)

    # --- creating and publishing -------------------------------------------------

    async def table(self, name: str, rows: Iterable[Mapping[str, Any]] | None) -> AsyncTable:
        """``client.table``: create and publish ``rows`` as ``name``, or read its latest."""
        validate_object_name(name, what="table name")
        session = self._session
        await session.ready()
        if rows is None:
            return await self.read(name, "latest", session.project_id)
        if isinstance(rows, (str, bytes, Mapping)):
            raise TypeError(f"table rows must be an iterable of dicts, got {type(rows).__name__}")
        table_ref = await self.create(await self.encode_rows(rows))
        ref = await self.publish(name, table_ref)
        return AsyncTable(self, table_ref, name=name, ref=ref)

    async def encode_rows(self, rows: Iterable[Mapping[str, Any]]) -> list[Any]:
        """Encode dict rows as ``save()`` encodes values; upload the files they refer to."""
        out: list[Any] = []
        files: dict[str, PendingFile] = {}
        for i, row in enumerate(rows):
            encoded = _encode_row(row, i, self._saved.ref_of)
            out.append(encoded.json)
            files.update(encoded.files)
        await self._files.upload(files, self._session.project_id)
        return out

    async def read(self, name: str, version: str, project_id: str) -> AsyncTable:
        """The published table ``name`` at ``version``."""
        val, digest = await self._objects.read(project_id, name, version)
        target = parse_ref(val) if is_ref_uri(val) else None
        if not isinstance(target, TableRef):
            raise TypeError(
                f"object {name!r} in {project_id} is not a table (its value is a "
                f"{type(val).__name__}); use get() for it"
            )
        entity, project = project_id.split("/", 1)
        return AsyncTable(self, target, name=name, ref=ObjectRef(entity, project, name, digest))

    def handle(self, table_ref: TableRef) -> AsyncTable:
        """A ``AsyncTable`` handle on ``table_ref`` (nothing is read yet)."""
        return AsyncTable(self, table_ref)

    async def publish(self, name: str, table_ref: TableRef) -> ObjectRef:
        """Publish a table as ``name``: as weave does, an object whose value is its ref."""
        return await self._objects.create(name, table_ref.uri())

    async def create(self, rows: list[Any]) -> TableRef:
        """Store encoded rows as a new table."""
        session = self._session
        return TableRef(session.entity, session.project, await self._upload_rows(rows))

    async def append(self, table_ref: TableRef, rows: Sequence[Mapping[str, Any]]) -> TableRef:
        """Append dict rows to a table version, making a new one."""
        await self._session.ready()
        encoded = await self.encode_rows(rows)
        digest = await self._upload_rows(encoded, table_ref.digest)
        return TableRef(table_ref.entity, table_ref.project, digest)

    async def store_rows_of(self, obj: Any) -> None:
        """Store an object's rows (a Dataset's) as a table, if not there yet, and point
        the object at it (what saving such an object does first)."""
        table_rows = getattr(obj, "_weave_table_rows", None)
        if not callable(table_rows):
            return
        rows = table_rows(self._session.project_id)
        if rows is not None:
            obj._weave_table_saved(await self.create(await self.encode_rows(rows)))

    # --- chunked upload ----------------------------------------------------------

    def chunks(self, rows: list[Any]) -> list[list[Any]]:
        """How ``create`` would split encoded rows at the current request limit."""
        sizes = _row_sizes(rows)
        out: list[list[Any]] = []
        pos = 0
        while pos < len(rows):
            end = self._chunk_end(sizes, pos, 0 if not out else _APPEND_WRAPPER_BYTES)
            out.append(rows[pos:end])
            pos = end
        return out

    def _chunk_end(self, sizes: list[int], start: int, overhead: int) -> int:
        """Where the run of rows from ``start`` must stop to fit in one request.

        ``overhead`` is added per row (an appended row travels wrapped as
        ``{"append":{"row":...}}``). At least one row is always taken.
        """
        # Room for the envelope ({"table": {"project_id": ..., "rows": [...]}}).
        budget = self.max_request_bytes - 1024
        end, total = start, 0
        while end < len(sizes) and (end == start or total + sizes[end] + overhead <= budget):
            total += sizes[end] + overhead
            end += 1
        return end

    async def _upload_rows(self, rows: list[Any], base_digest: str | None = None) -> str:
        """Store rows as a new table (or appended to ``base_digest``); return its digest."""
        api = self._session.api
        sizes = _row_sizes(rows)
        digest = base_digest
        pos = 0
        while digest is None or pos < len(rows):
            overhead = 0 if digest is None else _APPEND_WRAPPER_BYTES
            end = self._chunk_end(sizes, pos, overhead)
            chunk = rows[pos:end]
            try:
                if digest is None:
                    res = await api.table_create(
                        TableCreateReq(
                            table=TableSchemaForInsert(
                                project_id=self._session.project_id, rows=chunk
                            )
                        )
                    )
                    digest = res.digest
                else:
                    updated = await api.table_update(self._append_req(digest, chunk))
                    digest = updated.digest
            except RequestTooLargeError as e:
                if len(chunk) < 2:
                    raise RequestTooLargeError(
                        f"table row {pos} ({sizes[pos]} bytes of JSON) is larger than the "
                        f"server accepts in one request: {e.message}",
                        status_code=e.status_code,
                        route=e.route,
                        body=e.body,
                        request_id=e.request_id,
                    ) from e
                refused = sum(sizes[pos:end]) + overhead * len(chunk)
                logger.info(
                    "weave_client: the server refused %d bytes of table rows (413); "
                    "sending smaller requests",
                    refused,
                )
                self.max_request_bytes = max(2048, min(self.max_request_bytes, refused) // 2)
                continue
            pos = end
        return digest

    def _append_req(self, base_digest: str, rows: list[Any]) -> TableUpdateReq:
        # model_construct: the rows are already encoded, and validating 100,000
        # append specs would cost more than sending them.
        return TableUpdateReq.model_construct(
            project_id=self._session.project_id,
            base_digest=base_digest,
            updates=[
                TableAppendSpec.model_construct(
                    append=TableAppendSpecPayload.model_construct(row=r)
                )
                for r in rows
            ],
        )


def _encode_row(row: Any, index: int, ref_of: Any) -> EncodedValue:
    if not isinstance(row, Mapping):
        raise UnsaveableValueError(
            f"cannot save rows[{index}]: a table row must be a dict, got {type(row).__name__}",
            path=f"rows[{index}]",
            type_name=type(row).__name__,
        )
    try:
        return encode_for_save(row, ref_of=ref_of)
    except UnsaveableValueError as e:
        # Say which row: the encoder's path starts at the row itself.
        raise UnsaveableValueError(
            f"table row {index}: {e}",
            path=f"rows[{index}]{e.path.removeprefix('obj')}",
            type_name=e.type_name,
        ) from None


def _row_sizes(rows: list[Any]) -> list[int]:
    """Each row's size in a request body (its JSON and a separator)."""
    dumps = json.dumps
    return [len(dumps(row).encode("utf-8")) + 2 for row in rows]
