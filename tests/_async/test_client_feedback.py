"""Feedback through the client and ``call.feedback``, against each real server."""

from __future__ import annotations

import datetime

import pytest

from weave_client import AsyncWeaveClient
from weave_client._async._call import AsyncCall as Call
from weave_client._ids import generate_id
from weave_client._models import CallCreateBatchReq


@pytest.fixture
async def call(client: AsyncWeaveClient) -> Call:
    call_id = generate_id()
    now = datetime.datetime.now(datetime.UTC).isoformat()
    start = {
        "project_id": client.project_id,
        "id": call_id,
        "op_name": "answer",
        "trace_id": generate_id(),
        "started_at": now,
        "attributes": {},
        "inputs": {"q": "?"},
    }
    end = {"project_id": client.project_id, "id": call_id, "ended_at": now, "output": "!",
           "summary": {}}
    await client._api.call_start_batch(
        CallCreateBatchReq.model_validate(
            {"batch": [{"mode": "start", "req": {"start": start}},
                       {"mode": "end", "req": {"end": end}}]}
        )
    )
    return await client.call(call_id)


async def test_reactions_notes_and_custom_feedback(client: AsyncWeaveClient, call: Call) -> None:
    thumbs = await call.feedback.add_reaction("👍")
    note = await call.feedback.add_note("looks right")
    custom = await client.feedback(call, "correctness", {"score": 0.9})
    assert len({thumbs, note, custom}) == 3

    items = await call.feedback.query()
    assert [(f.id, f.feedback_type) for f in items] == [
        (thumbs, "wandb.reaction.1"),
        (note, "wandb.note.1"),
        (custom, "correctness"),
    ]
    assert items[0].payload["emoji"] == "👍"
    assert items[1].payload == {"note": "looks right"}
    assert items[2].payload == {"score": 0.9}
    assert all(f.weave_ref == call.ref.uri() for f in items)

    assert [f.id for f in await client.feedback_query(reaction="👍")] == [thumbs]
    assert [f.id for f in await client.feedback_query(feedback_type="correctness")] == [custom]
    assert [f.id for f in await call.feedback.query(feedback_type="wandb.note.1")] == [note]
    assert len(await client.feedback_query(limit=2)) == 2
    assert [f.id for f in await client.feedback_query(limit=2, offset=1)] == [note, custom]
    by_expr = {"$eq": [{"$getField": "feedback_type"}, {"$literal": "correctness"}]}
    assert [f.id for f in await client.feedback_query(by_expr)] == [custom]
    assert [f.id for f in await client.feedback_query({"$expr": by_expr}, weave_ref=call)] == [
        custom
    ]


async def test_feedback_on_any_ref_and_by_uri(client: AsyncWeaveClient, call: Call) -> None:
    ref = await client.save({"answer": 42}, "answer")
    on_object = await client.feedback(ref, "review", {"ok": True})
    on_uri = await client.feedback(call.ref.uri(), "review", {"ok": False})
    assert [f.id for f in await client.feedback_query(weave_ref=ref)] == [on_object]
    assert [f.id for f in await client.feedback_query(weave_ref=call)] == [on_uri]


async def test_purge_by_id(client: AsyncWeaveClient, call: Call) -> None:
    keep = await call.feedback.add_note("keep")
    drop = await call.feedback.add_reaction("👎")
    drop_too = await client.feedback(call, "tmp", {})
    await call.feedback.purge(drop)
    assert [f.id for f in await call.feedback.query()] == [keep, drop_too]
    await client.feedback_purge([drop_too, keep])
    assert await call.feedback.query() == []


async def test_bad_feedback_is_refused(client: AsyncWeaveClient, call: Call) -> None:
    with pytest.raises(ValueError, match="reserved"):
        await client.feedback(call, "wandb.reaction.1", {"emoji": "x"})
    with pytest.raises(ValueError, match="non-empty"):
        await client.feedback(call, "", {})
    with pytest.raises(TypeError, match="payload must be a dict"):
        await client.feedback(call, "t", ["not", "a", "dict"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a weave ref"):
        await client.feedback("call-id-without-scheme", "t", {})
    assert await call.feedback.query() == []
