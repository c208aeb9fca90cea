"""Traces the ``anthropic`` SDK: ``messages.create`` (``stream=True`` included) and
the ``messages.stream()`` context manager, sync and async clients.

Op names are weave's (``anthropic.Messages.create``, ``anthropic.AsyncMessages.create``,
``anthropic.Messages.stream``, ``anthropic.AsyncMessages.stream``). Streams are
accumulated from their raw events into the final message with its usage; what
the caller receives (the ``Stream``, the ``MessageStreamManager`` and its
``text_stream`` / ``get_final_message()``) is the SDK's own.
"""

from __future__ import annotations

import functools
import importlib
import json
from collections.abc import Callable, Mapping
from typing import Any

from ._core import (
    Accumulator,
    Endpoint,
    Patcher,
    astart_call,
    call_inputs,
    sdk_dump,
    start_call,
    traced_async_method,
    traced_method,
    wrap_async_stream,
    wrap_stream,
)

__all__ = ["is_patched", "patch", "unpatch"]

_patcher = Patcher()


def _usage(result: Any) -> tuple[str, dict[str, Any]] | None:
    """``(model, usage)``: ``input_tokens`` counts cache reads and writes too (as
    weave's summary does), ``total_tokens`` is input plus output."""
    if isinstance(result, Mapping):
        model, usage = result.get("model"), result.get("usage")
    else:
        model, usage = getattr(result, "model", None), sdk_dump(getattr(result, "usage", None))
    if not isinstance(model, str) or not isinstance(usage, Mapping):
        return None
    out = {k: v for k, v in usage.items() if v is not None}
    cache_read = out.get("cache_read_input_tokens") or 0
    cache_write = out.get("cache_creation_input_tokens") or 0
    input_tokens = (out.get("input_tokens") or 0) + cache_read + cache_write
    output_tokens = out.get("output_tokens") or 0
    out["input_tokens"] = input_tokens
    out["output_tokens"] = output_tokens
    out["total_tokens"] = input_tokens + output_tokens
    return model, out


def _streams(kwargs: Mapping[str, Any]) -> bool:
    headers = kwargs.get("extra_headers")
    raw = isinstance(headers, Mapping) and "X-Stainless-Raw-Response" in headers
    return kwargs.get("stream") is True and not raw


class MessageAccumulator(Accumulator):
    """Raw message stream events folded into the final ``message``: text, thinking
    and tool-use blocks (their JSON input parsed), stop reason and usage."""

    def __init__(self, hide_usage_chunk: bool = False) -> None:
        self.message: dict[str, Any] | None = None
        self.blocks: dict[int, dict[str, Any]] = {}
        self.json: dict[int, str] = {}

    def add(self, item: Any) -> bool:
        kind = getattr(item, "type", None)
        if kind == "message_start":
            self.message = sdk_dump(item.message)
        elif kind == "content_block_start":
            self.blocks[item.index] = dict(sdk_dump(item.content_block))
        elif kind == "content_block_delta":
            self._delta(item.index, item.delta)
        elif kind == "content_block_stop":
            self._close_block(item.index)
        elif kind == "message_delta" and self.message is not None:
            for key in ("stop_reason", "stop_sequence"):
                value = getattr(item.delta, key, None)
                if value is not None:
                    self.message[key] = value
            usage = sdk_dump(getattr(item, "usage", None))
            if isinstance(usage, dict):
                merged = dict(self.message.get("usage") or {})
                merged.update({k: v for k, v in usage.items() if v is not None})
                self.message["usage"] = merged
        return True

    def _delta(self, index: int, delta: Any) -> None:
        block = self.blocks.setdefault(index, {"type": "text", "text": ""})
        kind = getattr(delta, "type", None)
        if kind == "text_delta":
            block["text"] = block.get("text", "") + delta.text
        elif kind == "input_json_delta":
            self.json[index] = self.json.get(index, "") + delta.partial_json
        elif kind == "thinking_delta":
            block["thinking"] = block.get("thinking", "") + delta.thinking
        elif kind == "signature_delta":
            block["signature"] = delta.signature

    def _close_block(self, index: int) -> None:
        text = self.json.pop(index, None)
        if text:
            try:
                self.blocks[index]["input"] = json.loads(text)
            except ValueError:
                self.blocks[index]["input"] = text

    def result(self) -> Any:
        if self.message is None:
            return None
        for index in list(self.json):  # blocks cut off before their stop event
            self._close_block(index)
        return {**self.message, "content": [self.blocks[i] for i in sorted(self.blocks)]}


MESSAGES_CREATE = Endpoint("anthropic.Messages.create", _usage, _streams, accumulator=MessageAccumulator)
ASYNC_MESSAGES_CREATE = Endpoint(
    "anthropic.AsyncMessages.create", _usage, _streams, accumulator=MessageAccumulator
)
MESSAGES_STREAM = Endpoint("anthropic.Messages.stream", _usage, accumulator=MessageAccumulator)
ASYNC_MESSAGES_STREAM = Endpoint(
    "anthropic.AsyncMessages.stream", _usage, accumulator=MessageAccumulator
)


def _request_attr(manager: Any) -> str | None:
    """The name under which a stream manager keeps its (private) API request."""
    for cls in type(manager).__mro__:
        name = f"_{cls.__name__}__api_request"
        if name in getattr(manager, "__dict__", {}):
            return name
    return None


def _traced_stream(original: Callable[..., Any], endpoint: Endpoint, is_async: bool) -> Any:
    """``messages.stream()``: the SDK's manager, whose request (made on entering
    it) starts the call and whose raw event stream ends it."""

    @functools.wraps(original)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        manager = original(self, *args, **kwargs)
        attr = _request_attr(manager)
        if attr is None:
            return manager
        request = manager.__dict__[attr]
        inputs = call_inputs(self, args, kwargs)
        if is_async:

            async def arequest() -> Any:
                call = await astart_call(endpoint, inputs)
                if call is None:
                    return await request
                try:
                    raw = await request
                except BaseException as exc:
                    call.finish(None, exc)
                    raise
                wrap_async_stream(raw, call, MessageAccumulator())
                return raw

            manager.__dict__[attr] = arequest()
        else:

            def srequest() -> Any:
                call = start_call(endpoint, inputs)
                if call is None:
                    return request()
                try:
                    raw = request()
                except BaseException as exc:
                    call.finish(None, exc)
                    raise
                wrap_stream(raw, call, MessageAccumulator())
                return raw

            manager.__dict__[attr] = srequest
        return manager

    wrapper.__weave_client_original__ = original  # type: ignore[attr-defined]
    return wrapper


def patch() -> None:
    """Trace the anthropic SDK's calls (imports it); patching twice changes nothing."""
    module = importlib.import_module("anthropic.resources.messages")
    sync_cls, async_cls = module.Messages, module.AsyncMessages
    _patcher.patch(sync_cls, "create", lambda f: traced_method(f, MESSAGES_CREATE))
    _patcher.patch(async_cls, "create", lambda f: traced_async_method(f, ASYNC_MESSAGES_CREATE))
    _patcher.patch(sync_cls, "stream", lambda f: _traced_stream(f, MESSAGES_STREAM, False))
    _patcher.patch(async_cls, "stream", lambda f: _traced_stream(f, ASYNC_MESSAGES_STREAM, True))


def unpatch() -> None:
    """Restore the anthropic SDK's own methods."""
    _patcher.unpatch()


def is_patched() -> bool:
    """True while the anthropic SDK is patched."""
    return _patcher.active
