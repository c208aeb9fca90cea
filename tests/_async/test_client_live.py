"""``client.calls_live()``: call events from another process, over /calls/watch or by polling.

The calls are traced by ``tests/live_tracer.py`` in a subprocess: each root
``step(i)`` calls ``child(i)``; the events must arrive in order, filtered, and
(across a server restart on the same database) none missed and none twice.
Against weave's reference server (no /calls/watch) the client polls.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from weave_client import AsyncWeaveClient
from weave_client._async._live_calls import AsyncCallEvent as CallEvent
from weave_client._async._live_calls import AsyncLiveCalls
from weave_client._synchronization import async_run_blocking
from weave_client.server import start_background_server

from ..live_tracer import finish_tracer, post_calls, start_tracer


def _is_step(event: CallEvent) -> bool:
    return event.call.op_short_name == "step"


async def _take(
    live: AsyncLiveCalls, events: list[CallEvent], done: Callable[[list[CallEvent]], bool]
) -> None:
    """Read events into ``events`` until ``done(events)``."""
    if done(events):
        return
    async for event in live:
        events.append(event)
        if done(events):
            return


def _ends(events: list[CallEvent], pred: Callable[[CallEvent], bool] = _is_step) -> list[int]:
    """The ``i`` input of the calls whose end arrived, in arrival order."""
    return [e.call.inputs["i"] for e in events if e.kind == "end" and pred(e)]


def _check_order(events: list[CallEvent]) -> None:
    """Per call: start (if any) before end, one end; a child ends before its parent."""
    seen: dict[str, list[str]] = {}
    ended: set[str] = set()
    for e in events:
        kinds = seen.setdefault(e.call.id, [])
        assert e.kind not in kinds, f"{e.kind} of {e.call.id} twice"
        if e.kind == "start":
            assert "end" not in kinds
        if e.kind == "end":
            ended.add(e.call.id)
            if e.call.parent_id is not None:
                assert e.call.parent_id not in ended, "a parent ended before its child"
        kinds.append(e.kind)


async def test_events_in_order_from_another_process(client: AsyncWeaveClient) -> None:
    live = client.calls_live(since=0, poll_interval=0.2)
    events: list[CallEvent] = []
    async with live:
        proc = start_tracer(client.server_url, client.project_id, calls=4, fail_every=2)
        try:
            await _take(live, events, lambda ev: len(_ends(ev)) == 4)
        finally:
            await async_run_blocking(finish_tracer, proc)
    assert _ends(events) == [0, 1, 2, 3]
    _check_order(events)
    steps = {e.call.inputs["i"]: e.call for e in events if e.kind == "end" and _is_step(e)}
    assert steps[0].output == 0 and steps[1].exception is not None
    assert "step 1 failed" in (steps[1].exception or "")
    children = _ends(events, lambda e: e.call.op_short_name == "child")
    assert sorted(children) == [0, 1, 2, 3]
    if not live.polling:
        seqs = [e.seq for e in events]
        assert all(isinstance(s, int) for s in seqs)
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    else:
        assert all(e.seq is None for e in events)


async def test_running_call_arrives_before_it_ends(local_client: AsyncWeaveClient) -> None:
    live = local_client.calls_live(since=0, trace_roots_only=True)
    events: list[CallEvent] = []
    async with live:
        proc = start_tracer(local_client.server_url, local_client.project_id, calls=1, hold=1.0)
        try:
            await _take(live, events, lambda ev: len(_ends(ev)) == 1)
        finally:
            await async_run_blocking(finish_tracer, proc)
    assert [e.kind for e in events] == ["start", "end"]
    start, end = events
    assert start.call.ended_at is None and start.call.summary["weave"]["status"] == "running"
    assert end.call.summary["weave"]["status"] == "success"
    assert start.seq is not None and end.seq is not None and start.seq < end.seq


async def test_live_filters(local_client: AsyncWeaveClient) -> None:
    children = local_client.calls_live(since=0, op_names=["child"])
    roots = local_client.calls_live(since=0, trace_roots_only=True)
    child_events: list[CallEvent] = []
    root_events: list[CallEvent] = []
    async with children, roots:
        proc = start_tracer(local_client.server_url, local_client.project_id, calls=3)
        try:
            await _take(
                children,
                child_events,
                lambda ev: len(_ends(ev, lambda e: e.call.op_short_name == "child")) == 3,
            )
            await _take(roots, root_events, lambda ev: len(_ends(ev)) == 3)
        finally:
            await async_run_blocking(finish_tracer, proc)
    assert child_events and all(e.call.op_short_name == "child" for e in child_events)
    assert root_events and all(e.call.parent_id is None for e in root_events)
    assert _ends(root_events) == [0, 1, 2]
    # One trace by its id: its two calls only.
    trace_id = root_events[1].call.trace_id
    async with local_client.calls_live(since=0, trace_ids=[trace_id]) as one:
        got: list[CallEvent] = []
        await _take(one, got, lambda ev: len([e for e in ev if e.kind == "end"]) == 2)
    assert {e.call.trace_id for e in got} == {trace_id}
    assert sorted(e.call.op_short_name for e in got if e.kind == "end") == ["child", "step"]


async def test_closing_while_events_pour_in_returns(local_client: AsyncWeaveClient) -> None:
    # The consumer stops reading while hundreds of messages arrive; closing must not hang
    # (httpx-ws's sync session would wait forever on its full receive queue).
    live = local_client.calls_live(since=0)
    async with live:
        await async_run_blocking(post_calls, local_client.server_url, local_client.project_id, 1)
        first = await anext(live)
        await async_run_blocking(post_calls, local_client.server_url, local_client.project_id, 700)
    assert first.call.op_name == "bulk"
    assert live.cursor == first.seq


async def test_entering_the_block_subscribes(local_client: AsyncWeaveClient) -> None:
    # since=None: calls stored after `with` but before the first `next` still arrive.
    await async_run_blocking(post_calls, local_client.server_url, local_client.project_id, 1)
    async with local_client.calls_live() as live:
        await async_run_blocking(post_calls, local_client.server_url, local_client.project_id, 2)
        events: list[CallEvent] = []
        await _take(live, events, lambda ev: len(ev) == 2)
    assert [e.call.inputs["i"] for e in events] == [0, 1]  # not the call stored before
    assert [e.kind for e in events] == ["start", "start"]


async def test_bad_arguments_are_refused(local_client: AsyncWeaveClient) -> None:
    with pytest.raises(ValueError, match="input_refs"):
        local_client.calls_live(input_refs=["weave:///e/p/object/x:abc"])
    with pytest.raises(ValueError, match="since"):
        local_client.calls_live(since=-1)
    with pytest.raises(ValueError, match="poll_interval"):
        local_client.calls_live(poll_interval=0)


async def test_reconnects_across_a_restart_on_the_same_database(
    tmp_path: Path, entity: str, project: str
) -> None:
    db = tmp_path / "trace.db"
    server = start_background_server(db, port=0)
    port = server.port
    try:
        async with AsyncWeaveClient(entity, project, server_url=server.url) as client:
            live = client.calls_live(since=0, trace_roots_only=True)
            events: list[CallEvent] = []
            async with live:
                await async_run_blocking(
                    finish_tracer, start_tracer(server.url, client.project_id, calls=3)
                )
                await _take(live, events, lambda ev: len(_ends(ev)) == 3)
                cursor = live.cursor
                await async_run_blocking(server.stop)
                # Calls stored while the watcher is away, then more once it is back.
                server = start_background_server(db, port=port)
                await async_run_blocking(
                    finish_tracer, start_tracer(server.url, client.project_id, calls=2)
                )
                await _take(live, events, lambda ev: len(_ends(ev)) == 5)
                await async_run_blocking(
                    finish_tracer, start_tracer(server.url, client.project_id, calls=1)
                )
                await _take(live, events, lambda ev: len(_ends(ev)) == 6)
            assert _ends(events) == [0, 1, 2, 0, 1, 0]
            seqs = [e.seq for e in events]
            assert len(set(seqs)) == len(seqs) and seqs == sorted(seqs)  # type: ignore[type-var]
            assert len({e.call.id for e in events if e.kind == "end"}) == 6
            # Resuming from the cursor taken before the restart gives exactly the rest.
            async with client.calls_live(since=cursor, trace_roots_only=True) as again:
                rest: list[CallEvent] = []
                await _take(again, rest, lambda ev: len(_ends(ev)) == 3)
            assert [e.seq for e in rest] == [e.seq for e in events if e.seq > cursor]  # type: ignore[operator]
    finally:
        server.stop()


@pytest.mark.compat
async def test_a_replay_from_before_the_kept_events_says_what_it_missed(
    tmp_path: Path, entity: str, project: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="weave_client")
    with start_background_server(tmp_path / "keep.db", keep_events=4) as server:
        async with AsyncWeaveClient(entity, project, server_url=server.url) as client:
            # Ten whole calls, one event each (seq 1 to 10); the server keeps 7 to 10.
            await async_run_blocking(post_calls, server.url, client.project_id, 10)
            async with client.calls_live(since=0) as live:
                events: list[CallEvent] = []
                # The replay, then (its "ready" said what was pruned) one more call.
                await _take(live, events, lambda ev: len(ev) == 4)
                await async_run_blocking(post_calls, server.url, client.project_id, 1)
                await _take(live, events, lambda ev: len(ev) == 5)
    assert [e.seq for e in events] == [7, 8, 9, 10, 11]
    [warning] = [r.getMessage() for r in caplog.records if "no longer keeps" in r.getMessage()]
    assert f"live calls of {entity}/{project}: the server no longer keeps events 1 to 6" in warning


async def test_polls_a_server_without_the_route(
    reference_server_url: str, entity: str, project: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="weave_client")
    async with AsyncWeaveClient(entity, project, server_url=reference_server_url) as client:
        live = client.calls_live(since=0, poll_interval=0.2)
        events: list[CallEvent] = []
        async with live:
            proc = start_tracer(reference_server_url, client.project_id, calls=3, hold=0.5)
            try:
                await _take(live, events, lambda ev: len(_ends(ev)) == 3)
            finally:
                await async_run_blocking(finish_tracer, proc)
        assert live.polling
        assert _ends(events) == [0, 1, 2]
        _check_order(events)
        assert any(e.kind == "start" and _is_step(e) for e in events)
        polls = [r for r in caplog.records if "polling /calls/stream_query" in r.getMessage()]
        assert len(polls) == 1
        with pytest.raises(Exception, match="since=5"):
            async with client.calls_live(since=5) as resumed:
                async for _ in resumed:
                    break
