"""Encoding Python values to the JSON the trace server stores, and back.

Three entry points, all I/O-free:

- :func:`encode_for_save` -- the strict encoding of a value given to ``save()``.
  Raises :class:`~weave_client.UnsaveableValueError` (a ``TypeError``) naming the
  path (``obj["a"][3].b``) and type of the first value it cannot encode.
- :func:`encode_for_trace` -- the lenient encoding of a traced call's inputs and
  output. Never raises: what it cannot encode is recorded as weave records it
  (its ``repr``), cycles and too-deep values become visible marker strings. The
  result shares no mutable container with the input (a snapshot).
- :func:`decode` -- stored JSON back to Python values.

Encoded shapes (the same ones weave 0.51.59 writes)::

    None, bool, int, str          as is (Enum members of int/str/float type: their value)
    float                         as is; NaN and +-inf become null (what weave's client sends)
    dict (str keys), Mapping      dict, keys sorted (so the server's digest is ours)
    list, tuple                   list;  a namedtuple: dict of its fields
    Ref (ObjectRef, ...)          its URI string "weave:///..."
    pydantic model, dataclass,    {"_type": "Cls", <fields...>, "_class_name": "Cls",
    plain object (public attrs),   "_bases": ["Base", ...]}       (weave's ObjectRecord)
    other Enum member             the same record shape with "name" and "value" fields
    datetime                      {"_type": "CustomWeaveType", "weave_type": {"type":
                                   "datetime.datetime"}, "val": "<ISO 8601, naive = UTC>"}
    bytes, bytearray, memoryview  {"_type": "CustomWeaveType", "weave_type": {"type":
                                   "builtins.bytes"}, "files": {"obj.bin": "<file digest>"}}
                                  (save only; the content travels in EncodedValue.files
                                  and must be uploaded with /file/create)

Weave stores a ``load_op`` ref next to a custom type so that other runtimes can
load it; for datetime and bytes that is not needed (weave decodes datetime by
its type name) and we leave it out, since computing it would need I/O.

:func:`decode` turns ``{"_type": ...}`` dicts into :class:`WeaveObject` (attribute
access; ``_class_name`` and ``_bases`` kept), plain dicts into dicts, lists into
lists, ``weave:///`` strings into parsed refs (resolving them is the client's
job), datetime back into an aware ``datetime``, bytes back into ``bytes`` when
their file content is given (else a :class:`CustomObject` placeholder), and any
other custom type into a :class:`CustomObject` that re-encodes to what was read.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import json
import types
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import pydantic

from ._digest import bytes_digest, json_digest
from ._errors import InvalidRefError, UnsaveableValueError
from ._opbase import TracedOp
from ._redact import DEFAULT_REDACT_KEYS, REDACTED_VALUE
from ._refs import SCHEME, Ref, parse_ref

__all__ = [
    "BYTES_TYPE",
    "DATETIME_TYPE",
    "CustomObject",
    "EncodedValue",
    "PendingFile",
    "RefOf",
    "WeaveObject",
    "decode",
    "encode_custom_files",
    "encode_for_save",
    "encode_for_trace",
    "files_to_fetch",
]

RefOf = Callable[[object], Ref | None]
"""``ref_of(value)``: the ref under which ``value`` was saved, or None."""

CUSTOM_TYPE: Final = "CustomWeaveType"
DATETIME_TYPE: Final = "datetime.datetime"
BYTES_TYPE: Final = "builtins.bytes"
BYTES_FILE_NAME: Final = "obj.bin"

MAX_SAVE_DEPTH: Final = 200
"""Nesting deeper than this is refused by ``encode_for_save`` (Python's own
recursion limit, and the server's JSON parser, would give up soon after)."""

DEFAULT_TRACE_MAX_DEPTH: Final = 64
MAX_REPR_LEN: Final = 1000
"""Longest ``repr`` recorded for a value the trace encoder cannot otherwise encode (weave's)."""

# Dict keys whose values weave's client never records in a trace (compared
# case-insensitively); a credential passed as an argument stays out of the logs.
# ``set_redact_keys`` (from ``_tracing.add_redact_keys``) extends them process-wide.
_REDACT_KEYS = DEFAULT_REDACT_KEYS
_REDACT_LENS = frozenset(len(k) for k in _REDACT_KEYS)


def set_redact_keys(keys: frozenset[str]) -> None:
    """Replace the redacted keys (lower-case); see ``_tracing.add_redact_keys``."""
    global _REDACT_KEYS, _REDACT_LENS
    _REDACT_LENS = _REDACT_LENS | frozenset(len(k) for k in keys)
    _REDACT_KEYS = keys


# --- results and decoded values -------------------------------------------------


@dataclass(frozen=True, slots=True)
class PendingFile:
    """File content an encoded value refers to by digest; upload it with ``/file/create``."""

    name: str
    content: bytes
    digest: str


@dataclass(slots=True)
class EncodedValue:
    """What :func:`encode_for_save` returns.

    ``json`` is the JSON-able value to send as ``ObjSchemaForInsert.val`` (or a
    table row); ``files`` maps file digest -> :class:`PendingFile` for content the
    value refers to, to be uploaded before (or with) the object.
    """

    json: Any
    files: dict[str, PendingFile] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        """The digest the server will give this value as an object version."""
        return json_digest(self.json)


_META_KEYS: Final = frozenset({"_type", "_class_name", "_bases"})


class WeaveObject:
    """A stored custom object (pydantic model, dataclass, plain object) read back.

    Its fields are attributes (``obj.name``); ``obj._class_name`` is the original
    class name and ``obj._bases`` its base class names. It compares equal to
    another WeaveObject, or to an instance of a class of the same name, with
    equal fields. Encoding it again gives the same stored shape.
    """

    _class_name: str
    _bases: list[str]
    _type: str

    def __init__(
        self,
        class_name: str,
        fields: Mapping[str, Any] | None = None,
        *,
        bases: list[str] | tuple[str, ...] = (),
        type_name: str | None = None,
    ) -> None:
        d = self.__dict__
        d["_type"] = type_name if type_name is not None else class_name
        d["_class_name"] = class_name
        d["_bases"] = list(bases)
        if fields:
            for k, v in fields.items():
                if k not in _META_KEYS:
                    d[k] = v

    def _asdict(self) -> dict[str, Any]:
        """The fields (without ``_type``, ``_class_name``, ``_bases``), as a new dict."""
        return {k: v for k, v in self.__dict__.items() if k not in _META_KEYS}

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self._asdict().items())
        return f"WeaveObject({self._class_name}{', ' if fields else ''}{fields})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, WeaveObject):
            return self._class_name == other._class_name and self._asdict() == other._asdict()
        if type(other).__name__ != self._class_name:
            return False
        for k, v in self._asdict().items():
            try:
                if getattr(other, k) != v:
                    return False
            except AttributeError:
                return False
        return True

    __hash__ = None  # type: ignore[assignment]  # mutable, like a dict


