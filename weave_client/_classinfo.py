"""Facts about a class that the encoders need, computed once per class and cached.

I/O-free and flavour-free: the name a class is saved under, its base names and
fields (:func:`class_info`), the ops among its attributes (:func:`class_ops`),
and the public attributes of a plain object. The caches hold classes weakly.
"""

from __future__ import annotations

import dataclasses
import weakref
from collections.abc import Iterator
from typing import Any

import pydantic

from ._opbase import TracedOp

__all__ = [
    "ClassInfo",
    "class_info",
    "class_ops",
    "is_namedtuple",
    "plain_attrs",
    "saved_class_name",
]

ClassInfo = tuple[str, tuple[str, ...], tuple[tuple[str, str], ...] | None]
"""(class name, base names, ``[(attribute, key), ...]`` or None for plain objects)"""
_class_info_cache: weakref.WeakKeyDictionary[type, ClassInfo] = weakref.WeakKeyDictionary()


def saved_class_name(cls: type) -> str:
    """The name a class is saved under: its own, or the ``_weave_class_name`` it sets
    (``AsyncDataset`` is saved as weave's ``Dataset``)."""
    name = cls.__dict__.get("_weave_class_name")
    return name if isinstance(name, str) else cls.__name__


def class_info(cls: type) -> ClassInfo:
    """``(saved name, base names, fields)``; fields are ``(attribute, key)`` pairs of a
    pydantic model (its aliases) or dataclass, None for any other class."""
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


def plain_attrs(obj: object) -> Iterator[tuple[str, Any]]:
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


def is_namedtuple(v: object) -> bool:
    """Whether ``v`` is a namedtuple instance (stored as a dict of its fields)."""
    return isinstance(v, tuple) and hasattr(v, "_asdict") and hasattr(v, "_fields")
