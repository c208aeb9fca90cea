"""Tracing in services: a real uvicorn + FastAPI app with a lifespan-made client, and
clients shared by threads and event loops, against our local server.

Every call must be stored exactly once, under the right parent; the call ids that
``get_current_call()`` returned must be the stored ones. Both flavours: the app's
client is an ``AsyncWeaveClient`` (used by async endpoints, ``def`` endpoints in
Starlette's worker threads and background tasks); a ``WeaveClient`` is shared by two
threads each running its own event loop.
"""

from __future__ import annotations

import asyncio
import importlib.util
import subprocess
import sys
import threading
import uuid
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

import weave_client
from tests.fault_proxy import FaultProxy
from tests.reliability.helpers import exactly_once_report, tune_for_faults
from tests.reliability.helpers import stored_calls as raw_stored_calls
from weave_client import (
    AsyncWeaveClient,
    Call,
    WeaveClient,
    async_op,
    get_current_call,
    require_current_call,
)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "scripts" / "examples" / "fastapi_app.py"


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fastapi_app_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def stored(server_url: str, entity: str, project: str) -> list[Call]:
    with WeaveClient(entity, project, server_url=server_url) as client:
        return client.calls()


def short(call: Call) -> str:
    return call.op_name.split("/op/")[1].split(":")[0]


def assert_stored_once(calls: list[Call], expected: dict[str, int]) -> dict[str, Call]:
    """Each op's call count as expected, no id twice, every call ended."""
    assert Counter(short(c) for c in calls) == Counter(expected)
    by_id = {c.id: c for c in calls}
    assert len(by_id) == len(calls)
    assert all(c.ended_at is not None for c in calls)
    return by_id


# --- the web service ----------------------------------------------------------------


