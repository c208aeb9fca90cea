"""Calls: queries, JSONL streams, pages, batches, live events, threads, reads, deletes.

Every read first sends the client's pending call records (read-your-writes).
"""

from __future__ import annotations

import datetime
import logging
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from .._current_call import MAX_DISPLAY_NAME_LENGTH
from .._errors import CallNotFoundError, NotFoundError
from .._models import (
    CallReadReq,
    CallSchema,
    CallsDeleteReq,
    CallsFilter,
    CallsQueryReq,
    CallUpdateReq,
    Query,
    SortBy,
    ThreadSchema,
    ThreadsQueryFilter,
    ThreadsQueryReq,
)
from .._query_args import (
    SortByLike,
    calls_query_req,
    check_page,
    check_thread_sort_field,
    sort_by_entries,
)
from ._call import AsyncCall
from ._live_calls import AsyncLiveCalls
from ._pagination import AsyncBatchIterator, AsyncPaginator
from ._session import AsyncSession
from ._streaming import AsyncStream

if TYPE_CHECKING:
    from ._client import AsyncWeaveClient

__all__ = ["AsyncCallStream", "AsyncCalls", "AsyncCallsMethods", "start_order"]

logger = logging.getLogger("weave_client")


class AsyncCallStream:
    """Calls streamed from ``/calls/stream_query``, one JSONL line at a time.

    Iterate it with ``async for``; memory holds one call however many
    arrive. The request is sent on the first item, after the client's pending
    call records are flushed. Close it early (or use it in a ``with`` block) to
    release the connection.
    """

    def __init__(self, client: AsyncWeaveClient, session: AsyncSession, req: CallsQueryReq) -> None:
        self._client = client
        self._session = session
        self._req = req
        self._calls: AsyncGenerator[AsyncCall, None] | None = None
        self._closed = False
        self._stream: AsyncStream[CallSchema] | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(project_id={self._req.project_id!r})"

    async def _iterate(self) -> AsyncGenerator[AsyncCall, None]:
        await self._session.before_calls_read()
        self._stream = stream = self._session.api.calls_query_stream(self._req)
        async with stream:
            async for schema in stream:
                yield AsyncCall._from_schema(self._client, schema)

    def __aiter__(self) -> AsyncIterator[AsyncCall]:
        return self

    async def __anext__(self) -> AsyncCall:
        if self._closed:
            raise StopAsyncIteration
        if self._calls is None:
            self._calls = self._iterate()
        return await anext(self._calls)

    async def aclose(self) -> None:
        """Stop reading and release the connection."""
        self._closed = True
        if self._calls is not None:
            await self._calls.aclose()  # leaves the stream's `with` block
        if self._stream is not None:
            await self._stream.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class AsyncCalls:
    """The calls of a client's project (the client's ``calls*``, ``call``, ``threads``...)."""

    def __init__(self, client: AsyncWeaveClient, session: AsyncSession) -> None:
        # Calls read back refer to the client (children(), feedback, display names).
        # Held weakly: the client holds this area, and a cycle would keep a client
        # nobody references alive (and the process-wide default) until a collection.
        self._client_ref = weakref.ref(client)
        self._session = session

    @property
    def _client(self) -> AsyncWeaveClient:
        client = self._client_ref()
        if client is None:  # pragma: no cover - the client calls in through itself
            raise ReferenceError("the client of this calls area was garbage-collected")
        return client

    def request(
        self, filter: CallsFilter | Mapping[str, Any] | None, filter_fields: Mapping[str, Any],
        **options: Any,
    ) -> CallsQueryReq:
        """The ``/calls/query`` request of ``calls()``'s arguments, checked."""
        session = self._session
        return calls_query_req(session.entity, session.project, filter, filter_fields, **options)

    async def query(self, req: CallsQueryReq) -> list[AsyncCall]:
        """The calls one ``/calls/query`` request returns."""
        await self._session.before_calls_read()
        res = await self._session.api.calls_query(req)
        return [AsyncCall._from_schema(self._client, c) for c in res.calls]

    def stream(self, req: CallsQueryReq) -> AsyncCallStream:
        """The calls of ``req`` streamed from ``/calls/stream_query``."""
        return AsyncCallStream(self._client, self._session, req)

    def pages(
        self, base: CallsQueryReq, page_size: int, limit: int | None, offset: int
    ) -> AsyncPaginator[AsyncCall]:
        """The calls of ``base`` a page at a time."""

        async def fetch(page_offset: int, page_limit: int) -> list[AsyncCall]:
            return await self.query(
                base.model_copy(update={"offset": page_offset, "limit": page_limit})
            )

        return AsyncPaginator(fetch, page_size=page_size, limit=limit, offset=offset)

    def batches(self, req: CallsQueryReq, batch_size: int) -> AsyncBatchIterator[AsyncCall]:
        """The calls of ``req`` in lists of ``batch_size``, streamed."""
        stream = self.stream(req)
        return AsyncBatchIterator(lambda: stream, batch_size=batch_size)

    def live(
        self, filter: CallsFilter | None, since: int | None, poll_interval: float
    ) -> AsyncLiveCalls:
        """Call events as they happen (``client.calls_live``)."""
        if since is not None and (not isinstance(since, int) or since < 0):
            raise ValueError(f"since must be a non-negative int or None, got {since!r}")
        if not poll_interval > 0:
            raise ValueError(f"poll_interval must be a positive number, got {poll_interval!r}")
        if filter is not None and (filter.input_refs or filter.output_refs):
            raise ValueError("calls_live(): input_refs and output_refs filters are not supported")
        return AsyncLiveCalls(self._client, filter, since, poll_interval)

    async def threads(
        self,
        thread_ids: Sequence[str] | None,
        after: datetime.datetime | None,
        before: datetime.datetime | None,
        limit: int | None,
        offset: int | None,
        sort_by: SortByLike | None,
    ) -> list[ThreadSchema]:
        """``client.threads``: the project's conversation threads with their figures."""
        check_page(limit, offset)
        if isinstance(thread_ids, str):
            raise TypeError(f"thread_ids must be a list of ids, got the str {thread_ids!r}")
        thread_filter = None
        if thread_ids is not None or after is not None or before is not None:
            thread_filter = ThreadsQueryFilter(
                thread_ids=list(thread_ids) if thread_ids is not None else None,
                after_datetime=after,
                before_datetime=before,
            )
        req = ThreadsQueryReq(
            project_id=self._session.project_id,
            filter=thread_filter,
            limit=limit,
            offset=offset,
            sort_by=sort_by_entries(sort_by, check_thread_sort_field),
        )
        await self._session.before_calls_read()
        return await self._session.api.threads_query(req)

    async def read(self, call_id: str, project_id: str) -> AsyncCall:
        """One call by id; ``CallNotFoundError`` when the server holds none."""
        await self._session.before_calls_read()
        try:
            res = await self._session.api.call_read(CallReadReq(project_id=project_id, id=call_id))
        except NotFoundError as e:  # a server that answers 404 rather than {"call": null}
            raise CallNotFoundError(call_id, project_id) from e
        if res.call is None:
            raise CallNotFoundError(call_id, project_id)
        return AsyncCall._from_schema(self._client, res.call)

    async def delete(self, call: AsyncCall | str | Iterable[AsyncCall | str]) -> None:
        """``client.delete_call``: calls (or ids) with all their descendants."""
        items: list[AsyncCall | str] = [call] if isinstance(call, (AsyncCall, str)) else list(call)
        ids = []
        for item in items:
            if isinstance(item, AsyncCall):
                ids.append(item.id)
            elif isinstance(item, str) and item:
                ids.append(item)
            else:
                raise TypeError(f"delete_call() takes Calls or call ids, got {item!r}")
        if not ids:
            return
        await self._session.before_calls_read()
        await self._session.api.calls_delete(
            CallsDeleteReq(project_id=self._session.project_id, call_ids=ids)
        )

    async def set_display_name(self, call_id: str, name: str | None) -> str | None:
        """Store a call's display name (None removes it); returns the name as stored."""
        if name is not None and len(name) > MAX_DISPLAY_NAME_LENGTH:
            logger.warning(
                "weave_client: display name of call %s is %d characters; truncated to %d",
                call_id,
                len(name),
                MAX_DISPLAY_NAME_LENGTH,
            )
            name = name[: MAX_DISPLAY_NAME_LENGTH - 3] + "..."
        await self._session.before_calls_read()
        # As weave's client: the server stores "no display name" as "".
        await self._session.api.call_update(
            CallUpdateReq(
                project_id=self._session.project_id, call_id=call_id, display_name=name or ""
            )
        )
        return name


