"""The background sender: flush, back-pressure, 413 splits, truncation, failures."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator

import pytest

import weave_client
from weave_client import ContextThreadPoolExecutor, FlushResult, async_op
from weave_client._async._client import AsyncWeaveClient
from weave_client._async._sender import AsyncCallSender
from weave_client._models import CallSchema, CallsQueryReq
from weave_client._synchronization import async_run_blocking
from weave_client._tracing import CallFrame, make_start
from weave_client.server import start_background_server


@async_op
async def echo(x: int, text: str = "") -> int:
    return x


async def stored_calls(client: AsyncWeaveClient) -> list[CallSchema]:
    result = await client.flush()
    assert result.pending == 0, result
    res = await client._api.calls_query(CallsQueryReq(project_id=client.project_id))
    return sorted(res.calls, key=lambda c: (c.started_at, c.id))


@pytest.fixture(scope="module")
def small_body_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Our server with a 20 kB request limit, so batches hit 413."""
    db = tmp_path_factory.mktemp("small-body") / "trace.db"
    server = start_background_server(db_path=db, port=0, max_body_bytes=20_000)
    try:
        yield str(server.url).rstrip("/")
    finally:
        server.stop()


@pytest.fixture
def silent_server_url() -> Iterator[str]:
    """A port that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


@pytest.fixture
def closed_port_url() -> str:
    """A port nothing listens on (connections are refused)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return f"http://127.0.0.1:{port}"


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="on_full"):
        AsyncCallSender(None, on_full="later")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_queue must be at least 1, got 0"):
        AsyncCallSender(None, max_queue=0)


async def test_full_queue_applies_back_pressure(
    local_server_url: str, entity: str, project: str
) -> None:
    async with AsyncWeaveClient(entity, project, server_url=local_server_url) as client:
        client._sender = AsyncCallSender(client._api, max_queue=4, max_batch_size=3)
        for i in range(60):
            await echo(i)
        calls = await stored_calls(client)
        assert client._sender.dropped == 0
    assert sorted(c.inputs["x"] for c in calls) == list(range(60))
    assert all(c.ended_at is not None for c in calls)


@weave_client.op
def square(x: int) -> int:
    return x * x


def squares_in_pool(n: int) -> list[int]:
    with ContextThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(square, range(n)))


@async_op
async def fan_out_in_threads(n: int) -> list[int]:
    # Off the event loop: the async sender must keep running to make room.
    return await async_run_blocking(squares_in_pool, n)


async def test_back_pressure_holds_worker_threads_too(
    local_server_url: str, entity: str, project: str
) -> None:
    async with AsyncWeaveClient(entity, project, server_url=local_server_url) as client:
        client._sender = AsyncCallSender(client._api, max_queue=4, max_batch_size=2)
        assert await fan_out_in_threads(40) == [i * i for i in range(40)]
        calls = await stored_calls(client)
        assert client._sender.dropped == 0
    (root,) = [c for c in calls if c.parent_id is None]
    children = [c for c in calls if c.parent_id == root.id]
    assert sorted(c.output for c in children) == [i * i for i in range(40)]


@async_op
async def blocks_its_loop(n: int) -> list[int]:
    # A user's mistake: waiting on threads that trace calls, on the event loop thread.
    return squares_in_pool(n)


async def test_a_blocked_sender_cannot_deadlock_waiting_callers(
    local_server_url: str, entity: str, project: str
) -> None:
    async with AsyncWeaveClient(entity, project, server_url=local_server_url) as client:
        client._sender = AsyncCallSender(client._api, max_queue=4, block_timeout=0.05)
        assert await blocks_its_loop(12) == [i * i for i in range(12)]
        calls = await stored_calls(client)
    assert len(calls) == 13
    assert all(c.ended_at is not None for c in calls)


async def test_drop_policy_counts_and_logs_what_it_drops(
    local_server_url: str, entity: str, project: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="weave_client")
    async with AsyncWeaveClient(entity, project, server_url=local_server_url) as client:
        client._sender = AsyncCallSender(client._api, max_queue=4, on_full="drop")
        for i in range(60):
            assert await echo(i) == i  # a dropped call still runs
        calls = await stored_calls(client)
        result = await client.flush()
    # Every call is either stored whole (start and end) or counted as dropped.
    assert len(calls) + result.dropped == 60
    assert all(c.ended_at is not None for c in calls)
    if result.dropped:
        assert "calls dropped so far" in caplog.text


