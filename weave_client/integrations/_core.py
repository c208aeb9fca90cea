"""The shared layer of the SDK integrations: one traced LLM call, its streams, and patches.

I/O-free and flavour-free: a call is recorded with the same ``_tracing`` helpers
the op decorators use (start and end records handed to the current client's
background sender), so an SDK call nests under the op that made it and its usage
rolls up to the root. Nothing here imports an SDK; the per-SDK modules describe
their endpoints (``Endpoint``) and this module wraps the methods.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .._context import current_client
from .._redact import DEFAULT_REDACT_KEYS, REDACTED_VALUE, SECRET_HEADER_NAMES
from .._tracing import (
    CallFrame,
    current_attributes,
    current_frame,
    encode_inputs,
    encode_value,
    make_end,
    make_start,
    now,
    op_save,
)

__all__ = ["Accumulator", "Endpoint", "LLMCall", "Patcher", "redact", "sdk_dump"]

logger = logging.getLogger("weave_client")

# Header and argument names whose values never reach a recorded input.
_SECRET_KEYS = DEFAULT_REDACT_KEYS | SECRET_HEADER_NAMES
REDACTED = REDACTED_VALUE


def redact(value: Any) -> Any:
    """``value`` with every credential-named key's value replaced by ``"REDACTED"``."""
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if isinstance(k, str) and k.lower() in _SECRET_KEYS else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def is_given(value: Any) -> bool:
    """False for the SDKs' "argument not given" sentinels (``NOT_GIVEN``, ``Omit``)."""
    return type(value).__name__ not in ("NotGiven", "Omit", "NoneType")


def sdk_dump(value: Any) -> Any:
    """An SDK response as recorded: its pydantic model dumped (set, non-None fields),
    plus the ``request_id`` the SDK read from the response headers."""
    dump = getattr(value, "model_dump", None)
    if not callable(dump):
        return value
    try:
        out = dump(mode="json", exclude_unset=True, exclude_none=True)
    except Exception:
        return value
    request_id = getattr(value, "_request_id", None)
    if isinstance(out, dict) and isinstance(request_id, str):
        out["request_id"] = request_id
    return out


class Accumulator:
    """Folds a stream's items into the final response. ``add`` returns False for an
    item the user must not see (a usage-only chunk the integration asked for)."""

    def add(self, item: Any) -> bool:
        raise NotImplementedError

    def result(self) -> Any:
        """The response so far (an SDK model or a dict), or None if nothing arrived."""
        raise NotImplementedError


@dataclass(frozen=True)
class Endpoint:
    """One traced SDK method.

    - ``op_name``: the call's op name (weave's).
    - ``usage``: ``(model, usage dict)`` of a final response, or None.
    - ``streams``: whether these keyword arguments ask for a stream.
    - ``prepare``: the keyword arguments actually sent for a stream (e.g. with
      usage requested) and whether the extra usage-only chunk is hidden.
    - ``accumulator``: a fresh ``Accumulator`` for one stream.
    """

    op_name: str
    usage: Callable[[Any], tuple[str, dict[str, Any]] | None]
    streams: Callable[[Mapping[str, Any]], bool] = lambda kwargs: False
    prepare: Callable[[dict[str, Any]], tuple[dict[str, Any], bool]] = lambda kw: (kw, False)
    accumulator: Callable[[bool], Accumulator] | None = None


class _OpKey:
    """The sender's cache key for one integration op (its saved Op object)."""

    __slots__ = ("name", "source")

    def __init__(self, name: str) -> None:
        self.name = name
        self.source = (
            "import weave\n\n"
            f'@weave.op(name="{name}")\n'
            "def traced(*args, **kwargs):\n"
            "    ...  # the SDK's own method, patched by weave_client.integrations\n"
        )


_op_keys: dict[str, _OpKey] = {}


def _op_ref(client: Any, sender: Any, name: str) -> str:
    key = _op_keys.get(name)
    if key is None:
        key = _op_keys.setdefault(name, _OpKey(name))
    uri = sender.op_refs.get(key)
    if uri is None or not uri.startswith(f"weave:///{client.project_id}/"):
        uri = sender.queue_op_save(key, op_save(client.project_id, name, key.source))
    return str(uri)


