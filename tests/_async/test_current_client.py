"""Which client traced ops report to (across contexts, threads and event loops), the
current call, and the tracing settings, against our local server.

The sync twin (tests/_sync) runs the same with ``@op`` and ``WeaveClient``. In the
async flavour a thread runs an op in its own event loop (``finish``), so those tests
also cover an async client's ops on another loop.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import inspect
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import weave_client
from tests.fault_proxy import FaultProxy
from tests.reliability.helpers import stored_calls as raw_stored_calls
from tests.reliability.helpers import tune_for_faults
from weave_client import (
    InvalidSettingError,
    NoCurrentCallError,
    async_op,
    get_current_call,
    require_current_call,
)
from weave_client._async._client import AsyncWeaveClient
from weave_client._context import current_client, open_clients
from weave_client._current_call import call_ui_url
from weave_client._models import (
    CallSchema,
    CallsQueryReq,
    FileContentReadReq,
    ObjectVersionFilter,
    ObjQueryReq,
)
from weave_client._synchronization import async_run_blocking, async_sleep

API_KEY = "sk-test-0123456789abcdefXYZ"


def finish(value: Any) -> Any:
    """An op's result in a thread: a coroutine runs in the thread's own event loop."""
    return asyncio.run(value) if inspect.iscoroutine(value) else value


async def stored_calls(client: AsyncWeaveClient) -> list[CallSchema]:
    """Every call of the client's project, in start order, after a flush."""
    result = await client.flush()
    assert result.pending == 0, result
    res = await client._api.calls_query(CallsQueryReq(project_id=client.project_id))
    return sorted(res.calls, key=lambda c: (c.started_at, c.id))


def short(call: CallSchema) -> str:
    return call.op_name.split("/op/")[1].split(":")[0]


async def join_all(threads: list[threading.Thread]) -> None:
    for t in threads:
        t.start()
    for t in threads:
        # Off the event loop (async flavour), which keeps sending meanwhile.
        await async_run_blocking(t.join)


@async_op
async def leaf(x: int) -> int:
    return x * 2


@async_op
async def spawner(n: int, plain: bool) -> int:
    kind = threading.Thread if plain else weave_client.Thread
    threads = [kind(target=lambda i=i: finish(leaf(i))) for i in range(n)]
    await join_all(threads)
    return n


@async_op
async def parent_of_leaf(x: int) -> int:
    return await leaf(x)


# --- which client ------------------------------------------------------------------


async def test_ops_outside_the_clients_context_report_to_the_default(
    local_server_url: str, entity: str, project: str
) -> None:
    async with AsyncWeaveClient(entity, project, server_url=local_server_url) as client:
        # A context that never saw the client (a request task, a plain thread).
        assert contextvars.Context().run(current_client) is client
        results: list[int] = []
        threads = [
            threading.Thread(target=lambda i=i: results.append(finish(leaf(i))))
            for i in range(8)
        ]
        await join_all(threads)
        calls = await stored_calls(client)
    assert sorted(results) == [2 * i for i in range(8)]
    # Each plain-thread call is a root, stored exactly once.
    assert len(calls) == 8 and len({c.id for c in calls}) == 8
    assert all(c.parent_id is None and c.ended_at is not None for c in calls)
    assert sorted(c.inputs["x"] for c in calls) == list(range(8))


async def test_closing_the_default_hands_the_role_back(
    local_server_url: str, entity: str, project: str
) -> None:
    async with AsyncWeaveClient(entity, project, server_url=local_server_url) as first:
        async with AsyncWeaveClient(
            entity, f"{project}-second", server_url=local_server_url
        ) as second:
            assert contextvars.Context().run(current_client) is second
            assert open_clients()[-2:] == [first, second]
            copied = contextvars.copy_context()  # holds `second` as its client
            assert copied.run(current_client) is second
        # The closed client's context falls back to the default: the previous one.
        assert copied.run(current_client) is first
        assert contextvars.Context().run(current_client) is first
        assert current_client() is first
    assert first not in open_clients() and second not in open_clients()
    assert contextvars.Context().run(current_client) is not first


