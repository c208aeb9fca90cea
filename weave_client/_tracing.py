"""The shared, I/O-free hot path of op tracing (both flavours).

What lives here runs on every traced call, so it is plain Python over dicts and
``__slots__`` objects: no pydantic model construction, no I/O, no awaits.

- the current-call contextvar (the call tree) and ``attributes()`` scopes;
- start and end records: the ``/call/upsert_batch`` items
  (``{"mode": "start", "req": {"start": StartedCallSchemaForInsert}}`` and
  ``{"mode": "end", "req": {"end": EndedCallSchemaForInsert}}``) as dicts, with
  timestamps kept as floats until ``encode_record`` runs on the sender's side;
- the summary (usage roll-up and status counts, as weave's ``finish_call``);
- client info under ``attributes.weave`` (as weave's ``create_call`` writes it).
"""

from __future__ import annotations

import ast
import contextvars
import gc
import inspect
import json
import json.encoder as json_encoder
import keyword
import logging
import math
import os
import platform
import sys
import textwrap
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from . import _serialize
from ._digest import bytes_digest, json_digest, str_digest
from ._ids import TRACE_BITS, format_id, id_value
from ._redact import DEFAULT_REDACT_KEYS, REDACTED_VALUE
from ._refs import sanitize_object_name
from ._serialize import encode_for_trace

__all__ = [
    "CallFrame",
    "CallUpdate",
    "FlushResult",
    "OpSave",
    "attributes",
    "client_info",
    "current_frame",
    "encode_record",
    "encode_value",
    "exception_json",
    "make_end",
    "make_start",
    "op_save",
    "record_body",
]

logger = logging.getLogger("weave_client")

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
# Merged ``attributes({...})`` scopes of the running context.
_attributes: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar(
    "weave_client_attributes", default=None
)

current_frame = _current.get
set_frame = _current.set
reset_frame = _current.reset

USAGE_KEY = "usage"
STATUS_COUNTS_KEY = "status_counts"


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


# --- attributes ---------------------------------------------------------------


@contextmanager
def attributes(values: Mapping[str, Any]) -> Iterator[None]:
    """Add ``values`` to the attributes of every call started inside the block.

    Nested scopes merge; an inner key overrides an outer one::

        with weave_client.attributes({"env": "prod"}):
            await my_op()
    """
    if not isinstance(values, Mapping):
        raise TypeError(
            f"attributes() takes a mapping of str keys, got {type(values).__name__}"
        )
    for key in values:
        if not isinstance(key, str):
            raise TypeError(f"attributes() keys must be str, got {key!r}")
    outer = _attributes.get()
    merged = {**outer, **values} if outer else dict(values)
    token = _attributes.set(merged)
    try:
        yield
    finally:
        _attributes.reset(token)


_client_info: dict[str, Any] | None = None


def client_info() -> dict[str, Any]:
    """What weave writes under ``attributes.weave``: client, Python and OS."""
    global _client_info
    if _client_info is None:
        try:
            from importlib.metadata import version

            client_version = version("weave-client")
        except Exception:  # not installed as a distribution (a source checkout)
            client_version = "0.1.0"
        _client_info = {
            "client_version": client_version,
            "source": "python-sdk",
            "sys_version": sys.version,
            "os_name": platform.system(),
            "os_version": platform.version(),
            "os_release": platform.release(),
        }
    return _client_info


_DEFAULT_ATTRIBUTES: dict[str, Any] | None = None


def _default_attributes() -> dict[str, Any]:
    global _DEFAULT_ATTRIBUTES
    if _DEFAULT_ATTRIBUTES is None:
        _DEFAULT_ATTRIBUTES = {"weave": client_info()}
    return _DEFAULT_ATTRIBUTES


