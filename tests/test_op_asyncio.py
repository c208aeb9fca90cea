"""Op tracing under asyncio-only constructs (no sync twin): tasks, TaskGroup, cancellation
of a task, to_thread; and the sync client's flush at interpreter exit (a subprocess)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import weave_client
from weave_client import AsyncWeaveClient, async_op
from weave_client._models import CallSchema, CallsQueryReq

ROOT = Path(__file__).resolve().parent.parent


async def stored_calls(client: AsyncWeaveClient) -> list[CallSchema]:
    result = await client.flush()
    assert result.pending == 0, result
    res = await client._api.calls_query(CallsQueryReq(project_id=client.project_id))
    return sorted(res.calls, key=lambda c: (c.started_at, c.id))


def short(call: CallSchema) -> str:
    return call.op_name.split("/op/")[1].split(":")[0]


@async_op
async def step(x: int) -> int:
    await asyncio.sleep(0)
    return x + 1


@weave_client.op
def blocking_step(x: int) -> int:
    return x * 10


@async_op
async def spawner() -> list[int]:
    task = asyncio.create_task(step(1))
    async with asyncio.TaskGroup() as group:
        grouped = [group.create_task(step(i)) for i in (10, 20)]
    threaded = await asyncio.to_thread(blocking_step, 3)
    return [await task, *(t.result() for t in grouped), threaded]


async def test_tasks_taskgroups_and_threads_nest(
    server_url: str, entity: str, project: str
) -> None:
    async with AsyncWeaveClient(entity, project, server_url=server_url) as client:
        assert await spawner() == [2, 11, 21, 30]
        calls = await stored_calls(client)
    (root,) = [c for c in calls if short(c) == "spawner"]
    children = [c for c in calls if c is not root]
    assert sorted(short(c) for c in children) == ["blocking_step", "step", "step", "step"]
    assert {c.parent_id for c in children} == {root.id}
    assert {c.trace_id for c in calls} == {root.trace_id}


@async_op
async def sleeper() -> None:
    await asyncio.sleep(30)


async def test_cancelled_task_ends_its_call_as_cancelled(
    local_server_url: str, entity: str, project: str
) -> None:
    async with AsyncWeaveClient(entity, project, server_url=local_server_url) as client:
        task = asyncio.create_task(sleeper())
        await asyncio.sleep(0.01)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        assert task.cancelled()
        (call,) = await stored_calls(client)
    assert call.ended_at is not None
    assert json.loads(call.exception or "{}")["type"] == "CancelledError"


async def test_sibling_tasks_are_separate_traces(
    local_server_url: str, entity: str, project: str
) -> None:
    async with AsyncWeaveClient(entity, project, server_url=local_server_url) as client:
        await asyncio.gather(spawner(), spawner())
        calls = await stored_calls(client)
    roots = [c for c in calls if c.parent_id is None]
    assert len(roots) == 2 and len(calls) == 10
    for root in roots:
        tree = [c for c in calls if c.trace_id == root.trace_id]
        assert len(tree) == 5


def test_sync_client_flushes_at_interpreter_exit(
    local_server_url: str, entity: str, project: str
) -> None:
    # The program never closes its client; the exit hook must still send its calls.
    script = textwrap.dedent(
        f"""
        import weave_client
        from weave_client._sync._client import WeaveClient

        @weave_client.op
        def work(i):
            return i * i

        client = WeaveClient({entity!r}, {project!r}, server_url={local_server_url!r})
        with weave_client._context.using_client(client):
            for i in range(50):
                work(i)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr

    async def read() -> list[CallSchema]:
        async with AsyncWeaveClient(entity, project, server_url=local_server_url) as client:
            return await stored_calls(client)

    calls = asyncio.run(read())
    assert sorted(c.output for c in calls) == sorted(i * i for i in range(50))
    assert all(c.ended_at is not None for c in calls)