class LLMCall:
    """One traced SDK call in progress; ``finish`` ends it once (later calls do nothing)."""

    __slots__ = ("_done", "client", "endpoint", "frame", "sender")

    def __init__(self, client: Any, sender: Any, frame: CallFrame, endpoint: Endpoint) -> None:
        self.client = client
        self.sender = sender
        self.frame = frame
        self.endpoint = endpoint
        self._done = False

    @property
    def done(self) -> bool:
        """True once the call's end record was queued."""
        return self._done

    def finish(self, result: Any, exc: BaseException | None = None) -> None:
        """Queue the end record: ``result`` dumped, its usage, ``exc`` if any."""
        if self._done:
            return
        self._done = True
        try:
            usage = self.endpoint.usage(result) if result is not None else None
            raw = {"model": usage[0], "usage": usage[1]} if usage is not None else None
            output = encode_value(sdk_dump(result), getattr(self.client, "_ref_of", None))
            self.sender.put(make_end(self.frame, output, raw, exc, now()))
        except Exception:
            logger.exception(
                "weave_client: could not end the traced call %s of %s",
                self.frame.id,
                self.endpoint.op_name,
            )


def _client_for_call() -> tuple[Any, Any, CallFrame | None] | None:
    client = current_client()
    if client is None:
        return None
    parent = current_frame()
    if parent is not None and not parent.sampled:
        return None
    return client, client._sender, parent


def _begin(
    client: Any, sender: Any, parent: CallFrame | None, endpoint: Endpoint, inputs: dict[str, Any]
) -> LLMCall | None:
    try:
        frame = CallFrame(client.project_id, _op_ref(client, sender, endpoint.op_name), parent)
        frame.inputs = encode_inputs(redact(inputs), getattr(client, "_ref_of", None))
        frame.started_at = now()
        sender.put(make_start(frame, current_attributes()))
        return LLMCall(client, sender, frame, endpoint)
    except Exception:
        logger.exception(
            "weave_client: could not start a traced call of %s; running it untraced",
            endpoint.op_name,
        )
        return None


def start_call(endpoint: Endpoint, inputs: dict[str, Any]) -> LLMCall | None:
    """Start a call under the current client and call (blocking for queue room, as
    a sync op does); None when nothing is current or the call is not traced."""
    target = _client_for_call()
    if target is None:
        return None
    client, sender, parent = target
    if not sender.has_room() and not sender.admit():
        return None
    return _begin(client, sender, parent, endpoint, inputs)


async def astart_call(endpoint: Endpoint, inputs: dict[str, Any]) -> LLMCall | None:
    """``start_call`` for coroutines: waits for queue room off the event loop."""
    target = _client_for_call()
    if target is None:
        return None
    client, sender, parent = target
    if not sender.has_room() and not await asyncio.to_thread(sender.admit):
        return None
    return _begin(client, sender, parent, endpoint, inputs)


def call_inputs(owner: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The recorded inputs: the SDK client's base URL and version as ``self`` (as
    weave records them), positional arguments, then the keyword arguments as passed."""
    inputs: dict[str, Any] = {}
    sdk_client = getattr(owner, "_client", None)
    if sdk_client is not None:
        inputs["self"] = {
            "client": {
                "base_url": str(getattr(sdk_client, "base_url", "")),
                "version": str(getattr(sdk_client, "_version", "")),
            }
        }
    for i, arg in enumerate(args):
        inputs[f"arg{i}"] = arg
    for key, value in kwargs.items():
        if is_given(value) or value is None:
            inputs[key] = value
    return inputs


# --- streams ----------------------------------------------------------------------


def wrap_stream(stream: Any, call: LLMCall, acc: Accumulator) -> None:
    """Make the SDK's own ``Stream`` feed ``acc`` and end ``call`` when it is
    exhausted, closed, fails or is dropped; the object and its items stay the SDK's."""
    inner = stream._iterator

    def items() -> Any:
        try:
            for item in inner:
                if acc.add(item):
                    yield item
        except GeneratorExit:
            call.finish(acc.result())
            close = getattr(inner, "close", None)
            if close is not None:
                close()
            raise
        except BaseException as exc:
            call.finish(acc.result(), exc)
            raise
        call.finish(acc.result())

    stream._iterator = items()
    # The class's close through a weak reference: no cycle keeps a dropped stream alive.
    ref, class_close = weakref.ref(stream), type(stream).close

    def close() -> None:
        try:
            target = ref()
            if target is not None:
                class_close(target)
        finally:
            call.finish(acc.result())

    stream.close = close