def current_attributes(base: dict[str, Any] | None = None) -> dict[str, Any]:
    """The merged attribute scopes over ``base`` (a client's ``attributes=``, from
    ``client_attributes``), plus client info under ``weave`` (read-only)."""
    scoped = _attributes.get()
    if not scoped:
        # Shared by every call outside attributes() scopes (never mutated).
        return _default_attributes() if base is None else base
    attrs = {**base, **scoped} if base is not None else dict(scoped)
    user_weave = attrs.get("weave")
    attrs["weave"] = {**user_weave, **client_info()} if isinstance(user_weave, dict) else client_info()
    return attrs


# --- encoding values ----------------------------------------------------------

_PRIMITIVES = (str, int, bool, type(None))
_PRIMITIVE_TYPES = frozenset(_PRIMITIVES)
# Leaves the fast path copies as they are; a non-finite float is made JSON-safe
# when the record is encoded (off the hot path).
_LEAVES = (str, int, float, bool, type(None))


# Keys whose values encode_for_trace redacts (credentials passed as arguments);
# the fast path sends dicts holding them to the general encoder.
_REDACT_KEYS = _DEFAULT_REDACT_KEYS = DEFAULT_REDACT_KEYS
_REDACT_LENS = frozenset(len(k) for k in _REDACT_KEYS)


def add_redact_keys(keys: frozenset[str]) -> None:
    """Redact these keys too (lower-case), process-wide, as weave's ``add_redact_key``.

    Keys are only ever added: a client's ``redact_keys`` never un-redacts what
    another client redacts.
    """
    global _REDACT_KEYS, _REDACT_LENS
    new = frozenset(k.lower() for k in keys) - _REDACT_KEYS
    if not new:
        return
    # The lengths first: a reader between the two writes only misses a new key.
    _REDACT_LENS = _REDACT_LENS | frozenset(len(k) for k in new)
    _REDACT_KEYS = _REDACT_KEYS | new
    _serialize.set_redact_keys(_REDACT_KEYS)


