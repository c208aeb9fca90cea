"""The shared, I/O-free hot path of op tracing (both flavours): the call tree and the
records of each traced call.

What lives here runs on every traced call, so it is plain Python over dicts and
``__slots__`` objects: no pydantic model construction, no I/O, no awaits.

- the current-call contextvar (the call tree) and ``CallFrame``;
- start and end records (``make_start``/``make_end``): flat tuples, timestamps kept
  as floats until the sender writes them (``_record_json``);
- ``exception_json``, and what the sender hands back (``FlushResult``, ``CallUpdate``).

Its neighbours, re-exported here: value snapshots and redacted keys
(``_trace_values``), attributes scopes and client info (``_call_attributes``),
summaries and the usage roll-up (``_summary``), the record's wire form and its writer
(``_record_json``), and op definitions, sources and saves (``_op_source``). Module
state (redacted keys, caches, the default attributes) lives only in those modules.
"""

from __future__ import annotations

import contextvars
import gc
import json
import os
import time
import traceback
from dataclasses import dataclass
from typing import Any

from ._call_attributes import (
    DEFAULT_ATTRIBUTES,
    attributes,
    client_attributes,
    client_info,
    current_attributes,
)
from ._ids import TRACE_BITS, format_id, id_value
from ._op_source import (
    OpSave,
    inferred_op_name,
    op_parameters,
    op_placeholder_source,
    op_save,
    op_source,
    positional_binder,
    sanitize_name,
)
from ._record_json import (
    Record,
    encode_body,
    encode_record,
    iso_timestamp,
    record_body,
    record_call_id,
)
from ._summary import (
    SUCCESS_SUMMARY,
    add_child_summary,
    end_summary,
    merge_user_summary,
    sum_dict_leaves,
)
from ._trace_values import (
    LEAVES,
    add_redact_keys,
    encode_inputs,
    encode_new_inputs,
    encode_value,
    redacted_names,
)

__all__ = [
    "CallFrame",
    "CallUpdate",
    "FlushResult",
    "OpSave",
    "Record",
    "add_child_summary",
    "add_redact_keys",
    "attributes",
    "client_attributes",
    "client_info",
    "current_attributes",
    "current_frame",
    "encode_body",
    "encode_inputs",
    "encode_new_inputs",
    "encode_record",
    "encode_value",
    "exception_json",
    "freeze_long_lived",
    "inferred_op_name",
    "iso_timestamp",
    "make_end",
    "make_start",
    "now",
    "op_parameters",
    "op_placeholder_source",
    "op_save",
    "op_source",
    "positional_binder",
    "record_body",
    "record_call_id",
    "redacted_names",
    "reset_frame",
    "sampled_out_frame",
    "sanitize_name",
    "set_frame",
    "sum_dict_leaves",
]


# The innermost traced call of the running context (None at the top level). Task
# creation and ``contextvars.copy_context`` copy it, which is what makes
# gather/create_task/to_thread children nest under the call that spawned them.
_current: contextvars.ContextVar[CallFrame | None] = contextvars.ContextVar(
    "weave_client_current_call", default=None
)
# The conversation thread id of ``weave_client.thread(...)`` blocks (None outside).
_thread: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "weave_client_thread_id", default=None
)

current_frame = _current.get
set_frame = _current.set
reset_frame = _current.reset


_NO_VALUES: dict[str, Any] = {}


class CallFrame:
    """One traced call in progress: what children and the end record need.

    ``id`` and ``trace_id`` are UUIDv7 strings; the frame holds them as integers
    until asked (``_id``/``_trace``), and records carry them as they are: the
    sender writes the text, off the traced call's path.
    """

    __slots__ = (
        "_id",
        "_trace",
        "attributes",
        "child_summaries",
        "client",
        "display_name",
        "inputs",
        "op_name",
        "parent",
        "project_id",
        "sampled",
        "started_at",
        "summary",
        "thread_id",
        "turn_id",
    )

    def __init__(
        self,
        project_id: str,
        op_name: str,
        parent: CallFrame | None,
        client: Any = None,
        *,
        sampled: bool = True,
    ) -> None:
        # Each slot set once (a traced call's hot path): ids are UUIDv7 like weave's
        # generate_id, and a root starts a trace.
        call_id = id_value()
        self._id: int | str = call_id
        self.project_id = project_id
        self.op_name = op_name
        self.parent = parent
        self.sampled = sampled
        # The client the call reports to; what the running op added to its summary
        # via get_current_call().summary.
        self.client: Any = client
        self.summary: dict[str, Any] | None = None
        self.started_at = 0.0
        self.display_name: str | None = None
        # Set when the call starts (shared empty dicts until then: never mutated).
        self.inputs: dict[str, Any] = _NO_VALUES
        self.attributes: dict[str, Any] = _NO_VALUES
        # Summaries of ended children, rolled into this call's summary: made by the
        # first child to end (most calls have none; see add_child_summary).
        self.child_summaries: list[dict[str, Any]] | None = None
        # The conversation thread (``weave_client.thread``) and turn of this call,
        # as weave's create_call sets them: inside a thread block, a call whose
        # parent is outside that thread starts a turn (its turn_id is its own id);
        # its descendants in the same thread carry the same turn_id.
        thread_id = _thread.get()
        self.thread_id: str | None = thread_id
        self.turn_id: str | None
        if parent is None:
            self._trace: Any = call_id ^ TRACE_BITS
            self.turn_id = None if thread_id is None else self.id
        else:
            self._trace = parent._trace
            if thread_id is None:
                self.turn_id = None
            elif parent.thread_id != thread_id:
                self.turn_id = self.id
            else:
                self.turn_id = parent.turn_id

    @property
    def id(self) -> str:
        """The call id."""
        value = self._id
        if type(value) is int:
            value = self._id = format_id(value)
        return str(value)

    @property
    def trace_id(self) -> str:
        """The id of the trace (the root call's tree) this call belongs to."""
        value = self._trace
        if type(value) is int:
            value = self._trace = format_id(value)
        return value  # type: ignore[no-any-return]

    @trace_id.setter
    def trace_id(self, value: str) -> None:
        self._trace = value

    def __repr__(self) -> str:
        return f"CallFrame(id={self.id!r}, op_name={self.op_name!r})"