def test_a_fastapi_app_with_a_lifespan_client_traces_every_request(
    local_server_url: str, entity: str, project: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEAVE_TRACE_SERVER_URL", local_server_url)
    app_module = load_example()
    monkeypatch.setattr(app_module, "ENTITY", entity)
    monkeypatch.setattr(app_module, "PROJECT", project)
    n = 12

    async def hammer(url: str) -> list[dict[str, Any]]:
        async with httpx.AsyncClient(base_url=url, timeout=60) as http:
            replies = await asyncio.gather(
                *(http.get("/ask", params={"q": f"q{i}"}) for i in range(n)),
                *(http.get("/ask-sync", params={"q": "w " * (i + 1)}) for i in range(n)),
            )
        for reply in replies:
            assert reply.status_code == 200, reply.text
        return [reply.json() for reply in replies]

    server = app_module.BackgroundServer(app_module.app, app_module.free_port())
    server.start()
    try:
        replies = asyncio.run(hammer(server.url))
    finally:
        server.stop()  # the lifespan closes the client, which sends what is queued
    assert not server.thread.is_alive()

    calls = stored(local_server_url, entity, project)
    by_id = assert_stored_once(
        calls, {"answer": n, "retrieve": n, "audit": n, "sync_answer": n, "tokenize": n}
    )
    # get_current_call() inside each request returned the call the server stored.
    returned = [r["call_id"] for r in replies]
    assert len(set(returned)) == 2 * n
    assert sorted(short(by_id[i]) for i in returned) == ["answer"] * n + ["sync_answer"] * n
    for call in calls:
        name = short(call)
        if name in ("answer", "sync_answer", "audit"):
            assert call.parent_id is None  # one root per request / background task
        else:
            parent = by_id[call.parent_id]  # type: ignore[index]
            assert short(parent) == {"retrieve": "answer", "tokenize": "sync_answer"}[name]
            assert call.trace_id == parent.trace_id
            assert call.inputs.get("question", call.inputs.get("text")) is not None
        if name == "answer":
            assert call.summary["documents"] == 1
        if name == "sync_answer":
            words = len(call.inputs["question"].split())
            assert call.display_name == f"sync_answer ({words} words)"
    assert Counter(c.inputs["question"] for c in calls if short(c) == "audit") == Counter(
        f"q{i}" for i in range(n)
    )


def test_the_fastapi_example_runs(local_server_url: str) -> None:
    project = f"example-{uuid.uuid4().hex[:8]}"
    done = subprocess.run(
        [
            sys.executable,
            str(EXAMPLE),
            "--server-url",
            local_server_url,
            "--project",
            project,
            "--requests",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "6 requests answered" in done.stdout
    assert f"15 calls stored in example/{project}" in done.stdout
    assert "every returned call id stored: True" in done.stdout
    assert "never awaited" not in done.stderr


# --- threads and event loops ----------------------------------------------------------


@async_op
async def a_leaf(x: int) -> int:
    await asyncio.sleep(0)
    return x + 1


@async_op
async def a_tree(x: int) -> dict[str, Any]:
    await asyncio.gather(*(a_leaf(x * 10 + i) for i in range(3)))
    return {"id": require_current_call().id}


@weave_client.op
def s_leaf(x: int) -> int:
    return x - 1


@weave_client.op
def s_root(x: int) -> str:
    s_leaf(x)
    call = get_current_call()
    assert call is not None
    return call.id


def test_one_sync_client_shared_by_two_threads_each_with_its_own_loop(
    local_server_url: str, entity: str, project: str
) -> None:
    ids: list[str] = []
    errors: list[BaseException] = []

    async def main(k: int) -> None:
        results = await asyncio.gather(*(a_tree(k * 100 + i) for i in range(5)))
        ids.extend(r["id"] for r in results)

    def run(k: int) -> None:
        try:
            asyncio.run(main(k))
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    with WeaveClient(entity, project, server_url=local_server_url):
        threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    calls = stored(local_server_url, entity, project)
    by_id = assert_stored_once(calls, {"a_tree": 10, "a_leaf": 30})
    assert sorted(ids) == sorted(c.id for c in calls if short(c) == "a_tree")
    for call in calls:
        if short(call) == "a_leaf":
            parent = by_id[call.parent_id]  # type: ignore[index]
            assert short(parent) == "a_tree"
            assert call.inputs["x"] // 10 == parent.inputs["x"]
        else:
            assert call.parent_id is None


def test_an_async_clients_ops_from_to_thread_plain_threads_and_other_loops(
    local_server_url: str, entity: str, project: str
) -> None:
    root_ids: list[str] = []

    def in_plain_thread(i: int) -> None:
        root_ids.append(s_root(i))  # a sync op, no event loop in this thread
        asyncio.run(a_leaf(i))  # an async op on this thread's own loop

    @async_op
    async def parent(n: int) -> str:
        # asyncio.to_thread copies the context: these nest under this call.
        await asyncio.gather(*(asyncio.to_thread(s_leaf, i) for i in range(n)))
        return require_current_call().id

    async def main() -> str:
        # Made in this loop's context; the threads below have none of it.
        client = AsyncWeaveClient(entity, project, server_url=local_server_url)
        async with client:
            parent_id = await parent(4)
            threads = [threading.Thread(target=in_plain_thread, args=(i,)) for i in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                await asyncio.to_thread(t.join)
        return str(parent_id)

    parent_id = asyncio.run(main())
    calls = stored(local_server_url, entity, project)
    by_id = assert_stored_once(calls, {"parent": 1, "s_leaf": 8, "s_root": 4, "a_leaf": 4})
    nested = [c for c in calls if c.parent_id == parent_id]
    assert sorted(short(c) for c in nested) == ["s_leaf"] * 4
    assert sorted(root_ids) == sorted(c.id for c in calls if short(c) == "s_root")
    for call in calls:
        if short(call) in ("s_root", "a_leaf", "parent"):
            assert call.parent_id is None
        elif call.parent_id != parent_id:
            assert short(by_id[call.parent_id]) == "s_root"  # type: ignore[index]


def test_back_pressure_from_other_threads_and_loops_does_not_deadlock(
    local_server_url: str, entity: str, project: str
) -> None:
    per_thread = 40

    def sync_worker() -> None:
        for i in range(per_thread):
            s_root(i)

    def loop_worker() -> None:
        async def many() -> None:
            for i in range(per_thread):
                await a_leaf(i)

        asyncio.run(many())

    async def main() -> None:
        async with AsyncWeaveClient(entity, project, server_url=local_server_url) as client:
            # A tiny queue: callers elsewhere must wait for the sender on this loop.
            client._sender.max_queue = 4
            threads = [
                threading.Thread(target=sync_worker),
                threading.Thread(target=loop_worker),
                threading.Thread(target=loop_worker),
            ]
            for t in threads:
                t.start()
            for t in threads:
                await asyncio.to_thread(t.join)

    asyncio.run(main())
    calls = stored(local_server_url, entity, project)
    assert_stored_once(
        calls, {"s_root": per_thread, "s_leaf": per_thread, "a_leaf": 2 * per_thread}
    )


def test_calls_queued_while_no_loop_runs_the_sender_are_kept_and_said_once(
    local_server_url: str, entity: str, project: str, caplog: pytest.LogCaptureFixture
) -> None:
    async def make() -> AsyncWeaveClient:
        # Made current on this loop (the sender's home), which then ends unclosed.
        client = AsyncWeaveClient(entity, project, server_url=local_server_url)
        await client.__aenter__()
        return client

    client = asyncio.run(make())
    with caplog.at_level("WARNING", logger="weave_client"):
        # No loop runs anywhere now: the calls wait in the queue, said once.
        assert [s_root(i) for i in range(3)]
    warnings = [r for r in caplog.records if "no event loop runs" in r.getMessage()]
    assert len(warnings) == 1
    asyncio.run(client.aclose())  # the next loop sends them
    calls = stored(local_server_url, entity, project)
    assert_stored_once(calls, {"s_root": 3, "s_leaf": 3})


# --- threads under injected faults ------------------------------------------------------

THREADS = 8
PER_THREAD = 100  # each a root with one child: 1,600 calls per test


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_thread_workers_land_exactly_once_under_faults(
    upstream_url: str, entity: str, project: str, flavour: str
) -> None:
    # The case: a client made in the main thread, plain threading.Thread
    # workers (each with its own event loop for the async client), 30% faults.
    root_ids: list[str] = []
    errors: list[BaseException] = []

    def sync_work(k: int) -> None:
        for i in range(PER_THREAD):
            root_ids.append(s_root(k * 1000 + i))

    def loop_work(k: int) -> None:
        async def many() -> None:
            for i in range(PER_THREAD):
                root_ids.append((await a_tree_of_one(k * 1000 + i))["id"])

        asyncio.run(many())

    def guarded(target: Any, k: int) -> None:
        try:
            target(k)
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    def start_workers() -> list[threading.Thread]:
        work = sync_work if flavour == "sync" else loop_work
        threads = [threading.Thread(target=guarded, args=(work, k)) for k in range(THREADS)]
        for t in threads:
            t.start()
        return threads

    with FaultProxy(upstream_url, fault_rate=0.3, seed=10, slow_delay=0.6) as proxy:
        if flavour == "sync":
            with WeaveClient(entity, project, server_url=proxy.url) as sync_client:
                tune_for_faults(sync_client, timeout=0.3)
                for t in start_workers():
                    t.join()
                flushed = sync_client.flush(timeout=120)
        else:

            async def main() -> Any:
                async with AsyncWeaveClient(entity, project, server_url=proxy.url) as client:
                    tune_for_faults(client, timeout=0.3)
                    for t in start_workers():
                        await asyncio.to_thread(t.join)
                    return await client.flush(timeout=120)

            flushed = asyncio.run(main())
        faults = sum(proxy.stats.values())
    assert errors == []
    assert faults > 0
    assert flushed.pending == 0 and flushed.failed == 0, flushed
    calls = raw_stored_calls(upstream_url, f"{entity}/{project}")
    roots = {c["id"] for c in calls if c["parent_id"] is None}
    assert roots == set(root_ids) and len(root_ids) == THREADS * PER_THREAD
    expected = roots | {c["id"] for c in calls if c["parent_id"] in roots}
    assert exactly_once_report(calls, expected) == {
        "stored": 2 * THREADS * PER_THREAD,
        "missing": 0,
        "duplicated": 0,
        "unexpected": 0,
        "unfinished": 0,
    }


@async_op
async def a_tree_of_one(x: int) -> dict[str, Any]:
    await a_leaf(x)
    return {"id": require_current_call().id}
