"""Stored JSON back to Python values: :func:`decode` and :func:`files_to_fetch`.

I/O-free and flavour-free. :func:`decode` turns ``{"_type": ...}`` dicts into
:class:`~weave_client._stored.WeaveObject` (attribute access; ``_class_name``
and ``_bases`` kept), plain dicts into dicts, lists into lists, ``weave:///``
strings into parsed refs (resolving them is the client's job), datetime back
into an aware ``datetime``, bytes back into ``bytes`` when their file content is
given (else a :class:`~weave_client._stored.CustomObject` placeholder), and any
other custom type into a ``CustomObject`` that re-encodes to what was read.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from typing import Any

from ._errors import InvalidRefError
from ._refs import SCHEME, parse_ref
from ._stored import (
    BYTES_FILE_NAME,
    BYTES_TYPE,
    CUSTOM_TYPE,
    DATETIME_TYPE,
    META_KEYS,
    CustomObject,
    WeaveObject,
)

__all__ = ["decode", "files_to_fetch"]


def decode(value: Any, *, files: Mapping[str, bytes] | None = None) -> Any:
    """Turn stored JSON back into Python values (the shapes are listed in ``_stored``).

    ``files`` maps file digest -> content for file-backed values (``bytes``);
    :func:`files_to_fetch` lists the digests a value needs. Never does I/O and
    never raises on unexpected shapes: what it does not know stays as read.
    """
    t = type(value)
    if t is str:
        if value.startswith(SCHEME):
            try:
                return parse_ref(value)
            except InvalidRefError:
                return value
        return value
    if t is list:
        return [decode(v, files=files) for v in value]
    if t is dict:
        type_name = value.get("_type")
        if type_name is None:
            return {k: decode(v, files=files) for k, v in value.items()}
        if type_name == CUSTOM_TYPE:
            return _decode_custom(value, files)
        class_name = value.get("_class_name")
        bases = value.get("_bases")
        obj = WeaveObject(
            class_name if isinstance(class_name, str) else str(type_name),
            {k: decode(v, files=files) for k, v in value.items() if k not in META_KEYS},
            bases=[str(b) for b in bases] if isinstance(bases, list) else (),
            type_name=str(type_name),
        )
        return obj
    return value


def _decode_custom(value: dict[str, Any], files: Mapping[str, bytes] | None) -> Any:
    custom = CustomObject(value)
    kind = custom.weave_type
    if kind == DATETIME_TYPE and isinstance(custom.val, str):
        try:
            return _dt.datetime.fromisoformat(custom.val)
        except ValueError:
            return custom
    if kind == BYTES_TYPE and files is not None:
        digest = custom.files.get(BYTES_FILE_NAME)
        if digest is not None and digest in files:
            return bytes(files[digest])
    return custom


def files_to_fetch(value: Any) -> set[str]:
    """Digests of the files :func:`decode` needs to rebuild ``value`` fully (its bytes)."""
    found: set[str] = set()
    stack = [value]
    while stack:
        v = stack.pop()
        if type(v) is list:
            stack.extend(v)
        elif type(v) is dict:
            if v.get("_type") == CUSTOM_TYPE:
                wt = v.get("weave_type")
                fs = v.get("files")
                if isinstance(wt, dict) and wt.get("type") == BYTES_TYPE and isinstance(fs, dict):
                    d = fs.get(BYTES_FILE_NAME)
                    if isinstance(d, str):
                        found.add(d)
            else:
                stack.extend(v.values())
    return found
