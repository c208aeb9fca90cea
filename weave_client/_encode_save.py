"""The strict encoding of a value given to ``save()`` (or stored as a table row).

I/O-free and flavour-free. :func:`encode_for_save` gives the JSON the server
stores (the shapes are listed in ``_stored``) and the file contents it refers
to; it raises :class:`~weave_client.UnsaveableValueError` (a ``TypeError``)
naming the path (``obj["a"][3].b``) and type of the first value it cannot
encode. :func:`encode_custom_files` gives the stored form of a file-backed
custom type (an ``Op``).
"""

from __future__ import annotations

import datetime as _dt
import enum
import json
import types
from collections.abc import Iterator, Mapping
from typing import Any, Final

from ._classinfo import class_info, class_ops, is_namedtuple, plain_attrs
from ._digest import bytes_digest
from ._errors import UnsaveableValueError
from ._refs import Ref
from ._stored import (
    BYTES_FILE_NAME,
    BYTES_TYPE,
    CUSTOM_TYPE,
    CustomObject,
    EncodedValue,
    PendingFile,
    RefOf,
    WeaveObject,
    datetime_value,
    record,
)

__all__ = ["MAX_SAVE_DEPTH", "encode_custom_files", "encode_for_save"]

MAX_SAVE_DEPTH: Final = 200
"""Nesting deeper than this is refused by ``encode_for_save`` (Python's own
recursion limit, and the server's JSON parser, would give up soon after)."""


_UNSAVEABLE_KINDS: Final = (
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.ModuleType,
    types.GeneratorType,
    types.CoroutineType,
    types.AsyncGeneratorType,
    type,
    set,
    frozenset,
)


def _type_desc(v: object) -> str:
    cls = type(v)
    mod = cls.__module__
    return cls.__qualname__ if mod in ("builtins", None) else f"{mod}.{cls.__qualname__}"


class _SaveEncoder:
    __slots__ = ("active", "files", "path", "ref_of")

    def __init__(self, ref_of: RefOf | None) -> None:
        self.ref_of = ref_of
        self.files: dict[str, PendingFile] = {}
        # Path segments, formatted only when an error is raised: a str is a dict
        # key, an int a list index, a 1-tuple an attribute name.
        self.path: list[str | int | tuple[str]] = []
        # id of each container on the current path -> len(path) when entered,
        # so a cycle can name both where it closes and what it points back to.
        self.active: dict[int, int] = {}

    def where(self, n: int | None = None) -> str:
        parts = ["obj"]
        for seg in self.path if n is None else self.path[:n]:
            if type(seg) is str:
                parts.append(f"[{json.dumps(seg, ensure_ascii=False)}]")
            elif type(seg) is int:
                parts.append(f"[{seg}]")
            else:
                parts.append(f".{seg[0]}")  # type: ignore[index]
        return "".join(parts)

    def fail(self, v: object, reason: str) -> UnsaveableValueError:
        where = self.where()
        desc = _type_desc(v)
        return UnsaveableValueError(
            f"cannot save {where} of type {desc}: {reason}", path=where, type_name=desc
        )

    def enter(self, v: object) -> int:
        i = id(v)
        if i in self.active:
            target = self.where(self.active[i])
            where = self.where()
            desc = _type_desc(v)
            raise UnsaveableValueError(
                f"cannot save {where} of type {desc}: cycle, it is the same {desc} "
                f"as its enclosing {target}",
                path=where,
                type_name=desc,
            )
        if len(self.active) >= MAX_SAVE_DEPTH:
            raise self.fail(v, f"nested deeper than {MAX_SAVE_DEPTH} levels")
        self.active[i] = len(self.path)
        return i

    def encode(self, v: Any, root: bool) -> Any:
        t = type(v)
        if t is str or t is int or t is bool or v is None:
            return v
        if t is float:
            return v if v - v == 0 else None  # NaN/inf -> null, as weave's client sends
        if t is dict:
            return self.mapping(v)
        if t is list or t is tuple:
            return self.sequence(v)
        return self.other(v, root)

    def mapping(self, v: Mapping[Any, Any]) -> dict[str, Any]:
        i = self.enter(v)
        path = self.path
        encode = self.encode
        out: dict[str, Any] = {}
        for k, x in v.items():
            if type(k) is not str:
                if not isinstance(k, str):
                    raise self.fail(
                        v,
                        f"key {k!r} has type {_type_desc(k)}, but saved dict keys must be str",
                    )
                k = str.__str__(k)
            t = type(x)
            if t is str or t is int or t is bool or x is None:
                out[k] = x  # the common leaves, without a call
            else:
                path.append(k)
                out[k] = encode(x, False)
                path.pop()
        del self.active[i]
        return {k: out[k] for k in sorted(out)}

    def sequence(self, v: list[Any] | tuple[Any, ...]) -> list[Any]:
        i = self.enter(v)
        path = self.path
        encode = self.encode
        out: list[Any] = []
        append = out.append
        for n, x in enumerate(v):
            t = type(x)
            if t is str or t is int or t is bool or x is None:
                append(x)
            else:
                path.append(n)
                append(encode(x, False))
                path.pop()
        del self.active[i]
        return out

    def fields(self, v: object, items: Iterator[tuple[str, str, Any]]) -> dict[str, Any]:
        """Encode (attribute, key, value) items of an object; the path uses the attribute."""
        i = self.enter(v)
        path = self.path
        out: dict[str, Any] = {}
        for attr, key, x in items:
            path.append((attr,))
            out[key] = self.encode(x, False)
            path.pop()
        del self.active[i]
        return out

    def other(self, v: Any, root: bool) -> Any:
        if isinstance(v, Ref):
            return v.uri()
        if not root and self.ref_of is not None:
            ref = self.ref_of(v)
            if ref is not None:
                return ref.uri()
        if isinstance(v, enum.Enum):
            return self.enum(v)
        if isinstance(v, int):
            return int(v)
        if isinstance(v, float):
            return self.encode(float(v), root)
        if isinstance(v, str):
            return str.__str__(v)
        if isinstance(v, Mapping):
            return self.mapping(v)
        if is_namedtuple(v):
            return self.fields(v, ((k, k, x) for k, x in v._asdict().items()))
        if isinstance(v, list | tuple):
            return self.sequence(v)
        if isinstance(v, _dt.datetime):
            return datetime_value(v)
        if isinstance(v, bytes | bytearray | memoryview):
            return self.bytes_value(bytes(v))
        if isinstance(v, WeaveObject):
            items = ((k, k, x) for k, x in v._asdict().items())
            return record(v._class_name, tuple(v._bases), self.fields(v, items)) | {
                "_type": v._type
            }
        if isinstance(v, CustomObject):
            return dict(v.encoded)
        if isinstance(v, _UNSAVEABLE_KINDS):
            raise self.fail(v, f"this type cannot be saved{_hint(v)}")
        name, bases, field_names = class_info(type(v))
        if field_names is not None:  # pydantic model or dataclass
            items = ((a, k, getattr(v, a)) for a, k in field_names)
            fields = self.fields(v, items)
            if self.ref_of is not None:
                # Its ops are saved with it as op refs, as weave's pydantic_object_record
                # does, so a change to their code makes a new version of the object.
                for attr, op in class_ops(type(v)):
                    ref = self.ref_of(op)
                    if ref is not None and attr not in fields:
                        fields[attr] = ref.uri()
            return record(name, bases, fields)
        attrs = list(plain_attrs(v))
        if attrs:
            # A plain object is saved by its public attributes. One with none
            # (a lock, a socket, an object of a C type) has nothing to save, and
            # storing an empty record would silently lose it.
            return record(name, bases, self.fields(v, ((a, a, x) for a, x in attrs)))
        raise self.fail(v, f"an object with no public attributes to save{_hint(v)}")

    def enum(self, v: enum.Enum) -> Any:
        if isinstance(v, int | str | float):
            # IntEnum/StrEnum members: weave (and JSON) store their plain value.
            return self.encode(v.value, False)
        name, bases, _ = class_info(type(v))
        items = iter((("name", "name", v.name), ("value", "value", v.value)))
        return record(name, bases, self.fields(v, items))

    def bytes_value(self, content: bytes) -> dict[str, Any]:
        digest = bytes_digest(content)
        if digest not in self.files:
            self.files[digest] = PendingFile(BYTES_FILE_NAME, content, digest)
        return {
            "_type": CUSTOM_TYPE,
            "files": {BYTES_FILE_NAME: digest},
            "weave_type": {"type": BYTES_TYPE},
        }


