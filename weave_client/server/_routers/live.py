"""The live-calls route: the ``/calls/watch`` WebSocket over the broadcaster."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from ... import _routes as routes
from .._live import Broadcaster
from .._live_route import watch_route

__all__ = ["router"]


def router(broadcaster: Broadcaster) -> APIRouter:
    """The watch socket, fed by ``broadcaster``."""
    r = APIRouter()

    @r.websocket(routes.CALLS_WATCH)
    async def calls_watch(websocket: WebSocket) -> None:
        await watch_route(websocket, broadcaster)

    return r
