"""The sender frees each sent batch at once, not at the next full garbage collection."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import httpx
import pytest

from weave_client import async_op
from weave_client._async._client import AsyncWeaveClient
from weave_client._async._sender import AsyncCallSender


@async_op
async def echo(x: int) -> int:
    return x


@pytest.fixture
def collector_off() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _live_batch_responses() -> list[httpx.Response]:
    # gc.get_objects() also lists unreachable objects not yet collected: exactly
    # the garbage a reference cycle would keep until a full collection.
    return [
        o
        for o in gc.get_objects()
        if isinstance(o, httpx.Response) and o.request.url.path == "/call/upsert_batch"
    ]


def test_default_queue_holds_100000_calls() -> None:
    # A call is two records (start and end); the figure queues 100,000 calls.
    assert AsyncCallSender(None).max_queue >= 200_000


async def test_sent_batches_are_freed_without_the_collector(
    collector_off: None, local_server_url: str, entity: str, project: str
) -> None:
    async with AsyncWeaveClient(entity, project, server_url=local_server_url) as client:
        client._sender = AsyncCallSender(client._api, max_batch_size=10)
        before = len(_live_batch_responses())
        for i in range(100):
            await echo(i)
        result = await client.flush()
        assert result.pending == 0 and client._sender.stored == 200
        # 20 batches were sent; none of their responses (and request bodies) linger.
        assert len(_live_batch_responses()) - before == 0
