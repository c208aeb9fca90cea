"""Op tracing end to end: traced calls through a real client to a real server.

Tree shapes run against both servers (``server_url``: ours and weave's reference);
the rest against ours. The sync twin (tests/_sync) runs the same with ``@op``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import traceback
from collections.abc import AsyncIterator
from typing import Any

import pytest

import weave_client
from weave_client import ContextThreadPoolExecutor, async_op
from weave_client._async._client import AsyncWeaveClient
from weave_client._models import (
    CallSchema,
    CallsQueryReq,
    FileContentReadReq,
    ObjectVersionFilter,
    ObjQueryReq,
)
from weave_client._synchronization import async_gather_bounded, async_run_blocking


async def stored_calls(client: AsyncWeaveClient) -> list[CallSchema]:
    """Every call of the client's project, in start order, after a flush."""
    result = await client.flush()
    assert result.pending == 0, result
    res = await client._api.calls_query(CallsQueryReq(project_id=client.project_id))
    return sorted(res.calls, key=lambda c: (c.started_at, c.id))


def by_op(calls: list[CallSchema], short_name: str) -> list[CallSchema]:
    return [c for c in calls if c.op_name.split("/op/")[1].split(":")[0] == short_name]


# --- ops used by the tests ------------------------------------------------------------


@async_op
async def leaf(x: int) -> int:
    return x * 2


@weave_client.op
def sync_leaf(x: int) -> int:
    return x + 100


@async_op
async def fan_out(n: int) -> list[int]:
    jobs = [lambda i=i: leaf(i) for i in range(n)]
    return await async_gather_bounded(jobs, limit=4)


@async_op
async def mixed(x: int) -> int:
    # A sync op called directly, then in a worker thread, then in a context-copying pool.
    a = sync_leaf(x)
    b = await async_run_blocking(sync_leaf, x + 1)
    with ContextThreadPoolExecutor(max_workers=2) as pool:
        c, d = pool.map(sync_leaf, [x + 2, x + 3])
    return a + b + c + d


@async_op
async def inner_gen(n: int) -> AsyncIterator[int]:
    for i in range(n):
        yield await leaf(i)


@async_op
async def outer_gen(n: int) -> AsyncIterator[int]:
    async for value in inner_gen(n):
        yield value + 1


@async_op
async def consume(n: int) -> list[int]:
    return [v async for v in outer_gen(n)]


# --- the call tree ----------------------------------------------------------------------


async def test_gather_children_share_the_root_trace(
    server_url: str, entity: str, project: str
) -> None:
    async with AsyncWeaveClient(entity, project, server_url=server_url) as client:
        assert await fan_out(5) == [0, 2, 4, 6, 8]
        calls = await stored_calls(client)
    (root,) = by_op(calls, "fan_out")
    children = by_op(calls, "leaf")
    assert len(calls) == 6
    assert root.parent_id is None
    assert sorted(c.inputs["x"] for c in children) == [0, 1, 2, 3, 4]
    assert {c.parent_id for c in children} == {root.id}
    assert {c.trace_id for c in calls} == {root.trace_id}
    assert len({c.id for c in calls}) == 6


async def test_sync_ops_nest_across_threads(server_url: str, entity: str, project: str) -> None:
    async with AsyncWeaveClient(entity, project, server_url=server_url) as client:
        assert await mixed(1) == 101 + 102 + 103 + 104
        calls = await stored_calls(client)
    (root,) = by_op(calls, "mixed")
    children = by_op(calls, "sync_leaf")
    assert sorted(c.inputs["x"] for c in children) == [1, 2, 3, 4]
    assert {c.parent_id for c in children} == {root.id}
    assert {c.trace_id for c in calls} == {root.trace_id}
    assert all(c.ended_at is not None for c in calls)