def client_attributes(values: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A client's ``attributes=`` as recorded on each call (client info under ``weave``).

    None when there are none: calls then share the default attributes. Raises
    ``InvalidSettingError`` for a non-mapping or a non-str key.
    """
    from ._errors import InvalidSettingError

    if values is None:
        return None
    if not isinstance(values, Mapping):
        raise InvalidSettingError(
            f"attributes must be a mapping of str keys, got {type(values).__name__}"
        )
    for key in values:
        if not isinstance(key, str):
            raise InvalidSettingError(f"attributes keys must be str, got {key!r}")
    if not values:
        return None
    attrs = encode_value(dict(values))
    user_weave = attrs.get("weave")
    attrs["weave"] = {**user_weave, **client_info()} if isinstance(user_weave, dict) else client_info()
    return dict(attrs)


def encode_value(value: Any, ref_of: Any = None) -> Any:
    """Snapshot ``value`` as JSON-able data; never raises.

    Small dicts and lists of primitives (the common case) are copied here without
    a call into the general encoder; everything else goes through
    ``_serialize.encode_for_trace``, which records what it cannot encode as weave
    does (its repr, or a ref when ``ref_of`` knows it was saved).
    """
    cls = type(value)
    if cls in _PRIMITIVES:
        return value
    if cls is float:
        return value if math.isfinite(value) else _encode_general(value, ref_of)
    if cls is dict:
        out = {}
        for k, v in value.items():
            if (
                type(k) is not str
                or type(v) not in _LEAVES
                or (len(k) in _REDACT_LENS and k.lower() in _REDACT_KEYS)
            ):
                return _encode_general(value, ref_of)
            out[k] = v
        return out
    if cls is list or cls is tuple:
        for v in value:
            if type(v) not in _LEAVES:
                return _encode_general(value, ref_of)
        return list(value)
    return _encode_general(value, ref_of)


def _encode_general(value: Any, ref_of: Any) -> Any:
    try:
        return encode_for_trace(value, ref_of=ref_of)
    except Exception as exc:
        # encode_for_trace promises not to raise; if it ever does, keep the call
        # and say what happened rather than break the traced code.
        logger.warning("weave_client: could not encode a traced value: %r", exc)
        return f"<unencodable {type(value).__name__}: {exc!r}>"


def encode_inputs(inputs: Mapping[str, Any], ref_of: Any = None) -> dict[str, Any]:
    """Encode each input by parameter name (the snapshot taken at call start)."""
    out = {}
    for k, v in inputs.items():
        if len(k) in _REDACT_LENS and k.lower() in _REDACT_KEYS:
            out[k] = REDACTED_VALUE
        elif type(v) in _PRIMITIVES:
            out[k] = v
        else:
            out[k] = encode_value(v, ref_of)
    return out


def encode_new_inputs(inputs: dict[str, Any], ref_of: Any = None) -> dict[str, Any]:
    """``encode_inputs`` for a dict made for this call alone by an op's binder, whose
    parameter names ``redacted_names`` found clean: when every value is a primitive,
    the dict itself is the snapshot."""
    if _REDACT_KEYS is not _DEFAULT_REDACT_KEYS:
        # Keys added since the op's names were checked: check them per call.
        return encode_inputs(inputs, ref_of)
    for v in inputs.values():
        if type(v) not in _PRIMITIVE_TYPES:
            return encode_inputs(inputs, ref_of)
    return inputs


def redacted_names(names: tuple[str, ...]) -> bool:
    """True when some parameter's value is recorded redacted (``api_key`` ...)."""
    return any(name.lower() in _REDACT_KEYS for name in names)


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


# --- records --------------------------------------------------------------------


# A queued record is a flat tuple, not the nested wire dict: 100,000 queued calls
# must stay well under 100 MB. ``record_body`` builds the wire form when encoding.
#   start: ("start", project_id, id, op_name, display_name, trace_id, parent_id,
#           started_at, attributes (None: the shared default), inputs, thread_id, turn_id)
#   end:   ("end", project_id, id, ended_at, output, summary, exception)
Record = tuple[Any, ...]

_START_FIELDS = (
    "project_id",
    "id",
    "op_name",
    "display_name",
    "trace_id",
    "parent_id",
    "started_at",
    "attributes",
    "inputs",
    "thread_id",
    "turn_id",
)
_END_FIELDS = ("project_id", "id", "ended_at", "output", "summary", "exception")


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
        None if attrs is _DEFAULT_ATTRIBUTES else attrs,
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
        and type(raw_output) in _LEAVES
    ):
        summary = _SUCCESS_SUMMARY  # a leaf returning a primitive: no usage to find
    else:
        summary = _summary(frame, raw_output, exception)
        if frame.summary:
            summary = _merge_user_summary(frame.summary, summary)
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


# Taken only to make a frame's child_summaries list (once per parent call).
_summaries_lock = threading.Lock()


def add_child_summary(parent: CallFrame, summary: dict[str, Any]) -> None:
    """Roll an ended child's summary into ``parent`` (children may end in other
    threads: the list is made under a lock, and list.append is atomic)."""
    summaries = parent.child_summaries
    if summaries is None:
        with _summaries_lock:
            summaries = parent.child_summaries
            if summaries is None:
                summaries = parent.child_summaries = []
    summaries.append(summary)


def record_body(record: Record) -> dict[str, Any]:
    """The StartedCallSchemaForInsert / EndedCallSchemaForInsert fields of a record,
    timestamps as ISO strings."""
    if record[0] == "start":
        body = dict(zip(_START_FIELDS, record[1:], strict=True))
        body["started_at"] = iso_timestamp(body["started_at"])
        if body["attributes"] is None:
            body["attributes"] = _default_attributes()
        # Sent only inside a thread block: most calls have neither.
        if body["thread_id"] is None:
            del body["thread_id"], body["turn_id"]
        for key in ("id", "trace_id", "parent_id"):
            if type(body[key]) is int:
                body[key] = format_id(body[key])
    else:
        body = dict(zip(_END_FIELDS, record[1:], strict=True))
        body["ended_at"] = iso_timestamp(body["ended_at"])
        if type(body["id"]) is int:
            body["id"] = format_id(body["id"])
    return body


