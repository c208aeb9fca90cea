"""The anthropic SDK traced without decorators: the real SDK against tests/llm_server.py.

Each test runs the SDK's async client under ``AsyncWeaveClient``; the sync twin
(tests/_sync) runs ``Anthropic`` under ``WeaveClient``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import pytest
from anthropic import AsyncAnthropic

from tests.llm_server import COMPLETION_TOKENS, PROMPT_TOKENS
from weave_client import AsyncWeaveClient, async_op
from weave_client._async._call import AsyncCall as Call

SECRET = "sk-ant-test-secret-77"
MESSAGES = [{"role": "user", "content": "Say hello"}]
MODEL = "claude-3-5-haiku-latest"
TEXT = "Hello from the loopback model."
CACHE_READ = 3  # the server's cache_read_input_tokens


@pytest.fixture
async def sdk(llm_server: Any) -> AsyncIterator[AsyncAnthropic]:
    async with AsyncAnthropic(base_url=llm_server.url, api_key=SECRET, max_retries=0) as c:
        yield c


async def only_call(client: AsyncWeaveClient, op_name: str) -> Call:
    calls = [c for c in await client.calls() if c.op_short_name == op_name]
    assert len(calls) == 1, [c.op_short_name for c in await client.calls()]
    return calls[0]


def assert_usage(call: Call) -> None:
    usage = call.summary["usage"][MODEL]
    assert usage["requests"] == 1
    # input_tokens counts cache reads too, as weave's summary does.
    assert usage["input_tokens"] == PROMPT_TOKENS + CACHE_READ
    assert usage["output_tokens"] == COMPLETION_TOKENS
    assert usage["total_tokens"] == PROMPT_TOKENS + CACHE_READ + COMPLETION_TOKENS


def create_name(sdk: Any) -> str:
    return "anthropic.AsyncMessages.create" if "Async" in type(sdk).__name__ else "anthropic.Messages.create"


def stream_name(sdk: Any) -> str:
    return "anthropic.AsyncMessages.stream" if "Async" in type(sdk).__name__ else "anthropic.Messages.stream"


async def test_message_recorded(local_client: AsyncWeaveClient, sdk: AsyncAnthropic) -> None:
    tools = [{"name": "get_weather", "input_schema": {"type": "object"}}]
    message = await sdk.messages.create(
        model=MODEL, max_tokens=64, messages=MESSAGES, tools=tools,
        extra_headers={"x-api-key": SECRET},
    )
    assert type(message) is anthropic.types.Message
    call = await only_call(local_client, create_name(sdk))
    assert call.inputs["messages"] == MESSAGES and call.inputs["max_tokens"] == 64
    assert call.inputs["extra_headers"] == {"x-api-key": "REDACTED"}
    assert SECRET not in json.dumps(call.inputs)
    assert call.output["content"][0] == {"type": "text", "text": TEXT}
    assert call.output["content"][1]["input"] == {"city": "Paris"}
    assert call.output["stop_reason"] == "tool_use"
    assert_usage(call)


async def test_create_stream_accumulated(local_client: AsyncWeaveClient, sdk: AsyncAnthropic) -> None:
    stream = await sdk.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES, stream=True)
    assert type(stream).__name__ in ("Stream", "AsyncStream")
    assert type(stream) is getattr(anthropic, type(stream).__name__)  # the SDK's own class
    events = [event async for event in stream]
    assert events[0].type == "message_start" and events[-1].type == "message_stop"
    call = await only_call(local_client, create_name(sdk))
    assert call.output["content"] == [{"type": "text", "text": TEXT}]
    assert call.output["stop_reason"] == "end_turn"
    assert_usage(call)


async def test_stream_manager_text_and_final_message(
    local_client: AsyncWeaveClient, sdk: AsyncAnthropic
) -> None:
    tools = [{"name": "get_weather", "input_schema": {"type": "object"}}]
    async with sdk.messages.stream(
        model=MODEL, max_tokens=64, messages=MESSAGES, tools=tools
    ) as stream:
        text = "".join([piece async for piece in stream.text_stream])
        final = await stream.get_final_message()
    assert text == TEXT
    assert type(final) is anthropic.types.ParsedMessage or isinstance(final, anthropic.types.Message)
    assert final.usage.output_tokens == COMPLETION_TOKENS
    call = await only_call(local_client, stream_name(sdk))
    assert call.inputs["model"] == MODEL and call.inputs["tools"] == tools
    assert call.output["content"][0] == {"type": "text", "text": TEXT}
    assert call.output["content"][1]["input"] == {"city": "Paris"}
    assert call.output["stop_reason"] == "tool_use"
    assert_usage(call)


async def test_stream_manager_closed_early(
    local_client: AsyncWeaveClient, sdk: AsyncAnthropic
) -> None:
    pieces = []
    async with sdk.messages.stream(model=MODEL, max_tokens=64, messages=MESSAGES) as stream:
        async for piece in stream.text_stream:
            pieces.append(piece)
            if len(pieces) == 2:
                break
    call = await only_call(local_client, stream_name(sdk))
    assert call.ended_at is not None and call.exception is None
    assert call.output["content"] == [{"type": "text", "text": "Hello from"}]
    # message_start carried the input tokens: they are counted, the output is not yet known.
    assert call.summary["usage"][MODEL]["input_tokens"] == PROMPT_TOKENS + CACHE_READ


async def test_sdk_error_recorded_and_reraised(
    local_client: AsyncWeaveClient, sdk: AsyncAnthropic
) -> None:
    with pytest.raises(anthropic.BadRequestError):
        await sdk.messages.create(model="fail-400", max_tokens=8, messages=MESSAGES)
    with pytest.raises(anthropic.NotFoundError):
        async with sdk.messages.stream(model="fail-404", max_tokens=8, messages=MESSAGES):
            pass
    calls = sorted(await local_client.calls(), key=lambda c: c.started_at)
    assert [c.op_short_name for c in calls] == [create_name(sdk), stream_name(sdk)]
    assert "BadRequestError" in (calls[0].exception or "")
    assert "NotFoundError" in (calls[1].exception or "")


async def test_nested_under_an_op_cost_rolled_up(
    local_client: AsyncWeaveClient, sdk: AsyncAnthropic
) -> None:
    @async_op
    async def chat(question: str) -> str:
        message = await sdk.messages.create(model=MODEL, max_tokens=64, messages=MESSAGES)
        async with sdk.messages.stream(model=MODEL, max_tokens=64, messages=MESSAGES) as stream:
            await stream.until_done()
        return message.content[0].text

    assert await chat("hi") == TEXT
    calls = await local_client.calls(include_costs=True)
    root = next(c for c in calls if c.parent_id is None)
    assert root.op_short_name == "chat"
    usage = root.summary["usage"][MODEL]
    assert usage["requests"] == 2
    assert usage["output_tokens"] == 2 * COMPLETION_TOKENS
    cost = root.summary["weave"]["costs"][MODEL]
    assert cost["prompt_tokens"] == 2 * (PROMPT_TOKENS + CACHE_READ)
    assert cost["completion_tokens_total_cost"] == pytest.approx(
        2 * COMPLETION_TOKENS * cost["completion_token_cost"])