async def test_nested_generators_nest(server_url: str, entity: str, project: str) -> None:
    # weave issue 4511: a traced generator consuming another showed up as separate roots.
    async with AsyncWeaveClient(entity, project, server_url=server_url) as client:
        assert await consume(3) == [1, 3, 5]
        calls = await stored_calls(client)
    (root,) = by_op(calls, "consume")
    (outer,) = by_op(calls, "outer_gen")
    (inner,) = by_op(calls, "inner_gen")
    leaves = by_op(calls, "leaf")
    assert outer.parent_id == root.id
    assert inner.parent_id == outer.id
    assert {c.parent_id for c in leaves} == {inner.id}
    assert {c.trace_id for c in calls} == {root.trace_id}
    assert inner.output == [0, 2, 4]
    assert outer.output == [1, 3, 5]


async def test_calls_are_uuidv7_and_land_exactly_once(
    local_server_url: str, entity: str, project: str
) -> None:
    async with AsyncWeaveClient(entity, project, server_url=local_server_url) as client:
        await fan_out(200)
        calls = await stored_calls(client)
    assert len(calls) == 201
    assert len({c.id for c in calls}) == 201
    assert all(c.ended_at is not None and c.output is not None for c in calls)
    assert all(c.id[14] == "7" and c.trace_id[14] == "7" for c in calls)
    assert sorted(c.inputs["x"] for c in by_op(calls, "leaf")) == list(range(200))


# --- what a call records --------------------------------------------------------------


class Boom(Exception):
    pass


@async_op
async def explode(x: int) -> int:
    raise Boom(f"bad {x}")


@async_op
async def interrupted() -> None:
    raise asyncio.CancelledError()


@async_op
async def stopped() -> None:
    raise KeyboardInterrupt


async def test_exception_is_recorded_and_reraised_unchanged(
    local_server_url: str, entity: str, project: str
) -> None:
    async with AsyncWeaveClient(entity, project, server_url=local_server_url) as client:
        with pytest.raises(Boom) as info:
            await explode(3)
        calls = await stored_calls(client)
    assert str(info.value) == "bad 3"
    frames = traceback.extract_tb(info.value.__traceback__)
    assert frames[-1].name == "explode" and "raise Boom" in (frames[-1].line or "")
    (call,) = calls
    assert call.exception is not None
    recorded = json.loads(call.exception)
    assert recorded["type"] == "Boom" and recorded["message"] == "bad 3"
    assert call.summary is not None
    assert call.summary["status_counts"]["error"] == 1


async def test_cancellation_ends_the_call_as_cancelled(
    local_server_url: str, entity: str, project: str
) -> None:
    async with AsyncWeaveClient(entity, project, server_url=local_server_url) as client:
        with pytest.raises(asyncio.CancelledError):
            await interrupted()
        with pytest.raises(KeyboardInterrupt):
            await stopped()
        calls = await stored_calls(client)
    types = sorted(json.loads(c.exception or "{}")["type"] for c in calls)
    assert types == ["CancelledError", "KeyboardInterrupt"]
    assert all(c.ended_at is not None for c in calls)
    assert all(json.loads(c.exception or "{}")["message"] == "cancelled" for c in calls)


@async_op
async def count_up(n: int) -> AsyncIterator[int]:
    for i in range(n):
        yield i


@async_op(accumulator=lambda state, item: (state or 0) + item)
async def summed(n: int) -> AsyncIterator[int]:
    for i in range(n):
        yield i


async def test_generator_outputs(local_server_url: str, entity: str, project: str) -> None:
    async with AsyncWeaveClient(entity, project, server_url=local_server_url) as client:
        assert [i async for i in count_up(4)] == [0, 1, 2, 3]
        assert [i async for i in summed(5)] == [0, 1, 2, 3, 4]
        early = count_up(10)
        async for i in early:
            if i == 2:
                break
        await early.aclose()
        calls = await stored_calls(client)
    outputs = sorted((c.inputs["n"], json.dumps(c.output)) for c in calls)
    assert outputs == [(4, "[0, 1, 2, 3]"), (5, "10"), (10, "[0, 1, 2]")]
    assert all(c.exception is None and c.ended_at is not None for c in calls)


@async_op(call_display_name=lambda inputs: f"Processing {inputs['item']}")
async def process(item: str) -> str:
    return item.upper()


@async_op(call_display_name="fixed name")
async def fixed(item: str) -> str:
    return item