def start_order() -> list[SortBy]:
    """The order of ``calls_pages`` without ``sort_by``: by start, then id."""
    return [SortBy(field="started_at", direction="asc"), SortBy(field="id", direction="asc")]


class AsyncCallsMethods:
    """The client's calls methods (``AsyncWeaveClient`` derives from this)."""

    _calls: AsyncCalls
    _session: AsyncSession

    async def calls(
        self,
        filter: CallsFilter | Mapping[str, Any] | None = None,
        limit: int | None = None,
        offset: int | None = None,
        sort_by: SortByLike | None = None,
        query: Query | Mapping[str, Any] | None = None,
        columns: Sequence[str] | None = None,
        *,
        include_costs: bool = False,
        include_feedback: bool = False,
        **filter_fields: Any,
    ) -> list[AsyncCall]:
        """Query this project's calls; returns a list of ``AsyncCall``.

        - ``filter``: a ``CallsFilter``, a dict, or its fields as keywords
          (``op_names=["predict"]``, ``trace_roots_only=True``, ``parent_ids=[...]``);
          op names may be plain names or op refs.
        - ``sort_by``: ``"started_at"``, ``"-started_at"``, ``"summary.weave.latency_ms desc"``,
          ``SortBy``/dicts, or a list of them.
        - ``query``: a ``Query`` or its dict (``{"$expr": {...}}``, or the expression).
        - ``columns``: fetch only these fields.

        Pending traced calls are sent first, so the result includes them.
        """
        req = self._calls.request(
            filter,
            filter_fields,
            limit=limit,
            offset=offset,
            sort_by=sort_by,
            query=query,
            columns=columns,
            include_costs=include_costs,
            include_feedback=include_feedback,
        )
        return await self._calls.query(req)

    def calls_stream(
        self,
        filter: CallsFilter | Mapping[str, Any] | None = None,
        limit: int | None = None,
        offset: int | None = None,
        sort_by: SortByLike | None = None,
        query: Query | Mapping[str, Any] | None = None,
        columns: Sequence[str] | None = None,
        **filter_fields: Any,
    ) -> AsyncCallStream:
        """Stream calls from ``/calls/stream_query`` with flat memory (arguments as ``calls()``)."""
        req = self._calls.request(
            filter,
            filter_fields,
            limit=limit,
            offset=offset,
            sort_by=sort_by,
            query=query,
            columns=columns,
        )
        return self._calls.stream(req)

    def calls_pages(
        self,
        page_size: int = 100,
        filter: CallsFilter | Mapping[str, Any] | None = None,
        limit: int | None = None,
        offset: int = 0,
        sort_by: SortByLike | None = None,
        query: Query | Mapping[str, Any] | None = None,
        columns: Sequence[str] | None = None,
        **filter_fields: Any,
    ) -> AsyncPaginator[AsyncCall]:
        """Calls a page at a time: iterate pages (lists with ``.has_next``) or call
        ``next_page()``. Without ``sort_by`` pages are in start order."""
        base = self._calls.request(
            filter,
            filter_fields,
            sort_by=sort_by if sort_by is not None else start_order(),
            query=query,
            columns=columns,
        )
        return self._calls.pages(base, page_size, limit, offset)

    def calls_batches(
        self,
        batch_size: int = 100,
        filter: CallsFilter | Mapping[str, Any] | None = None,
        limit: int | None = None,
        offset: int | None = None,
        sort_by: SortByLike | None = None,
        query: Query | Mapping[str, Any] | None = None,
        columns: Sequence[str] | None = None,
        **filter_fields: Any,
    ) -> AsyncBatchIterator[AsyncCall]:
        """Calls in lists of ``batch_size`` (the last may be shorter), streamed."""
        req = self._calls.request(
            filter,
            filter_fields,
            limit=limit,
            offset=offset,
            sort_by=sort_by,
            query=query,
            columns=columns,
        )
        return self._calls.batches(req, batch_size)

    def calls_live(
        self,
        filter: CallsFilter | Mapping[str, Any] | None = None,
        since: int | None = None,
        *,
        poll_interval: float = 1.0,
        **filter_fields: Any,
    ) -> AsyncLiveCalls:
        """Call events as they happen: an endless iterator of ``AsyncCallEvent`` (kind, seq, call).

        - ``filter``: as ``calls()`` (op names, trace ids, ``trace_roots_only``,
          thread ids, ...); ``input_refs``/``output_refs`` are not supported.
        - ``since``: the ``seq`` of the last event you handled, to get every later
          one (0: all stored calls first); None: events from entering its ``with``
          block (or, without one, from the first ``next``). The local server keeps
          its newest 1,000,000 events: from further back, a warning names the
          seqs it no longer has.

        On the local server events come over ``/calls/watch``; a dropped
        connection is retried with backoff and resumes after the last event
        delivered. On a server without that route it polls
        ``/calls/stream_query`` every ``poll_interval`` seconds (starts and ends,
        ``seq`` None). Close it (or ``break``) to disconnect.
        """
        req = self._calls.request(filter, filter_fields)
        return self._calls.live(req.filter, since, poll_interval)

    async def threads(
        self,
        thread_ids: Sequence[str] | None = None,
        *,
        after: datetime.datetime | None = None,
        before: datetime.datetime | None = None,
        limit: int | None = None,
        offset: int | None = None,
        sort_by: SortByLike | None = None,
    ) -> list[ThreadSchema]:
        """This project's conversation threads (``weave_client.thread`` blocks), with
        figures over their turns: ``turn_count``, ``start_time``, ``last_updated``,
        ``first_turn_id``, ``last_turn_id``, ``p50_turn_duration_ms``, ``p99_turn_duration_ms``.

        Newest activity first unless ``sort_by`` names one of those fields.
        ``after``/``before`` keep the turns started in that window. A thread's
        calls: ``calls(thread_ids=[tid])``; its turns are those with ``turn_id == id``.
        """
        return await self._calls.threads(thread_ids, after, before, limit, offset, sort_by)

    async def call(self, call_id: str) -> AsyncCall:
        """Read one call by id; ``CallNotFoundError`` if there is none."""
        if not isinstance(call_id, str) or not call_id:
            raise ValueError(f"call id must be a non-empty str, got {call_id!r}")
        return await self._calls.read(call_id, self._session.project_id)

    async def delete_call(self, call: AsyncCall | str | Iterable[AsyncCall | str]) -> None:
        """Delete a call (a ``AsyncCall`` or an id), or a list of them, with all descendants."""
        await self._calls.delete(call)