async def test_batches_split_on_413_and_oversized_values_are_truncated(
    small_body_server_url: str, entity: str, project: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="weave_client")
    async with AsyncWeaveClient(entity, project, server_url=small_body_server_url) as client:
        for i in range(30):
            await echo(i, "x" * 1000)
        await echo(999, "y" * 50_000)
        calls = await stored_calls(client)
    assert sorted(c.inputs["x"] for c in calls) == [*range(30), 999]
    assert all(c.ended_at is not None for c in calls)
    big = next(c for c in calls if c.inputs["x"] == 999)
    assert "value truncated" in big.inputs["text"]
    assert all(c.inputs["text"] == "x" * 1000 for c in calls if c.inputs["x"] != 999)
    assert big.id in caplog.text and "truncation marker" in caplog.text


async def test_one_record_over_the_item_limit_is_truncated_locally(
    local_server_url: str, entity: str, project: str
) -> None:
    async with AsyncWeaveClient(entity, project, server_url=local_server_url) as client:
        client._sender = AsyncCallSender(client._api, max_item_bytes=5_000)
        await echo(1, "z" * 20_000)
        (call,) = await stored_calls(client)
    assert call.inputs["x"] == 1
    assert call.inputs["text"].startswith("<weave_client: value truncated")
    assert call.output == 1


async def test_flush_with_timeout_returns_and_reports_pending(
    silent_server_url: str, entity: str, project: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with AsyncWeaveClient(entity, project, server_url=silent_server_url) as client:
        api = client._api.with_options(timeout=1.0, max_retries=0)
        client._sender = AsyncCallSender(api, max_attempts=1)
        await echo(1)
        result = await client.flush(timeout=0.2)
        assert isinstance(result, FlushResult)
        # The op's version save, the call's start and its end.
        assert result.pending == 3 and not result.done
    # Closing waited for the timed-out request, then reported the records it could not store.
    assert client._sender.failed == 2
    assert "2 call records not stored" in caplog.text


async def test_failures_are_logged_with_call_ids(
    closed_port_url: str, entity: str, project: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="weave_client")
    async with AsyncWeaveClient(entity, project, server_url=closed_port_url) as client:
        client._sender = AsyncCallSender(
            client._api.with_options(max_retries=0), max_attempts=2, retry_delay=0.01
        )
        _, call = await echo.call(7)
        result = await client.flush(timeout=30)
    assert call is not None
    assert result.pending == 0 and result.failed == 2
    assert call.id in caplog.text
    assert "retry 1/1" in caplog.text


async def test_records_after_close_are_reported(
    local_server_url: str, entity: str, project: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with AsyncWeaveClient(entity, project, server_url=local_server_url) as client:
        sender = client._sender
        await echo(1)
    assert sender.stored == 2
    frame = CallFrame(client.project_id, "weave:///e/p/op/late:x", None)
    sender.put(make_start(frame, {}))
    assert sender.failed == 1
    assert frame.id in caplog.text



async def test_each_record_is_encoded_once_off_the_callers_thread(
    local_server_url: str, entity: str, project: str
) -> None:
    # Encoding is CPU work: in a worker thread for the async client (never on the event
    # loop), in the sender's own thread for the sync one; each record exactly once.
    async with AsyncWeaveClient(entity, project, server_url=local_server_url) as client:
        sender = client._sender = AsyncCallSender(client._api, max_batch_size=10)
        encoded: list[tuple[threading.Thread, int]] = []
        encode_payloads = sender._encode_payloads

        def counting(records: list[tuple[object, ...]]) -> list[bytes]:
            encoded.append((threading.current_thread(), len(records)))
            return encode_payloads(records)

        sender._encode_payloads = counting  # type: ignore[method-assign]
        for i in range(100):
            await echo(i)
        calls = await stored_calls(client)
    assert [c.inputs["x"] for c in calls] == list(range(100))
    assert sum(n for _, n in encoded) == 200  # a start and an end each, encoded once
    assert all(n <= 10 for _, n in encoded)
    assert threading.current_thread() not in {thread for thread, _ in encoded}
