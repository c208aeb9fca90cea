"""What both flavours' ops share, so the shared layer recognises them without importing
either flavour: ``AsyncOp`` and its generated twin ``Op`` derive from ``TracedOp``,
their bound forms (``model.predict``) from ``BoundTracedOp``. The decorators that
shared code needs (a ``Model``'s undecorated ``predict``, a plain function given as a
scorer) are registered explicitly by the package (``weave_client/__init__.py``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

__all__ = ["BoundTracedOp", "TracedOp", "register_decorators", "trace_function"]


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


_decorators: dict[bool, Callable[[Callable[..., Any]], TracedOp]] = {}


def register_decorators(
    *,
    coroutine: Callable[[Callable[..., Any]], TracedOp],
    function: Callable[[Callable[..., Any]], TracedOp],
) -> None:
    """Name the decorators ``trace_function`` uses: ``async_op`` and ``op``."""
    _decorators[True] = coroutine
    _decorators[False] = function


def trace_function(fn: Callable[..., Any]) -> TracedOp:
    """``fn`` as an op: a coroutine or async generator function under ``async_op``,
    anything else under ``op``."""
    is_async = inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn)
    try:
        decorate = _decorators[is_async]
    except KeyError:
        raise RuntimeError(
            "weave_client's op decorators are not registered (import weave_client first)"
        ) from None
    return decorate(fn)
