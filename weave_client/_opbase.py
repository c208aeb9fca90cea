"""What both flavours' ops share, so the shared layer recognises them without importing
either flavour: ``AsyncOp`` and its generated twin ``Op`` derive from ``TracedOp``,
their bound forms (``model.predict``) from ``BoundTracedOp``. The decorators that
shared code needs (a ``Model``'s undecorated ``predict``, a plain function given as a
scorer) are looked up on the package root when first needed.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

__all__ = ["BoundTracedOp", "TracedOp", "trace_function"]


class TracedOp:
    """Base of both flavours' ops (``AsyncOp``, ``Op``)."""

    __slots__ = ()

    name: str
    resolve_fn: Callable[..., Any]

    def _register(self, client: Any, sender: Any) -> str:
        """Queue this op's save on ``sender`` (once per client); its ref URI."""
        raise NotImplementedError


class BoundTracedOp:
    """Base of both flavours' bound ops: ``op`` called with ``__self__`` first."""

    __slots__ = ()

    def unbound(self) -> TracedOp:
        """The op this is bound from."""
        raise NotImplementedError


def trace_function(fn: Callable[..., Any]) -> TracedOp:
    """``fn`` as an op: a coroutine or async generator function under ``async_op``,
    anything else under ``op``.

    The decorators come from the package root (its public names), so this module
    imports neither flavour; by the time a Model or Scorer subclass is defined the
    package is imported.
    """
    import weave_client

    is_async = inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn)
    decorate: Callable[[Callable[..., Any]], TracedOp]
    decorate = weave_client.async_op if is_async else weave_client.op
    return decorate(fn)
