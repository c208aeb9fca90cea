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

from ._op_source import OpSave, op_placeholder_source, op_save

__all__ = ["BoundTracedOp", "TracedOp", "trace_function"]


class TracedOp:
    """Base of both flavours' ops (``AsyncOp``, ``Op``): what saving an op takes,
    which is the same in both (done at its first call per client, off the per-call path).
    """

    __slots__ = ()

    name: str
    resolve_fn: Callable[..., Any]
    # Set by the flavour's constructor: the saves made so far by (project id,
    # code capture).
    _saves: dict[tuple[str, bool], OpSave]

    def _register(self, client: Any, sender: Any) -> str:
        """Queue this op version's save ahead of its first call; return its ref URI."""
        project_id = client.project_id
        capture = client._capture_code
        save = self._saves.get((project_id, capture))
        if save is None:
            source = self.source() if capture else op_placeholder_source(self.resolve_fn, self.name)
            save = op_save(project_id, self.name, client._redact_text(source))
            self._saves[(project_id, capture)] = save
        uri: str = sender.queue_op_save(self, save)
        return uri

    def source(self) -> str:
        """The source file saved with the op, in the form weave saves it."""
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