async def test_a_client_only_constructed_is_the_default_while_referenced(
    local_server_url: str, entity: str, project: str
) -> None:
    client = AsyncWeaveClient(entity, project, server_url=local_server_url)
    try:
        # Never entered: not held, yet ops anywhere report to it while it lives.
        assert client not in open_clients()
        assert contextvars.Context().run(current_client) is client
        thread = threading.Thread(target=lambda: finish(leaf(5)))
        await join_all([thread])
        calls = await stored_calls(client)
    finally:
        await client.aclose()
    assert [(short(c), c.inputs["x"]) for c in calls] == [("leaf", 5)]
    assert contextvars.Context().run(current_client) is not client


def test_a_dropped_client_is_no_longer_the_default() -> None:
    client = AsyncWeaveClient("ent", "dropped", server_url="http://127.0.0.1:9")
    assert contextvars.Context().run(current_client) is client
    del client
    gc.collect()
    found = contextvars.Context().run(current_client)
    assert found is None or found.project != "dropped"


async def test_the_contexts_client_wins_over_the_default(
    local_server_url: str, entity: str, project: str
) -> None:
    async with AsyncWeaveClient(entity, project, server_url=local_server_url) as mine:
        other = AsyncWeaveClient(entity, f"{project}-other", server_url=local_server_url)
        async with other:
            # `other` is the default now, but this block's context names it too.
            assert current_client() is other
        await leaf(1)
        assert current_client() is mine
        calls = await stored_calls(mine)
    assert [short(c) for c in calls] == ["leaf"]


async def test_plain_threads_started_in_an_op_make_roots(
    local_server_url: str, entity: str, project: str
) -> None:
    async with AsyncWeaveClient(entity, project, server_url=local_server_url) as client:
        await spawner(4, plain=True)
        calls = await stored_calls(client)
    leaves = [c for c in calls if short(c) == "leaf"]
    assert len(calls) == 5 and len(leaves) == 4
    assert all(c.parent_id is None for c in leaves)


async def test_weave_client_thread_nests_under_the_call_that_started_it(
    local_server_url: str, entity: str, project: str
) -> None:
    async with AsyncWeaveClient(entity, project, server_url=local_server_url) as client:
        await spawner(4, plain=False)
        calls = await stored_calls(client)
    (root,) = [c for c in calls if short(c) == "spawner"]
    leaves = [c for c in calls if short(c) == "leaf"]
    assert len(calls) == 5 and len({c.id for c in calls}) == 5
    assert all(c.parent_id == root.id and c.trace_id == root.trace_id for c in leaves)


def test_weave_client_thread_copies_the_context_at_start() -> None:
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    seen: list[str] = []

    class Worker(weave_client.Thread):
        def run(self) -> None:  # an overridden run() also sees the copy
            seen.append(var.get())

    token = var.set("starter")
    try:
        plain = threading.Thread(target=lambda: seen.append(var.get()))
        worker = Worker()
        plain.start()
        worker.start()
        plain.join()
        worker.join()
    finally:
        var.reset(token)
    assert sorted(seen) == ["starter", "unset"]


# --- the current call -----------------------------------------------------------------


@async_op
async def described(x: int) -> dict[str, Any]:
    call = require_current_call()
    assert get_current_call() == call
    call.summary["custom"] = {"n": 1}
    call.summary["tokens"] = 5
    call.display_name = f"described {x}"
    await leaf(x)
    return {
        "id": call.id,
        "trace_id": call.trace_id,
        "parent_id": call.parent_id,
        "op_name": call.op_name,
        "inputs": call.inputs,
        "attributes": call.attributes,
        "ui_url": call.ui_url,
        "thread_id": call.thread_id,
        "turn_id": call.turn_id,
        "display_name": call.display_name,
    }


@async_op
async def outer_described() -> dict[str, Any]:
    outer = require_current_call()
    seen = await described(3)
    seen["outer_id"] = outer.id
    return seen


