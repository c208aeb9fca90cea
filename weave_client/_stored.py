"""The shapes the trace server stores for Python values, and the values read back.

I/O-free and flavour-free; shared by the save encoder (``_encode_save``), the
trace encoder (``_encode_trace``) and the decoder (``_decode``). The entry points
are re-exported by ``_serialize``.

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
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from ._digest import json_digest
from ._refs import Ref

__all__ = [
    "BYTES_FILE_NAME",
    "BYTES_TYPE",
    "CUSTOM_TYPE",
    "DATETIME_TYPE",
    "META_KEYS",
    "CustomObject",
    "EncodedValue",
    "PendingFile",
    "RefOf",
    "WeaveObject",
    "datetime_value",
    "record",
]

RefOf = Callable[[object], Ref | None]
"""``ref_of(value)``: the ref under which ``value`` was saved, or None."""

CUSTOM_TYPE: Final = "CustomWeaveType"
DATETIME_TYPE: Final = "datetime.datetime"
BYTES_TYPE: Final = "builtins.bytes"
BYTES_FILE_NAME: Final = "obj.bin"

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


META_KEYS: Final = frozenset({"_type", "_class_name", "_bases"})
"""The keys of a stored record that are not its fields."""


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
                if k not in META_KEYS:
                    d[k] = v

    def _asdict(self) -> dict[str, Any]:
        """The fields (without ``_type``, ``_class_name``, ``_bases``), as a new dict."""
        return {k: v for k, v in self.__dict__.items() if k not in META_KEYS}

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


# --- the two shapes both encoders build ------------------------------------------


def datetime_value(v: _dt.datetime) -> dict[str, Any]:
    """The stored form of a datetime (a custom type holding its ISO 8601 text)."""
    if v.tzinfo is None:
        # As weave does: a naive datetime is taken to be UTC.
        v = v.replace(tzinfo=_dt.UTC)
    return {"_type": CUSTOM_TYPE, "val": v.isoformat(), "weave_type": {"type": DATETIME_TYPE}}


def record(class_name: str, bases: tuple[str, ...], fields: dict[str, Any]) -> dict[str, Any]:
    """Weave's ObjectRecord: ``fields`` (taken over) plus the class facts, keys sorted."""
    fields["_type"] = class_name
    fields["_class_name"] = class_name
    fields["_bases"] = list(bases)
    return {k: fields[k] for k in sorted(fields)}
