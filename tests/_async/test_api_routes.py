"""Every route of the API client once, typed, against real trace servers.

``server_url`` (tests/conftest.py) runs each test against our local server and,
as the compat tier, against weave's own reference server; ``project_id`` is
unique per test.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from weave_client import AsyncAPIClient, NotFoundError
from weave_client._models import (
    CallBatchEndMode,
    CallBatchStartMode,
    CallCreateBatchReq,
    CallCreateBatchRes,
    CallEndReq,
    CallEndRes,
    CallReadReq,
    CallReadRes,
    CallSchema,
    CallsDeleteReq,
    CallsFilter,
    CallsQueryReq,
    CallsQueryRes,
    CallsQueryStatsReq,
    CallStartReq,
    CallStartRes,
    CallUpdateReq,
    EndedCallSchemaForInsert,
    FeedbackCreateReq,
    FeedbackCreateRes,
    FeedbackPurgeReq,
    FeedbackQueryReq,
    FeedbackReplaceReq,
    FileContentReadReq,
    FileCreateReq,
    ObjCreateReq,
    ObjDeleteReq,
    ObjectVersionFilter,
    ObjQueryReq,
    ObjReadReq,
    ObjSchemaForInsert,
    Query,
    RefsReadBatchReq,
    ServerInfoRes,
    SortBy,
    StartedCallSchemaForInsert,
    TableAppendSpec,
    TableAppendSpecPayload,
    TableCreateReq,
    TableQueryReq,
    TableQueryStatsReq,
    TableRowSchema,
    TableSchemaForInsert,
    TableUpdateReq,
)


@pytest.fixture
def api_options() -> Iterator[dict[str, Any]]:
    # Real servers answer quickly; a short backoff keeps a failing test fast.
    yield {"max_retries": 1, "timeout": 30.0, "retry_delay": 0.01}


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def start_req(project_id: str, call_id: str, trace_id: str, **extra: Any) -> CallStartReq:
    return CallStartReq(
        start=StartedCallSchemaForInsert(
            project_id=project_id,
            id=call_id,
            trace_id=trace_id,
            op_name="my_op",
            started_at=now(),
            attributes={"weave": {"source": "tests"}},
            inputs={"x": 1, "y": None},
            **extra,
        )
    )


def end_req(project_id: str, call_id: str, output: Any = 42) -> CallEndReq:
    return CallEndReq(
        end=EndedCallSchemaForInsert(
            project_id=project_id, id=call_id, ended_at=now(), output=output, summary={}
        )
    )


def new_id() -> str:
    return str(uuid.uuid4())


async def test_health_and_server_info(server_url: str, api_options: dict[str, Any]) -> None:
    async with AsyncAPIClient(server_url, **api_options) as api:
        health = await api.health()
        info = await api.server_info()
    assert isinstance(health, dict)
    assert isinstance(info, ServerInfoRes)
    assert info.min_required_weave_python_version


async def test_call_start_end_read_update(
    server_url: str, project_id: str, api_options: dict[str, Any]
) -> None:
    call_id, trace_id = new_id(), new_id()
    async with AsyncAPIClient(server_url, **api_options) as api:
        started = await api.call_start(start_req(project_id, call_id, trace_id))
        assert isinstance(started, CallStartRes)
        assert (started.id, started.trace_id) == (call_id, trace_id)
        assert isinstance(await api.call_end(end_req(project_id, call_id)), CallEndRes)

        await api.call_update(
            CallUpdateReq(project_id=project_id, call_id=call_id, display_name="renamed")
        )
        read = await api.call_read(CallReadReq(project_id=project_id, id=call_id))
    assert isinstance(read, CallReadRes)
    assert isinstance(read.call, CallSchema)
    assert read.call.id == call_id
    assert read.call.trace_id == trace_id
    assert read.call.inputs == {"x": 1, "y": None}
    assert read.call.output == 42
    assert read.call.display_name == "renamed"
    assert read.call.ended_at is not None


async def test_call_read_of_a_missing_call(
    server_url: str, project_id: str, api_options: dict[str, Any]
) -> None:
    async with AsyncAPIClient(server_url, **api_options) as api:
        read = await api.call_read(CallReadReq(project_id=project_id, id=new_id()))
    assert read.call is None


async def test_call_start_batch_and_calls_queries(
    server_url: str, project_id: str, api_options: dict[str, Any]
) -> None:
    trace_id = new_id()
    ids = [new_id() for _ in range(5)]
    batch: list[CallBatchStartMode | CallBatchEndMode] = []
    for i, call_id in enumerate(ids):
        batch.append(CallBatchStartMode(req=start_req(project_id, call_id, trace_id)))
        batch.append(CallBatchEndMode(req=end_req(project_id, call_id, output=i)))
    async with AsyncAPIClient(server_url, **api_options) as api:
        res = await api.call_start_batch(CallCreateBatchReq(batch=batch))
        assert isinstance(res, CallCreateBatchRes)
        assert len(res.res) == 10

        query = CallsQueryReq(
            project_id=project_id,
            filter=CallsFilter(trace_ids=[trace_id]),
            sort_by=[SortBy(field="started_at", direction="asc")],
        )
        listed = await api.calls_query(query)
        assert isinstance(listed, CallsQueryRes)
        assert sorted(c.id for c in listed.calls) == sorted(ids)
        assert sorted(c.output for c in listed.calls) == [0, 1, 2, 3, 4]

        streamed: list[CallSchema] = []
        async with api.calls_query_stream(query) as stream:
            async for call in stream:
                streamed.append(call)
        assert [c.id for c in streamed] == [c.id for c in listed.calls]
        assert all(isinstance(c, CallSchema) for c in streamed)

        limited = await api.calls_query(query.model_copy(update={"limit": 2, "offset": 1}))
        assert [c.id for c in limited.calls] == [c.id for c in listed.calls][1:3]

        stats = await api.calls_query_stats(
            CallsQueryStatsReq(project_id=project_id, filter=CallsFilter(trace_ids=[trace_id]))
        )
        assert stats.count == 5


async def test_calls_query_with_expr(
    server_url: str, project_id: str, api_options: dict[str, Any]
) -> None:
    trace_id = new_id()
    ids = [new_id(), new_id()]
    async with AsyncAPIClient(server_url, **api_options) as api:
        for i, call_id in enumerate(ids):
            await api.call_start(start_req(project_id, call_id, trace_id))
            await api.call_end(end_req(project_id, call_id, output=i))
        query = Query.model_validate(
            {"$expr": {"$eq": [{"$getField": "id"}, {"$literal": ids[1]}]}}
        )
        res = await api.calls_query(CallsQueryReq(project_id=project_id, query=query))
    assert [c.id for c in res.calls] == [ids[1]]


async def test_calls_delete(server_url: str, project_id: str, api_options: dict[str, Any]) -> None:
    trace_id, parent, child = new_id(), new_id(), new_id()
    async with AsyncAPIClient(server_url, **api_options) as api:
        await api.call_start(start_req(project_id, parent, trace_id))
        await api.call_start(start_req(project_id, child, trace_id, parent_id=parent))
        await api.call_end(end_req(project_id, child))
        await api.call_end(end_req(project_id, parent))
        await api.calls_delete(CallsDeleteReq(project_id=project_id, call_ids=[parent]))
        left = await api.calls_query(
            CallsQueryReq(project_id=project_id, filter=CallsFilter(trace_ids=[trace_id]))
        )
    assert left.calls == []  # the child went with its parent


async def test_objects(server_url: str, project_id: str, api_options: dict[str, Any]) -> None:
    async with AsyncAPIClient(server_url, **api_options) as api:
        first = await api.obj_create(
            ObjCreateReq(
                obj=ObjSchemaForInsert(project_id=project_id, object_id="cfg", val={"a": 1})
            )
        )
        second = await api.obj_create(
            ObjCreateReq(
                obj=ObjSchemaForInsert(project_id=project_id, object_id="cfg", val={"a": 2})
            )
        )
        again = await api.obj_create(
            ObjCreateReq(
                obj=ObjSchemaForInsert(project_id=project_id, object_id="cfg", val={"a": 1})
            )
        )
        assert first.digest != second.digest
        assert again.digest == first.digest  # same content, same digest

        read = await api.obj_read(
            ObjReadReq(project_id=project_id, object_id="cfg", digest=first.digest)
        )
        assert read.obj.val == {"a": 1}
        assert read.obj.digest == first.digest
        latest = await api.obj_read(
            ObjReadReq(project_id=project_id, object_id="cfg", digest="latest")
        )
        assert latest.obj.digest == second.digest

        versions = await api.objs_query(
            ObjQueryReq(project_id=project_id, filter=ObjectVersionFilter(object_ids=["cfg"]))
        )
        assert sorted(o.version_index for o in versions.objs) == [0, 1]

        deleted = await api.obj_delete(
            ObjDeleteReq(project_id=project_id, object_id="cfg", digests=[second.digest])
        )
        assert deleted.num_deleted == 1
        with pytest.raises(NotFoundError) as info:
            await api.obj_read(
                ObjReadReq(project_id=project_id, object_id="cfg", digest=second.digest)
            )
        assert info.value.route == "/obj/read"


async def test_tables(server_url: str, project_id: str, api_options: dict[str, Any]) -> None:
    # Rows unique to this test: weave's reference SQLite server keys tables by digest
    # alone, so the same rows created in another project would not be found here.
    rows = [{"i": i, "text": f"row {i} of {project_id}"} for i in range(5)]
    async with AsyncAPIClient(server_url, **api_options) as api:
        created = await api.table_create(
            TableCreateReq(table=TableSchemaForInsert(project_id=project_id, rows=rows))
        )
        assert len(created.row_digests) == 5

        updated = await api.table_update(
            TableUpdateReq(
                project_id=project_id,
                base_digest=created.digest,
                updates=[TableAppendSpec(append=TableAppendSpecPayload(row={"i": 5, "text": "x"}))],
            )
        )
        assert updated.digest != created.digest

        queried = await api.table_query(TableQueryReq(project_id=project_id, digest=updated.digest))
        assert [r.val["i"] for r in queried.rows] == [0, 1, 2, 3, 4, 5]
        assert [r.digest for r in queried.rows][:5] == created.row_digests

        streamed: list[TableRowSchema] = []
        async for row in api.table_query_stream(
            TableQueryReq(project_id=project_id, digest=created.digest)
        ):
            streamed.append(row)
        assert [r.val for r in streamed] == rows

        stats = await api.table_query_stats(
            TableQueryStatsReq(project_id=project_id, digest=updated.digest)
        )
        assert stats.count == 6


async def test_refs_read_batch(
    server_url: str, project_id: str, api_options: dict[str, Any]
) -> None:
    async with AsyncAPIClient(server_url, **api_options) as api:
        made = await api.obj_create(
            ObjCreateReq(
                obj=ObjSchemaForInsert(
                    project_id=project_id, object_id="nested", val={"a": {"b": [10, 20]}}
                )
            )
        )
        ref = f"weave:///{project_id}/object/nested:{made.digest}"
        res = await api.refs_read_batch(RefsReadBatchReq(refs=[ref, ref + "/key/a"]))
    assert res.vals == [{"a": {"b": [10, 20]}}, {"b": [10, 20]}]


async def test_files(server_url: str, project_id: str, api_options: dict[str, Any]) -> None:
    content = b"def f(x):\n    return x + 1\n" + bytes(range(256))
    async with AsyncAPIClient(server_url, **api_options) as api:
        made = await api.file_create(
            FileCreateReq(project_id=project_id, name="obj.py", content=content)
        )
        assert made.digest
        read = await api.file_content_read(
            FileContentReadReq(project_id=project_id, digest=made.digest)
        )
    assert read.content == content


async def test_feedback(server_url: str, project_id: str, api_options: dict[str, Any]) -> None:
    call_id = new_id()
    ref = f"weave:///{project_id}/call/{call_id}"
    async with AsyncAPIClient(server_url, **api_options) as api:
        await api.call_start(start_req(project_id, call_id, new_id()))
        created = await api.feedback_create(
            FeedbackCreateReq(
                project_id=project_id,
                weave_ref=ref,
                feedback_type="wandb.note.1",
                payload={"note": "first"},
            )
        )
        assert isinstance(created, FeedbackCreateRes)

        replaced = await api.feedback_replace(
            FeedbackReplaceReq(
                project_id=project_id,
                feedback_id=created.id,
                weave_ref=ref,
                feedback_type="wandb.note.1",
                payload={"note": "second"},
            )
        )
        found = await api.feedback_query(FeedbackQueryReq(project_id=project_id))
        assert [(f["id"], f["payload"]) for f in found.result] == [
            (replaced.id, {"note": "second"})
        ]

        by_id = Query.model_validate(
            {"$expr": {"$eq": [{"$getField": "id"}, {"$literal": replaced.id}]}}
        )
        await api.feedback_purge(FeedbackPurgeReq(project_id=project_id, query=by_id))
        after = await api.feedback_query(FeedbackQueryReq(project_id=project_id))
    assert after.result == []