# Shared summaries of the common leaf calls (no children, no usage). Read-only:
# roll-ups build new dicts, and a Call built from a record copies its summary.
_SUCCESS_SUMMARY: dict[str, Any] = {STATUS_COUNTS_KEY: {"success": 1, "error": 0}}
_ERROR_SUMMARY: dict[str, Any] = {STATUS_COUNTS_KEY: {"success": 0, "error": 1}}
# Their JSON texts, by identity (encode_record writes them without encoding).
_SHARED_SUMMARY_JSON: dict[int, str] = {
    id(_SUCCESS_SUMMARY): '{"status_counts":{"success":1,"error":0}}',
    id(_ERROR_SUMMARY): '{"status_counts":{"success":0,"error":1}}',
}


def _summary(frame: CallFrame, raw_output: Any, exception: BaseException | None) -> dict[str, Any]:
    """weave's ``finish_call`` summary: children's leaves summed, else own usage."""
    summary: dict[str, Any]
    if frame.child_summaries:
        summary = sum_dict_leaves(frame.child_summaries)
    else:
        # A primitive output has no usage (and getattr on it would raise inside).
        usage = None if type(raw_output) in _LEAVES else _usage_of(raw_output)
        if usage is None:
            return _ERROR_SUMMARY if exception is not None else _SUCCESS_SUMMARY
        summary = {USAGE_KEY: usage}
    counts = summary.setdefault(STATUS_COUNTS_KEY, {"success": 0, "error": 0})
    key = "error" if exception is not None else "success"
    counts[key] = counts.get(key, 0) + 1
    return summary


def _merge_user_summary(user: dict[str, Any], computed: dict[str, Any]) -> dict[str, Any]:
    """What the op put in its summary, deep-merged under the computed values (as weave)."""
    merged = encode_value(user)
    if not isinstance(merged, dict):
        merged = {}
    elif merged is user:
        merged = dict(user)

    def deep_update(dst: dict[str, Any], src: dict[str, Any]) -> None:
        for k, v in src.items():
            if isinstance(v, dict) and isinstance(dst.get(k), dict):
                dst[k] = dict(dst[k])
                deep_update(dst[k], v)
            else:
                dst[k] = v

    deep_update(merged, computed)
    return merged


def _usage_of(output: Any) -> dict[str, Any] | None:
    """``{model: {"requests": 1, **usage}}`` for an OpenAI-style output, else None."""
    if isinstance(output, dict):
        if USAGE_KEY not in output or "model" not in output:
            return None
        model, usage = output["model"], output[USAGE_KEY]
    else:
        model = getattr(output, "model", None)
        usage = getattr(output, USAGE_KEY, None)
        if usage is None or model is None:
            return None
        dump = getattr(usage, "model_dump", None)
        if callable(dump):  # a pydantic usage object, as the OpenAI SDK returns
            usage = dump(exclude_unset=True)
    if not isinstance(usage, dict) or not isinstance(model, str):
        return None
    return {model: {"requests": 1, **usage}}


def sum_dict_leaves(dicts: list[dict[str, Any]]) -> dict[str, Any]:
    """Combine dicts by summing numeric leaves and recursing into nested dicts."""
    nested: dict[str, list[dict[str, Any]]] = {}
    leaves: dict[str, list[Any]] = {}
    for d in dicts:
        for k, v in d.items():
            if isinstance(v, dict):
                nested.setdefault(k, []).append(v)
            elif v is not None:
                if isinstance(v, list):
                    leaves.setdefault(k, []).extend(v)
                else:
                    leaves.setdefault(k, []).append(v)
    result: dict[str, Any] = {}
    for k, values in leaves.items():
        if k not in nested and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in values
        ):
            result[k] = sum(values)
        else:
            result[k] = values
    for k, group in nested.items():
        result[k] = sum_dict_leaves(group)
    return result


