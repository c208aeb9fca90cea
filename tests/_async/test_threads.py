"""Conversation threads (``weave_client.thread``): thread and turn ids on stored calls,
``client.calls(thread_ids=...)`` and ``client.threads()``.

Against both servers (``client``: ours, then weave's reference in the compat tier; the
reference serves weave's own threads query, whose SQLite form reports -1 for the turn
duration percentiles, and ignores the ``thread_ids``/``turn_ids`` filters of calls queries). The sync twin (tests/_sync) runs the same with ``@op``.
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any

import pytest

import weave_client
from weave_client import AsyncWeaveClient, async_op
from weave_client._async._call import AsyncCall as Call
from weave_client._synchronization import async_gather_bounded

seen_turns: list[str | None] = []


@async_op
async def lookup(q: str) -> str:
    return q.upper()


@async_op
async def chat(q: str, ctx: Any = None) -> str:
    if ctx is not None:
        seen_turns.append(ctx.turn_id)
    return await lookup(q) + "!"


@async_op
async def fan(n: int) -> list[str]:
    jobs = [lambda i=i: lookup(str(i)) for i in range(n)]
    return await async_gather_bounded(jobs, limit=n)


async def stored(client: AsyncWeaveClient, **filters: Any) -> list[Call]:
    result = await client.flush()
    assert result.pending == 0, result
    calls = await client.calls(sort_by=["started_at", "id"], **filters)
    return list(calls)


def short(call: Call) -> str:
    return call.op_short_name


async def test_each_top_level_call_is_a_turn_and_children_share_it(
    client: AsyncWeaveClient, server_kind: str
) -> None:
    seen_turns.clear()
    with weave_client.thread("conv-42") as t:
        assert (t.thread_id, t.turn_id) == ("conv-42", None)
        _, first = await chat.call("hi", t)
        _, second = await chat.call("more", t)
        assert t.turn_id is None  # between turns
    _, outside = await chat.call("bye")
    assert first is not None and second is not None and outside is not None
    assert (first.thread_id, first.turn_id) == ("conv-42", first.id)
    assert seen_turns == [first.id, second.id]

    calls = await stored(client)
    assert [short(c) for c in calls] == ["chat", "lookup"] * 3
    turn1, child1, turn2, child2, out, _ = calls
    assert [(c.thread_id, c.turn_id) for c in calls] == [
        ("conv-42", turn1.id),
        ("conv-42", turn1.id),
        ("conv-42", turn2.id),
        ("conv-42", turn2.id),
        (None, None),
        (None, None),
    ]
    assert child1.parent_id == turn1.id and child2.parent_id == turn2.id
    assert (turn1.id, turn2.id, out.id) == (first.id, second.id, outside.id)

    if server_kind == "reference":
        return  # weave 0.51.59's SQLite server ignores the thread_ids/turn_ids filters
    in_thread = await stored(client, thread_ids=["conv-42"])
    assert [c.id for c in in_thread] == [turn1.id, child1.id, turn2.id, child2.id]
    assert [c.id for c in await stored(client, turn_ids=[turn2.id])] == [turn2.id, child2.id]
    assert await stored(client, thread_ids=["no-such-thread"]) == []


async def test_a_call_made_before_the_block_keeps_its_children_in_its_turn_lineage(
    client: AsyncWeaveClient,
) -> None:
    # A thread block opened inside a traced call: the inner calls' parent is outside
    # the thread, so each of them starts a turn (as weave decides it).
    @async_op
    async def session() -> None:
        with weave_client.thread("inner"):
            await chat("a")
            await chat("b")

    await session()
    calls = await stored(client)
    assert [short(c) for c in calls] == ["session", "chat", "lookup", "chat", "lookup"]
    root, t1, c1, t2, c2 = calls
    assert (root.thread_id, root.turn_id) == (None, None)
    assert [(c.thread_id, c.turn_id) for c in (t1, c1, t2, c2)] == [
        ("inner", t1.id),
        ("inner", t1.id),
        ("inner", t2.id),
        ("inner", t2.id),
    ]
    assert t1.parent_id == root.id


async def test_gathered_calls_in_a_block_are_separate_turns_and_nested_ones_share_one(
    client: AsyncWeaveClient,
) -> None:
    with weave_client.thread("other"):
        await chat("not in 'gathered'")
    with weave_client.thread("gathered"):
        # Three top-level calls side by side: three turns.
        await async_gather_bounded([lambda i=i: chat(str(i)) for i in range(3)], limit=3)
        # One call fanning out inside: one turn for it and its gathered children.
        await fan(3)
    calls = [c for c in await stored(client) if c.thread_id == "gathered"]
    turns = [c for c in calls if c.turn_id == c.id]
    assert sorted(short(c) for c in turns) == ["chat", "chat", "chat", "fan"]
    by_id = {c.id: c for c in calls}
    for call in calls:
        if call.turn_id != call.id:
            # A child: same turn as its parent, which is in this thread.
            assert call.turn_id == by_id[call.parent_id].turn_id  # type: ignore[index]
    fan_call = next(c for c in turns if short(c) == "fan")
    fan_children = [c for c in calls if c.parent_id == fan_call.id]
    assert len(fan_children) == 3
    assert {c.turn_id for c in fan_children} == {fan_call.id}


async def test_thread_none_clears_the_thread_and_no_id_makes_a_uuid7(
    client: AsyncWeaveClient,
) -> None:
    with weave_client.thread() as t:
        assert t.thread_id is not None
        assert uuid.UUID(t.thread_id).version == 7
        await chat("in")
        with weave_client.thread(None) as off:
            assert off.thread_id is None
            await chat("off")
        async with weave_client.thread("nested") as n:
            await chat("nested")
        assert n.thread_id == "nested"
        await chat("back")
    calls = await stored(client)
    turns = [c for c in calls if short(c) == "chat"]
    assert [c.thread_id for c in turns] == [t.thread_id, None, "nested", t.thread_id]
    assert [c.turn_id for c in turns] == [turns[0].id, None, turns[2].id, turns[3].id]


def test_thread_rejects_bad_ids() -> None:
    with pytest.raises(TypeError, match="thread\\(\\) takes a str id or None, got int"):
        weave_client.thread(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="empty"):
        weave_client.thread("")
    ctx = weave_client.thread("x")
    with ctx, pytest.raises(RuntimeError, match="already entered"):
        ctx.__enter__()


async def test_threads_figures(client: AsyncWeaveClient, server_kind: str) -> None:
    with weave_client.thread("alpha"):
        _, a1 = await chat.call("1")
        await chat("2")
        _, a3 = await chat.call("3")
    with weave_client.thread("beta"):
        _, b1 = await chat.call("1")
    with weave_client.thread(None):
        await chat("none")
    assert a1 is not None and a3 is not None and b1 is not None
    await client.flush()

    threads = await client.threads()
    # Newest activity first.
    assert [t.thread_id for t in threads] == ["beta", "alpha"]
    beta, alpha = threads
    assert (alpha.turn_count, alpha.first_turn_id, alpha.last_turn_id) == (3, a1.id, a3.id)
    assert (beta.turn_count, beta.first_turn_id, beta.last_turn_id) == (1, b1.id, b1.id)
    assert alpha.start_time == a1.started_at
    assert alpha.last_updated == a3.ended_at
    assert isinstance(alpha.start_time, datetime.datetime)
    if server_kind == "local":
        assert alpha.p50_turn_duration_ms is not None and alpha.p50_turn_duration_ms >= 0
        assert alpha.p99_turn_duration_ms is not None
        assert alpha.p99_turn_duration_ms >= alpha.p50_turn_duration_ms

    assert [t.thread_id for t in await client.threads(["alpha"])] == ["alpha"]
    assert [t.thread_id for t in await client.threads(limit=1)] == ["beta"]
    assert [t.thread_id for t in await client.threads(limit=1, offset=1)] == ["alpha"]
    assert [t.thread_id for t in await client.threads(sort_by="thread_id")] == ["alpha", "beta"]
    assert [t.thread_id for t in await client.threads(sort_by="-turn_count")] == ["alpha", "beta"]
    later = a3.started_at + datetime.timedelta(microseconds=1)  # type: ignore[operator]
    assert [t.thread_id for t in await client.threads(after=later)] == ["beta"]
    assert await client.threads(["nope"]) == []


async def test_threads_rejects_bad_arguments(local_client: AsyncWeaveClient) -> None:
    with pytest.raises(TypeError, match="thread_ids must be a list"):
        await local_client.threads("alpha")
    with pytest.raises(ValueError, match="limit must be a non-negative int"):
        await local_client.threads(limit=-1)
    with pytest.raises(ValueError, match="invalid threads\\(\\) sort_by field 'nope'"):
        await local_client.threads(sort_by="nope")
