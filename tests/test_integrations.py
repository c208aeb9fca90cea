"""The SDK integrations beyond one flavour: cancellation, activation and opt-out,
undo, the import hook (an SDK is never imported by us), and mixed flavours.

The per-endpoint behaviour is in tests/_async/test_integrations_*.py (and _sync).
"""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from tests.llm_server import COMPLETION_TOKENS
from weave_client import AsyncWeaveClient, InvalidSettingError, WeaveClient, integrations, op
from weave_client._context import current_client

MESSAGES = [{"role": "user", "content": "Say hello"}]
ROOT = Path(__file__).resolve().parents[1]


def _completions_create() -> Any:
    return openai.resources.chat.completions.Completions.__dict__["create"]


async def test_cancelled_openai_stream_ends_the_call(
    local_server_url: str, llm_server: Any, entity: str, project: str
) -> None:
    async with AsyncWeaveClient(entity, project, server_url=local_server_url) as client:
        sdk = openai.AsyncOpenAI(base_url=llm_server.url + "/v1", api_key="sk-x", max_retries=0)
        got_some = asyncio.Event()
        seen: list[Any] = []

        async def consume() -> None:
            stream = await sdk.chat.completions.create(
                model="gpt-4o-mini-slow", messages=MESSAGES, stream=True
            )
            async for chunk in stream:
                seen.append(chunk)
                if len(seen) == 3:  # the server now pauses until we go away
                    got_some.set()

        task = asyncio.create_task(consume())
        await got_some.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await sdk.close()
        (call,) = await client.calls()
        assert call.op_short_name == "openai.chat.completions.create"
        assert call.ended_at is not None
        assert call.exception is not None and "CancelledError" in call.exception
        assert call.output["choices"][0]["message"]["content"] == "Hello from"


async def test_cancelled_anthropic_stream_ends_the_call(
    local_server_url: str, llm_server: Any, entity: str, project: str
) -> None:
    async with AsyncWeaveClient(entity, project, server_url=local_server_url) as client:
        sdk = anthropic.AsyncAnthropic(base_url=llm_server.url, api_key="sk-x", max_retries=0)
        got_some = asyncio.Event()
        pieces: list[str] = []

        async def consume() -> None:
            async with sdk.messages.stream(
                model="claude-slow", max_tokens=8, messages=MESSAGES
            ) as stream:
                async for piece in stream.text_stream:
                    pieces.append(piece)
                    if len(pieces) == 2:
                        got_some.set()

        task = asyncio.create_task(consume())
        await got_some.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await sdk.close()
        (call,) = await client.calls()
        assert call.op_short_name == "anthropic.AsyncMessages.stream"
        assert call.ended_at is not None and "CancelledError" in (call.exception or "")
        assert call.output["content"] == [{"type": "text", "text": "Hello from"}]


async def test_async_client_traces_the_sync_sdk(
    local_server_url: str, llm_server: Any, entity: str, project: str
) -> None:
    async with AsyncWeaveClient(entity, project, server_url=local_server_url) as client:
        with openai.OpenAI(base_url=llm_server.url + "/v1", api_key="sk-x") as sdk:
            stream = sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
            assert "".join(c.choices[0].delta.content or "" for c in stream) == "Hello from the loopback model."
        (call,) = await client.calls()
        assert call.summary["usage"]["gpt-4o-mini"]["completion_tokens"] == COMPLETION_TOKENS


def test_sync_client_traces_the_async_sdk(
    local_server_url: str, llm_server: Any, entity: str, project: str
) -> None:
    @op
    def ask() -> str:
        async def run() -> str:
            async with anthropic.AsyncAnthropic(base_url=llm_server.url, api_key="sk-x") as sdk:
                message = await sdk.messages.create(
                    model="claude-3-5-haiku-latest", max_tokens=8, messages=MESSAGES
                )
            return str(message.content[0].text)

        return asyncio.run(run())

    with WeaveClient(entity, project, server_url=local_server_url) as client:
        assert ask() == "Hello from the loopback model."
        calls = client.calls(include_costs=True)
        root = next(c for c in calls if c.parent_id is None)
        (child,) = [c for c in calls if c.parent_id == root.id]
        assert child.op_short_name == "anthropic.AsyncMessages.create"
        cost = root.summary["weave"]["costs"]["claude-3-5-haiku-latest"]
        assert cost["requests"] == 1 and cost["completion_tokens"] == COMPLETION_TOKENS
        assert cost["provider_id"] == "anthropic" and cost["pricing_level"] == "default"


