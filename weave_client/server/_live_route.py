"""The ``/calls/watch`` WebSocket route (protocol: see ``_live``).

The same code serves a watcher in the server and, once handed off, in the
live process (``_live_process``): it speaks to a :class:`~._live.WatchSocket`,
Starlette's WebSocket in the one and ``_live_socket.HandedOffWebSocket`` in
the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import anyio
import anyio.to_thread
import orjson
from pydantic import ValidationError
from starlette.websockets import WebSocketDisconnect

from .._live import CLOSE_BAD_REQUEST, CLOSE_TOO_SLOW, WatchSubscribe
from ._live import PAGE_EVENTS, Broadcaster, CallMatcher, Watcher, WatchSocket
from ._live_messages import chunks_of_events

__all__ = ["watch_route"]

logger = logging.getLogger("weave_client.server")

# Seconds a client has to send its subscribe message.
_SUBSCRIBE_TIMEOUT = 30.0


async def _subscribe(ws: WatchSocket) -> WatchSubscribe | None:
    """The client's subscribe message, or None after closing with the reason it is bad."""
    try:
        with anyio.fail_after(_SUBSCRIBE_TIMEOUT):
            raw = await ws.receive_text()
        return WatchSubscribe.model_validate_json(raw)
    except TimeoutError:
        reason = f"no subscribe message within {_SUBSCRIBE_TIMEOUT:.0f} s"
    except ValidationError as exc:
        where = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'message'}: {e['msg']}" for e in exc.errors()
        )
        reason = f"invalid subscribe message: {where}"
    except (KeyError, RuntimeError):
        reason = "the subscribe message must be a JSON text message"
    await ws.close(CLOSE_BAD_REQUEST, reason[:120])
    return None


async def _send_events(
    ws: WatchSocket, broadcaster: Broadcaster, watcher: Watcher, sub: WatchSubscribe, pos: int
) -> None:
    """Replay the stored events after ``since``, say ready, then forward the live ones.

    Events waiting together go out as one message, one JSON object per line
    (a watcher that keeps up gets one event per message).
    """
    cursor = pos
    ready: dict[str, Any] = {"kind": "ready"}
    if sub.since is not None:
        cursor = sub.since
        while True:
            events, pruned = await anyio.to_thread.run_sync(
                broadcaster.replay_page, cursor, sub.project_id
            )
            if pruned is not None:
                # Events after the cursor are gone: the client is told up to where.
                ready["pruned_through"] = pruned
            # Shared texts: a connection with permessage-deflate gets them compressed at
            # zlib's fastest level (wsproto's own would use its default, three times slower).
            for chunk in chunks_of_events(watcher.matches.select(events), shared=True):
                await ws.send_text(chunk.text)
            if events:
                cursor = events[-1].seq
            if len(events) < PAGE_EVENTS:
                break
        cursor = max(cursor, pos)
    ready["seq"] = cursor
    await ws.send_text(orjson.dumps(ready).decode())
    while True:
        await watcher.ready.wait()
        watcher.ready.clear()
        while watcher.pending:
            chunk = watcher.take()
            text = chunk.after(cursor)
            if text is not None:
                await ws.send_text(text)
                cursor = chunk.last


async def _until_disconnect(ws: WatchSocket) -> None:
    # Clients send nothing after subscribing; reading notices them leaving.
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            await ws.receive()


async def watch_route(ws: WatchSocket, broadcaster: Broadcaster) -> None:
    """Serve one ``/calls/watch`` connection (the protocol: ``_live``'s docstring), or
    hand it off to the live process."""
    await ws.accept()
    sub = await _subscribe(ws)
    if sub is None:
        return
    try:
        matches = CallMatcher(sub.project_id, sub.filter)
    except ValueError as exc:
        await ws.close(CLOSE_BAD_REQUEST, str(exc))
        return
    if await broadcaster.hand_off(ws, sub):
        return  # the live process serves it from here (_live_process)
    offered = ws.headers.get("sec-websocket-extensions", "")
    watcher = Watcher(matches, broadcaster.queue_size, deflate="permessage-deflate" in offered)
    pos = await broadcaster.register(watcher)
    tasks = [
        asyncio.create_task(_send_events(ws, broadcaster, watcher, sub, pos)),
        asyncio.create_task(_until_disconnect(ws)),
        asyncio.create_task(watcher.overflowed.wait()),
    ]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        broadcaster.unregister(watcher)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    if watcher.overflowed.is_set():
        logger.warning(
            "calls/watch: closing a watcher of %s that fell %d events behind",
            sub.project_id,
            broadcaster.queue_size,
        )
        with contextlib.suppress(Exception):
            with anyio.fail_after(5):
                await ws.close(
                    CLOSE_TOO_SLOW,
                    f"too slow: more than {broadcaster.queue_size} events waiting; "
                    "reconnect with since=<last seq>",
                )
        return
    for task in done:
        error = task.exception() if not task.cancelled() else None
        if error is not None and not isinstance(
            error, WebSocketDisconnect | RuntimeError | OSError
        ):
            logger.error("calls/watch: watcher of %s failed: %r", sub.project_id, error)
            with contextlib.suppress(Exception):
                await ws.close(1011, f"server error: {type(error).__name__}")
