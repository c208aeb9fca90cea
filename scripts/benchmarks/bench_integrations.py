#!/usr/bin/env python3
"""The overhead a patched SDK call adds over the unpatched one (openai and anthropic).

    .venv/bin/python scripts/benchmarks/bench_integrations.py [--calls 2000] [--rounds 10]

Each SDK client answers from an in-memory transport (httpx's ``MockTransport``
with canned JSON and SSE bodies: no network, no server round trip), so the
figure is the SDK's own work plus, when patched, the integration's: recording
inputs, accumulating a stream, queuing the start and end records. The traced
calls go to our local trace server in another process (a temp database, so its
work does not share this process's GIL) through a sync ``WeaveClient``; the async
row uses ``AsyncWeaveClient``. Batches of unpatched
and patched calls alternate; the median per-call time of each side and their
difference (the overhead) are printed, with the calls the server stored.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from _common import server_process

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

MESSAGES = [{"role": "user", "content": "Say hello"}]
WORDS = ["Hello", " from", " the", " bench", "."]


def _sse(events: list[tuple[str | None, Any]]) -> bytes:
    out = []
    for name, data in events:
        head = f"event: {name}\n" if name else ""
        out.append(f"{head}data: {data if isinstance(data, str) else json.dumps(data)}\n\n")
    return "".join(out).encode()


def _chat_body(stream: bool) -> tuple[bytes, str]:
    base = {"id": "c1", "created": 1, "model": "gpt-4o-mini"}
    usage = {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}
    if not stream:
        return json.dumps({**base, "object": "chat.completion", "usage": usage, "choices": [
            {"index": 0, "finish_reason": "stop",
             "message": {"role": "assistant", "content": "".join(WORDS)}}]}).encode(), "application/json"
    chunk = {**base, "object": "chat.completion.chunk"}
    events: list[tuple[str | None, Any]] = [
        (None, {**chunk, "choices": [{"index": 0, "delta": {"content": w}}]}) for w in WORDS
    ]
    events.append((None, {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
    events.append((None, {**chunk, "choices": [], "usage": usage}))
    events.append((None, "[DONE]"))
    return _sse(events), "text/event-stream"


def _message_body(stream: bool) -> tuple[bytes, str]:
    msg = {"id": "m1", "type": "message", "role": "assistant", "model": "claude-3-5-haiku-latest",
           "stop_reason": None, "stop_sequence": None}
    if not stream:
        return json.dumps({**msg, "stop_reason": "end_turn", "content": [
            {"type": "text", "text": "".join(WORDS)}],
            "usage": {"input_tokens": 12, "output_tokens": 5}}).encode(), "application/json"
    events: list[tuple[str | None, Any]] = [
        ("message_start", {"type": "message_start", "message": {
            **msg, "content": [], "usage": {"input_tokens": 12, "output_tokens": 1}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
    ]
    events += [("content_block_delta", {"type": "content_block_delta", "index": 0,
                                        "delta": {"type": "text_delta", "text": w}}) for w in WORDS]
    events += [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                           "usage": {"output_tokens": 5}}),
        ("message_stop", {"type": "message_stop"}),
    ]
    return _sse(events), "text/event-stream"


def _handler(httpx_mod: Any) -> Callable[[Any], Any]:
    def handle(request: Any) -> Any:
        body = json.loads(request.content or b"{}")
        stream = bool(body.get("stream"))
        data, kind = (_message_body if "/messages" in str(request.url) else _chat_body)(stream)
        return httpx_mod.Response(200, content=data, headers={"content-type": kind})

    return handle


def _sdk_clients() -> dict[str, Any]:
    import anthropic
    import httpx
    import httpx2
    import openai

    return {
        "openai": openai.OpenAI(
            api_key="sk-bench", base_url="http://bench.invalid/v1",
            http_client=httpx.Client(transport=httpx.MockTransport(_handler(httpx))),
        ),
        "openai_async": openai.AsyncOpenAI(
            api_key="sk-bench", base_url="http://bench.invalid/v1",
            http_client=httpx.AsyncClient(transport=httpx.MockTransport(_handler(httpx))),
        ),
        "anthropic": anthropic.Anthropic(
            api_key="sk-bench", base_url="http://bench.invalid",
            http_client=httpx2.Client(transport=httpx2.MockTransport(_handler(httpx2))),
        ),
    }


def _scenarios(c: dict[str, Any]) -> dict[str, Callable[[], Any]]:
    oai, claude = c["openai"], c["anthropic"]

    def chat() -> None:
        oai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    def chat_stream() -> None:
        for _ in oai.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True):
            pass

    def message() -> None:
        claude.messages.create(model="claude-3-5-haiku-latest", max_tokens=16, messages=MESSAGES)

    def message_stream() -> None:
        with claude.messages.stream(
            model="claude-3-5-haiku-latest", max_tokens=16, messages=MESSAGES
        ) as s:
            s.until_done()

    return {
        "openai chat.completions.create": chat,
        "openai chat.completions.create, stream=True (5 chunks)": chat_stream,
        "anthropic messages.create": message,
        "anthropic messages.stream() (5 text deltas)": message_stream,
    }


def _per_call_us(fn: Callable[[], Any], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


async def _aper_call_us(fn: Callable[[], Coroutine[Any, Any, Any]], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        await fn()
    return (time.perf_counter() - start) / n * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per side and scenario")
    parser.add_argument("--rounds", type=int, default=10, help="alternating batches per side")
    args = parser.parse_args()
    batch = max(1, args.calls // args.rounds)

    from weave_client import AsyncWeaveClient, WeaveClient, integrations

    tmp = tempfile.mkdtemp(prefix="bench-integrations-")
    os.environ.pop("WEAVE_AUTOPATCH", None)
    clients = _sdk_clients()
    rows: list[tuple[str, float, float]] = []
    with server_process(Path(tmp) / "trace.db") as (_, server_url):
        with WeaveClient("bench", "integrations", server_url=server_url) as client:
            for name, fn in _scenarios(clients).items():
                fn()  # warm up both paths (imports, connection, op save)
                bare: list[float] = []
                traced: list[float] = []
                for _ in range(args.rounds):
                    integrations.unpatch()
                    bare.append(_per_call_us(fn, batch))
                    integrations.patch("openai")
                    integrations.patch("anthropic")
                    traced.append(_per_call_us(fn, batch))
                rows.append((name, statistics.median(bare), statistics.median(traced)))
            client.flush()
            stored = len(client.calls(columns=["id"]))

        async def run_async() -> tuple[float, float, int]:
            oai = clients["openai_async"]

            async def chat_stream() -> None:
                s = await oai.chat.completions.create(
                    model="gpt-4o-mini", messages=MESSAGES, stream=True
                )
                async for _ in s:
                    pass

            async with AsyncWeaveClient("bench", "integrations-async", server_url=server_url) as ac:
                await chat_stream()
                bare, traced = [], []
                for _ in range(args.rounds):
                    integrations.unpatch()
                    bare.append(await _aper_call_us(chat_stream, batch))
                    integrations.patch("openai")
                    traced.append(await _aper_call_us(chat_stream, batch))
                await ac.flush()
                n = len(await ac.calls(columns=["id"]))
            return statistics.median(bare), statistics.median(traced), n

        abare, atraced, astored = asyncio.run(run_async())
        rows.append(("AsyncOpenAI chat.completions.create, stream=True", abare, atraced))

    width = max(len(r[0]) for r in rows)
    print(f"{'SDK call (in-memory transport)':<{width}}  {'unpatched':>10}  {'patched':>10}  {'overhead':>9}")
    for name, bare_us, traced_us in rows:
        print(f"{name:<{width}}  {bare_us:>8.0f} µs  {traced_us:>8.0f} µs  {traced_us - bare_us:>+6.0f} µs")
    expected = (len(rows) - 1) * (batch * args.rounds + 1)
    print(f"calls stored: {stored} of {expected} (sync), {astored} of {batch * args.rounds + 1} (async)")
    return 0 if stored == expected and astored == batch * args.rounds + 1 else 1


if __name__ == "__main__":
    sys.exit(main())
