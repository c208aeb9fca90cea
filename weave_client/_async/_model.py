"""``Object`` and ``Model``: versioned user objects and models.

They do no I/O, so both flavours share one class each (defined in
``weave_client/_flow.py``): a model written once works with the async and the
sync evaluation, and saves the same way under either client.
"""

from __future__ import annotations

from .._flow import Model, Object, infer_method

__all__ = ["Model", "Object", "infer_method"]
