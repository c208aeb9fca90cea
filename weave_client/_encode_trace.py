"""The lenient encoding of a traced call's inputs and output: :func:`encode_for_trace`.

I/O-free and flavour-free, and on the traced call's hot path. It never raises:
what it cannot encode is recorded as weave records it (its ``repr``), cycles and
too-deep values become visible marker strings, long strings may be cut, and the
values of redacted keys become ``"REDACTED"``. The result shares no mutable
container with the input (a snapshot).

The redacted keys live here, in one place: :func:`set_redact_keys` (called by
``_trace_values.add_redact_keys``) replaces them process-wide.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
from collections.abc import Iterator, Mapping
from typing import Any, Final

import pydantic

from ._classinfo import class_info, is_namedtuple
from ._redact import DEFAULT_REDACT_KEYS, REDACTED_VALUE
from ._refs import Ref
from ._stored import CustomObject, RefOf, WeaveObject, datetime_value, record

__all__ = ["DEFAULT_TRACE_MAX_DEPTH", "MAX_REPR_LEN", "encode_for_trace", "set_redact_keys"]

DEFAULT_TRACE_MAX_DEPTH: Final = 64
MAX_REPR_LEN: Final = 1000
"""Longest ``repr`` recorded for a value the trace encoder cannot otherwise encode (weave's)."""

# Dict keys whose values weave's client never records in a trace (compared
# case-insensitively); a credential passed as an argument stays out of the logs.
# ``set_redact_keys`` (from ``_trace_values.add_redact_keys``) extends them process-wide.
_REDACT_KEYS = DEFAULT_REDACT_KEYS
_REDACT_LENS = frozenset(len(k) for k in _REDACT_KEYS)


def set_redact_keys(keys: frozenset[str]) -> None:
    """Replace the redacted keys (lower-case); see ``_trace_values.add_redact_keys``."""
    global _REDACT_KEYS, _REDACT_LENS
    _REDACT_LENS = _REDACT_LENS | frozenset(len(k) for k in keys)
    _REDACT_KEYS = keys


def _key_str(k: Any) -> str:
    # What json.dumps does with a non-str key, and str() for anything it refuses.
    if k is True:
        return "true"
    if k is False:
        return "false"
    if k is None:
        return "null"
    if isinstance(k, str):
        return str.__str__(k)
    if isinstance(k, int):
        return int.__repr__(k)
    if isinstance(k, float):
        return float.__repr__(k)
    try:
        return str(k)
    except Exception:
        return f"<{type(k).__name__} key>"


def _safe_repr(v: object, limit: int) -> str:
    try:
        rep = repr(v)
    except Exception:
        try:
            rep = str(v)
        except Exception:
            rep = f"<{type(v).__name__}: {id(v)}>"
    if not isinstance(rep, str):
        rep = f"<{type(v).__name__}: {id(v)}>"
    if len(rep) > limit:
        rep = rep[:limit] + "..."
    return rep


def encode_for_trace(
    value: Any,
    *,
    ref_of: RefOf | None = None,
    max_depth: int = DEFAULT_TRACE_MAX_DEPTH,
    max_str_len: int | None = None,
) -> Any:
    """Snapshot ``value`` as JSON-able data for a call's inputs or output. Never raises.

    Same shapes as :func:`encode_for_save` where weave records the same (refs,
    pydantic models, dataclasses, datetime, Enum, namedtuple, NaN -> null), and
    as weave records traces otherwise: bytes, sets and other objects become their
    ``repr`` (at most 1000 characters), non-str dict keys become strings, and the
    values of keys named ``api_key``, ``authorization`` or ``auth_headers`` are
    replaced by ``"REDACTED"``. ``ref_of(v)`` (tried for every non-builtin value)
    turns saved values into their ref URI. A container met again inside itself
    becomes ``"<cycle: dict>"``; one nested deeper than ``max_depth`` becomes
    ``"<too deep: dict>"``. Strings longer than ``max_str_len`` (if given) are
    cut, ending in ``"...[N more chars]"``.

    Every container in the result is new, so mutating the input afterwards does
    not change what was recorded.
    """
    try:
        return _TraceEncoder(ref_of, max_depth, max_str_len).encode(value, 0)
    except Exception as exc:  # the promise: tracing never breaks the traced code
        return f"<unencodable {type(value).__name__}: {_safe_repr(exc, 200)}>"


class _TraceEncoder:
    __slots__ = ("active", "max_depth", "max_str_len", "ref_of", "repr_len")

    def __init__(self, ref_of: RefOf | None, max_depth: int, max_str_len: int | None) -> None:
        self.ref_of = ref_of
        self.max_depth = max_depth
        self.max_str_len = max_str_len
        self.repr_len = MAX_REPR_LEN if max_str_len is None else min(max_str_len, MAX_REPR_LEN)
        self.active: set[int] = set()

    def encode(self, v: Any, depth: int) -> Any:
        t = type(v)
        if t is str:
            n = self.max_str_len
            if n is None or len(v) <= n:
                return v
            return f"{v[:n]}...[{len(v) - n} more chars]"
        if t is int or t is bool or v is None:
            return v
        if t is float:
            return v if v - v == 0 else None
        if t is dict:
            return self.mapping(v, depth)
        if t is list or t is tuple:
            return self.sequence(v, depth)
        try:
            return self.other(v, depth)
        except RecursionError:
            raise
        except Exception:
            # A user object whose attributes or to_dict() raise: record its repr.
            return _safe_repr(v, self.repr_len)

    def enter(self, v: object, depth: int) -> str | None:
        """A marker when ``v`` must not be entered (a cycle, or too deep), else None."""
        if id(v) in self.active:
            return f"<cycle: {type(v).__name__}>"
        if depth >= self.max_depth:
            return f"<too deep: {type(v).__name__}>"
        return None

    def mapping(self, v: Mapping[Any, Any], depth: int) -> Any:
        marker = self.enter(v, depth)
        if marker is not None:
            return marker
        i = id(v)
        active = self.active
        active.add(i)
        enc = self.encode
        no_str_limit = self.max_str_len is None
        d = depth + 1
        out = {}
        try:
            for k, x in v.items():
                if type(k) is not str:
                    k = _key_str(k)
                if len(k) in _REDACT_LENS and k.lower() in _REDACT_KEYS:
                    out[k] = REDACTED_VALUE
                    continue
                t = type(x)
                if t is int or t is bool or x is None or (t is str and no_str_limit):
                    out[k] = x  # the common leaves, without a call
                else:
                    out[k] = enc(x, d)
        finally:
            active.discard(i)
        return out

    def sequence(self, v: Any, depth: int) -> Any:
        marker = self.enter(v, depth)
        if marker is not None:
            return marker
        i = id(v)
        active = self.active
        active.add(i)
        enc = self.encode
        no_str_limit = self.max_str_len is None
        d = depth + 1
        out: list[Any] = []
        append = out.append
        try:
            for x in v:
                t = type(x)
                if t is int or t is bool or x is None or (t is str and no_str_limit):
                    append(x)
                else:
                    append(enc(x, d))
        finally:
            active.discard(i)
        return out

    def record(
        self,
        v: object,
        depth: int,
        name: str,
        bases: tuple[str, ...],
        items: Iterator[tuple[str, Any]],
    ) -> Any:
        marker = self.enter(v, depth)
        if marker is not None:
            return marker
        i = id(v)
        self.active.add(i)
        d = depth + 1
        try:
            fields = {k: self.encode(x, d) for k, x in items}
        finally:
            self.active.discard(i)
        return record(name, bases, fields)

    def other(self, v: Any, depth: int) -> Any:
        if isinstance(v, Ref):
            return v.uri()
        if self.ref_of is not None:
            ref = self.ref_of(v)
            if ref is not None:
                return ref.uri()
        if isinstance(v, enum.Enum):
            if isinstance(v, int | str | float):
                return self.encode(v.value, depth)
            name, bases, _ = class_info(type(v))
            return self.record(v, depth, name, bases, iter((("name", v.name), ("value", v.value))))
        if isinstance(v, int):
            return int(v)
        if isinstance(v, float):
            return self.encode(float(v), depth)
        if isinstance(v, str):
            return self.encode(str.__str__(v), depth)
        if isinstance(v, Mapping):
            return self.mapping(v, depth)
        if is_namedtuple(v):
            return self.mapping(v._asdict(), depth)
        if isinstance(v, list | tuple):
            return self.sequence(v, depth)
        if isinstance(v, _dt.datetime):
            return datetime_value(v)
        if isinstance(v, WeaveObject):
            out = self.record(v, depth, v._class_name, tuple(v._bases), iter(v._asdict().items()))
            if isinstance(out, dict):
                out["_type"] = v._type
            return out
        if isinstance(v, CustomObject):
            return dict(v.encoded)
        if isinstance(v, pydantic.BaseModel) or (
            dataclasses.is_dataclass(v) and not isinstance(v, type)
        ):
            name, bases, field_names = class_info(type(v))
            items = ((k, getattr(v, a)) for a, k in field_names or ())
            return self.record(v, depth, name, bases, items)
        to_dict = getattr(type(v), "to_dict", None)
        if callable(to_dict) and not isinstance(v, type):
            # weave's Dictifiable protocol: an object that can describe itself as a dict.
            as_dict = v.to_dict()
            if isinstance(as_dict, dict):
                return self.mapping(as_dict, depth)
        return _safe_repr(v, self.repr_len)
