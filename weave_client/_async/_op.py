"""The op decorator of this flavour, ``@async_op``, and the traced function it makes.

A traced call costs a few microseconds on the caller's side and never waits on
the network: the wrapper reads the current client (the context's, else the
process-wide default: one contextvar and one global read), builds the
start record with the I/O-free helpers of ``_tracing``, hands it to the client's
background sender, runs the function with the call as the current call, and
hands over the end record. With no current client the function runs untraced.
"""

from __future__ import annotations

import copy
import functools
import inspect
import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, cast, overload

from .._context import current_client
from .._current_call import print_call_link
from .._op_source import OpSave, op_source
from .._opbase import BoundTracedOp, TracedOp
from .._synchronization import (
    ASYNC_OP_TAKES,
    async_callable_kind,
    async_run_blocking,
    mark_if_coroutine_function,
)
from .._tracing import (
    CallFrame,
    Record,
    current_attributes,
    current_frame,
    encode_inputs,
    encode_new_inputs,
    encode_value,
    inferred_op_name,
    iso_timestamp,
    make_end,
    make_start,
    op_parameters,
    positional_binder,
    record_body,
    redacted_names,
    reset_frame,
    sampled_out_frame,
    sanitize_name,
    set_frame,
)
from ._op_generator import traced_generator

if TYPE_CHECKING:
    from ._call import AsyncCall

__all__ = ["AsyncOp", "async_op"]

# A whole-string token, so the sync twin names its own decorator ("op").
_DECORATOR = "async_op"

logger = logging.getLogger("weave_client")

P = ParamSpec("P")
R = TypeVar("R")

_random = random.random
# Values recorded as they are (encode_value returns them unchanged).
_PRIMITIVE_TYPES = frozenset((str, int, bool, type(None)))
_now = time.time
_empty = inspect.Parameter.empty


