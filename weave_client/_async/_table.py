"""``AsyncTable``: a handle on one version of a server-side table.

Rows live on the server; the handle holds only refs. Iterating fetches rows a
page at a time, so memory stays flat however long the table is. Tables are
content-addressed: appending makes a new version (a new digest) and, for a
named table, publishes it as the new latest version of that name.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from .._errors import NotFoundError
from .._models import TableRowSchema
from .._refs import ObjectRef, TableRef

if TYPE_CHECKING:
    from ._tables import AsyncTables

__all__ = ["AsyncTable"]

ROWS_PAGE_SIZE = 1000
"""Rows fetched per request while iterating (bounded memory, few round trips)."""


class AsyncTable:
    """One version of a table: iterate it, count it, index it, append to it.

    ``name``/``ref`` are set for a table published under a name (``client.table(name,
    rows)``); ``table_ref`` names the row data itself.
    """

    def __init__(
        self,
        tables: AsyncTables,
        table_ref: TableRef,
        *,
        name: str | None = None,
        ref: ObjectRef | None = None,
    ) -> None:
        self._tables = tables
        self.table_ref = table_ref
        self.name = name
        self.ref = ref

    def __repr__(self) -> str:
        where = self.ref.uri() if self.ref is not None else self.table_ref.uri()
        return f"{type(self).__name__}({where})"

    @property
    def digest(self) -> str:
        """The digest of this version's rows (the table digest)."""
        return self.table_ref.digest

    @property
    def project_id(self) -> str:
        """``"entity/project"`` of the project holding the table."""
        return self.table_ref.project_id

    async def count(self) -> int:
        """The number of rows."""
        return await self._tables.count(self.table_ref)

    async def _ensure_exists(self) -> None:
        """``NotFoundError`` naming this table when the server holds no such table."""
        try:
            await self.count()
        except NotFoundError as e:
            raise NotFoundError(
                f"no table {self.table_ref.uri()} on the server",
                status_code=e.status_code,
                route=e.route,
                body=e.body,
                request_id=e.request_id,
            ) from e

    async def _query(self, offset: int, limit: int) -> list[TableRowSchema]:
        rows = await self._tables.query(self.table_ref, offset, limit)
        if not rows and offset == 0 and limit > 0:
            # Servers answer an unknown digest with no rows, as for an empty table;
            # the row count tells the two apart.
            await self._ensure_exists()
        return rows

    async def _raw_rows(self, page_size: int = ROWS_PAGE_SIZE) -> AsyncIterator[TableRowSchema]:
        offset = 0
        while True:
            rows = await self._query(offset, page_size)
            for row in rows:
                yield row
            if len(rows) < page_size:
                return
            offset += len(rows)

    async def _iter_rows(self) -> AsyncIterator[Any]:
        async for row in self._raw_rows():
            yield await self._tables.decode_row(row.val, self.project_id)

    def __aiter__(self) -> AsyncIterator[Any]:
        """Iterate over the rows in order, fetched a page at a time."""
        return self._iter_rows()

    async def rows(self, offset: int = 0, limit: int | None = None) -> list[Any]:
        """A slice of rows as a list (all remaining rows when ``limit`` is None)."""
        if offset < 0:
            raise ValueError(f"offset must be >= 0, got {offset!r}")
        if limit is not None and limit < 0:
            raise ValueError(f"limit must be >= 0, got {limit!r}")
        out: list[Any] = []
        while limit is None or len(out) < limit:
            want = ROWS_PAGE_SIZE if limit is None else min(ROWS_PAGE_SIZE, limit - len(out))
            page = await self._query(offset + len(out), want)
            for r in page:
                out.append(await self._tables.decode_row(r.val, self.project_id))
            if len(page) < want:
                break
        return out

    async def _row_at(self, index: int) -> TableRowSchema:
        if not isinstance(index, int) or isinstance(index, bool):
            raise TypeError(f"table index must be an int, got {type(index).__name__}")
        position = index
        if position < 0:
            position += await self.count()
        rows = await self._query(position, 1) if position >= 0 else []
        if not rows:
            raise IndexError(f"table index {index} out of range for {self.table_ref.uri()}")
        return rows[0]

    async def __getitem__(self, index: int) -> Any:
        """The row at ``index`` (negative counts from the end); ``IndexError`` if out of
        range, ``NotFoundError`` if the server holds no such table."""
        row = await self._row_at(index)
        return await self._tables.decode_row(row.val, self.project_id)

    async def row_ref(self, index: int) -> TableRef:
        """The ref of the row at ``index``: ``weave:///e/p/table/{digest}/id/{row_digest}``."""
        row = await self._row_at(index)
        return self.table_ref.with_id(row.digest)

    async def row_digests(self) -> list[str]:
        """The digest of every row, in order."""
        return [row.digest async for row in self._raw_rows()]

    async def append(self, row: Mapping[str, Any]) -> AsyncTable:
        """Append one row, making a new table version, and point this handle at it.

        A named table is republished, so ``client.table(name)`` returns the new
        version. Returns ``self``.
        """
        if not isinstance(row, Mapping):
            raise TypeError(f"a table row must be a dict, got {type(row).__name__}")
        table_ref = await self._tables.append(self.table_ref, [row])
        ref = self.ref
        if self.name is not None:
            ref = await self._tables.publish(self.name, table_ref)
        self.table_ref = table_ref
        self.ref = ref
        return self

    async def refresh(self) -> AsyncTable:
        """Point a named table at its latest version; returns ``self``."""
        if self.name is None:
            return self
        latest = await self._tables.read(self.name, "latest", self.project_id)
        self.table_ref, self.ref = latest.table_ref, latest.ref
        return self