_frozen = False


def freeze_long_lived() -> None:
    """Move what the process holds when its first client opens (modules, the app,
    the client) out of the cyclic garbage collector's reach: once per process.

    A burst of traced calls (10,000 gathered at once) makes the collector run full
    collections in one loop iteration; frozen objects are not scanned again, so each
    costs what the calls in flight cost, not the whole heap. Objects still free by
    reference counting as before. ``WEAVE_CLIENT_GC_FREEZE=0`` turns it off.
    """
    global _frozen
    if not _frozen:
        _frozen = True
        if os.environ.get("WEAVE_CLIENT_GC_FREEZE", "1") != "0":
            gc.freeze()


def sampled_out_frame(parent: CallFrame | None) -> CallFrame:
    """A frame marking a subtree that ``tracing_sample_rate`` left untraced.

    Pushed instead of a real call so the children of an unsampled root are not
    traced either (as weave does), without being sent anywhere.
    """
    return CallFrame("", "", parent, sampled=False)


# --- records --------------------------------------------------------------------


def exception_json(exc: BaseException) -> str:
    """The call's ``exception`` field, as weave's ``exception_to_json_str`` writes it."""
    message = str(exc)
    if not message and isinstance(exc, BaseException) and type(exc).__name__ in (
        "CancelledError",
        "KeyboardInterrupt",
    ):
        message = "cancelled"
    record: dict[str, Any] = {"type": type(exc).__name__, "message": message}
    if exc.__traceback__ is not None:
        try:
            frames = traceback.extract_tb(exc.__traceback__)
            record["traceback"] = [
                {
                    "filename": f.filename,
                    "line_number": f.lineno,
                    "function_name": f.name,
                    "text": f.line,
                }
                for f in frames
            ]
        except Exception:  # a broken source file must not lose the call
            pass
    return json.dumps(record)


def make_start(frame: CallFrame, attrs: dict[str, Any]) -> Record:
    """The start record of a call (``started_at`` still a float).

    The shared default attributes are recorded as None: a record of atoms and an
    untracked inputs dict then leaves the garbage collector's lists at its first
    collection (10,000 calls started at once otherwise add 10,000 tracked tuples).
    """
    parent = frame.parent
    frame.attributes = attrs
    return (
        "start",
        frame.project_id,
        frame._id,
        frame.op_name,
        frame.display_name,
        frame._trace,
        parent._id if parent is not None else None,
        frame.started_at,
        None if attrs is DEFAULT_ATTRIBUTES else attrs,
        frame.inputs,
        frame.thread_id,
        frame.turn_id,
    )


def make_end(
    frame: CallFrame,
    output: Any,
    raw_output: Any,
    exception: BaseException | None,
    ended_at: float,
) -> Record:
    """The end record of a call; also rolls its summary into the parent's."""
    if (
        exception is None
        and not frame.child_summaries
        and not frame.summary
        and type(raw_output) in LEAVES
    ):
        summary = SUCCESS_SUMMARY  # a leaf returning a primitive: no usage to find
    else:
        summary = end_summary(frame, raw_output, exception)
        if frame.summary:
            summary = merge_user_summary(frame.summary, summary)
    parent = frame.parent
    if parent is not None and parent.sampled:
        add_child_summary(parent, summary)
    return (
        "end",
        frame.project_id,
        frame._id,
        ended_at,
        output,
        summary,
        exception_json(exception) if exception is not None else None,
    )


def now() -> float:
    """Wall-clock seconds for started_at / ended_at."""
    return time.time()


# --- what the sender hands back and takes -------------------------------------


@dataclass(frozen=True)
class FlushResult:
    """What ``flush()`` left behind: 0 pending means everything queued before it is stored."""

    pending: int
    """Records (call starts and ends, op saves) queued before the flush and not yet
    stored or given up on."""
    failed: int
    """Records given up on since the sender started (each was logged with its call id)."""
    dropped: int
    """Calls not traced because the queue was full under ``on_full="drop"`` (logged)."""

    @property
    def done(self) -> bool:
        """True when nothing queued before the flush is still pending."""
        return self.pending == 0


@dataclass(frozen=True)
class CallUpdate:
    """A display name set while the call ran, stored after its start (``/call/update``)."""

    project_id: str
    call_id: str
    display_name: str | None
