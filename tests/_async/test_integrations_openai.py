"""The openai SDK traced without decorators: the real SDK against tests/llm_server.py.

Each test runs the SDK's async client under ``AsyncWeaveClient``; the sync twin
(tests/_sync) runs ``OpenAI`` under ``WeaveClient``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
from openai import AsyncOpenAI

from tests.llm_server import COMPLETION_TOKENS, PROMPT_TOKENS
from weave_client import AsyncWeaveClient, async_op
from weave_client._async._call import AsyncCall as Call

SECRET = "sk-test-secret-4f2a"
MESSAGES = [{"role": "user", "content": "Say hello"}]
MODEL = "gpt-4o-mini"


@pytest.fixture
async def sdk(llm_server: Any) -> AsyncIterator[AsyncOpenAI]:
    async with AsyncOpenAI(base_url=llm_server.url + "/v1", api_key=SECRET, max_retries=0) as c:
        yield c


async def only_call(client: AsyncWeaveClient, op_name: str) -> Call:
    calls = [c for c in await client.calls() if c.op_short_name == op_name]
    assert len(calls) == 1, [c.op_short_name for c in await client.calls()]
    return calls[0]


def assert_usage(call: Call, model: str = MODEL) -> None:
    usage = call.summary["usage"][model]
    assert usage["requests"] == 1
    assert usage["prompt_tokens"] == PROMPT_TOKENS
    assert usage["completion_tokens"] == COMPLETION_TOKENS
    assert usage["total_tokens"] == PROMPT_TOKENS + COMPLETION_TOKENS


async def test_chat_completion_recorded(local_client: AsyncWeaveClient, sdk: AsyncOpenAI) -> None:
    result = await sdk.chat.completions.create(
        model=MODEL, messages=MESSAGES, extra_headers={"Authorization": "Bearer " + SECRET}
    )
    assert type(result) is openai.types.chat.ChatCompletion
    call = await only_call(local_client, "openai.chat.completions.create")
    assert call.inputs["model"] == MODEL
    assert call.inputs["messages"] == MESSAGES
    assert call.inputs["self"]["client"]["base_url"].startswith("http://127.0.0.1")
    assert call.inputs["extra_headers"] == {"Authorization": "REDACTED"}
    assert SECRET not in json.dumps(call.inputs)
    assert call.output["choices"][0]["message"]["content"] == "Hello from the loopback model."
    assert call.output["request_id"] == "req_loopback"
    assert call.exception is None
    assert_usage(call)


async def test_chat_stream_accumulated(
    local_client: AsyncWeaveClient, sdk: AsyncOpenAI, llm_server: Any
) -> None:
    stream = await sdk.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    assert type(stream).__name__ in ("Stream", "AsyncStream")
    assert type(stream) is getattr(openai, type(stream).__name__)  # the SDK's own class
    chunks = [chunk async for chunk in stream]
    # The usage chunk we asked for is not passed on: every chunk has its choice.
    assert all(type(c) is openai.types.chat.ChatCompletionChunk and c.choices for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Hello from the loopback model."
    assert llm_server.requests[-1]["body"]["stream_options"] == {"include_usage": True}
    call = await only_call(local_client, "openai.chat.completions.create")
    assert call.inputs["stream"] is True
    assert "stream_options" not in call.inputs  # inputs as the caller passed them
    message = call.output["choices"][0]["message"]
    assert message == {"role": "assistant", "content": "Hello from the loopback model."}
    assert call.output["choices"][0]["finish_reason"] == "stop"
    assert call.ended_at is not None
    assert_usage(call)


async def test_chat_stream_keeps_the_callers_stream_options(
    local_client: AsyncWeaveClient, sdk: AsyncOpenAI, llm_server: Any
) -> None:
    stream = await sdk.chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None  # asked for: received
    stream = await sdk.chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": False}
    )
    _ = [chunk async for chunk in stream]
    assert llm_server.requests[-1]["body"]["stream_options"] == {"include_usage": False}
    calls = sorted(await local_client.calls(), key=lambda c: c.started_at)
    assert_usage(calls[0])
    assert "usage" not in calls[1].summary  # none sent, none invented


async def test_chat_stream_closed_early(local_client: AsyncWeaveClient, sdk: AsyncOpenAI) -> None:
    stream = await sdk.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    seen = []
    async for chunk in stream:
        seen.append(chunk.choices[0].delta.content)
        if len(seen) == 3:
            break
    await stream.close()
    call = await only_call(local_client, "openai.chat.completions.create")
    assert call.ended_at is not None and call.exception is None
    assert call.output["choices"][0]["message"]["content"] == "Hello from"
    assert "usage" not in call.summary


async def test_chat_stream_tool_calls(local_client: AsyncWeaveClient, sdk: AsyncOpenAI) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
    async with await sdk.chat.completions.create(
        model=MODEL, messages=MESSAGES, stream=True, tools=tools
    ) as stream:
        async for _ in stream:
            pass
    call = await only_call(local_client, "openai.chat.completions.create")
    choice = call.output["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["tool_calls"] == [
        {"id": "call_1", "type": "function",
         "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    ]
    assert_usage(call)


async def test_sdk_error_recorded_and_reraised(
    local_client: AsyncWeaveClient, sdk: AsyncOpenAI
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await sdk.chat.completions.create(model="fail-400", messages=MESSAGES)
    assert info.value.status_code == 400
    call = await only_call(local_client, "openai.chat.completions.create")
    assert call.exception is not None and "BadRequestError" in call.exception
    assert call.summary["status_counts"] == {"success": 0, "error": 1}


async def test_responses_embeddings_and_parse(
    local_client: AsyncWeaveClient, sdk: AsyncOpenAI
) -> None:
    response = await sdk.responses.create(model=MODEL, input="Say hello")
    assert response.output_text == "Hello from the loopback model."
    stream = await sdk.responses.create(model=MODEL, input="Say hello", stream=True)
    events = [event async for event in stream]
    assert events[-1].type == "response.completed"
    embedding = await sdk.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    assert len(embedding.data) == 2
    parsed = await sdk.chat.completions.parse(model=MODEL, messages=MESSAGES)
    assert parsed.choices[0].message.content == "Hello from the loopback model."
    beta = await sdk.beta.chat.completions.parse(model=MODEL, messages=MESSAGES)
    assert beta.choices[0].message.content == "Hello from the loopback model."
    calls = sorted(await local_client.calls(), key=lambda c: c.started_at)
    assert [c.op_short_name for c in calls] == [
        "openai.responses.create",
        "openai.responses.create",
        "openai.embeddings.create",
        "openai.chat.completions.parse",
        "openai.chat.completions.parse",  # beta.chat.completions.parse, as weave names it
    ]
    for call in calls[:2]:
        usage = call.summary["usage"][MODEL]
        assert (usage["input_tokens"], usage["output_tokens"], usage["requests"]) == (
            PROMPT_TOKENS, COMPLETION_TOKENS, 1)
        assert call.output["status"] == "completed"
    assert calls[2].summary["usage"]["text-embedding-3-small"] == {
        "requests": 1, "prompt_tokens": 8, "total_tokens": 8}
    assert_usage(calls[3])
    assert_usage(calls[4])


async def test_nested_under_an_op_usage_and_cost_rolled_up(
    local_client: AsyncWeaveClient, sdk: AsyncOpenAI
) -> None:
    @async_op
    async def answer(question: str) -> str:
        first = await sdk.chat.completions.create(model=MODEL, messages=MESSAGES)
        stream = await sdk.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
        async for _ in stream:
            pass
        return first.choices[0].message.content or ""

    await answer("hi")
    calls = await local_client.calls(include_costs=True)
    root = next(c for c in calls if c.parent_id is None)
    children = [c for c in calls if c.parent_id == root.id]
    assert root.op_short_name == "answer" and len(children) == 2
    usage = root.summary["usage"][MODEL]
    assert usage["requests"] == 2
    assert usage["prompt_tokens"] == 2 * PROMPT_TOKENS
    assert usage["completion_tokens"] == 2 * COMPLETION_TOKENS
    cost = root.summary["weave"]["costs"][MODEL]
    assert cost["requests"] == 2
    assert cost["prompt_tokens_total_cost"] == pytest.approx(
        2 * PROMPT_TOKENS * cost["prompt_token_cost"])
    assert cost["completion_tokens_total_cost"] == pytest.approx(
        2 * COMPLETION_TOKENS * cost["completion_token_cost"])
    assert cost["prompt_tokens_total_cost"] > 0
    child_cost = children[0].summary["weave"]["costs"][MODEL]
    assert child_cost["requests"] == 1


async def test_sdk_stream_helpers_work_and_are_traced(
    local_client: AsyncWeaveClient, sdk: AsyncOpenAI
) -> None:
    # The SDK's own helpers call the patched create(stream=True) underneath.
    async with sdk.chat.completions.stream(model=MODEL, messages=MESSAGES) as stream:
        async for _ in stream:
            pass
        final = await stream.get_final_completion()
    assert final.choices[0].message.content == "Hello from the loopback model."
    async with sdk.responses.stream(model=MODEL, input="Say hello") as events:
        async for _ in events:
            pass
        response = await events.get_final_response()
    assert response.output_text == "Hello from the loopback model."
    calls = sorted(await local_client.calls(), key=lambda c: c.started_at)
    assert [c.op_short_name for c in calls] == ["openai.chat.completions.create", "openai.responses.create"]
    assert_usage(calls[0])
    assert calls[1].output["output"][0]["content"][0]["text"] == "Hello from the loopback model."
