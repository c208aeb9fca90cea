"""Content digests, computed exactly as the Weave trace server computes them.

The server names every object version, table row, table and file by a digest of
its content, so identical content never makes a new version. Computing the same
digest on the client lets a caller know a ref before the server answers (op
versions, for instance, are referenced by calls that are still queued).

How the server computes them (weave 0.51.59, ``sqlite_trace_server.py`` and the
hosted service alike):

- file: ``bytes_digest(content)``
- object version: ``str_digest(json.dumps(val))`` where ``val`` is the parsed
  request body, so the key order is the order the client sent. We send every
  dict key-sorted, which makes that text equal to :func:`canonical_json`.
- table row: like an object, per row.
- table: hex sha256 over the concatenated row digests.

``bytes_digest``: sha256, urlsafe base64, then ``-`` -> ``X``, ``_`` -> ``Y`` and
the ``=`` padding stripped, which is plain base64 with ``XY`` as the two extra
characters.
"""

from __future__ import annotations

import binascii
import hashlib
import json
import math
from collections.abc import Iterable
from typing import Any

__all__ = [
    "bytes_digest",
    "canonical_json",
    "json_digest",
    "row_digest",
    "str_digest",
    "table_digest",
]

# Standard base64 uses "+" and "/"; the server's alphabet uses "X" and "Y" there
# (urlsafe's "-"/"_" replaced by "X"/"Y"), so one translate does both steps.
_B64_TO_WEAVE = bytes.maketrans(b"+/", b"XY")
_sha256 = hashlib.sha256
_b2a_base64 = binascii.b2a_base64

# One encoder reused for every call: json.dumps() builds a new encoder whenever
# it gets non-default options, which costs more than the encoding of a small value.
# Default separators and ensure_ascii=True are what the server's json.dumps uses,
# so the text (and therefore the digest) is byte-for-byte the server's.
_CANONICAL_ENCODER = json.JSONEncoder(sort_keys=True, allow_nan=False)


def bytes_digest(content: bytes) -> str:
    """The server's digest of raw bytes (files, and the encoded text of objects and rows)."""
    # A sha256 is 32 bytes, so its base64 is 43 characters plus one "=".
    return (
        _b2a_base64(_sha256(content).digest(), newline=False)[:43]
        .translate(_B64_TO_WEAVE)
        .decode("ascii")
    )


def str_digest(text: str) -> str:
    """The server's digest of a string: :func:`bytes_digest` of its UTF-8 bytes."""
    return bytes_digest(text.encode("utf-8"))


def canonical_json(value: Any) -> str:
    """The canonical JSON text of a JSON-able value: keys sorted, ``json.dumps`` spacing.

    This is what the server hashes for an object or a row (after we sent the
    dicts key-sorted). NaN and infinities become ``null``, as the hosted
    client's pydantic serialisation sends them. Raises ``TypeError`` for a value
    that is not JSON-able (encode it with ``weave_client._serialize`` first).
    """
    try:
        return _CANONICAL_ENCODER.encode(value)
    except ValueError:
        # Only NaN/inf can make the encoder raise ValueError (or a cycle, which
        # _replace_non_finite reports); the common path pays nothing for this.
        return _CANONICAL_ENCODER.encode(_replace_non_finite(value, set()))


def json_digest(value: Any) -> str:
    """The digest the server gives an object whose (encoded) value is ``value``."""
    return str_digest(canonical_json(value))


def row_digest(row: Any) -> str:
    """The digest the server gives a table row (same rule as an object)."""
    return str_digest(canonical_json(row))


def table_digest(row_digests: Iterable[str]) -> str:
    """The digest the server gives a table: hex sha256 over its row digests, in order."""
    hasher = _sha256()
    for d in row_digests:
        hasher.update(d.encode("ascii"))
    return hasher.hexdigest()


def _replace_non_finite(value: Any, seen: set[int]) -> Any:
    """A copy of ``value`` with NaN/inf floats replaced by None (what pydantic sends)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict | list | tuple):
        if id(value) in seen:
            raise ValueError("Circular reference detected")
        seen.add(id(value))
        try:
            if isinstance(value, dict):
                return {k: _replace_non_finite(v, seen) for k, v in value.items()}
            return [_replace_non_finite(v, seen) for v in value]
        finally:
            seen.discard(id(value))
    return value
