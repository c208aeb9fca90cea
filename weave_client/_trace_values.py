"""Snapshots of traced values (inputs, outputs) as JSON-able data, and the redacted keys.

I/O-free and flavour-free, on every traced call's path: small dicts and lists of
primitives are copied here; everything else goes to ``_serialize.encode_for_trace``.
The process-wide set of redacted keys lives here (``add_redact_keys`` extends it and
tells ``_serialize``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

from . import _serialize
from ._redact import DEFAULT_REDACT_KEYS, REDACTED_VALUE
from ._serialize import encode_for_trace

__all__ = [
    "LEAVES",
    "add_redact_keys",
    "encode_inputs",
    "encode_new_inputs",
    "encode_value",
    "redacted_names",
]

logger = logging.getLogger("weave_client")

_PRIMITIVES = (str, int, bool, type(None))
_PRIMITIVE_TYPES = frozenset(_PRIMITIVES)
# Leaves the fast path copies as they are; a non-finite float is made JSON-safe
# when the record is encoded (off the hot path).
LEAVES = (str, int, float, bool, type(None))


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
                or type(v) not in LEAVES
                or (len(k) in _REDACT_LENS and k.lower() in _REDACT_KEYS)
            ):
                return _encode_general(value, ref_of)
            out[k] = v
        return out
    if cls is list or cls is tuple:
        for v in value:
            if type(v) not in LEAVES:
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