def _hint(v: object) -> str:
    if isinstance(v, set | frozenset):
        return " (convert it to a sorted list)"
    if isinstance(v, _dt.date | _dt.time | _dt.timedelta):
        return " (only datetime.datetime is supported; convert it to a str or a datetime)"
    if callable(v):
        return " (functions and classes are not data; decorate a function with @op to version it)"
    return " (save a dict, list, str, number, datetime, bytes, Enum, pydantic model or dataclass)"


def encode_for_save(value: Any, *, ref_of: RefOf | None = None) -> EncodedValue:
    """Encode ``value`` for ``/obj/create`` (or as a table row), as weave saves objects.

    ``ref_of(v)`` is asked about every nested non-builtin value (not the value
    itself); when it returns a ref, the value is stored as that ref's URI. A
    :class:`Ref` anywhere is stored as its URI.

    Raises :class:`UnsaveableValueError` (a ``TypeError``) for a value that
    cannot be saved, naming its path (``obj["a"][3].b``) and type; a cycle names
    the path where it closes and what it points back to.
    """
    enc = _SaveEncoder(ref_of)
    try:
        out = enc.encode(value, True)
    except RecursionError:
        raise UnsaveableValueError(
            f"cannot save {enc.where()}: nested too deeply", path=enc.where()
        ) from None
    return EncodedValue(out, enc.files)


def encode_custom_files(type_id: str, files: Mapping[str, bytes]) -> EncodedValue:
    """The stored form of a file-backed custom type (an ``Op``: ``{"obj.py": source}``).

    Gives ``{"_type": "CustomWeaveType", "weave_type": {"type": type_id},
    "files": {name: digest}}`` and the files to upload, as weave saves ops.
    """
    pending = {}
    digests = {}
    for name, content in files.items():
        digest = bytes_digest(content)
        pending[digest] = PendingFile(name, content, digest)
        digests[name] = digest
    value = {
        "_type": CUSTOM_TYPE,
        "files": {k: digests[k] for k in sorted(digests)},
        "weave_type": {"type": type_id},
    }
    return EncodedValue(value, pending)