def test_patch_is_idempotent_and_undoable() -> None:
    integrations.patch("openai")
    patched = _completions_create()
    original = patched.__weave_client_original__
    integrations.patch("openai")
    assert _completions_create() is patched
    integrations.unpatch("openai")
    assert _completions_create() is original
    assert not integrations.is_patched("openai")
    integrations.unpatch()  # nothing left to undo: still fine
    integrations.patch("openai")
    assert integrations.is_patched("openai")


def test_opt_out_per_client(
    local_server_url: str, llm_server: Any, entity: str, project: str
) -> None:
    integrations.unpatch()
    try:
        with WeaveClient(entity, project, server_url=local_server_url, autopatch=False) as client:
            assert not integrations.is_patched("openai")
            with openai.OpenAI(base_url=llm_server.url + "/v1", api_key="sk-x") as sdk:
                sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            assert client.calls() == []
        with WeaveClient(entity, project, server_url=local_server_url, autopatch=["anthropic"]):
            assert integrations.is_patched("anthropic")
            assert not integrations.is_patched("openai")
    finally:
        integrations.patch("openai")
        integrations.patch("anthropic")


def test_autopatch_setting_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidSettingError, match="'gemini'"):
        integrations.resolve_autopatch(["gemini"])
    with pytest.raises(TypeError, match="autopatch"):
        integrations.resolve_autopatch("openai")
    monkeypatch.setenv("WEAVE_AUTOPATCH", "false")
    assert integrations.resolve_autopatch(None) == ()
    monkeypatch.setenv("WEAVE_AUTOPATCH", "anthropic")
    assert integrations.resolve_autopatch(None) == ("anthropic",)
    monkeypatch.setenv("WEAVE_AUTOPATCH", "openai,nope")
    with pytest.raises(InvalidSettingError, match="WEAVE_AUTOPATCH"):
        integrations.resolve_autopatch(None)
    assert integrations.resolve_autopatch(True) == ("openai", "anthropic")


def _run(code: str, server_url: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), server_url],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
        env={**os.environ, **env},
    )


def test_sdks_never_imported_by_us_and_patched_on_import(local_server_url: str) -> None:
    result = _run(
        """
        import sys
        from weave_client import WeaveClient, integrations
        with WeaveClient("e", "p", server_url=sys.argv[1]) as client:
            assert "openai" not in sys.modules and "anthropic" not in sys.modules
            import openai
            assert integrations.is_patched("openai")
            assert "anthropic" not in sys.modules
            create = openai.resources.chat.completions.Completions.create
            assert create.__weave_client_original__ is not None
            import anthropic
            assert integrations.is_patched("anthropic")
        print("ok")
        """,
        local_server_url,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_env_opt_out_in_a_fresh_process(local_server_url: str) -> None:
    result = _run(
        """
        import sys
        from weave_client import WeaveClient, integrations
        with WeaveClient("e", "p", server_url=sys.argv[1]):
            import openai
            assert not integrations.is_patched("openai")
            assert not hasattr(openai.resources.chat.completions.Completions.create,
                               "__weave_client_original__")
        print("ok")
        """,
        local_server_url,
        WEAVE_AUTOPATCH="false",
    )
    assert result.returncode == 0, result.stderr


def test_untraced_without_a_client(llm_server: Any) -> None:
    integrations.patch("openai")
    assert current_client() is None
    with openai.OpenAI(base_url=llm_server.url + "/v1", api_key="sk-x") as sdk:
        result = sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
        chunks = list(result)
    # Not traced: nothing asked for usage, so no usage chunk came.
    assert all(c.usage is None for c in chunks)
    assert llm_server.requests[-1]["body"].get("stream_options") is None


def test_a_dropped_stream_ends_its_call(
    local_server_url: str, llm_server: Any, entity: str, project: str
) -> None:
    with WeaveClient(entity, project, server_url=local_server_url) as client:
        with openai.OpenAI(base_url=llm_server.url + "/v1", api_key="sk-x") as sdk:
            stream = sdk.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
            next(stream)
            next(stream)
            del stream  # neither exhausted nor closed
            gc.collect()
        (call,) = client.calls()
        assert call.ended_at is not None and call.exception is None
        assert call.output["choices"][0]["message"]["content"] == "Hello"
