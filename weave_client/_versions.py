"""``ObjectVersion``: one saved object version as ``objects()`` lists it (both flavours)."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

from ._refs import ObjectRef

__all__ = ["ObjectVersion"]


@dataclasses.dataclass(frozen=True)
class ObjectVersion:
    """One version of a saved object, as ``client.objects()`` lists it."""

    name: str
    digest: str
    version_index: int
    """0 for the first version of ``name``, then 1, 2, ..."""
    is_latest: bool
    class_name: str | None
    """The saved value's class (``Point``, ``Op``...), None for plain values."""
    created_at: datetime.datetime
    ref: ObjectRef
    value: Any = None
    """The decoded value, when listed with ``include_values=True`` (else None)."""
