"""``client.calls_live()``: call events as they happen, over ``/calls/watch`` or by polling.

Against the local server the events come over its WebSocket route (see
``weave_client/_live.py`` for the protocol); a dropped connection is
reconnected with exponential backoff, resuming after the last event this
iterator delivered, so none is missed and none comes twice. Against a server
without the route (the hosted service, weave's reference server) it polls
``/calls/stream_query`` instead and says so once in the log.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, cast

import httpx
from httpx_ws import HTTPXWSException, WebSocketDisconnect, WebSocketUpgradeError

from .._errors import (
    APIConnectionError,
    BadRequestError,
    InvalidSettingError,
    status_error_class,
)
from .._live import CLOSE_BAD_REQUEST, EVENT_KINDS, WATCH_PATH, CallEventKind, WatchSubscribe
from .._models import CallSchema, CallsFilter, CallsQueryReq, SortBy
from .._synchronization import async_sleep
from ._call import AsyncCall

if TYPE_CHECKING:
    from ._client import AsyncWeaveClient

__all__ = ["AsyncLiveCalls"]
__all__ += ["AsyncCallEvent"]  # (two lines: the sync twin would sort the names differently)

logger = logging.getLogger("weave_client")

# Reconnect backoff: doubling from the first delay up to the cap, with full jitter.
_FIRST_DELAY = 0.1
_MAX_DELAY = 5.0
# Polling: calls may be stored late (a sender's retry) with an older start time;
# each poll looks back this far behind the newest start it saw.
_POLL_LOOKBACK = timedelta(seconds=60)
# A first poll without `since` reads at most this many recent calls as its baseline.
_BASELINE_CALLS = 1000
_IDS_PER_QUERY = 100


@dataclass(frozen=True)
class AsyncCallEvent:
    """One change of a call: ``kind`` (start, end, update, delete), ``seq``, ``call``.

    ``seq`` is the server's event number (pass it as ``since`` to resume); it
    is None for events found by polling a server without ``/calls/watch``.
    ``call`` is the call as stored when the event was sent.
    """

    kind: CallEventKind
    seq: int | None
    call: AsyncCall


class _NoWatchRoute(Exception):
    """The server answered the WebSocket upgrade with something other than 101 or 401."""


def _backoff(attempt: int) -> float:
    return random.uniform(0, min(_MAX_DELAY, _FIRST_DELAY * 2**attempt))


def _ended(schema: CallSchema) -> bool:
    return schema.ended_at is not None or schema.exception is not None


class AsyncLiveCalls:
    """An endless iterator of :class:`CallEvent` (see ``client.calls_live()``).

    Close it (or leave its ``with`` block, or ``break`` out of the loop) to
    disconnect. ``seq`` of the last delivered event is in :attr:`cursor`.
    """

    def __init__(
        self,
        client: AsyncWeaveClient,
        calls_filter: CallsFilter | None,
        since: int | None,
        poll_interval: float,
    ) -> None:
        self._client = client
        self._filter = calls_filter
        self.cursor: int | None = since
        # The since of the latest subscribe message (what a pruned replay is measured from).
        self._since_sent = 0
        self._poll_interval = poll_interval
        self._events: AsyncGenerator[AsyncCallEvent, None] | None = None
        self._closed = False
        self.polling = False
        """True once it fell back to polling (the server has no ``/calls/watch``)."""

    def __repr__(self) -> str:
        mode = "polling" if self.polling else "watching"
        return f"{type(self).__name__}({self._client.project_id!r}, {mode}, cursor={self.cursor})"

    def __aiter__(self) -> AsyncIterator[AsyncCallEvent]:
        return self

    async def __anext__(self) -> AsyncCallEvent:
        if self._closed:
            raise StopAsyncIteration
        if self._events is None:
            self._events = self._iterate()
        return await anext(self._events)

    async def aclose(self) -> None:
        """Disconnect; the iterator then ends."""
        self._closed = True
        if self._events is not None:
            await self._events.aclose()

    async def __aenter__(self) -> Self:
        """Subscribe now: with ``since=None``, the events from here on (not from the first ``next``)."""
        if self.cursor is None and self._events is None:
            try:
                async with aclosing(self._watch(until_ready=True)) as events:
                    async for _ in events:
                        pass
            except _NoWatchRoute:
                pass  # the first poll takes the baseline instead
            except (HTTPXWSException, httpx.TransportError, APIConnectionError, OSError) as exc:
                logger.debug("weave_client: live calls: subscribing early failed: %r", exc)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- the WebSocket route ----------------------------------------------------------

    async def _iterate(self) -> AsyncGenerator[AsyncCallEvent, None]:
        attempt = 0
        failures = 0
        while True:
            try:
                async with aclosing(self._watch()) as events:
                    async for event in events:
                        attempt = 0
                        yield event
                reason = "the server closed the connection"
            except _NoWatchRoute:
                break
            except WebSocketDisconnect as exc:
                if exc.code == CLOSE_BAD_REQUEST:
                    raise BadRequestError(
                        f"refused the subscription: {exc.reason}",
                        status_code=400,
                        route=WATCH_PATH,
                    ) from None
                reason = f"closed with code {exc.code} ({exc.reason or 'no reason'})"
            except (HTTPXWSException, httpx.TransportError, APIConnectionError, OSError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            failures += 1
            delay = _backoff(attempt)
            attempt += 1
            logger.warning(
                "weave_client: live calls of %s disconnected (%s); reconnecting in %.2f s "
                "after seq %s (%d reconnects so far)",
                self._client.project_id,
                reason,
                delay,
                self.cursor,
                failures,
            )
            await async_sleep(delay)
        self.polling = True
        logger.warning(
            "weave_client: %s has no %s route; polling /calls/stream_query every %.1f s "
            "for live calls of %s",
            self._client.server_url,
            WATCH_PATH,
            self._poll_interval,
            self._client.project_id,
        )
        async with aclosing(self._poll()) as polled:
            async for event in polled:
                yield event

    async def _watch(self, until_ready: bool = False) -> AsyncGenerator[AsyncCallEvent, None]:
        await self._client._session.ready()
        subscribe = WatchSubscribe(
            project_id=self._client.project_id, filter=self._filter, since=self.cursor
        )
        self._since_sent = self.cursor or 0
        try:
            session = self._client._session.api.websocket(WATCH_PATH)
            ws = await session.__aenter__()
        except WebSocketUpgradeError as exc:
            status = exc.response.status_code
            if status == 401:
                raise status_error_class(401)(
                    "the server refused the API key", status_code=401, route=WATCH_PATH
                ) from None
            raise _NoWatchRoute(status) from None
        try:
            await ws.send_text(subscribe.model_dump_json(exclude_none=True))
            while True:
                # One event per line (events waiting together share a message).
                for line in (await ws.receive_text()).split("\n"):
                    event = self._event(json.loads(line))
                    if event is not None:
                        yield event
                if until_ready and self.cursor is not None:
                    return
        finally:
            await session.__aexit__(None, None, None)

    def _event(self, message: dict[str, Any]) -> AsyncCallEvent | None:
        """The event of one message (None for ``ready`` and what was delivered already)."""
        kind, seq = message.get("kind"), message.get("seq")
        if not isinstance(seq, int):
            return None
        if kind == "ready":
            pruned = message.get("pruned_through")
            if isinstance(pruned, int):
                # The server keeps only its newest events: said, not skipped silently.
                logger.warning(
                    "weave_client: live calls of %s: the server no longer keeps events %d to "
                    "%d (it keeps its newest ones); changes to calls in that span are not "
                    "replayed",
                    self._client.project_id,
                    self._since_sent + 1,
                    pruned,
                )
            self.cursor = max(self.cursor or 0, seq)
            return None
        if kind not in EVENT_KINDS or (self.cursor is not None and seq <= self.cursor):
            return None
        schema = CallSchema.model_validate(message["call"])
        self.cursor = seq
        return AsyncCallEvent(cast(CallEventKind, kind), seq, AsyncCall._from_schema(self._client, schema))

    # -- polling fallback -------------------------------------------------------------

    def _request(self, **update: Any) -> CallsQueryReq:
        return CallsQueryReq(
            project_id=self._client.project_id,
            filter=self._filter,
            sort_by=[SortBy(field="started_at", direction="desc")],
        ).model_copy(update=update)

    async def _recent(self, horizon: datetime | None, limit: int | None) -> list[CallSchema]:
        """Calls started at or after ``horizon`` (the newest ``limit`` when given), newest first."""
        found: list[CallSchema] = []
        stream = self._client._session.api.calls_query_stream(self._request(limit=limit))
        async with stream:
            async for schema in stream:
                if horizon is not None and schema.started_at < horizon:
                    break
                found.append(schema)
        return found

    async def _by_ids(self, ids: list[str]) -> dict[str, CallSchema]:
        out: dict[str, CallSchema] = {}
        base = self._filter or CallsFilter()
        for i in range(0, len(ids), _IDS_PER_QUERY):
            part = ids[i : i + _IDS_PER_QUERY]
            if base.call_ids:
                part = [c for c in part if c in base.call_ids]
            req = self._request(filter=base.model_copy(update={"call_ids": part}))
            stream = self._client._session.api.calls_query_stream(req)
            async with stream:
                async for schema in stream:
                    out[schema.id] = schema
        return out

    async def _poll(self) -> AsyncGenerator[AsyncCallEvent, None]:
        if self.cursor not in (None, 0):
            raise InvalidSettingError(
                f"since={self.cursor}: {self._client.server_url} has no {WATCH_PATH} route, so "
                "its events have no sequence; pass since=None (new events) or since=0 (all calls)"
            )
        await self._client._session.ready()
        # id -> ended, for the calls already reported (or, on a first poll without since, seen).
        known: dict[str, tuple[bool, datetime]] = {}
        newest: datetime | None = None
        first = True
        while True:
            horizon = None if newest is None else newest - _POLL_LOOKBACK
            limit = _BASELINE_CALLS if first and self.cursor is None else None
            recent = await self._recent(horizon, limit)
            seen = {s.id: s for s in recent}
            running = [cid for cid, (ended, _) in known.items() if not ended and cid not in seen]
            if running:
                again = await self._by_ids(running)
                seen.update(again)
                for cid in running:
                    if cid not in again:  # deleted (or no longer matching)
                        del known[cid]
            events: list[tuple[datetime, CallEventKind, CallSchema]] = []
            for schema in seen.values():
                ended = _ended(schema)
                prev = known.get(schema.id)
                if prev is None:
                    if not (first and self.cursor is None):
                        at = (schema.ended_at or schema.started_at) if ended else schema.started_at
                        events.append((at, "end" if ended else "start", schema))
                elif ended and not prev[0]:
                    events.append((schema.ended_at or schema.started_at, "end", schema))
                known[schema.id] = (ended, schema.started_at)
                if newest is None or schema.started_at > newest:
                    newest = schema.started_at
            first = False
            events.sort(key=lambda e: e[0])
            for _, kind, schema in events:
                yield AsyncCallEvent(kind, None, AsyncCall._from_schema(self._client, schema))
            # Forget finished calls that fell behind the lookback window.
            if newest is not None:
                cutoff = newest - 2 * _POLL_LOOKBACK
                for cid in [c for c, (ended, at) in known.items() if ended and at < cutoff]:
                    del known[cid]
            await async_sleep(self._poll_interval)
