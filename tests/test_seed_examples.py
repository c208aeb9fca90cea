"""The seed README's examples (``/work/shared/SEED.md``), run for real.

The seed is our contract: its names, signatures and examples must work as written, with
``from weave.trace.async_client import ...`` read as ``from weave_client import ...``.
Each example below keeps the seed's code and then checks what it stored. Most run
against each real server (``server_url``: ours, then weave's reference in the compat
tier); the basic example also runs verbatim in a fresh process on the embedded default
server (no URL, no key), the way a new user first meets it.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import weave_client
from weave_client import (
    AsyncAPIClient,
    AsyncBatchIterator,
    AsyncCall,
    AsyncPaginator,
    AsyncStream,
    AsyncWeaveClient,
    AuthenticationError,
    CallNotFoundError,
    ClientClosedError,
    NotFoundError,
    ObjectRef,
    OpRef,
    SyncAPIClient,
    SyncBatchIterator,
    SyncPaginator,
    SyncStream,
    WeaveClient,
    async_op,
    create_async_client,
    create_client,
)

ROOT = Path(__file__).resolve().parent.parent


# -- Architecture: the seed's class names ---------------------------------------------------


def test_architecture_names_pair_up() -> None:
    # "Dual Client Classes", "Base HTTP Clients", "Streaming Support": each async class has
    # its sync twin under the seed's name, generated from the same source.
    pairs = [
        (AsyncWeaveClient, WeaveClient),
        (AsyncAPIClient, SyncAPIClient),
        (AsyncStream, SyncStream),
        (AsyncPaginator, SyncPaginator),
        (AsyncBatchIterator, SyncBatchIterator),
    ]
    for async_cls, sync_cls in pairs:
        assert async_cls.__module__.startswith("weave_client._async.")
        assert sync_cls.__module__ == async_cls.__module__.replace("._async.", "._sync.")
        assert async_cls.__name__.startswith("Async")
    assert create_async_client.__module__ == "weave_client._async._client"
    assert create_client.__module__ == "weave_client._sync._client"


async def test_paginators_are_the_seed_classes(server_url: str, entity: str, project: str) -> None:
    async with AsyncWeaveClient(entity, project, server_url=server_url) as client:
        assert isinstance(client.calls_pages(), AsyncPaginator)
        assert isinstance(client.calls_batches(), AsyncBatchIterator)
        assert isinstance(client._api, AsyncAPIClient)


# -- Usage: Basic Example -------------------------------------------------------------------


async def test_basic_example(server_url: str, entity: str, project: str) -> None:
    @async_op
    async def my_async_function(x: int, y: int) -> int:
        await asyncio.sleep(0.1)  # Simulate async work
        return x + y

    seen: dict[str, Any] = {}

    async def main() -> None:
        # Create client
        async with await create_async_client(entity, project, server_url=server_url) as client:
            # Call traced function
            result = await my_async_function(5, 3)

            # Save objects
            ref = await client.save({"data": "value"}, "my-object")

            # Get objects
            obj = await client.get(ref)

            # Query calls
            calls = await client.calls(limit=10)
            seen.update(result=result, ref=ref, obj=obj, calls=calls)

    await main()

    assert seen["result"] == 8
    ref = seen["ref"]
    assert isinstance(ref, ObjectRef)
    assert (ref.entity, ref.project, ref.name) == (entity, project, "my-object")
    assert ref.uri() == f"weave:///{entity}/{project}/object/my-object:{ref.digest}"
    assert seen["obj"] == {"data": "value"}
    # The query right after the call sees it: the client sends its pending calls first.
    [call] = seen["calls"]
    assert isinstance(call, AsyncCall)
    assert call.op_short_name == "my_async_function"
    assert isinstance(weave_client.parse_ref(call.op_name), OpRef)
    assert call.inputs == {"x": 5, "y": 3}
    assert call.output == 8
    assert call.exception is None
    assert call.status == "success"
    assert call.parent_id is None and call.trace_id
    assert call.started_at is not None and call.ended_at is not None
    assert call.ended_at >= call.started_at


def test_basic_example_sync_twin(server_url: str, entity: str, project: str) -> None:
    @weave_client.op
    def my_function(x: int, y: int) -> int:
        return x + y

    with create_client(entity, project, server_url=server_url) as client:
        result = my_function(5, 3)
        ref = client.save({"data": "value"}, "my-object")
        obj = client.get(ref)
        calls = client.calls(limit=10)

    assert result == 8
    assert obj == {"data": "value"}
    [call] = calls
    assert (call.op_short_name, call.inputs, call.output) == ("my_function", {"x": 5, "y": 3}, 8)


BASIC_EXAMPLE = """
import asyncio
from weave_client import create_async_client, async_op