@async_op(call_display_name=lambda inputs: inputs["missing"])
async def bad_name(item: str) -> str:
    return item


async def test_display_names(local_server_url: str, entity: str, project: str) -> None:
    async with AsyncWeaveClient(entity, project, server_url=local_server_url) as client:
        assert await process("a") == "A"
        assert await fixed("b") == "b"
        assert await bad_name("c") == "c"  # a failing name function never breaks the call
        calls = await stored_calls(client)
    names = {c.inputs["item"]: c.display_name for c in calls}
    assert names == {"a": "Processing a", "b": "fixed name", "c": None}


@async_op
async def plain() -> int:
    return 1


async def test_attributes_merge_and_carry_client_info(
    local_server_url: str, entity: str, project: str
) -> None:
    async with AsyncWeaveClient(entity, project, server_url=local_server_url) as client:
        with weave_client.attributes({"env": "test", "a": 1}):
            with weave_client.attributes({"a": 2, "b": 3}):
                await plain()
            await plain()
        await plain()
        calls = await stored_calls(client)
    attrs = [{k: v for k, v in (c.attributes or {}).items() if k != "weave"} for c in calls]
    assert attrs == [{"env": "test", "a": 2, "b": 3}, {"env": "test", "a": 1}, {}]
    info = (calls[0].attributes or {})["weave"]
    assert info["source"] == "python-sdk"
    assert {"client_version", "sys_version", "os_name", "os_version", "os_release"} <= set(info)


@async_op(tracing_sample_rate=0.0)
async def never_sampled() -> int:
    return await leaf(1)


@async_op(tracing_sample_rate=1.0)
async def always_sampled() -> int:
    return await leaf(2)


async def test_sampling(local_server_url: str, entity: str, project: str) -> None:
    async with AsyncWeaveClient(entity, project, server_url=local_server_url) as client:
        assert await never_sampled() == 2
        assert await always_sampled() == 4
        calls = await stored_calls(client)
    # The unsampled root's child is not traced either.
    assert sorted(c.op_name.split("/op/")[1].split(":")[0] for c in calls) == [
        "always_sampled",
        "leaf",
    ]
    with pytest.raises(ValueError, match="between 0 and 1"):
        async_op(tracing_sample_rate=1.5)(plain.resolve_fn)


@async_op
async def llm(prompt: str) -> dict[str, Any]:
    return {
        "model": "gpt-test",
        "usage": {"prompt_tokens": len(prompt), "completion_tokens": 5, "total_tokens": len(prompt) + 5},
        "text": prompt[::-1],
    }


@async_op
async def pipeline() -> str:
    await llm("abc")
    await llm("de")
    return "done"


async def test_usage_rolls_up_to_parents(local_server_url: str, entity: str, project: str) -> None:
    async with AsyncWeaveClient(entity, project, server_url=local_server_url) as client:
        await pipeline()
        calls = await stored_calls(client)
    (root,) = by_op(calls, "pipeline")
    assert root.summary is not None
    assert root.summary["usage"] == {
        "gpt-test": {"requests": 2, "prompt_tokens": 5, "completion_tokens": 10, "total_tokens": 15}
    }
    child = by_op(calls, "llm")[0]
    assert child.summary is not None
    assert child.summary["usage"]["gpt-test"]["requests"] == 1


@async_op
async def mutate(items: list[int], scale: int = 3) -> int:
    items.append(99)
    return len(items) * scale


@async_op
async def with_lock(lock: Any) -> str:
    return "ok"


async def test_inputs_are_snapshots_and_unencodable_values_are_kept(
    local_server_url: str, entity: str, project: str
) -> None:
    data = [1, 2]
    async with AsyncWeaveClient(entity, project, server_url=local_server_url) as client:
        assert await mutate(data) == 9
        assert await with_lock(threading.Lock()) == "ok"
        calls = await stored_calls(client)
    assert calls[0].inputs == {"items": [1, 2], "scale": 3}
    assert "lock" in str(calls[1].inputs["lock"]).lower()


class Greeter:
    def __init__(self, greeting: str) -> None:
        self.greeting = greeting

    @async_op
    async def greet(self, name: str) -> str:
        return f"{self.greeting} {name}"