def wrap_async_stream(stream: Any, call: LLMCall, acc: Accumulator) -> None:
    """``wrap_stream`` for the SDKs' ``AsyncStream`` (cancellation ends the call too)."""
    inner = stream._iterator

    async def items() -> Any:
        try:
            async for item in inner:
                if acc.add(item):
                    yield item
        except GeneratorExit:
            call.finish(acc.result())
            aclose = getattr(inner, "aclose", None)
            if aclose is not None:
                await aclose()
            raise
        except BaseException as exc:
            call.finish(acc.result(), exc)
            raise
        call.finish(acc.result())

    stream._iterator = items()
    ref, class_close = weakref.ref(stream), type(stream).close

    async def close() -> None:
        try:
            target = ref()
            if target is not None:
                await class_close(target)
        finally:
            call.finish(acc.result())

    stream.close = close


def _is_stream(result: Any) -> bool:
    return hasattr(type(result), "__stream__") or "_iterator" in getattr(result, "__dict__", {})


# --- method wrappers ----------------------------------------------------------------


def traced_method(original: Callable[..., Any], endpoint: Endpoint) -> Callable[..., Any]:
    """A sync SDK method that records a call per request (streams included)."""

    @functools.wraps(original)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if current_client() is None:
            return original(self, *args, **kwargs)
        streaming = endpoint.streams(kwargs)
        call = start_call(endpoint, call_inputs(self, args, kwargs))
        if call is None:
            return original(self, *args, **kwargs)
        hide = False
        if streaming and endpoint.accumulator is not None:
            kwargs, hide = endpoint.prepare(dict(kwargs))
        try:
            result = original(self, *args, **kwargs)
        except BaseException as exc:
            call.finish(None, exc)
            raise
        if streaming and endpoint.accumulator is not None and _is_stream(result):
            wrap_stream(result, call, endpoint.accumulator(hide))
        else:
            call.finish(result)
        return result

    wrapper.__weave_client_original__ = original  # type: ignore[attr-defined]
    return wrapper


def traced_async_method(original: Callable[..., Any], endpoint: Endpoint) -> Callable[..., Any]:
    """``traced_method`` for an async SDK client's coroutine method."""

    @functools.wraps(original)
    async def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if current_client() is None:
            return await original(self, *args, **kwargs)
        streaming = endpoint.streams(kwargs)
        call = await astart_call(endpoint, call_inputs(self, args, kwargs))
        if call is None:
            return await original(self, *args, **kwargs)
        hide = False
        if streaming and endpoint.accumulator is not None:
            kwargs, hide = endpoint.prepare(dict(kwargs))
        try:
            result = await original(self, *args, **kwargs)
        except BaseException as exc:
            call.finish(None, exc)
            raise
        if streaming and endpoint.accumulator is not None and _is_stream(result):
            wrap_async_stream(result, call, endpoint.accumulator(hide))
        else:
            call.finish(result)
        return result

    wrapper.__weave_client_original__ = original  # type: ignore[attr-defined]
    return wrapper


# --- patches --------------------------------------------------------------------------


class Patcher:
    """Replaces class attributes and puts them back; patching twice changes nothing."""

    def __init__(self) -> None:
        self._originals: dict[tuple[type, str], Any] = {}

    @property
    def active(self) -> bool:
        """True while some attribute is patched."""
        return bool(self._originals)

    def patch(self, owner: type, name: str, make: Callable[[Any], Any]) -> None:
        """Set ``owner.name`` to ``make(original)`` unless it is already patched."""
        key = (owner, name)
        if key in self._originals:
            return
        original = owner.__dict__.get(name)
        if original is None:
            raise AttributeError(f"{owner.__qualname__} has no attribute {name!r} to patch")
        self._originals[key] = original
        setattr(owner, name, make(original))

    def unpatch(self) -> None:
        """Restore every attribute this patcher replaced."""
        for (owner, name), original in self._originals.items():
            setattr(owner, name, original)
        self._originals.clear()