def now() -> float:
    """Wall-clock seconds for started_at / ended_at."""
    return time.time()


# The last whole second formatted by iso_timestamp: records of one batch mostly
# share it, and formatting the date part is most of the cost of a timestamp.
_last_second: tuple[float, str] = (math.nan, "")


def iso_timestamp(seconds: float) -> str:
    """``2025-01-31T12:00:00.123456Z``: the form pydantic writes for an aware datetime.

    The same text as ``datetime.fromtimestamp(seconds, UTC).strftime(...)``
    (microseconds rounded half to even, as datetime does), at a third of the cost.
    """
    global _last_second
    frac, whole = math.modf(seconds)
    micros = round(frac * 1e6)
    if micros >= 1_000_000:
        whole += 1.0
        micros -= 1_000_000
    elif micros < 0:
        whole -= 1.0
        micros += 1_000_000
    cached_whole, prefix = _last_second
    if whole != cached_whole:
        prefix = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _last_second = (whole, prefix)
    return f"{prefix}.{micros:06d}Z"


# The default attributes (client info) are the same on every call outside an
# attributes() scope and about half of a start record's JSON: encoded once.
_default_attributes_json: str | None = None
# The last other attributes written and their text: the same read-only dict repeats
# (a client's ``attributes=``; calls in one attributes() scope share theirs).
_last_attrs: tuple[Any, str] = (object(), "")


def encode_record(record: Record) -> bytes:
    """One upsert_batch item as compact JSON bytes (runs on the sender's side).

    The item's frame is written directly, each value with one reused C encoder
    (``json.dumps`` with options builds a new encoder per call: most of the cost);
    the texts that repeat from record to record (project, op name, the shared
    attributes and summaries) are written once. A record the direct path cannot
    write (a NaN somewhere) goes the general way.
    """
    global _default_attributes_json, _last_attrs
    try:
        if record[0] == "start":
            (
                _, project_id, call_id, op_name, display_name, trace_id, parent_id,
                started, attrs, inputs, thread_id, turn_id,
            ) = record  # fmt: skip
            if attrs is None:  # the shared default (see make_start)
                if _default_attributes_json is None:
                    _default_attributes_json = _encode(_default_attributes())
                attrs_json = _default_attributes_json
            elif attrs is _last_attrs[0]:
                attrs_json = _last_attrs[1]  # a client's attributes=, on each of its calls
            else:
                attrs_json = _encode(attrs)
                _last_attrs = (attrs, attrs_json)
            # Sent only inside a thread block, as record_body does.
            thread = (
                ""
                if thread_id is None
                else f',"thread_id":{_encode(thread_id)},"turn_id":{_encode(turn_id)}'
            )
            text = (
                f'{{"mode":"start","req":{{"start":{{"project_id":{_name_json(project_id)}'
                f',"id":{_id_json(call_id)},"op_name":{_name_json(op_name)}'
                f',"display_name":{_name_json(display_name)},"trace_id":{_id_json(trace_id)}'
                f',"parent_id":{_id_json(parent_id)},"started_at":"{iso_timestamp(started)}"'
                f',"inputs":{_encode(inputs)},"attributes":{attrs_json}{thread}}}}}}}'
            )
        else:
            _, project_id, call_id, ended, output, summary, exception = record
            summary_json = _SHARED_SUMMARY_JSON.get(id(summary)) or _encode(summary)
            text = (
                f'{{"mode":"end","req":{{"end":{{"project_id":{_name_json(project_id)}'
                f',"id":{_id_json(call_id)},"ended_at":"{iso_timestamp(ended)}"'
                f',"output":{_encode(output)},"summary":{summary_json}'
                f',"exception":{_encode(exception)}}}}}}}'
            )
    except (ValueError, TypeError, RecursionError):
        return encode_body(record[0], record_body(record))
    return text.encode()


