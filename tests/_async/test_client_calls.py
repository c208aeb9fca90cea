"""Querying calls through the client, against each real server (``server_url``).

The calls are written with the API client's ``/call/upsert_batch`` (what the
background sender sends), so each test knows exactly what is stored; the
read-your-writes test traces real ops instead.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from tests.faultserver import FaultServer, Reply
from weave_client import (
    APIStatusError,
    AsyncWeaveClient,
    CallNotFoundError,
    NotFoundError,
    OpRef,
    async_op,
)
from weave_client._async._call import AsyncCall as Call
from weave_client._ids import generate_id
from weave_client._models import CallCreateBatchReq

T0 = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)


async def log_calls(client: AsyncWeaveClient, calls: list[dict[str, Any]]) -> None:
    """Store finished calls: each dict has id, op_name, trace_id, start (s), end (s), ..."""
    batch: list[dict[str, Any]] = []
    for c in calls:
        start = {
            "project_id": client.project_id,
            "id": c["id"],
            "op_name": c["op_name"],
            "trace_id": c["trace_id"],
            "parent_id": c.get("parent_id"),
            "started_at": (T0 + datetime.timedelta(seconds=c["start"])).isoformat(),
            "attributes": {},
            "inputs": c.get("inputs", {}),
        }
        end = {
            "project_id": client.project_id,
            "id": c["id"],
            "ended_at": (T0 + datetime.timedelta(seconds=c["end"])).isoformat(),
            "output": c.get("output"),
            "exception": c.get("exception"),
            "summary": {},
        }
        batch.append({"mode": "start", "req": {"start": start}})
        batch.append({"mode": "end", "req": {"end": end}})
    await client._api.call_start_batch(CallCreateBatchReq.model_validate({"batch": batch}))


@pytest.fixture
async def tree(client: AsyncWeaveClient) -> dict[str, str]:
    """root (op 'pipeline') with children a, b ('step', by op ref) and a grandchild g."""
    trace = generate_id()
    ids = {name: generate_id() for name in ("root", "a", "b", "g")}
    step_ref = f"weave:///{client.entity}/{client.project}/op/step:abc123"
    await log_calls(
        client,
        [
            {"id": ids["root"], "op_name": "pipeline", "trace_id": trace, "start": 0, "end": 10,
             "inputs": {"x": 1}, "output": {"total": 3}},
            {"id": ids["a"], "op_name": step_ref, "trace_id": trace, "parent_id": ids["root"],
             "start": 1, "end": 3, "inputs": {"x": 1}, "output": 1},
            {"id": ids["b"], "op_name": step_ref, "trace_id": trace, "parent_id": ids["root"],
             "start": 4, "end": 9, "inputs": {"x": 2}, "output": 2, "exception": "ValueError: b"},
            {"id": ids["g"], "op_name": "leaf", "trace_id": trace, "parent_id": ids["a"],
             "start": 2, "end": 2.5, "inputs": {"x": 3}, "output": None},
        ],
    )
    return ids


async def test_calls_returns_call_objects(client: AsyncWeaveClient, tree: dict[str, str]) -> None:
    calls = await client.calls(sort_by="started_at")
    assert [c.id for c in calls] == [tree["root"], tree["a"], tree["g"], tree["b"]]
    root = calls[0]
    assert isinstance(root, Call)
    assert root.op_name == "pipeline"
    assert root.inputs == {"x": 1}
    assert root.output == {"total": 3}
    assert root.parent_id is None
    assert root.trace_id == calls[1].trace_id
    assert root.started_at == T0
    assert root.ended_at == T0 + datetime.timedelta(seconds=10)
    assert root.exception is None
    assert root.status == "success"
    assert root.latency_ms == 10_000
    assert calls[3].exception == "ValueError: b"
    assert calls[3].status == "error"
    assert root.ref.uri() == f"weave:///{client.entity}/{client.project}/call/{root.id}"
    assert root.ui_url is None  # not the hosted service


async def test_filters_as_keywords_dicts_and_op_names(
    client: AsyncWeaveClient, tree: dict[str, str]
) -> None:
    by_plain_name = {c.id for c in await client.calls(op_names=["step"])}
    assert by_plain_name == {tree["a"], tree["b"]}
    op_ref = OpRef(client.entity, client.project, "step", "abc123")
    assert {c.id for c in await client.calls(filter={"op_names": [op_ref]})} == by_plain_name
    assert {c.id for c in await client.calls(op_names=[op_ref.uri()])} == by_plain_name
    assert [c.id for c in await client.calls(op_names=["pipeline"])] == [tree["root"]]
    assert [c.id for c in await client.calls(trace_roots_only=True)] == [tree["root"]]
    children = await client.calls({"parent_ids": [tree["root"]]}, sort_by="started_at")
    assert [c.id for c in children] == [tree["a"], tree["b"]]
    assert [c.id for c in await client.calls(call_ids=[tree["g"]])] == [tree["g"]]
    with pytest.raises(TypeError, match="unknown filter field"):
        await client.calls(op_name=["step"])


async def test_sort_limit_offset_query_columns(
    client: AsyncWeaveClient, tree: dict[str, str]
) -> None:
    newest_first = await client.calls(sort_by="-started_at")
    assert [c.id for c in newest_first] == [tree["b"], tree["g"], tree["a"], tree["root"]]
    by_latency = await client.calls(sort_by=[{"field": "summary.weave.latency_ms", "direction": "desc"}])
    assert [c.id for c in by_latency] == [tree["root"], tree["b"], tree["a"], tree["g"]]
    page = await client.calls(sort_by="started_at asc", limit=2, offset=1)
    assert [c.id for c in page] == [tree["a"], tree["g"]]
    expr = {"$gt": [{"$convert": {"input": {"$getField": "inputs.x"}, "to": "int"}},
                    {"$literal": 1}]}
    assert {c.id for c in await client.calls(query={"$expr": expr})} == {tree["b"], tree["g"]}
    assert {c.id for c in await client.calls(query=expr)} == {tree["b"], tree["g"]}
    slim = await client.calls(columns=["id", "inputs"], call_ids=[tree["a"]])
    assert slim[0].inputs == {"x": 1}
    assert slim[0].output is None  # not fetched
    with pytest.raises(ValueError, match="sort_by"):
        await client.calls(sort_by=[42])
    with pytest.raises(ValueError, match="limit"):
        await client.calls(limit=-1)


async def test_stream_pages_and_batches(client: AsyncWeaveClient, tree: dict[str, str]) -> None:
    everything = {c.id async for c in client.calls_stream()}
    assert everything == set(tree.values())
    assert [c.id async for c in client.calls_stream(op_names=["step"], sort_by="started_at")] == [
        tree["a"],
        tree["b"],
    ]
    async with client.calls_stream(limit=1) as stream:
        assert len([c async for c in stream]) == 1
    # Left after one call of four: the connection is released, the stream is done.
    async with client.calls_stream() as stream:
        first = await anext(stream)
        assert first.id in tree.values()
    assert [c async for c in stream] == []

    pages = [page async for page in client.calls_pages(page_size=3)]
    assert [len(p) for p in pages] == [3, 1]
    assert [p.has_next for p in pages] == [True, False]
    assert [c.id for p in pages for c in p] == [tree["root"], tree["a"], tree["g"], tree["b"]]
    paginator = client.calls_pages(page_size=2, op_names=["step"])
    first = await paginator.next_page()
    assert (len(first), first.has_next) == (2, False)

    batches = [b async for b in client.calls_batches(batch_size=3, sort_by="started_at")]
    assert [len(b) for b in batches] == [3, 1]
    assert all(isinstance(c, Call) for b in batches for c in b)


async def test_call_children_display_name_and_missing(
    client: AsyncWeaveClient, tree: dict[str, str]
) -> None:
    root = await client.call(tree["root"])
    assert root.id == tree["root"]
    assert [c.id for c in await root.children()] == [tree["a"], tree["b"]]
    await root.set_display_name("My pipeline")
    assert root.display_name == "My pipeline"
    assert (await client.call(tree["root"])).display_name == "My pipeline"
    await root.set_display_name(None)
    assert (await client.call(tree["root"])).display_name is None
    with pytest.raises(ValueError, match="empty"):
        await root.set_display_name("")
    assert (await client.get(root.ref)).id == root.id


async def test_a_missing_call_raises_call_not_found_not_an_http_error(
    client: AsyncWeaveClient, project_id: str
) -> None:
    # The servers answer {"call": null} (HTTP 200): no HTTP error class may claim a 404.
    with pytest.raises(CallNotFoundError) as info:
        await client.call("no-such-call")
    assert not isinstance(info.value, APIStatusError)
    assert isinstance(info.value, LookupError)
    assert (info.value.call_id, info.value.project_id) == ("no-such-call", project_id)
    assert str(info.value) == f"no call 'no-such-call' in {project_id}"
    with pytest.raises(CallNotFoundError):
        await client.get(f"weave:///{project_id}/call/no-such-call")


async def test_a_404_for_a_call_is_call_not_found_too(entity: str, project: str) -> None:
    # A server that says "none" with a 404 instead: the same error, chained from the HTTP one.
    with FaultServer() as fault:
        fault.script("/call/read", Reply(404, {"reason": "Call not found"}))
        async with AsyncWeaveClient(entity, project, server_url=fault.url) as client:
            with pytest.raises(CallNotFoundError, match="no call 'gone'") as info:
                await client.call("gone")
    assert isinstance(info.value.__cause__, NotFoundError)
    assert info.value.__cause__.status_code == 404


async def test_delete_call_takes_its_descendants(
    client: AsyncWeaveClient, tree: dict[str, str]
) -> None:
    a = await client.call(tree["a"])
    await client.delete_call(a)
    assert {c.id for c in await client.calls()} == {tree["root"], tree["b"]}
    await client.delete_call([tree["root"]])
    assert await client.calls() == []


@async_op
async def add(x: int, y: int) -> int:
    return x + y


@async_op
async def total(items: list[int]) -> int:
    acc = 0
    for item in items:
        acc = await add(acc, item)
    return acc


async def test_read_your_writes(server_url: str, entity: str, project: str) -> None:
    async with AsyncWeaveClient(entity, project, server_url=server_url) as client:
        assert await total([1, 2, 3]) == 6
        # No flush: the query itself sends the pending records first.
        await check_traced_calls(client)


async def check_traced_calls(client: AsyncWeaveClient) -> None:
    calls = await client.calls(sort_by="started_at")
    assert len(calls) == 4
    root = calls[0]
    assert root.op_short_name == "total"
    assert root.inputs == {"items": [1, 2, 3]}
    assert root.output == 6
    children = await root.children()
    assert [c.op_short_name for c in children] == ["add", "add", "add"]
    assert [c.output for c in children] == [1, 3, 6]
    assert {c.id for c in await client.calls(op_names=["add"])} == {c.id for c in children}
    assert len([c async for c in client.calls_stream()]) == 4


async def test_many_calls_stream_page_and_batch(
    local_server_url: str, entity: str, project: str
) -> None:
    # Our server only: weave's reference server stores each call of a batch one by
    # one, which makes thousands of calls slow; the shapes are covered above.
    async with AsyncWeaveClient(entity, project, server_url=local_server_url) as client:
        await check_many_calls(client)


async def check_many_calls(client: AsyncWeaveClient) -> None:
    n = 2500
    trace = generate_id()
    await log_calls(
        client,
        [
            {"id": generate_id(), "op_name": "bulk", "trace_id": trace, "start": i, "end": i + 1,
             "inputs": {"i": i}}
            for i in range(n)
        ],
    )
    seen = 0
    async for call in client.calls_stream(sort_by="started_at"):
        assert call.inputs == {"i": seen}
        seen += 1
    assert seen == n
    sizes = [len(page) async for page in client.calls_pages(page_size=1000, columns=["id"])]
    assert sizes == [1000, 1000, 500]
    batches = [len(b) async for b in client.calls_batches(batch_size=1000, columns=["id"])]
    assert batches == [1000, 1000, 500]
