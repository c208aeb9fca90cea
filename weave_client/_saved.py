"""What a client saved, so that saving it again nested inside another object stores a ref.

I/O-free and shared by both flavours: the client notes each saved object with its
ref and local digest (``remember``); the encoder asks ``ref_of`` for every value.
An object mutated since it was saved is stored by value, not as its old version.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Mapping
from typing import Any

from ._errors import UnsaveableValueError
from ._refs import ObjectRef, Ref, parse_ref
from ._serialize import encode_for_save

__all__ = ["SavedObjects"]


@functools.lru_cache(maxsize=4096)
def _parse_op_ref(uri: str) -> Ref:
    # Asked for on every encode of an object holding ops (an op's ref never changes).
    return parse_ref(uri)


class SavedObjects:
    """Objects one client saved (weakly held), and the ops it registered.

    ``project_id`` is read when asked (a W&B project may be renamed once at start);
    ``op_refs`` maps an op this client registered to its ref URI (the sender's).
    """

    def __init__(self, project_id: Callable[[], str], op_refs: Mapping[Any, str]) -> None:
        self._project_id = project_id
        self._op_refs = op_refs
        # id(obj) -> (weakref to obj, its ref, its local digest at save time).
        self._saved: dict[int, tuple[weakref.ref[Any], ObjectRef, str]] = {}

    def ref_of(self, value: object) -> Ref | None:
        """The ref of an object saved here, if it is unchanged since; for an op this
        client registered, the ref of that op version (as weave stores ops held by
        objects, e.g. an Evaluation's scorers)."""
        try:
            op_uri = self._op_refs.get(value)
        except TypeError:  # unhashable values (dicts, pydantic models) are not ops
            op_uri = None
        if op_uri is not None:
            return _parse_op_ref(op_uri)
        entry = self._saved.get(id(value))
        if entry is None or entry[0]() is not value:
            return None
        ref = entry[1]
        if ref.project_id != self._project_id():
            return None  # as weave: no refs across projects; store the value itself
        # A saved object mutated since must not be stored as its old version. Compared
        # with the local digest at save time: a server that rewrites refs inside values
        # (project ids, as the hosted service does) digests them differently.
        try:
            digest = encode_for_save(value, ref_of=self.ref_of).digest
        except UnsaveableValueError:
            return None
        return ref if digest == entry[2] else None

    def remember(self, obj: Any, ref: ObjectRef, digest: str | None = None) -> None:
        """Note ``obj`` as saved under ``ref``; ``digest``: its local encoding's digest."""
        key = id(obj)
        saved = self._saved
        try:
            handle = weakref.ref(obj, lambda _: saved.pop(key, None))
        except TypeError:
            return  # ints, strs, dicts: not weak-referenceable, always stored inline
        saved[key] = (handle, ref, digest if digest is not None else ref.digest)