# Texts of project ids, op names and display names written lately: the same few
# repeat in every record.
_name_texts: dict[Any, str] = {}


def _name_json(value: Any) -> str:
    """A name field (str or None) as JSON, from the cache when written before."""
    text = _name_texts.get(value)
    if text is None:
        text = _encode(value)
        if type(value) is str and len(value) <= 512:
            if len(_name_texts) >= 1024:
                _name_texts.clear()
            _name_texts[value] = text
    return text


# Id texts written lately: a call's end (and its children's parent ids) follow its
# start closely, so most ids are written more than once.
_id_texts: dict[int, str] = {}


def _id_json(value: Any) -> str:
    """An id field: the quoted UUID text of an id integer, else the value as JSON."""
    if type(value) is not int:
        return _encode(value)
    text = _id_texts.get(value)
    if text is None:
        if len(_id_texts) >= 8192:
            _id_texts.clear()
        text = _id_texts[value] = '"' + format_id(value) + '"'
    return text


def encode_body(mode: str, body: dict[str, Any]) -> bytes:
    """``{"mode": mode, "req": {mode: body}}`` as compact JSON bytes."""
    wire = {"mode": mode, "req": {mode: body}}
    try:
        text = json.dumps(wire, separators=(",", ":"), allow_nan=False, default=_json_default)
    except ValueError:
        # NaN/Infinity are not JSON: write them as the strings Python prints.
        text = json.dumps(
            _finite(wire), separators=(",", ":"), allow_nan=False, default=_json_default
        )
    return text.encode()


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _json_default(value: Any) -> Any:
    # The encoder hands us JSON-able data; anything else is a bug upstream, and
    # its repr keeps the call rather than losing the whole batch.
    return repr(value)


# One encoder for every value of a record (compact, NaN refused so encode_body can
# write it as a string, anything odd as its repr). The C encoder itself, made once:
# JSONEncoder.encode builds a new one on every call, which costs more than the work.
_c_make_encoder: Any = getattr(json_encoder, "c_make_encoder", None)
_c_encoder = (
    _c_make_encoder(
        None,  # no cycle check: a cyclic value recurses and takes the general path
        _json_default,
        json_encoder.encode_basestring_ascii,
        None,
        ":",
        ",",
        False,
        False,
        False,
    )
    if _c_make_encoder is not None
    else None
)


def _encode(value: Any) -> str:
    cls = type(value)
    if cls is str:
        return json_encoder.encode_basestring_ascii(value)
    if value is None:
        return "null"
    if cls is int:
        return int.__repr__(value)
    if _c_encoder is None:
        return json.dumps(value, separators=(",", ":"), allow_nan=False, default=_json_default)
    return "".join(_c_encoder(value, 0))


def record_call_id(record: Record) -> str:
    """The call id a record belongs to (for log lines)."""
    value = record[2]
    return format_id(value) if type(value) is int else str(value)


# --- ops as versioned objects -------------------------------------------------------


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


@dataclass(frozen=True)
class OpSave:
    """An op version to store ahead of its first call: the source file, then the Op object."""

    project_id: str
    name: str
    source: bytes
    val: dict[str, Any]
    digest: str


def op_save(project_id: str, name: str, source: str) -> OpSave:
    """The Op object weave saves for ``source``, with digests computed locally.

    The file digest and the object digest are the ones the server computes, so a
    call can name the op's ref before the save reaches the server.
    """
    content = source.encode("utf-8")
    val = {
        "_type": "CustomWeaveType",
        "files": {"obj.py": bytes_digest(content)},
        "weave_type": {"type": "Op"},
    }
    return OpSave(
        project_id=project_id, name=name, source=content, val=val, digest=json_digest(val)
    )


