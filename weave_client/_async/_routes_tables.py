"""The tables routes of the trace API: create, update, query, stats.

A mixin of ``AsyncAPIClient`` (one method per route, named and typed as weave's
``TraceServerInterface``); every method goes through the client's transport core.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from .. import _routes as routes
from .._models import (
    TableCreateReq,
    TableCreateRes,
    TableQueryReq,
    TableQueryRes,
    TableQueryStatsReq,
    TableQueryStatsRes,
    TableRowSchema,
    TableUpdateReq,
    TableUpdateRes,
)
from ._streaming import AsyncStream

if TYPE_CHECKING:
    from pydantic import BaseModel

__all__ = ["AsyncTablesRoutes"]

T = TypeVar("T")


class AsyncTablesRoutes:
    """The ``/table/*`` routes of ``AsyncAPIClient``."""

    if TYPE_CHECKING:  # the transport core, defined by AsyncAPIClient

        async def _post(self, path: str, req: BaseModel, cast_to: type[T]) -> T: ...
        def _post_stream(self, path: str, req: BaseModel, item_type: type[T]) -> AsyncStream[T]: ...

    async def table_create(self, req: TableCreateReq) -> TableCreateRes:
        """``POST /table/create``: store rows; returns the table and row digests."""
        return await self._post(routes.TABLE_CREATE, req, TableCreateRes)

    async def table_update(self, req: TableUpdateReq) -> TableUpdateRes:
        """``POST /table/update``: append, pop or insert rows, making a new version."""
        return await self._post(routes.TABLE_UPDATE, req, TableUpdateRes)

    async def table_query(self, req: TableQueryReq) -> TableQueryRes:
        """``POST /table/query``: rows of a table."""
        return await self._post(routes.TABLE_QUERY, req, TableQueryRes)

    def table_query_stream(self, req: TableQueryReq) -> AsyncStream[TableRowSchema]:
        """``POST /table/query_stream``: rows one at a time (flat memory)."""
        return self._post_stream(routes.TABLE_QUERY_STREAM, req, TableRowSchema)

    async def table_query_stats(self, req: TableQueryStatsReq) -> TableQueryStatsRes:
        """``POST /table/query_stats``: the row count of a table."""
        return await self._post(routes.TABLE_QUERY_STATS, req, TableQueryStatsRes)