class CustomObject:
    """A stored custom-type value this library does not turn back into Python.

    Examples: a weave ``Op``, an image, or ``bytes`` whose file content was not
    given to :func:`decode`. ``weave_type`` is the stored type name, ``val`` the
    inline value (if any), ``files`` maps file name -> file digest. Encoding it
    again gives exactly what was read, so objects containing it round-trip.
    """

    __slots__ = ("encoded",)

    def __init__(self, encoded: Mapping[str, Any]) -> None:
        self.encoded: dict[str, Any] = dict(encoded)

    @property
    def weave_type(self) -> str:
        wt = self.encoded.get("weave_type")
        return str(wt.get("type")) if isinstance(wt, dict) else ""

    @property
    def val(self) -> Any:
        return self.encoded.get("val")

    @property
    def files(self) -> dict[str, str]:
        files = self.encoded.get("files")
        return dict(files) if isinstance(files, dict) else {}

    @property
    def load_op(self) -> str | None:
        op = self.encoded.get("load_op")
        return op if isinstance(op, str) else None

    def __repr__(self) -> str:
        return f"CustomObject({self.weave_type!r}, files={self.files!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CustomObject) and other.encoded == self.encoded

    __hash__ = None  # type: ignore[assignment]


# --- per-class facts, cached -----------------------------------------------------

# (class name, base names, [(attribute, key), ...] or None for plain objects)
_ClassInfo = tuple[str, tuple[str, ...], tuple[tuple[str, str], ...] | None]
_class_info_cache: weakref.WeakKeyDictionary[type, _ClassInfo] = weakref.WeakKeyDictionary()


def saved_class_name(cls: type) -> str:
    """The name a class is saved under: its own, or the ``_weave_class_name`` it sets
    (``AsyncDataset`` is saved as weave's ``Dataset``)."""
    name = cls.__dict__.get("_weave_class_name")
    return name if isinstance(name, str) else cls.__name__


def _class_info(cls: type) -> _ClassInfo:
    info = _class_info_cache.get(cls)
    if info is None:
        # weave's class_all_bases_names: the MRO without the class and `object`.
        bases = tuple(saved_class_name(c) for c in cls.__mro__[1:-1])
        fields: tuple[tuple[str, str], ...] | None = None
        if issubclass(cls, pydantic.BaseModel):
            fields = tuple(
                (name, f.alias or name) for name, f in cls.model_fields.items() if not f.exclude
            )
        elif dataclasses.is_dataclass(cls):
            fields = tuple((f.name, f.name) for f in dataclasses.fields(cls))
        info = (saved_class_name(cls), bases, fields)
        try:
            _class_info_cache[cls] = info
        except TypeError:  # pragma: no cover - a class that refuses weak references
            pass
    return info


_class_ops_cache: weakref.WeakKeyDictionary[type, tuple[tuple[str, Any], ...]] = (
    weakref.WeakKeyDictionary()
)


