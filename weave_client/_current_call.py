"""The running call: ``get_current_call()`` / ``require_current_call()`` (both flavours).

A ``CurrentCall`` is a live view of the call the op wrapper is running in this
context: its ids and inputs as recorded, a ``summary`` dict the op may add to
(merged into the stored summary when the call ends, as weave merges
``call.summary``), and a ``display_name`` that may be set while it runs (stored
with ``/call/update`` after the call's start). Both flavours share it.
"""

from __future__ import annotations

import copy
import logging
import sys
from typing import Any
from urllib.parse import quote

from ._errors import NoCurrentCallError
from ._refs import CallRef
from ._tracing import CallFrame, CallUpdate, current_frame

__all__ = [
    "CurrentCall",
    "call_ui_url",
    "get_current_call",
    "print_call_link",
    "require_current_call",
]

logger = logging.getLogger("weave_client")

MAX_DISPLAY_NAME_LENGTH = 1024


def call_ui_url(client: Any, project_id: str, call_id: str) -> str | None:
    """A call's page: the W&B UI on the hosted service, else the local viewer's URL.

    The local trace server serves its viewer at its root URL; the call's route
    there is ``#/{entity}/{project}/call/{id}``.
    """
    entity, project = project_id.split("/", 1)
    app_url = getattr(client, "_app_url", None)
    if app_url:
        return CallRef(entity, project, call_id).ui_url_for(app_url)
    server_url = getattr(client, "server_url", None)
    if not server_url:
        return None
    segments = "/".join(quote(part, safe="") for part in (entity, project, "call", call_id))
    return f"{server_url.rstrip('/')}/#/{segments}"


def print_call_link(client: Any, frame: CallFrame) -> None:
    """Print one line with a root call's URL (``WEAVE_PRINT_CALL_LINK``), as weave does."""
    url = call_ui_url(client, frame.project_id, frame.id)
    if url is None:
        return
    try:
        try:
            print(f"\N{DOUGHNUT} {url}", file=sys.stdout, flush=True)
        except UnicodeEncodeError:
            print(f"weave_client call: {url}", file=sys.stdout, flush=True)
    except Exception:  # a closed stdout must not break the traced code
        logger.debug("weave_client: could not print the link of call %s", frame.id, exc_info=True)


class CurrentCall:
    """The traced call running in this context (from ``get_current_call()``).

    Read-only: ``id``, ``trace_id``, ``parent_id``, ``op_name``, ``project_id``,
    ``inputs`` (as recorded), ``attributes``, ``thread_id``, ``turn_id``,
    ``ui_url``, ``ref``. Writable while it runs: ``summary`` (a dict; what the op
    puts there is merged into the stored summary at the end, the computed usage
    and status counts winning) and ``display_name`` (stored on the call).
    """

    __slots__ = ("_frame",)

    def __init__(self, frame: CallFrame) -> None:
        self._frame = frame

    def __repr__(self) -> str:
        return f"CurrentCall(id={self.id!r}, op_name={self.op_name!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CurrentCall) and other._frame is self._frame

    def __hash__(self) -> int:
        return hash(self._frame.id)

    @property
    def id(self) -> str:
        """The call's id (the id the server stores it under)."""
        return self._frame.id

    @property
    def trace_id(self) -> str:
        """The id of the trace (shared by the root call and all its descendants)."""
        return self._frame.trace_id

    @property
    def parent_id(self) -> str | None:
        """The id of the call this one runs in; None for a root call."""
        parent = self._frame.parent
        return parent.id if parent is not None and parent.sampled else None

    @property
    def op_name(self) -> str:
        """The op's ref URI (``weave:///entity/project/op/name:digest``), as stored."""
        return self._frame.op_name

    @property
    def project_id(self) -> str:
        """``"entity/project"`` of the client the call reports to."""
        return self._frame.project_id

    @property
    def inputs(self) -> dict[str, Any]:
        """The inputs as recorded at the call's start (a copy)."""
        return copy.deepcopy(self._frame.inputs)

    @property
    def attributes(self) -> dict[str, Any]:
        """The call's attributes as recorded (a copy)."""
        return copy.deepcopy(self._frame.attributes)

    @property
    def thread_id(self) -> str | None:
        """The conversation thread the call belongs to, if any."""
        return self._frame.thread_id

    @property
    def turn_id(self) -> str | None:
        """The conversation turn the call belongs to, if any."""
        return self._frame.turn_id

    @property
    def ref(self) -> CallRef:
        """The call's ``weave:///`` ref."""
        entity, project = self._frame.project_id.split("/", 1)
        return CallRef(entity, project, self._frame.id)

    @property
    def ui_url(self) -> str | None:
        """The call's page: the W&B UI (hosted), else the local trace viewer."""
        return call_ui_url(self._frame.client, self._frame.project_id, self._frame.id)

    @property
    def summary(self) -> dict[str, Any]:
        """A dict the op may add to while it runs; merged into the stored summary."""
        frame = self._frame
        if frame.summary is None:
            frame.summary = {}
        return frame.summary

    @property
    def display_name(self) -> str | None:
        """The call's display name; set it while the call runs to store a new one."""
        return self._frame.display_name

    @display_name.setter
    def display_name(self, name: str | None) -> None:
        if name is not None and not isinstance(name, str):
            raise TypeError(f"display_name must be a str or None, got {type(name).__name__}")
        if name is not None and len(name) > MAX_DISPLAY_NAME_LENGTH:
            name = name[: MAX_DISPLAY_NAME_LENGTH - 3] + "..."
        frame = self._frame
        frame.display_name = name
        sender = getattr(frame.client, "_sender", None)
        if sender is not None:
            # Queued after the call's start record, so stored after it. As
            # weave's client: the server stores "no display name" as "".
            sender.put(CallUpdate(frame.project_id, frame.id, name or ""))

    def set_display_name(self, name: str | None) -> None:
        """Set the display name (as ``call.display_name = name``)."""
        self.display_name = name


def get_current_call() -> CurrentCall | None:
    """The traced call running in this context, or None (outside ops, or untraced)."""
    frame = current_frame()
    if frame is None or not frame.sampled or frame.client is None:
        return None
    return CurrentCall(frame)


def require_current_call() -> CurrentCall:
    """The traced call running in this context; ``NoCurrentCallError`` outside one."""
    call = get_current_call()
    if call is None:
        raise NoCurrentCallError(
            "require_current_call() was called outside a traced call: call it inside a"
            " function decorated with @op or @async_op while a client is open"
            " (get_current_call() returns None instead)"
        )
    return call