async def test_method_ops_record_self(local_server_url: str, entity: str, project: str) -> None:
    greeter = Greeter("hello")
    async with AsyncWeaveClient(entity, project, server_url=local_server_url) as client:
        assert await greeter.greet("bob") == "hello bob"
        ref = await client.save(greeter, "greeter")
        assert await greeter.greet("amy") == "hello amy"
        calls = await stored_calls(client)
    assert "/op/Greeter.greet:" in calls[0].op_name
    assert calls[0].inputs["name"] == "bob"
    assert calls[0].inputs["self"] != ref.uri()
    assert calls[1].inputs["self"] == ref.uri()


class Tools:
    @staticmethod
    @async_op
    async def double(x: int) -> int:
        return 2 * x

    @async_op
    @staticmethod
    async def triple(x: int) -> int:
        return 3 * x


async def test_static_methods_and_bound_call(
    local_server_url: str, entity: str, project: str
) -> None:
    tools = Tools()
    async with AsyncWeaveClient(entity, project, server_url=local_server_url) as client:
        assert await tools.double(2) == 4
        assert await tools.triple(2) == 6
        assert await Tools.triple(3) == 9
        result, call = await Greeter("hi").greet.call("zoe")
        calls = await stored_calls(client)
    assert result == "hi zoe"
    assert call is not None and call.inputs["name"] == "zoe"
    assert [c.inputs for c in calls[:3]] == [{"x": 2}, {"x": 2}, {"x": 3}]
    assert [c.output for c in calls] == [4, 6, 9, "hi zoe"]


async def test_untraced_without_a_client() -> None:
    assert await leaf(4) == 8
    result, call = await leaf.call(5)
    assert (result, call) == (10, None)
    assert [i async for i in count_up(2)] == [0, 1]


async def test_call_returns_the_call(local_server_url: str, entity: str, project: str) -> None:
    async with AsyncWeaveClient(entity, project, server_url=local_server_url) as client:
        result, call = await leaf.call(21)
        calls = await stored_calls(client)
    assert result == 42
    assert call is not None
    (stored,) = calls
    assert (call.id, call.trace_id, call.op_name) == (stored.id, stored.trace_id, stored.op_name)
    assert call.inputs == {"x": 21} and call.output == 42


# --- ops as versioned objects -----------------------------------------------------------


def _versioned_v1() -> Any:
    @async_op(name="versioned")
    async def versioned(x: int) -> int:
        return x + 1

    return versioned


def _versioned_v2() -> Any:
    @async_op(name="versioned")
    async def versioned(x: int) -> int:
        return x + 2

    return versioned


async def test_ops_are_saved_once_per_version(
    local_server_url: str, entity: str, project: str
) -> None:
    v1, v2 = _versioned_v1(), _versioned_v2()
    async with AsyncWeaveClient(entity, project, server_url=local_server_url) as client:
        assert await v1(1) == 2
        assert await v1(2) == 3
        assert await v2(1) == 3
        calls = await stored_calls(client)
        objs = await client._api.objs_query(
            ObjQueryReq(
                project_id=client.project_id,
                filter=ObjectVersionFilter(object_ids=["versioned"], is_op=True),
            )
        )
        digests = {o.digest for o in objs.objs}
        sources = []
        for obj in sorted(objs.objs, key=lambda o: o.version_index):
            file_digest = obj.val["files"]["obj.py"]
            res = await client._api.file_content_read(
                FileContentReadReq(project_id=client.project_id, digest=file_digest)
            )
            sources.append(res.content.decode())
    assert len(objs.objs) == 2
    # Each call names the op version the server stored (digests computed locally).
    assert {c.op_name.rsplit(":", 1)[1] for c in calls} == digests
    assert calls[0].op_name == calls[1].op_name != calls[2].op_name
    assert sources[0].startswith("import weave\n\n@weave.op()\n")
    assert "def versioned(x: int) -> int:" in sources[0]
    assert "return x + 1" in sources[0] and "return x + 2" in sources[1]
    assert sources[0].count("@") == 1  # our decorator line is replaced, not kept
