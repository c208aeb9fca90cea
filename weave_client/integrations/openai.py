"""Traces the ``openai`` SDK (1.x): chat completions (streams included), the
Responses API, embeddings and structured-output parsing, sync and async clients.

Op names are weave's (``openai.chat.completions.create``, ...). A streamed chat
completion asks for usage (``stream_options={"include_usage": True}``) unless the
caller set ``stream_options``; the extra usage-only chunk is then not passed on.
``patch()`` / ``unpatch()`` switch the integration on and off; a client patches
it when it starts (see ``weave_client.integrations``).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Mapping
from typing import Any

from ._core import (
    Accumulator,
    Endpoint,
    Patcher,
    is_given,
    traced_async_method,
    traced_method,
)

__all__ = ["is_patched", "patch", "unpatch"]

_patcher = Patcher()


def _dict(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if isinstance(value, Mapping):
        return dict(value)
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        out = dump(mode="json", exclude_none=True)
        return out if isinstance(out, dict) else None
    return None


def _usage(result: Any) -> tuple[str, dict[str, Any]] | None:
    """``(model, usage)`` of a chat completion, response or embedding (model or dict)."""
    if isinstance(result, Mapping):
        model, usage = result.get("model"), _dict(result.get("usage"))
    else:
        model, usage = getattr(result, "model", None), _dict(getattr(result, "usage", None))
    if not isinstance(model, str) or not usage:
        return None
    for details in ("prompt_tokens_details", "input_tokens_details"):
        cached = (usage.get(details) or {}).get("cached_tokens")
        if isinstance(cached, int):
            usage.setdefault("cache_read_input_tokens", cached)
    return model, usage


def _streams(kwargs: Mapping[str, Any]) -> bool:
    if kwargs.get("stream") is not True:
        return False
    headers = kwargs.get("extra_headers")
    # with_raw_response / with_streaming_response return the HTTP response, not a Stream.
    return not (isinstance(headers, Mapping) and "X-Stainless-Raw-Response" in headers)


def _prepare_chat(kwargs: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    if "stream_options" in kwargs and is_given(kwargs["stream_options"]):
        return kwargs, False
    kwargs["stream_options"] = {"include_usage": True}
    return kwargs, True


class ChatAccumulator(Accumulator):
    """Chat completion chunks folded into one ``chat.completion``: message text,
    refusals, tool and function calls, finish reasons and usage."""

    def __init__(self, hide_usage_chunk: bool) -> None:
        self.hide = hide_usage_chunk
        self.base: dict[str, Any] | None = None
        self.choices: dict[int, dict[str, Any]] = {}
        self.tool_calls: dict[int, dict[int, dict[str, Any]]] = {}
        self.usage: dict[str, Any] | None = None

    def add(self, item: Any) -> bool:
        if self.base is None:
            self.base = {
                "id": getattr(item, "id", None),
                "object": "chat.completion",
                "created": getattr(item, "created", None),
                "model": getattr(item, "model", None),
            }
            for key in ("system_fingerprint", "service_tier"):
                if getattr(item, key, None) is not None:
                    self.base[key] = getattr(item, key)
        choices = getattr(item, "choices", None) or []
        for choice in choices:
            self._add_choice(choice)
        usage = getattr(item, "usage", None)
        if usage is not None:
            self.usage = _dict(usage)
            if self.hide and not choices:
                return False
        return True

    def _add_choice(self, choice: Any) -> None:
        index = choice.index
        out = self.choices.setdefault(
            index,
            {"index": index, "message": {"role": "assistant", "content": None},
             "finish_reason": None},
        )
        if choice.finish_reason:
            out["finish_reason"] = choice.finish_reason
        logprobs = _dict(getattr(choice, "logprobs", None))
        if logprobs:
            merged = out.setdefault("logprobs", {})
            for key, values in logprobs.items():
                if isinstance(values, list):
                    merged.setdefault(key, []).extend(values)
        delta = getattr(choice, "delta", None)
        if delta is None:  # Azure sends chunks without a delta
            return
        message = out["message"]
        if delta.role:
            message["role"] = delta.role
        if delta.content:
            message["content"] = (message["content"] or "") + delta.content
        refusal = getattr(delta, "refusal", None)
        if refusal:
            message["refusal"] = message.get("refusal", "") + refusal
        if delta.function_call is not None:
            fc = message.setdefault("function_call", {"name": "", "arguments": ""})
            fc["name"] += delta.function_call.name or ""
            fc["arguments"] += delta.function_call.arguments or ""
        for tc in delta.tool_calls or []:
            calls = self.tool_calls.setdefault(index, {})
            call = calls.setdefault(
                tc.index, {"id": None, "type": "function", "function": {"name": "", "arguments": ""}}
            )
            if tc.id:
                call["id"] = tc.id
            if tc.type:
                call["type"] = tc.type
            if tc.function is not None:
                call["function"]["name"] += tc.function.name or ""
                call["function"]["arguments"] += tc.function.arguments or ""

    def result(self) -> Any:
        if self.base is None:
            return None
        choices = []
        for index in sorted(self.choices):
            choice = dict(self.choices[index])
            if index in self.tool_calls:
                calls = self.tool_calls[index]
                choice["message"] = {
                    **choice["message"],
                    "tool_calls": [calls[i] for i in sorted(calls)],
                }
            choices.append(choice)
        out = {**self.base, "choices": choices}
        if self.usage is not None:
            out["usage"] = self.usage
        return out


class ResponsesAccumulator(Accumulator):
    """Responses API events: the last response snapshot (the completed response in
    the end), with the text deltas seen so far when the stream stopped early."""

    def __init__(self, hide_usage_chunk: bool = False) -> None:
        self.response: Any = None
        self.texts: dict[int, str] = {}
        self.completed = False

    def add(self, item: Any) -> bool:
        kind = getattr(item, "type", "")
        response = getattr(item, "response", None)
        if response is not None and kind.startswith("response."):
            self.response = response
            self.completed = kind in ("response.completed", "response.failed", "response.incomplete")
        elif kind == "response.output_text.delta":
            index = getattr(item, "output_index", 0)
            self.texts[index] = self.texts.get(index, "") + (getattr(item, "delta", "") or "")
        return True

    def result(self) -> Any:
        if self.response is None:
            return None
        if self.completed or not self.texts:
            return self.response
        out = _dict(self.response) or {}
        out["output_text"] = "".join(self.texts[i] for i in sorted(self.texts))
        return out


CHAT_CREATE = Endpoint(
    "openai.chat.completions.create", _usage, _streams, _prepare_chat, ChatAccumulator
)
CHAT_PARSE = Endpoint("openai.chat.completions.parse", _usage)
RESPONSES_CREATE = Endpoint(
    "openai.responses.create", _usage, _streams, accumulator=ResponsesAccumulator
)
EMBEDDINGS_CREATE = Endpoint("openai.embeddings.create", _usage)

# (module, sync class, async class, method, endpoint)
_TARGETS = (
    ("openai.resources.chat.completions", "Completions", "AsyncCompletions", "create", CHAT_CREATE),
    ("openai.resources.chat.completions", "Completions", "AsyncCompletions", "parse", CHAT_PARSE),
    ("openai.resources.beta.chat.completions", "Completions", "AsyncCompletions", "parse", CHAT_PARSE),
    ("openai.resources.responses", "Responses", "AsyncResponses", "create", RESPONSES_CREATE),
    ("openai.resources.embeddings", "Embeddings", "AsyncEmbeddings", "create", EMBEDDINGS_CREATE),
)


def _sync_wrapper(endpoint: Endpoint, original: Any) -> Any:
    return traced_method(original, endpoint)


def _async_wrapper(endpoint: Endpoint, original: Any) -> Any:
    return traced_async_method(original, endpoint)


def patch() -> None:
    """Trace the openai SDK's calls (imports it); patching twice changes nothing."""
    for module_name, sync_name, async_name, method, endpoint in _TARGETS:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue  # an endpoint this SDK version does not have
        sync_cls = getattr(module, sync_name, None)
        async_cls = getattr(module, async_name, None)
        if sync_cls is not None and method in sync_cls.__dict__:
            _patcher.patch(sync_cls, method, functools.partial(_sync_wrapper, endpoint))
        if async_cls is not None and method in async_cls.__dict__:
            _patcher.patch(async_cls, method, functools.partial(_async_wrapper, endpoint))


def unpatch() -> None:
    """Restore the openai SDK's own methods."""
    _patcher.unpatch()


def is_patched() -> bool:
    """True while the openai SDK is patched."""
    return _patcher.active