class AsyncOp(TracedOp, Generic[P, R]):
    """A traced function: call it as the function it wraps.

    Attributes: ``name`` (the op's object name), ``resolve_fn`` (the undecorated
    function), ``display_name``, ``call_display_name``, ``postprocess_inputs``,
    ``postprocess_output``, ``tracing_sample_rate``, ``accumulator``.
    """

    resolve_fn: Callable[P, R]

    def __init__(
        self,
        func: Callable[P, R],
        *,
        name: str | None = None,
        display_name: str | None = None,
        call_display_name: str | Callable[[dict[str, Any]], str] | None = None,
        postprocess_inputs: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        postprocess_output: Callable[[Any], Any] | None = None,
        tracing_sample_rate: float = 1.0,
        accumulator: Callable[[Any, Any], Any] | None = None,
    ) -> None:
        # ``@async_op`` over ``@staticmethod``: trace the function, never bind it.
        self._static = isinstance(func, staticmethod)
        if isinstance(func, staticmethod):
            func = func.__func__
        kind = async_callable_kind(func)
        if kind is None:
            raise TypeError(f"{_DECORATOR} cannot trace {func!r}: it takes " + ASYNC_OP_TAKES)
        if isinstance(tracing_sample_rate, bool) or not isinstance(
            tracing_sample_rate, int | float
        ):
            raise TypeError(
                f"tracing_sample_rate must be a float, got {tracing_sample_rate!r}"
            )
        if not 0.0 <= tracing_sample_rate <= 1.0:
            raise ValueError(
                f"tracing_sample_rate must be between 0 and 1, got {tracing_sample_rate!r}"
            )
        if call_display_name is not None and not (
            isinstance(call_display_name, str) or callable(call_display_name)
        ):
            raise TypeError(
                "call_display_name must be a str or a function of the call's inputs,"
                f" got {call_display_name!r}"
            )
        functools.update_wrapper(self, func)
        # Frameworks (Starlette's BackgroundTasks) then await it rather than run
        # it in a thread.
        mark_if_coroutine_function(self, func)
        self.resolve_fn = func
        # The same function, typed loosely for the wrapper's internals.
        self._fn: Callable[..., Any] = func
        self.name = sanitize_name(name or inferred_op_name(func))
        self.display_name = display_name
        self.call_display_name = call_display_name
        self.postprocess_inputs = postprocess_inputs
        self.postprocess_output = postprocess_output
        self.tracing_sample_rate = float(tracing_sample_rate)
        self.accumulator = accumulator
        self._is_generator = kind == "generator"
        self._signature = inspect.signature(func)
        self._names, self._defaults, self._simple = op_parameters(self._signature)
        self._nparams = len(self._names)
        # Positional calls of a plain signature bind with one call (names checked
        # once here for redaction; see encode_new_inputs).
        self._binder = (
            positional_binder(self._names)
            if self._simple and not redacted_names(self._names)
            else None
        )
        self._source: str | None = None
        self._saves: dict[tuple[str, bool], OpSave] = {}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        # Methods: ``obj.method(...)`` passes ``obj`` as ``self``, which is then
        # recorded as an input like any other argument.
        if instance is None or self._static:
            return self
        return _BoundOp(self, instance)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the function, traced when a client is current."""
        if self._is_generator:
            client = current_client()
            if client is None:
                return self.resolve_fn(*args, **kwargs)
            return cast(R, traced_generator(self, client, current_frame(), args, kwargs))
        return cast(R, self._traced_function(args, kwargs, False))

    async def call(self, *args: P.args, **kwargs: P.kwargs) -> tuple[Any, AsyncCall | None]:
        """Run the function and return ``(result, call)``, as weave's ``op.call``.

        ``call`` is the traced ``AsyncCall`` (inputs, output, summary, ids) built from
        what was recorded, without a round trip to the server; None when the op
        ran untraced (no current client, or sampled out). An exception from the
        function propagates after being recorded.
        """
        if self._is_generator:
            raise TypeError(
                f"{self.name}.call() runs functions; iterate the generator op instead"
            )
        return cast("tuple[Any, AsyncCall | None]", await self._traced_function(args, kwargs, True))

    async def calls(
        self,
        filter: Any = None,
        limit: int | None = None,
        offset: int | None = None,
        sort_by: Any = None,
        query: Any = None,
        columns: Any = None,
        **filter_fields: Any,
    ) -> list[AsyncCall]:
        """This op's calls in the current client's project, newest first (weave's ``op.calls()``).

        Takes the arguments of ``client.calls()`` (``limit``, ``sort_by``, ``query``,
        filter fields such as ``trace_roots_only=True`` or ``thread_ids=[...]``);
        ``NoCurrentClientError`` when no client is open.
        """
        from .._errors import NoCurrentClientError

        client = current_client()
        if client is None:
            raise NoCurrentClientError(
                f"{self.name}.calls() reads the calls of the current client; open a client first"
            )
        if "op_names" in filter_fields:
            raise TypeError(f"{self.name}.calls() lists this op's calls; op_names cannot be given")
        # A plain name matches every version of the op (see client.calls()).
        op_names = [self.name]
        calls: list[AsyncCall] = await client.calls(
            filter,
            limit=limit,
            offset=offset,
            sort_by=sort_by if sort_by is not None else [
                {"field": "started_at", "direction": "desc"},
                {"field": "id", "direction": "desc"},
            ],
            query=query,
            columns=columns,
            op_names=op_names,
            **filter_fields,
        )
        return calls

    async def _traced_function(self, args: Any, kwargs: Any, with_call: bool) -> Any:
        """Run the function traced; its result, or ``(result, call)`` when ``with_call``.

        One body serves ``__call__`` and ``call()`` without an extra coroutine
        per traced call on the hot path.
        """
        client = current_client()
        # With no client this is the whole cost of an op: one contextvar read.
        parent = current_frame() if client is not None else None
        if client is None or (parent is not None and not parent.sampled):
            result = await self._fn(*args, **kwargs)
            return (result, None) if with_call else result
        if parent is None and self.tracing_sample_rate < 1.0 and _random() >= self.tracing_sample_rate:
            result = await self._run_sampled_out(args, kwargs)
            return (result, None) if with_call else result
        sender = client._sender
        frame = None
        if len(sender._queue) < sender.max_queue or await async_run_blocking(sender.admit):
            frame = self._begin(client, sender, parent, args, kwargs)
        if frame is None:
            result = await self._fn(*args, **kwargs)
            return (result, None) if with_call else result
        # set(parent) rather than reset(token): the same value back, and no Token
        # object held by each call in flight (fewer objects for the garbage collector).
        set_frame(frame)
        try:
            result = await self._fn(*args, **kwargs)
        except BaseException as exc:
            set_frame(parent)
            self._end(client, sender, frame, None, exc)
            raise
        set_frame(parent)
        end = self._end(client, sender, frame, result, None)
        return (result, _make_call(client, frame, end)) if with_call else result

    async def _run_sampled_out(self, args: Any, kwargs: Any) -> Any:
        # Children of an unsampled root are not traced either.
        token = set_frame(sampled_out_frame(None))
        try:
            return await self._fn(*args, **kwargs)
        finally:
            reset_frame(token)

    # --- the shared, synchronous steps (no awaits: the hot path) ----------------

    def _begin(
        self, client: Any, sender: Any, parent: CallFrame | None, args: Any, kwargs: Any
    ) -> CallFrame | None:
        """Build and queue the start record; None (and a log line) if that fails."""
        try:
            op_name = sender.op_refs.get(self)
            if op_name is None:
                op_name = self._register(client, sender)
            frame = CallFrame(client.project_id, op_name, parent, client)
            binder = self._binder
            if binder is not None and not kwargs and len(args) == self._nparams:
                # Bound once per op: one positional argument per parameter, the
                # common call, is one call of the op's compiled binder.
                inputs = binder(*args)
                fresh = True
            else:
                inputs = self._bind(args, kwargs)
                fresh = False
            display = self.call_display_name
            if display is None or isinstance(display, str):
                frame.display_name = self.display_name if display is None else display
            else:
                frame.display_name = self._display_name(inputs)
                fresh = False  # the function may have kept the dict
            if self.postprocess_inputs is not None:
                inputs = self._postprocess(self.postprocess_inputs, inputs, "postprocess_inputs")
                fresh = False
            if fresh:
                frame.inputs = encode_new_inputs(inputs, client._saved.ref_of)
            else:
                frame.inputs = encode_inputs(inputs, client._saved.ref_of)
            frame.started_at = _now()
            sender.put(make_start(frame, current_attributes(client._attributes)))
            if parent is None and client._print_call_link:
                print_call_link(client, frame)
            return frame
        except Exception:
            logger.exception("weave_client: could not start a traced call of %s; running it untraced", self.name)
            return None

    def _end(
        self,
        client: Any,
        sender: Any,
        frame: CallFrame,
        result: Any,
        exc: BaseException | None,
    ) -> Record | None:
        """Build and queue the end record (never raises into the traced code)."""
        try:
            output = result
            if exc is None and self.postprocess_output is not None:
                output = self._postprocess(self.postprocess_output, result, "postprocess_output")
            if type(output) not in _PRIMITIVE_TYPES:
                output = encode_value(output, client._saved.ref_of)
            record = make_end(frame, output, result, exc, _now())
            sender.put(record)
            return record
        except Exception:
            logger.exception("weave_client: could not end the traced call %s of %s", frame.id, self.name)
            return None

    def _bind(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """Inputs by parameter name, defaults applied (as weave records them)."""
        if self._simple and len(args) <= len(self._names):
            inputs = dict(zip(self._names, args, strict=False))
            if kwargs:
                for key in kwargs:
                    if key not in self._defaults or key in inputs:
                        break
                else:
                    inputs.update(kwargs)
                    kwargs = {}
            if not kwargs:
                if len(inputs) < len(self._names):
                    for key, default in self._defaults.items():
                        if key not in inputs:
                            if default is _empty:
                                break  # a missing argument: the function raises it
                            inputs[key] = default
                return inputs
        try:
            bound = self._signature.bind(*args, **kwargs)
        except TypeError:
            # The call itself is wrong; the function raises the TypeError and the
            # call records it. Keep what was passed.
            return {**{f"arg{i}": a for i, a in enumerate(args)}, **kwargs}
        bound.apply_defaults()
        return dict(bound.arguments)

    def _display_name(self, inputs: dict[str, Any]) -> str | None:
        name = self.call_display_name
        if name is None:
            return self.display_name
        if isinstance(name, str):
            return name
        try:
            return str(name(inputs))
        except Exception:
            logger.warning(
                "weave_client: call_display_name of %s raised; the call keeps its default name",
                self.name,
                exc_info=True,
            )
            return self.display_name

    def source(self) -> str:
        """The source file saved with the op, in the form weave saves it."""
        if self._source is None:
            self._source = op_source(self.resolve_fn, self.name)
        return self._source

    def _postprocess(self, fn: Callable[[Any], Any], value: Any, what: str) -> Any:
        try:
            return fn(value)
        except Exception:
            logger.warning(
                "weave_client: %s of %s raised; the value is recorded as it was",
                what,
                self.name,
                exc_info=True,
            )
            return value

class _BoundOp(BoundTracedOp):
    """An op bound to an instance (``obj.method``): ``self`` is passed first."""

    __slots__ = ("__self__", "op")

    def __init__(self, op: AsyncOp[..., Any], instance: Any) -> None:
        self.op = op
        self.__self__ = instance

    def unbound(self) -> AsyncOp[..., Any]:
        """The op this is bound from."""
        return self.op

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.op(self.__self__, *args, **kwargs)

    def call(self, *args: Any, **kwargs: Any) -> Any:
        """``(result, call)`` for this bound method; see ``AsyncOp.call``."""
        return self.op.call(self.__self__, *args, **kwargs)

    def calls(self, *args: Any, **kwargs: Any) -> Any:
        """This op's calls; see ``AsyncOp.calls``."""
        return self.op.calls(*args, **kwargs)

    @property
    def name(self) -> str:
        return self.op.name

    def __repr__(self) -> str:
        return f"<bound {self.op!r} of {self.__self__!r}>"


@overload
def async_op(func: Callable[P, R], /) -> AsyncOp[P, R]: ...


@overload
def async_op(
    *,
    name: str | None = None,
    display_name: str | None = None,
    call_display_name: str | Callable[[dict[str, Any]], str] | None = None,
    postprocess_inputs: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    postprocess_output: Callable[[Any], Any] | None = None,
    tracing_sample_rate: float = 1.0,
    accumulator: Callable[[Any, Any], Any] | None = None,
) -> Callable[[Callable[P, R]], AsyncOp[P, R]]: ...


def async_op(
    func: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    display_name: str | None = None,
    call_display_name: str | Callable[[dict[str, Any]], str] | None = None,
    postprocess_inputs: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    postprocess_output: Callable[[Any], Any] | None = None,
    tracing_sample_rate: float = 1.0,
    accumulator: Callable[[Any, Any], Any] | None = None,
) -> AsyncOp[P, R] | Callable[[Callable[P, R]], AsyncOp[P, R]]:
    """Trace a function's calls; use it bare or with options.

    It takes what ``ASYNC_OP_TAKES`` names (``@async_op``: coroutine functions and
    async generators; the sync flavour's ``@op``: plain functions and generators).
    Options:

    - ``name``: the op's name (default: the function's, ``Class.method`` for methods).
    - ``display_name``: the default display name of its calls.
    - ``call_display_name``: a str, or a function of the call's inputs (a dict by
      parameter name) returning the call's display name.
    - ``postprocess_inputs`` / ``postprocess_output``: transform what is recorded
      (the function still gets and returns the real values).
    - ``tracing_sample_rate``: the fraction of root calls traced (children follow
      their root).
    - ``accumulator``: for generators, ``accumulator(state, item) -> state``; the
      final state is the recorded output (default: the list of yielded items).
    """

    def decorate(fn: Callable[P, R]) -> AsyncOp[P, R]:
        return AsyncOp(
            fn,
            name=name,
            display_name=display_name,
            call_display_name=call_display_name,
            postprocess_inputs=postprocess_inputs,
            postprocess_output=postprocess_output,
            tracing_sample_rate=tracing_sample_rate,
            accumulator=accumulator,
        )

    if func is not None:
        return decorate(func)
    return decorate


# --- helpers -------------------------------------------------------------------------


def _make_call(client: Any, frame: CallFrame, end: Record | None) -> AsyncCall | None:
    """The ``AsyncCall`` of a finished traced call, from what was recorded."""
    if end is None:
        return None
    from ._call import AsyncCall

    ended = record_body(end)
    parent = frame.parent
    schema = {
        "id": frame.id,
        "project_id": frame.project_id,
        "op_name": frame.op_name,
        "display_name": frame.display_name,
        "trace_id": frame.trace_id,
        "parent_id": parent.id if parent is not None else None,
        "thread_id": frame.thread_id,
        "turn_id": frame.turn_id,
        "started_at": iso_timestamp(frame.started_at),
        "ended_at": ended["ended_at"],
        # Copies: the recorded summary and attributes may be shared, read-only dicts.
        "attributes": copy.deepcopy(frame.attributes),
        "inputs": frame.inputs,
        "output": ended["output"],
        "exception": ended["exception"],
        "summary": copy.deepcopy(ended["summary"]),
    }
    return AsyncCall._from_schema(client, schema)