async def test_get_current_call_describes_the_call_the_server_stores(
    server_url: str, entity: str, project: str
) -> None:
    # Ours, and weave's reference server in the compat tier.
    assert get_current_call() is None
    with pytest.raises(NoCurrentCallError, match="outside a traced call"):
        require_current_call()
    async with AsyncWeaveClient(entity, project, server_url=server_url) as client:
        seen = await outer_described()
        calls = await stored_calls(client)
    by_id = {c.id: c for c in calls}
    stored = by_id[seen["id"]]
    assert short(stored) == "described"
    assert stored.parent_id == seen["parent_id"] == seen["outer_id"]
    assert stored.trace_id == seen["trace_id"] == by_id[seen["outer_id"]].trace_id
    assert stored.op_name == seen["op_name"]
    assert stored.inputs == seen["inputs"] == {"x": 3}
    assert seen["attributes"]["weave"]["source"] == "python-sdk"
    assert seen["thread_id"] is None and seen["turn_id"] is None
    assert seen["ui_url"] == f"{server_url}/#/{entity}/{project}/call/{stored.id}"
    # Edits made while it ran reached the server.
    assert seen["display_name"] == stored.display_name == "described 3"
    assert stored.summary is not None
    assert stored.summary["custom"] == {"n": 1} and stored.summary["tokens"] == 5
    # The computed roll-up (its child and itself) is kept beside the values the op added.
    assert stored.summary["status_counts"] == {"success": 2, "error": 0}
    (child,) = [c for c in calls if short(c) == "leaf"]
    assert child.parent_id == stored.id


async def test_get_current_call_in_a_thread_started_by_an_op(
    local_server_url: str, entity: str, project: str
) -> None:
    seen: list[str | None] = []

    @async_op
    async def in_thread() -> None:
        call = get_current_call()
        seen.append(call.parent_id if call is not None else "none")

    @async_op
    async def starter() -> str:
        me = require_current_call().id
        worker = weave_client.Thread(target=lambda: finish(in_thread()))
        await join_all([worker])
        return me

    async with AsyncWeaveClient(entity, project, server_url=local_server_url) as client:
        starter_id = await starter()
        calls = await stored_calls(client)
    assert seen == [starter_id]
    assert len(calls) == 2


def test_ui_url_is_the_hosted_ui_or_the_local_viewer() -> None:
    class Hosted:
        _app_url = "https://wandb.ai"
        server_url = "https://trace.wandb.ai"

    class Local:
        _app_url = None
        server_url = "http://127.0.0.1:6345"

    assert call_ui_url(Hosted(), "ent/my proj", "c1") == "https://wandb.ai/ent/my%20proj/weave/calls/c1"
    assert call_ui_url(Local(), "ent/my proj", "c1") == "http://127.0.0.1:6345/#/ent/my%20proj/call/c1"


@async_op
async def renamed(i: int) -> int:
    call = require_current_call()
    call.display_name = f"renamed {i}"
    call.summary["i"] = i
    return i


async def test_display_names_set_during_an_outage_reach_the_server_from_the_wal(
    upstream_url: str, entity: str, project: str, tmp_path: Path
) -> None:
    project_id = f"{entity}/{project}"
    with FaultProxy(upstream_url, fault_rate=1.0, kinds=["503"]) as proxy:
        async with AsyncWeaveClient(
            entity, project, server_url=proxy.url, cache_dir=tmp_path / "cache", wal=True
        ) as client:
            tune_for_faults(client, sender_attempts=2)
            client._sender.replay_interval = 0.1
            for i in range(20):
                assert await renamed(i) == i
            result = await client.flush(timeout=10)
            assert result.failed == 0, result  # kept on disk, not given up on
            proxy.fault_rate = 0.0  # the server comes back
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                await client.flush(timeout=5)
                landed = raw_stored_calls(upstream_url, project_id)
                if len(landed) == 20 and all(c.get("display_name") for c in landed):
                    break
                await async_sleep(0.1)
    calls = raw_stored_calls(upstream_url, project_id)
    assert sorted((c["inputs"]["i"], c["display_name"]) for c in calls) == [
        (i, f"renamed {i}") for i in range(20)
    ]
    assert all(c["summary"]["i"] == c["inputs"]["i"] for c in calls)


# --- settings ---------------------------------------------------------------------


