#!/usr/bin/env python3
"""The README's scenarios, run for real: ``./scripts/demo`` (or ``python scripts/example_usage.py``).

Runs against the embedded local trace server by default (no account needed; it
says where the data goes), or any trace server given with ``--server-url``:

    python scripts/example_usage.py
    python scripts/example_usage.py --server-url http://127.0.0.1:6345 --project demo

Scenarios: basic save/get/calls, concurrent processing with ``asyncio.gather``,
a service class using the client, streaming through calls, querying with filters
and sort, feedback, error handling, and LLM calls traced without decorators (the
openai and anthropic SDKs; against the loopback server of tests/llm_server.py
unless ``OPENAI_API_KEY`` is set). Each prints what it stored.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import logging
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from weave_client import (
    AsyncWeaveClient,
    NotFoundError,
    UnsaveableValueError,
    async_op,
    create_async_client,
)


def section(title: str) -> None:
    print(f"\n== {title}")


# --- traced functions --------------------------------------------------------


@async_op
async def my_async_function(x: int, y: int) -> int:
    await asyncio.sleep(0.01)  # simulate async work
    return x + y


@async_op(
    name="process_item",
    display_name="Process item",
    call_display_name=lambda inputs: f"Processing {inputs['item']}",
)
async def process_item(item: str) -> dict[str, object]:
    await asyncio.sleep(0.01)
    return {"item": item, "length": len(item), "upper": item.upper()}


@async_op
async def process_many_items(items: list[str]) -> list[dict[str, object]]:
    # Each item is its own traced call, nested under this one, run concurrently.
    return list(await asyncio.gather(*(process_item(item) for item in items)))


class SummaryService:
    """A service class that owns a client and exposes traced methods."""

    def __init__(self, client: AsyncWeaveClient) -> None:
        self.client = client

    @async_op
    async def summarize(self, text: str) -> str:
        await asyncio.sleep(0.005)
        words = text.split()
        return " ".join(words[:5]) + ("..." if len(words) > 5 else "")

    async def summarize_and_store(self, name: str, text: str) -> str:
        summary = await self.summarize(text)
        ref = await self.client.save({"text": text, "summary": summary}, name)
        print(f"  stored {name}: {ref.uri()}")
        return summary


# --- scenarios ------------------------------------------------------------------


async def basic(client: AsyncWeaveClient) -> None:
    section("Basic: a traced call, save, get, query")
    result = await my_async_function(5, 3)
    print(f"  my_async_function(5, 3) = {result}")
    ref = await client.save({"data": "value", "numbers": [1, 2, 3]}, "my-object")
    print(f"  saved my-object -> {ref.uri()}")
    obj = await client.get(ref)
    print(f"  got it back: {obj}")
    # No flush needed: a query first sends this client's pending calls.
    calls = await client.calls(limit=10)
    for call in calls:
        print(f"  call {call.op_short_name}({call.inputs}) -> {call.output}")


async def concurrent(client: AsyncWeaveClient) -> None:
    section("Concurrent operations with asyncio.gather")
    items = [f"item-{i}" for i in range(20)]
    started = time.perf_counter()
    results = await process_many_items(items)
    elapsed = time.perf_counter() - started
    print(f"  processed {len(results)} items in {elapsed * 1000:.0f} ms (each sleeps 10 ms)")
    refs = await asyncio.gather(
        *(client.save(r, f"result-{i}") for i, r in enumerate(results[:5]))
    )
    print(f"  saved {len(refs)} results concurrently, e.g. {refs[0].uri()}")


async def service(client: AsyncWeaveClient) -> None:
    section("A service class using the client")
    svc = SummaryService(client)
    summary = await svc.summarize_and_store(
        "article-summary",
        "Weave traces every call of your LLM application so you can debug and evaluate it",
    )
    print(f"  summary: {summary!r}")


async def streaming(client: AsyncWeaveClient) -> None:
    section("Streaming through calls")
    count = 0
    async for call in client.calls_stream(op_names=["process_item"]):
        count += 1
        if count <= 3:
            print(f"  {call.display_name}: {call.output}")
    print(f"  streamed {count} process_item calls, one at a time")
    async for page in client.calls_pages(page_size=8, op_names=["process_item"]):
        print(f"  page at offset {page.offset}: {len(page)} calls, has_next={page.has_next}")


async def querying(client: AsyncWeaveClient) -> None:
    section("Querying with filters and sort")
    roots = await client.calls(trace_roots_only=True, sort_by="started_at")
    print(f"  {len(roots)} root calls: {[c.op_short_name for c in roots]}")
    slowest = await client.calls(
        op_names=["process_item"], sort_by="-summary.weave.latency_ms", limit=3
    )
    for call in slowest:
        print(f"  slow: {call.inputs['item']} took {call.latency_ms:.1f} ms")
    query = {"$contains": {"input": {"$getField": "inputs.item"}, "substr": {"$literal": "-1"}}}
    matching = await client.calls(query=query, op_names=["process_item"])
    print(f"  items containing '-1': {sorted(c.inputs['item'] for c in matching)}")
    table = await client.table("items", [{"item": f"item-{i}", "i": i} for i in range(100)])
    print(f"  table {table.ref.uri() if table.ref else table.table_ref.uri()}: "
          f"{await table.count()} rows, row 42 = {await table[42]}")
    versions = await client.objects(latest_only=True)
    print(f"  {len(versions)} objects stored: {sorted(v.name for v in versions)[:8]}...")


async def feedback(client: AsyncWeaveClient) -> None:
    section("Feedback")
    call = (await client.calls(op_names=["my_async_function"], limit=1))[0]
    await call.feedback.add_reaction("👍")
    await call.feedback.add_note("correct sum")
    await client.feedback(call, "correctness", {"score": 1.0})
    for item in await call.feedback.query():
        print(f"  {item.feedback_type}: {item.payload}")


async def error_handling(client: AsyncWeaveClient) -> None:
    section("Error handling")
    try:
        await client.get(f"weave:///{client.entity}/{client.project}/object/does-not-exist:latest")
    except NotFoundError as e:
        print(f"  caught NotFoundError: {e}")
    try:
        await client.save({"handle": [0, threading.Lock()]}, "unsaveable")
    except TypeError as e:
        assert isinstance(e, UnsaveableValueError)
        print(f"  caught TypeError: {e}")
    try:
        await client.get("weave:///not/a/valid-ref")
    except ValueError as e:
        print(f"  caught ValueError: {e}")


async def llm_calls(client: AsyncWeaveClient) -> None:
    section("LLM calls traced without decorators (openai, anthropic)")
    if importlib.util.find_spec("openai") is None:
        print("  openai is not installed: pip install 'weave-client[openai]'")
        return
    import openai

    with contextlib.ExitStack() as stack:
        if os.environ.get("OPENAI_API_KEY"):
            sdk = openai.AsyncOpenAI()
            print("  using the OpenAI API (OPENAI_API_KEY is set)")
            loopback = None
        else:
            from tests.llm_server import LLMServer

            loopback = stack.enter_context(LLMServer())
            sdk = openai.AsyncOpenAI(base_url=loopback.url + "/v1", api_key="sk-loopback")
            print(f"  no OPENAI_API_KEY: a loopback server speaking the OpenAI API at {loopback.url}")

        @async_op
        async def answer(question: str) -> str:
            stream = await sdk.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": question}],
                stream=True,
            )
            parts = [chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]
            if loopback is not None and importlib.util.find_spec("anthropic") is not None:
                import anthropic

                claude = anthropic.AsyncAnthropic(base_url=loopback.url, api_key="sk-loopback")
                async with claude.messages.stream(
                    model="claude-3-5-haiku-latest", max_tokens=64,
                    messages=[{"role": "user", "content": question}],
                ) as reply:
                    await reply.until_done()
            return "".join(parts)

        print(f"  answer: {await answer('What does weave trace?')!r}")
        await sdk.close()
    (root,) = await client.calls(op_names=["answer"], include_costs=True)
    for child in await root.children():
        print(f"  traced {child.op_short_name} (no decorator)")
    for model, usage in root.summary.get("usage", {}).items():
        cost = root.summary.get("weave", {}).get("costs", {}).get(model, {})
        total = cost.get("prompt_tokens_total_cost", 0) + cost.get("completion_tokens_total_cost", 0)
        tokens = usage.get("total_tokens") or 0
        print(f"  {model}: {usage.get('requests')} request(s), {tokens} tokens, ${total:.6f}")


async def main(server_url: str | None, entity: str, project: str) -> None:
    async with await create_async_client(entity, project, server_url=server_url) as client:
        print(f"client: {client!r}")
        await basic(client)
        await concurrent(client)
        await service(client)
        await streaming(client)
        await querying(client)
        await feedback(client)
        await error_handling(client)
        await llm_calls(client)
        result = await client.flush()
        print(f"\nflushed: {result}")
    print(f"done: everything is in project {entity}/{project}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server-url", help="a trace server (default: the embedded local one)")
    parser.add_argument("--entity", default="demo")
    parser.add_argument("--project", default=f"example-{time.strftime('%Y%m%d-%H%M%S')}")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    logging.getLogger("httpx2").setLevel(logging.WARNING)  # the anthropic SDK's httpx
    asyncio.run(main(args.server_url, args.entity, args.project))