def op_parameters(
    signature: inspect.Signature,
) -> tuple[tuple[str, ...], dict[str, Any], bool]:
    """Parameter names, their defaults, and whether the fast binding applies
    (only positional-or-keyword parameters)."""
    names = tuple(signature.parameters)
    defaults = {name: p.default for name, p in signature.parameters.items()}
    simple = all(
        p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in signature.parameters.values()
    )
    return names, defaults, simple


def positional_binder(names: tuple[str, ...]) -> Callable[..., dict[str, Any]]:
    """A function of one argument per parameter returning ``{name: argument}``,
    compiled once per op: binding a call's positional arguments is then one call."""
    for name in names:
        if not name.isidentifier() or keyword.iskeyword(name):
            raise ValueError(f"not a parameter name: {name!r}")
    params = ", ".join(f"_a{i}" for i in range(len(names)))
    items = ", ".join(f"{name!r}: _a{i}" for i, name in enumerate(names))
    binder: Callable[..., dict[str, Any]] = eval(f"lambda {params}: {{{items}}}")
    return binder


def inferred_op_name(func: Callable[..., Any]) -> str:
    # Methods are named Class.method, as weave names them; the <locals> prefix of
    # nested definitions is noise.
    params = list(inspect.signature(func).parameters)
    qualname = getattr(func, "__qualname__", None) or getattr(func, "__name__", "op")
    name = qualname if params[:1] == ["self"] else getattr(func, "__name__", qualname)
    return str(name).split(".<locals>.")[-1]


def sanitize_name(name: str) -> str:
    """An op name the server accepts, as weave's sanitize_object_name makes it.

    Raises ``InvalidNameError`` (a ``ValueError``) when nothing is left.
    """
    return sanitize_object_name(name, what="op name")


OP_DECORATORS = frozenset({"async_op", "op"})


def op_placeholder_source(func: Callable[..., Any], name: str) -> str:
    """What is saved for an op when code capture is off (``WEAVE_CAPTURE_CODE=false``).

    As weave: a stub naming the digest of the real source, so versions still
    change when the code does, without the code itself leaving the process.
    """
    try:
        digest = str_digest(inspect.getsource(func))
    except (OSError, TypeError):
        digest = "unavailable"
    return (
        "import weave\n\n@weave.op()\n"
        f"def {name.replace('-', '_').replace('.', '_')}(*args, **kwargs):\n"
        f"    ...  # Code-capture was disabled while saving this op (digest: {digest})\n"
    )


def op_source(func: Callable[..., Any], name: str) -> str:
    """The op's source as weave saves it: ``import weave``, then the function under
    ``@weave.op()`` (our own decorator lines replaced)."""
    try:
        source = textwrap.dedent(inspect.getsource(func))
    except (OSError, TypeError):
        try:
            signature = str(inspect.signature(func))
        except (TypeError, ValueError):
            signature = "(*args, **kwargs)"
        keyword = "async def" if inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func) else "def"
        source = f"{keyword} {name}{signature}:\n    ...  # Code-capture unavailable for this op\n"
        return f"import weave\n\n@weave.op()\n{source}"
    lines = source.splitlines()
    try:
        tree = ast.parse(source)
        node = tree.body[0]
    except (SyntaxError, IndexError):
        return f"import weave\n\n@weave.op()\n{source}"
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        drop: set[int] = set()
        for dec in node.decorator_list:
            target = dec.func if isinstance(dec, ast.Call) else dec
            label = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", None)
            if label in OP_DECORATORS:
                drop.update(range(dec.lineno - 1, (dec.end_lineno or dec.lineno)))
        def_line = node.lineno - 1
        kept = [line for i, line in enumerate(lines[:def_line]) if i not in drop]
        lines = [*kept, "@weave.op()", *lines[def_line:]]
    return "import weave\n\n" + "\n".join(lines) + "\n"
