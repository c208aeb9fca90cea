"""The attributes recorded on each call: ``attributes()`` scopes, a client's
``attributes=``, and the client info weave writes under ``attributes.weave``.

I/O-free and flavour-free. Calls outside any scope share one read-only dict of
defaults (``DEFAULT_ATTRIBUTES``, filled on first use), which the record writer
encodes once.
"""

from __future__ import annotations

import contextvars
import platform
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from ._trace_values import encode_value

__all__ = [
    "DEFAULT_ATTRIBUTES",
    "attributes",
    "client_attributes",
    "client_info",
    "current_attributes",
    "default_attributes",
]

# Merged ``attributes({...})`` scopes of the running context.
_attributes: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar(
    "weave_client_attributes", default=None
)


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


# The attributes of every call outside attributes() scopes with no client
# ``attributes=``: one dict for the process (``make_start`` knows it by identity),
# filled on first use (reading the client's version is not for import time).
DEFAULT_ATTRIBUTES: dict[str, Any] = {}


def default_attributes() -> dict[str, Any]:
    """``DEFAULT_ATTRIBUTES``, filled: ``{"weave": client_info()}`` (read-only)."""
    if not DEFAULT_ATTRIBUTES:
        DEFAULT_ATTRIBUTES["weave"] = client_info()
    return DEFAULT_ATTRIBUTES


def current_attributes(base: dict[str, Any] | None = None) -> dict[str, Any]:
    """The merged attribute scopes over ``base`` (a client's ``attributes=``, from
    ``client_attributes``), plus client info under ``weave`` (read-only)."""
    scoped = _attributes.get()
    if not scoped:
        # Shared by every call outside attributes() scopes (never mutated).
        return default_attributes() if base is None else base
    attrs = {**base, **scoped} if base is not None else dict(scoped)
    user_weave = attrs.get("weave")
    attrs["weave"] = {**user_weave, **client_info()} if isinstance(user_weave, dict) else client_info()
    return attrs


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