async def test_a_disabled_client_records_nothing_and_still_reads(
    local_server_url: str, entity: str, project: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with AsyncWeaveClient(entity, project, server_url=local_server_url) as writer:
        await leaf(1)
        await writer.flush()
    monkeypatch.setenv("WEAVE_DISABLED", "true")
    async with AsyncWeaveClient(entity, project, server_url=local_server_url) as client:
        assert client not in open_clients()
        assert await leaf(21) == 42
        assert get_current_call() is None
        calls = await client.calls()
    assert [c.inputs["x"] for c in calls] == [1]  # reads work; nothing new was traced


async def test_capture_code_false_saves_a_placeholder_not_the_source(
    local_server_url: str, entity: str, project: str
) -> None:
    @async_op
    async def secret_sauce(x: int) -> int:
        return x + 41

    async with AsyncWeaveClient(
        entity, project, server_url=local_server_url, capture_code=False
    ) as client:
        assert await secret_sauce(1) == 42
        await stored_calls(client)
        objs = await client._api.objs_query(
            ObjQueryReq(
                project_id=client.project_id,
                filter=ObjectVersionFilter(object_ids=["secret_sauce"], is_op=True),
            )
        )
        (obj,) = objs.objs
        res = await client._api.file_content_read(
            FileContentReadReq(project_id=client.project_id, digest=obj.val["files"]["obj.py"])
        )
    source = res.content.decode()
    assert "x + 41" not in source
    assert "Code-capture was disabled while saving this op" in source


async def test_print_call_link_prints_one_line_per_root_call(
    local_server_url: str, entity: str, project: str, capsys: pytest.CaptureFixture[str]
) -> None:
    async with AsyncWeaveClient(
        entity, project, server_url=local_server_url, print_call_link=True
    ) as client:
        await parent_of_leaf(1)
        calls = await stored_calls(client)
    (root,) = [c for c in calls if c.parent_id is None]
    lines = [line for line in capsys.readouterr().out.splitlines() if "/call/" in line]
    assert lines == [f"\N{DOUGHNUT} {local_server_url}/#/{entity}/{project}/call/{root.id}"]


async def test_redact_keys_and_the_clients_api_key_are_never_recorded(
    local_server_url: str, entity: str, project: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEAVE_REDACT_KEYS", "x_private_env")

    @async_op
    async def leaky(session_token: str, x_private_env: str, note: str) -> dict[str, str]:
        return {"echo": note, "session_token": session_token}

    async with AsyncWeaveClient(
        entity,
        project,
        server_url=local_server_url,
        api_key=API_KEY,
        redact_keys=["Session_Token"],
    ) as client:
        await leaky("tok-1", "env-secret", f"my key is {API_KEY}!")
        (call,) = await stored_calls(client)
    assert call.inputs == {
        "session_token": "REDACTED",
        "x_private_env": "REDACTED",
        "note": "my key is REDACTED!",
    }
    assert call.output == {"echo": "my key is REDACTED!", "session_token": "REDACTED"}


async def test_client_attributes_are_added_to_every_call(
    local_server_url: str, entity: str, project: str
) -> None:
    async with AsyncWeaveClient(
        entity, project, server_url=local_server_url, attributes={"env": "prod", "team": "a"}
    ) as client:
        await leaf(1)
        with weave_client.attributes({"env": "dev"}):
            await leaf(2)
        calls = await stored_calls(client)
    first, second = sorted(calls, key=lambda c: c.inputs["x"])
    assert first.attributes["env"] == "prod" and first.attributes["team"] == "a"
    assert second.attributes["env"] == "dev" and second.attributes["team"] == "a"
    assert first.attributes["weave"]["source"] == "python-sdk"


@pytest.mark.parametrize(
    ("kwargs", "env", "named"),
    [
        ({"disabled": "yes"}, {}, "disabled"),
        ({}, {"WEAVE_DISABLED": "maybe"}, "WEAVE_DISABLED"),
        ({}, {"WEAVE_CAPTURE_CODE": "nope"}, "WEAVE_CAPTURE_CODE"),
        ({}, {"WEAVE_PRINT_CALL_LINK": "2"}, "WEAVE_PRINT_CALL_LINK"),
        ({"redact_keys": "password"}, {}, "redact_keys"),
        ({"redact_keys": ["ok", ""]}, {}, "redact_keys"),
        ({}, {"WEAVE_REDACT_KEYS": "a,,b"}, "WEAVE_REDACT_KEYS"),
        ({"attributes": ["env"]}, {}, "attributes"),
        ({"attributes": {1: "x"}}, {}, "attributes"),
    ],
)
def test_bad_settings_name_the_setting(
    kwargs: dict[str, Any], env: dict[str, str], named: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(InvalidSettingError, match=named):
        AsyncWeaveClient("ent", "proj", server_url="http://127.0.0.1:9", **kwargs)
