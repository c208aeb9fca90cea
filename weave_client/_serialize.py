"""Encoding Python values to the JSON the trace server stores, and back.

The entry points, all I/O-free and flavour-free, gathered here from one module
per idea (import them from here; the parts may move):

- :func:`encode_for_save` (``_encode_save``) -- the strict encoding of a value
  given to ``save()``. Raises :class:`~weave_client.UnsaveableValueError` (a
  ``TypeError``) naming the path (``obj["a"][3].b``) and type of the first value
  it cannot encode. :func:`encode_custom_files` gives a file-backed custom type.
- :func:`encode_for_trace` (``_encode_trace``) -- the lenient encoding of a
  traced call's inputs and output. Never raises: what it cannot encode is
  recorded as weave records it (its ``repr``), cycles and too-deep values become
  visible marker strings. The result shares no mutable container with the input
  (a snapshot). :func:`set_redact_keys` sets the keys whose values it redacts;
  that state lives in ``_encode_trace`` only.
- :func:`decode` (``_decode``) -- stored JSON back to Python values;
  :func:`files_to_fetch` lists the file digests it needs.
- The stored shapes and the values read back (``_stored``): :class:`WeaveObject`,
  :class:`CustomObject`, :class:`EncodedValue`, :class:`PendingFile`.
- Per-class facts, cached (``_classinfo``): :func:`saved_class_name`,
  :func:`class_ops`.
"""

from __future__ import annotations

from ._classinfo import class_ops, saved_class_name
from ._decode import decode, files_to_fetch
from ._encode_save import MAX_SAVE_DEPTH, encode_custom_files, encode_for_save
from ._encode_trace import (
    DEFAULT_TRACE_MAX_DEPTH,
    MAX_REPR_LEN,
    encode_for_trace,
    set_redact_keys,
)
from ._stored import (
    BYTES_FILE_NAME,
    BYTES_TYPE,
    CUSTOM_TYPE,
    DATETIME_TYPE,
    CustomObject,
    EncodedValue,
    PendingFile,
    RefOf,
    WeaveObject,
)

__all__ = [
    "BYTES_FILE_NAME",
    "BYTES_TYPE",
    "CUSTOM_TYPE",
    "DATETIME_TYPE",
    "DEFAULT_TRACE_MAX_DEPTH",
    "MAX_REPR_LEN",
    "MAX_SAVE_DEPTH",
    "CustomObject",
    "EncodedValue",
    "PendingFile",
    "RefOf",
    "WeaveObject",
    "class_ops",
    "decode",
    "encode_custom_files",
    "encode_for_save",
    "encode_for_trace",
    "files_to_fetch",
    "saved_class_name",
    "set_redact_keys",
]