def class_ops(cls: type) -> tuple[tuple[str, Any], ...]:
    """``(attribute, op)`` for each op among the class's attributes (inherited too)."""
    ops = _class_ops_cache.get(cls)
    if ops is None:
        found: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                if isinstance(value, TracedOp):
                    found[attr] = value
                elif attr in found:
                    del found[attr]  # overridden by something that is not an op
        ops = tuple(sorted(found.items()))
        try:
            _class_ops_cache[cls] = ops
        except TypeError:  # pragma: no cover - a class that refuses weak references
            pass
    return ops


def _plain_attrs(obj: object) -> Iterator[tuple[str, Any]]:
    """Public instance attributes of a plain object (``__dict__`` and ``__slots__``)."""
    d = getattr(obj, "__dict__", None)
    if isinstance(d, dict):
        for k, v in d.items():
            if isinstance(k, str) and not k.startswith("_"):
                yield k, v
    for c in type(obj).__mro__:
        slots = c.__dict__.get("__slots__", ())
        if isinstance(slots, str):
            slots = (slots,)
        for s in slots:
            if s.startswith("_"):
                continue
            try:
                yield s, getattr(obj, s)
            except AttributeError:
                continue


def _is_namedtuple(v: object) -> bool:
    return isinstance(v, tuple) and hasattr(v, "_asdict") and hasattr(v, "_fields")


def _datetime_value(v: _dt.datetime) -> dict[str, Any]:
    if v.tzinfo is None:
        # As weave does: a naive datetime is taken to be UTC.
        v = v.replace(tzinfo=_dt.UTC)
    return {"_type": CUSTOM_TYPE, "val": v.isoformat(), "weave_type": {"type": DATETIME_TYPE}}


def _record(class_name: str, bases: tuple[str, ...], fields: dict[str, Any]) -> dict[str, Any]:
    fields["_type"] = class_name
    fields["_class_name"] = class_name
    fields["_bases"] = list(bases)
    return {k: fields[k] for k in sorted(fields)}


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


# --- save ------------------------------------------------------------------------


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
        if _is_namedtuple(v):
            return self.fields(v, ((k, k, x) for k, x in v._asdict().items()))
        if isinstance(v, list | tuple):
            return self.sequence(v)
        if isinstance(v, _dt.datetime):
            return _datetime_value(v)
        if isinstance(v, bytes | bytearray | memoryview):
            return self.bytes_value(bytes(v))
        if isinstance(v, WeaveObject):
            items = ((k, k, x) for k, x in v._asdict().items())
            return _record(v._class_name, tuple(v._bases), self.fields(v, items)) | {
                "_type": v._type
            }
        if isinstance(v, CustomObject):
            return dict(v.encoded)
        if isinstance(v, _UNSAVEABLE_KINDS):
            raise self.fail(v, f"this type cannot be saved{_hint(v)}")
        name, bases, field_names = _class_info(type(v))
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
            return _record(name, bases, fields)
        attrs = list(_plain_attrs(v))
        if attrs:
            # A plain object is saved by its public attributes. One with none
            # (a lock, a socket, an object of a C type) has nothing to save, and
            # storing an empty record would silently lose it.
            return _record(name, bases, self.fields(v, ((a, a, x) for a, x in attrs)))
        raise self.fail(v, f"an object with no public attributes to save{_hint(v)}")

    def enum(self, v: enum.Enum) -> Any:
        if isinstance(v, int | str | float):
            # IntEnum/StrEnum members: weave (and JSON) store their plain value.
            return self.encode(v.value, False)
        name, bases, _ = _class_info(type(v))
        items = iter((("name", "name", v.name), ("value", "value", v.value)))
        return _record(name, bases, self.fields(v, items))

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


# --- trace -----------------------------------------------------------------------


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
        return _record(name, bases, fields)

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
            name, bases, _ = _class_info(type(v))
            return self.record(v, depth, name, bases, iter((("name", v.name), ("value", v.value))))
        if isinstance(v, int):
            return int(v)
        if isinstance(v, float):
            return self.encode(float(v), depth)
        if isinstance(v, str):
            return self.encode(str.__str__(v), depth)
        if isinstance(v, Mapping):
            return self.mapping(v, depth)
        if _is_namedtuple(v):
            return self.mapping(v._asdict(), depth)
        if isinstance(v, list | tuple):
            return self.sequence(v, depth)
        if isinstance(v, _dt.datetime):
            return _datetime_value(v)
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
            name, bases, field_names = _class_info(type(v))
            items = ((k, getattr(v, a)) for a, k in field_names or ())
            return self.record(v, depth, name, bases, items)
        to_dict = getattr(type(v), "to_dict", None)
        if callable(to_dict) and not isinstance(v, type):
            # weave's Dictifiable protocol: an object that can describe itself as a dict.
            as_dict = v.to_dict()
            if isinstance(as_dict, dict):
                return self.mapping(as_dict, depth)
        return _safe_repr(v, self.repr_len)


# --- decode ----------------------------------------------------------------------


def decode(value: Any, *, files: Mapping[str, bytes] | None = None) -> Any:
    """Turn stored JSON back into Python values (see the module docstring for shapes).

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
            {k: decode(v, files=files) for k, v in value.items() if k not in _META_KEYS},
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
