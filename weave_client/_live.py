"""The wire protocol of live traces (``/calls/watch``), shared by the server and both clients.

The client sends one JSON text message, :class:`WatchSubscribe`; the server
answers ``{"kind": "ready", "seq": N}`` and then the call events,
``{"kind": "start" | "end" | "update" | "delete", "seq": N, "call": CallSchema}``;
events waiting together share one text message, one JSON object per line.
``seq`` grows by one per stored event and survives server restarts; resuming
with ``since`` = the last seq received gives every later event exactly once.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from ._models import CallsFilter
from ._routes import CALLS_WATCH

__all__ = [
    "CLOSE_BAD_REQUEST",
    "CLOSE_TOO_SLOW",
    "EVENT_KINDS",
    "WATCH_PATH",
    "CallEventKind",
    "WatchSubscribe",
]

WATCH_PATH = CALLS_WATCH

CallEventKind = Literal["start", "end", "update", "delete"]
"""What happened to the call: it started (is running), ended, was renamed, was deleted."""
EVENT_KINDS: frozenset[str] = frozenset({"start", "end", "update", "delete"})

# Close codes of /calls/watch (4000-4999 is the application range of RFC 6455).
CLOSE_BAD_REQUEST = 4400
"""The subscribe message is not valid; the reason names the field. Retrying will not help."""
CLOSE_TOO_SLOW = 4408
"""The watcher's queue overflowed; reconnecting with ``since`` = the last seq loses nothing."""


class WatchSubscribe(BaseModel):
    """The first (and only) message a client sends on ``/calls/watch``.

    ``since``: replay the stored events after this seq first (0: all of them);
    None: only events from now on.
    """

    model_config = ConfigDict(extra="forbid")

    project_id: str
    filter: CallsFilter | None = None
    since: int | None = None
