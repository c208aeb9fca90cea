"""Tracing a generator op: one call spanning the iteration (weave's
generator ops), its output the items yielded or an ``accumulator``'s final state.

Off the per-call path of plain functions: ``AsyncOp.__call__`` hands a generator op
here, which uses the op's own ``_begin``/``_end`` steps.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from .._synchronization import async_run_blocking
from .._tracing import CallFrame, reset_frame, sampled_out_frame, set_frame

if TYPE_CHECKING:
    from ._op import AsyncOp

__all__ = ["traced_generator"]

_random = random.random


async def traced_generator(
    op: AsyncOp[..., Any], client: Any, parent: CallFrame | None, args: Any, kwargs: Any
) -> Any:
    """Iterate ``op``'s generator as one traced call, output the yielded items
    (or the ``accumulator``'s state).

    The parent is taken when the generator is made; the call starts at the first
    iteration, so a generator never iterated leaves no open call.
    """
    if (parent is not None and not parent.sampled) or (
        parent is None
        and op.tracing_sample_rate < 1.0
        and _random() >= op.tracing_sample_rate
    ):
        frame: CallFrame | None = (
            parent if parent is not None else sampled_out_frame(None)
        )
        sender = None
    else:
        sender = client._sender
        if not sender.has_room() and not await async_run_blocking(sender.admit):
            frame = None
        else:
            frame = op._begin(client, sender, parent, args, kwargs)
    token = set_frame(frame) if frame is not None else None
    try:
        gen = op._fn(*args, **kwargs)
    except BaseException as exc:
        if token is not None:
            reset_frame(token)
        if sender is not None and frame is not None:
            op._end(client, sender, frame, None, exc)
        raise
    if token is not None:
        reset_frame(token)
    if sender is None or frame is None:
        # Untraced (sampled out or dropped), but children still see the
        # sampled-out marker so they stay untraced too.
        while True:
            token = set_frame(frame) if frame is not None else None
            try:
                item = await anext(gen)
            except StopAsyncIteration:
                return
            finally:
                if token is not None:
                    reset_frame(token)
            yield item
    accumulator = op.accumulator
    state: Any = None
    items: list[Any] = []
    try:
        while True:
            # The generator's body runs with this call current, and the
            # consumer's context is restored before each yield: a traced
            # generator consuming another traced one nests (weave issue 4511).
            token = set_frame(frame)
            try:
                item = await anext(gen)
            except StopAsyncIteration:
                break
            finally:
                reset_frame(token)
            if accumulator is not None:
                state = accumulator(state, item)
            else:
                items.append(item)
            yield item
    except GeneratorExit:
        # Closed by the consumer before exhaustion: the call ends with what
        # was yielded so far.
        op._end(client, sender, frame, state if accumulator is not None else items, None)
        await gen.aclose()
        raise
    except BaseException as exc:
        op._end(client, sender, frame, state if accumulator is not None else items, exc)
        raise
    op._end(client, sender, frame, state if accumulator is not None else items, None)