@async_op
async def my_async_function(x: int, y: int) -> int:
    await asyncio.sleep(0.1)  # Simulate async work
    return x + y

async def main():
    # Create client
    async with await create_async_client("my-entity", "my-project") as client:
        # Call traced function
        result = await my_async_function(5, 3)

        # Save objects
        ref = await client.save({"data": "value"}, "my-object")

        # Get objects
        obj = await client.get(ref)

        # Query calls
        calls = await client.calls(limit=10)
        print(result, obj, len(calls), client.server_url)

asyncio.run(main())
"""


def test_basic_example_verbatim_on_the_embedded_server(tmp_path: Path) -> None:
    # No server URL, no WEAVE_TRACE_SERVER_URL, no WANDB_API_KEY: the client starts the
    # embedded local server on WEAVE_CLIENT_DB, and the data outlives the process.
    db = tmp_path / "traces.db"
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in ("WANDB_API_KEY", "WANDB_BASE_URL", "WEAVE_TRACE_SERVER_URL", "WF_TRACE_SERVER_URL")
    }
    env.update(WEAVE_CLIENT_DB=str(db), WEAVE_CLIENT_CACHE_DIR=str(tmp_path / "cache"))
    script = tmp_path / "basic_example.py"
    script.write_text(textwrap.dedent(BASIC_EXAMPLE))
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("8 {'data': 'value'} 1 http://127.0.0.1:")
    assert db.exists()

    from weave_client.server import start_background_server

    server = start_background_server(db_path=db, port=0)
    try:
        with WeaveClient("my-entity", "my-project", server_url=server.url) as client:
            [call] = client.calls()
            assert call.op_short_name == "my_async_function"
            assert (call.inputs, call.output) == ({"x": 5, "y": 3}, 8)
            [version] = client.objects(is_op=False)
            assert version.name == "my-object"
            assert [v.name for v in client.objects(is_op=True)] == ["my_async_function"]
            assert client.get(version.ref) == {"data": "value"}
    finally:
        server.stop()


# -- Usage: Concurrent Operations -----------------------------------------------------------


async def test_concurrent_operations(server_url: str, entity: str, project: str) -> None:
    @async_op(call_display_name=lambda inputs: f"Processing {inputs['item']}")
    async def process_item(client: AsyncWeaveClient, item: str) -> str:
        ref = await client.save({"item": item}, f"item-{item}")
        return f"{item.upper()}@{ref.digest}"

    async def process_many_items(items: list[str]) -> list[str]:
        async with await create_async_client(entity, project, server_url=server_url) as client:
            # Process items concurrently
            tasks = [process_item(client, item) for item in items]
            results = await asyncio.gather(*tasks)
            return results

    items = [f"i{n}" for n in range(12)]
    results = await process_many_items(items)

    assert [r.split("@")[0] for r in results] == [i.upper() for i in items]
    async with AsyncWeaveClient(entity, project, server_url=server_url) as client:
        calls = await client.calls(op_names=["process_item"])
        assert sorted(c.inputs["item"] for c in calls) == sorted(items)
        assert {c.display_name for c in calls} == {f"Processing {i}" for i in items}
        # Each task is its own trace (process_many_items is not an op).
        assert all(c.parent_id is None for c in calls)
        assert len({c.trace_id for c in calls}) == len(items)
        by_item = {c.inputs["item"]: c.output for c in calls}
        assert [by_item[i] for i in items] == results
        saved = {v.name for v in await client.objects()} - {"process_item"}
        assert saved == {f"item-{i}" for i in items}


# -- Usage: Streaming -----------------------------------------------------------------------


async def test_streaming(
    server_url: str, entity: str, project: str, capsys: pytest.CaptureFixture[str]
) -> None:
    @async_op
    async def step(n: int) -> int:
        return n * n

    async with AsyncWeaveClient(entity, project, server_url=server_url) as client:
        for n in range(25):
            await step(n)

    async def stream_calls() -> None:
        async with await create_async_client(entity, project, server_url=server_url) as client:
            # Stream through calls
            async for call in client.calls_stream():
                print(f"Processing call: {call.id}")

    await stream_calls()

    printed = capsys.readouterr().out.splitlines()
    async with AsyncWeaveClient(entity, project, server_url=server_url) as client:
        ids = [c.id for c in await client.calls()]
        stream = client.calls_stream()
        assert isinstance(stream, weave_client.AsyncCallStream)
        outputs = sorted([c.output async for c in stream])
    assert len(ids) == 25
    assert printed == [f"Processing call: {i}" for i in ids]
    assert outputs == sorted(n * n for n in range(25))


# -- API Reference: Creating a Client -------------------------------------------------------


async def test_create_client_with_every_documented_argument(
    server_url: str, entity: str, project: str
) -> None:
    client = await create_async_client(
        entity=entity,
        project=project,
        server_url=server_url,  # Optional server URL
        api_key=None,  # Optional API key
        ensure_project_exists=True,
    )
    assert isinstance(client, AsyncWeaveClient)
    assert (client.entity, client.project, client.project_id) == (
        entity,
        project,
        f"{entity}/{project}",
    )
    assert client.server_url == server_url
    assert not client.is_closed

    # The created client is the current one: a traced op reports to it.
    @async_op
    async def ping() -> str:
        return "pong"

    assert await ping() == "pong"
    [call] = await client.calls()
    assert call.output == "pong"

    await client.aclose()
    assert client.is_closed
    with pytest.raises(ClientClosedError, match=f"{entity}/{project} is closed"):
        await client.save({"a": 1}, "late")


@pytest.fixture
def keyed_server(tmp_path: Path) -> Iterator[str]:
    """A local server that only answers requests carrying API key ``seed-key``."""
    from weave_client.server import start_background_server

    server = start_background_server(db_path=tmp_path / "keyed.db", port=0, api_key="seed-key")
    try:
        yield str(server.url).rstrip("/")
    finally:
        server.stop()


async def test_create_client_api_key_is_sent_and_never_shown(
    keyed_server: str, entity: str, project: str
) -> None:
    client = await create_async_client(
        entity=entity,
        project=project,
        server_url=keyed_server,
        api_key="seed-key",
        ensure_project_exists=False,
    )
    async with client:
        ref = await client.save({"ok": True}, "keyed")
        assert await client.get(ref) == {"ok": True}
        assert "seed-key" not in repr(client)

    # A key inside the URL is used too, and hidden alike.
    in_url = keyed_server.replace("http://", "http://api:seed-key@")
    async with await create_async_client(entity, project, in_url) as client:
        assert await client.get(ref) == {"ok": True}
        assert client.server_url == keyed_server
        assert "seed-key" not in repr(client)

    wrong = await create_async_client(entity, project, keyed_server, "not-the-key", False)
    async with wrong:
        with pytest.raises(AuthenticationError) as info:
            await wrong.save({"ok": False}, "keyed")
    assert info.value.status_code == 401
    assert "not-the-key" not in str(info.value)


# -- API Reference: Core Methods ------------------------------------------------------------


async def test_core_methods(server_url: str, entity: str, project: str) -> None:
    @async_op
    async def step(i: int) -> int:
        if i == 2:
            await child(i)
        return i

    @async_op
    async def child(i: int) -> int:
        return -i

    async with await create_async_client(entity, project, server_url=server_url) as client:
        # `await client.save(obj, name)` - Save an object
        ref_v0 = await client.save({"a": 1}, "thing")
        ref_v1 = await client.save({"a": 2}, "thing")
        ref_other = await client.save([1, 2, 3], "other")
        assert ref_v0.digest != ref_v1.digest
        assert (await client.save({"a": 2}, "thing")).digest == ref_v1.digest  # same content

        # `await client.get(ref)` - Get an object by reference (a ref or its URI)
        assert await client.get(ref_v0) == {"a": 1}
        assert await client.get(ref_v1.uri()) == {"a": 2}
        assert await client.get(f"weave:///{entity}/{project}/object/other:latest") == [1, 2, 3]

        # `await client.calls(filter, limit, offset)` - Query calls (positional, as the seed)
        for i in range(5):
            await step(i)
        page = await client.calls({"op_names": ["step"]}, 2, 1, "started_at")
        assert [c.inputs["i"] for c in page] == [1, 2]
        assert len(await client.calls(None, 100, 0)) == 6  # five steps and one child
        assert len(await client.calls({"trace_roots_only": True})) == 5

        # `await client.objects(filter, limit, offset)` - Query objects (oldest first)
        [second] = await client.objects({"object_ids": ["thing"]}, 1, 1)
        assert (second.name, second.version_index, second.digest) == ("thing", 1, ref_v1.digest)
        assert second.is_latest and second.ref == ref_v1
        listed = await client.objects(
            {"object_ids": ["thing", "other"], "latest_only": True}, 10, 0
        )
        assert {(v.name, v.digest) for v in listed} == {
            ("thing", ref_v1.digest),
            ("other", ref_other.digest),
        }

        # `await client.table(name, rows)` - Create/get tables
        table = await client.table("rows", [{"x": 1}, {"x": 2}, {"x": 3}])
        assert await table.count() == 3
        assert [row["x"] async for row in table] == [1, 2, 3]
        latest = await client.table("rows")
        assert latest.digest == table.digest
        assert await latest[1] == {"x": 2}

        # `await client.feedback(call, type, payload)` - Add feedback
        [call2] = await client.calls({"op_names": ["step"]}, 1, 2, "started_at")
        feedback_id = await client.feedback(call2, "rating", {"score": 5})
        [stored] = await call2.feedback.query()
        assert (stored.id, stored.feedback_type, stored.payload) == (
            feedback_id,
            "rating",
            {"score": 5},
        )
        assert stored.weave_ref == call2.ref.uri()

        # `await client.delete_call(call)` - Delete a call (and its descendants)
        [kid] = await call2.children()
        await client.delete_call(call2)
        for gone in (call2.id, kid.id):
            with pytest.raises(CallNotFoundError):
                await client.call(gone)
        assert len(await client.calls()) == 4

        # `await client.delete_object(obj)` - Delete an object: one version (a ref) ...
        assert await client.delete_object(ref_v0) == 1
        with pytest.raises(NotFoundError):
            await client.get(ref_v0)
        assert await client.get(ref_v1) == {"a": 2}
        # ... a listed version ...
        [other] = await client.objects({"object_ids": ["other"]})
        assert await client.delete_object(other) == 1
        with pytest.raises(NotFoundError):
            await client.get(ref_other)
        # ... or every version of a name.
        await client.save({"a": 3}, "thing")
        assert await client.delete_object("thing") == 2
        assert await client.objects({"object_ids": ["thing"]}) == []


# -- API Reference: Async Operations --------------------------------------------------------


async def some_async_work(item: str) -> str:
    await asyncio.sleep(0)
    return item[::-1]


async def test_async_op_with_names(server_url: str, entity: str, project: str) -> None:
    @async_op(
        name="custom_name",
        display_name="Display Name",
        call_display_name=lambda inputs: f"Processing {inputs['item']}",
    )
    async def my_operation(item: str) -> str:
        result = await some_async_work(item)
        return result

    @async_op(name="plain_name", display_name="Display Name")
    async def other_operation(item: str) -> str:
        return item

    assert my_operation.name == "custom_name"
    assert my_operation.display_name == "Display Name"
    assert my_operation.resolve_fn.__name__ == "my_operation"

    async with await create_async_client(entity, project, server_url=server_url) as client:
        assert await my_operation("apple") == "elppa"
        result, call = await my_operation.call("pear")
        assert result == "raep"
        assert call is not None and call.display_name == "Processing pear"
        await other_operation("kiwi")

        calls = {c.inputs["item"]: c for c in await client.calls()}
        assert set(calls) == {"apple", "pear", "kiwi"}
        # call_display_name (a function of the inputs) names each call ...
        assert calls["apple"].display_name == "Processing apple"
        assert calls["pear"].display_name == "Processing pear"
        # ... and display_name is the default when there is none.
        assert calls["kiwi"].display_name == "Display Name"
        # The op is stored under its custom name, and its calls point at that version.
        op_ref = weave_client.parse_ref(calls["apple"].op_name)
        assert isinstance(op_ref, OpRef) and op_ref.name == "custom_name"
        assert calls["apple"].op_short_name == "custom_name"
        ops = {v.name: v for v in await client.objects(is_op=True)}
        assert set(ops) == {"custom_name", "plain_name"}
        assert ops["custom_name"].digest == op_ref.digest
        assert ops["custom_name"].class_name == "Op"
        # Queries name ops by their custom name.
        assert len(await client.calls(op_names=["custom_name"])) == 2


# -- Migration Guide ------------------------------------------------------------------------


def test_migration_guide_sync_form(server_url: str, entity: str, project: str) -> None:
    # 1. "From: from weave import weave_client" - the sync client is weave_client.WeaveClient.
    client = weave_client.create_client(entity, project, server_url=server_url)
    try:
        assert isinstance(client, weave_client.WeaveClient)
        obj = {"model": "gpt", "temperature": 0.2}
        # 2. "From: client.save(obj, "name")"
        ref = client.save(obj, "name")

        # 3. "From: @weave.op def my_function(): pass"
        @weave_client.op
        def my_function():  # type: ignore[no-untyped-def]
            pass

        assert my_function() is None
    finally:
        client.close()  # flushes the traced call

    with WeaveClient(entity, project, server_url=server_url) as reader:
        assert reader.get(ref) == obj
        [call] = reader.calls()
        assert (call.op_short_name, call.inputs, call.output) == ("my_function", {}, None)
        assert call.status == "success"


async def test_migration_guide_async_form(server_url: str, entity: str, project: str) -> None:
    # 1. "To: from weave.trace.async_client import create_async_client"
    from weave_client import create_async_client

    client = await create_async_client(entity, project, server_url=server_url)
    try:
        obj = {"model": "gpt", "temperature": 0.2}
        # 2. "To: await client.save(obj, "name")"
        ref = await client.save(obj, "name")

        # 3. "To: @async_op async def my_function(): pass"
        @async_op
        async def my_function():  # type: ignore[no-untyped-def]
            pass

        assert await my_function() is None
    finally:
        await client.aclose()

    async with AsyncWeaveClient(entity, project, server_url=server_url) as reader:
        assert await reader.get(ref) == obj
        [call] = await reader.calls()
        assert (call.op_short_name, call.inputs, call.output) == ("my_function", {}, None)
