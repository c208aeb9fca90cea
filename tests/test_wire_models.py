"""The wire models: JSON round trips of payloads as weave's client sends them,
aliases on the wire, unions resolved by key, and validation errors that name
the bad field."""

from __future__ import annotations

import datetime
import json
import warnings
from typing import Any

import pydantic
import pytest

from weave_client import _models
from weave_client._models import (
    AndOperation,
    CallBatchEndMode,
    CallBatchStartMode,
    CallCreateBatchReq,
    CallCreateBatchRes,
    CallEndRes,
    CallSchema,
    CallsFilter,
    CallsQueryReq,
    CallsQueryStatsReq,
    CallStartReq,
    CallStartRes,
    ContainsOperation,
    ConvertOperation,
    EndedCallSchemaForInsert,
    EqOperation,
    Feedback,
    FeedbackCreateReq,
    FeedbackCreateRes,
    FeedbackPurgeReq,
    FeedbackQueryReq,
    FeedbackReplaceReq,
    FeedbackReplaceRes,
    GetFieldOperator,
    GteOperation,
    GtOperation,
    InOperation,
    LiteralOperation,
    NotOperation,
    ObjCreateReq,
    ObjQueryReq,
    ObjReadRes,
    ObjSchemaForInsert,
    OrOperation,
    Query,
    RefsReadBatchRes,
    ServerInfoRes,
    SortBy,
    TableAppendSpec,
    TableCreateReq,
    TableCreateRes,
    TableInsertSpec,
    TablePopSpec,
    TableQueryReq,
    TableUpdateReq,
    TableUpdateRes,
    TraceStatus,
)

PROJECT = "my-entity/my-project"
OP_REF = f"weave:///{PROJECT}/op/my_async_function:MzTfW7cVBfRcGJhHqBnYm1P3fWnGZf5hYpfLGq9pXWY"

# A call start as weave 0.51.59's client sends it (weave_client.create_call).
CALL_START: dict[str, Any] = {
    "project_id": PROJECT,
    "id": "0192b5d4-9f0a-7c3e-8d2b-5a1f3e9c7b60",
    "op_name": OP_REF,
    "display_name": "Processing apple",
    "trace_id": "0192b5d4-9f0a-7c3e-8d2b-5a1f3e9c7b5f",
    "parent_id": None,
    "thread_id": None,
    "turn_id": None,
    "started_at": "2025-03-04T05:06:07.123456Z",
    "attributes": {
        "weave": {
            "client_version": "0.51.59",
            "source": "python-sdk",
            "sys_version": "3.11.7 (main, May  9 2026, 07:35:25) [GCC 12.2.0]",
            "os_name": "Linux",
            "os_version": "#1 SMP PREEMPT_DYNAMIC",
            "os_release": "6.1.0",
        },
        "env": "test",
    },
    "inputs": {"x": 5, "y": 3, "model": f"weave:///{PROJECT}/object/m:abc"},
    "wb_user_id": None,
    "wb_run_id": None,
    "wb_run_step": None,
}

CALL_END: dict[str, Any] = {
    "project_id": PROJECT,
    "id": CALL_START["id"],
    "ended_at": "2025-03-04T05:06:07.223456Z",
    "exception": None,
    "output": {"answer": 8, "items": [1, 2.5, "three", None, True]},
    "summary": {
        "usage": {"gpt-4o": {"requests": 1, "prompt_tokens": 10, "completion_tokens": 5}},
        "status_counts": {"success": 1, "error": 0},
        "custom_metric": {"nested": [1, 2]},
    },
}

# Every operator of the $expr language, nested.
NESTED_QUERY: dict[str, Any] = {
    "$expr": {
        "$and": [
            {"$eq": [{"$getField": "op_name"}, {"$literal": OP_REF}]},
            {
                "$or": [
                    {
                        "$gt": [
                            {"$convert": {"input": {"$getField": "inputs.x"}, "to": "int"}},
                            {"$literal": 3},
                        ]
                    },
                    {"$gte": [{"$getField": "summary.weave.latency_ms"}, {"$literal": 1.5}]},
                ]
            },
            {
                "$not": [
                    {
                        "$contains": {
                            "input": {"$getField": "display_name"},
                            "substr": {"$literal": "LLM"},
                            "case_insensitive": True,
                        }
                    }
                ]
            },
            {
                "$in": [
                    {"$getField": "attributes.env"},
                    [{"$literal": "test"}, {"$literal": "prod"}],
                ]
            },
            {"$eq": [{"$getField": "inputs.flag"}, {"$literal": True}]},
            {
                "$eq": [
                    {"$getField": "output"},
                    {"$literal": {"a": {"$literal": [{"$literal": 1}, {"$literal": None}]}}},
                ]
            },
            {"$convert": {"input": {"$getField": "exception"}, "to": "exists"}},
        ]
    }
}


def _error_locs(exc: pydantic.ValidationError) -> list[str]:
    return [".".join(str(part) for part in err["loc"]) for err in exc.errors()]


# --- calls -------------------------------------------------------------------


def test_call_start_round_trips_with_weave_attributes() -> None:
    req = CallStartReq.model_validate_json(json.dumps({"start": CALL_START}))

    start = req.start
    assert start.attributes["weave"]["source"] == "python-sdk"
    assert start.started_at == datetime.datetime(2025, 3, 4, 5, 6, 7, 123456, tzinfo=datetime.UTC)
    assert json.loads(req.model_dump_json()) == {"start": CALL_START}
    assert CallStartReq.model_validate_json(req.model_dump_json()) == req


def test_call_start_leaves_ids_to_the_server() -> None:
    minimal = {
        k: CALL_START[k] for k in ("project_id", "op_name", "started_at", "attributes", "inputs")
    }
    start = CallStartReq.model_validate({"start": minimal}).start
    assert start.id is None
    assert start.trace_id is None
    assert start.parent_id is None


def test_call_end_keeps_summary_keys_beyond_the_typed_dict() -> None:
    end = EndedCallSchemaForInsert.model_validate(CALL_END)
    assert end.summary["usage"]["gpt-4o"]["prompt_tokens"] == 10
    dumped = json.loads(end.model_dump_json())
    assert dumped == CALL_END
    assert dumped["summary"]["custom_metric"] == {"nested": [1, 2]}


def test_upsert_batch_body_round_trips_and_resolves_each_mode() -> None:
    body = {
        "batch": [
            {"mode": "start", "req": {"start": CALL_START}},
            {"mode": "end", "req": {"end": CALL_END}},
        ]
    }
    req = CallCreateBatchReq.model_validate_json(json.dumps(body))

    assert [type(item) for item in req.batch] == [CallBatchStartMode, CallBatchEndMode]
    assert json.loads(req.model_dump_json()) == body


def test_upsert_batch_item_without_mode_is_resolved_by_its_request() -> None:
    req = CallCreateBatchReq.model_validate(
        {"batch": [{"req": {"end": CALL_END}}, {"req": {"start": CALL_START}}]}
    )
    assert isinstance(req.batch[0], CallBatchEndMode)
    assert req.batch[0].mode == "end"
    assert isinstance(req.batch[1], CallBatchStartMode)


def test_upsert_batch_built_in_python_serializes_modes() -> None:
    req = CallCreateBatchReq(
        batch=[
            CallBatchStartMode(req=CallStartReq.model_validate({"start": CALL_START})),
        ]
    )
    assert json.loads(req.model_dump_json())["batch"][0]["mode"] == "start"


def test_upsert_batch_error_names_the_bad_item_and_field() -> None:
    broken_start = dict(CALL_START)
    del broken_start["op_name"]
    body = {
        "batch": [
            {"mode": "end", "req": {"end": CALL_END}},
            {"mode": "start", "req": {"start": broken_start}},
        ]
    }
    with pytest.raises(pydantic.ValidationError) as info:
        CallCreateBatchReq.model_validate(body)
    assert _error_locs(info.value) == ["batch.1.start.req.start.op_name"]


def test_upsert_batch_rejects_an_unknown_mode() -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        CallCreateBatchReq.model_validate({"batch": [{"mode": "restart", "req": {}}]})
    assert _error_locs(info.value) == ["batch.0"]
    assert "mode" in str(info.value)


def test_upsert_batch_result_tells_starts_from_ends() -> None:
    res = CallCreateBatchRes.model_validate({"res": [{"id": "a", "trace_id": "t"}, {}]})
    assert res.res == [CallStartRes(id="a", trace_id="t"), CallEndRes()]


def test_call_schema_tolerates_unknown_fields_and_keeps_derived_summary() -> None:
    payload = {
        **CALL_START,
        "ended_at": CALL_END["ended_at"],
        "output": 8,
        "summary": {
            "usage": {},
            "weave": {"status": "success", "latency_ms": 100, "trace_name": "my_async_function"},
        },
        "deleted_at": None,
        "a_field_from_a_newer_server": {"x": 1},
    }
    call = CallSchema.model_validate_json(json.dumps(payload))
    assert call.summary is not None
    weave_summary = call.summary["weave"]
    assert weave_summary is not None
    assert weave_summary["status"] is TraceStatus.SUCCESS
    assert weave_summary["latency_ms"] == 100
    dumped = json.loads(call.model_dump_json())
    assert "a_field_from_a_newer_server" not in dumped
    assert dumped["summary"]["weave"]["status"] == "success"
    assert dumped["attributes"] == CALL_START["attributes"]


def test_call_schema_missing_required_field_is_named() -> None:
    payload = dict(CALL_START)
    payload.pop("trace_id")
    with pytest.raises(pydantic.ValidationError) as info:
        CallSchema.model_validate(payload)
    assert _error_locs(info.value) == ["trace_id"]


# --- the query language --------------------------------------------------------


def test_nested_expr_query_round_trips_on_the_wire() -> None:
    req = CallsQueryReq.model_validate_json(
        json.dumps({"project_id": PROJECT, "query": NESTED_QUERY, "limit": 10})
    )
    assert req.query is not None
    expr = req.query.expr_
    assert isinstance(expr, AndOperation)
    kinds = [type(op) for op in expr.and_]
    assert kinds == [
        EqOperation,
        OrOperation,
        NotOperation,
        InOperation,
        EqOperation,
        EqOperation,
        ConvertOperation,
    ]
    or_op = expr.and_[1]
    assert isinstance(or_op, OrOperation)
    gt = or_op.or_[0]
    assert isinstance(gt, GtOperation)
    assert isinstance(gt.gt_[0], ConvertOperation)
    assert gt.gt_[0].convert_.to == "int"
    not_op = expr.and_[2]
    assert isinstance(not_op, NotOperation)
    assert isinstance(not_op.not_[0], ContainsOperation)
    assert not_op.not_[0].contains_.case_insensitive is True

    # A plain dump is already the wire form: aliases, not Python names.
    dumped = json.loads(req.model_dump_json())
    assert dumped["query"] == NESTED_QUERY
    assert json.loads(req.model_dump_json(by_alias=True))["query"] == NESTED_QUERY
    assert req.model_dump(mode="json", by_alias=True)["query"] == NESTED_QUERY


def test_literals_keep_their_json_types() -> None:
    values = [True, False, 1, 1.5, "1", None, [{"$literal": 2}]]
    for value in values:
        lit = LiteralOperation.model_validate({"$literal": value})
        dumped = json.loads(lit.model_dump_json())
        assert dumped == {"$literal": value}
        assert type(dumped["$literal"]) is type(value)


def test_query_built_from_python_names_serializes_with_aliases() -> None:
    query = Query(
        expr_=AndOperation(
            and_=[
                EqOperation(
                    eq_=(GetFieldOperator(get_field_="op_name"), LiteralOperation(literal_="x"))
                ),
                GteOperation(
                    gte_=(GetFieldOperator(get_field_="inputs.n"), LiteralOperation(literal_=2))
                ),
            ]
        )
    )
    req = CallsQueryStatsReq(project_id=PROJECT, query=query)
    assert json.loads(req.model_dump_json())["query"] == {
        "$expr": {
            "$and": [
                {"$eq": [{"$getField": "op_name"}, {"$literal": "x"}]},
                {"$gte": [{"$getField": "inputs.n"}, {"$literal": 2}]},
            ]
        }
    }


def test_operand_that_is_not_an_operator_is_named_with_its_path() -> None:
    bad = {"$expr": {"$and": [{"$eq": [{"$getField": "op_name"}, {"$lit": "x"}]}]}}
    with pytest.raises(pydantic.ValidationError) as info:
        CallsQueryReq.model_validate({"project_id": PROJECT, "query": bad})
    (loc,) = _error_locs(info.value)
    assert loc.startswith("query.$expr.")
    assert loc.endswith(".$eq.1")
    assert "$literal" in str(info.value)  # says what an operand looks like


def test_operand_with_a_wrong_type_is_named() -> None:
    bad = {"$expr": {"$gt": [{"$getField": 5}, {"$literal": 1}]}}
    with pytest.raises(pydantic.ValidationError) as info:
        Query.model_validate(bad)
    (loc,) = _error_locs(info.value)
    assert loc.endswith("$gt.0.$getField.$getField")


def test_expr_must_be_an_operation_not_a_bare_field() -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        Query.model_validate({"$expr": {"$getField": "op_name"}})
    assert _error_locs(info.value) == ["$expr"]


def test_query_forbids_unknown_top_level_keys() -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        Query.model_validate({"$expr": NESTED_QUERY["$expr"], "$where": "1"})
    assert _error_locs(info.value) == ["$where"]


def test_eq_needs_exactly_two_operands() -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        EqOperation.model_validate({"$eq": [{"$literal": 1}]})
    assert _error_locs(info.value) == ["$eq.1"]


def test_convert_rejects_an_unknown_target_type() -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        ConvertOperation.model_validate(
            {"$convert": {"input": {"$getField": "inputs.x"}, "to": "float"}}
        )
    assert _error_locs(info.value) == ["$convert.to"]


# --- filters and sorting -----------------------------------------------------------


def test_calls_filter_forbids_a_misspelt_field() -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        CallsQueryReq.model_validate({"project_id": PROJECT, "filter": {"op_name": ["x"]}})
    assert _error_locs(info.value) == ["filter.op_name"]


def test_sort_by_direction_must_be_asc_or_desc() -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        CallsQueryReq.model_validate(
            {"project_id": PROJECT, "sort_by": [{"field": "started_at", "direction": "down"}]}
        )
    assert _error_locs(info.value) == ["sort_by.0.direction"]


def test_calls_query_defaults_match_weave() -> None:
    req = CallsQueryReq(project_id=PROJECT)
    assert req.include_costs is False
    assert req.include_feedback is False
    assert req.return_expanded_column_values is True
    assert req.columns is None
    assert req.expand_columns is None


def test_calls_query_limit_of_wrong_type_is_named() -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        CallsQueryReq.model_validate({"project_id": PROJECT, "limit": "ten"})
    assert _error_locs(info.value) == ["limit"]


def test_calls_query_with_filter_sort_and_columns_round_trips() -> None:
    body = {
        "project_id": PROJECT,
        "filter": {"op_names": [OP_REF], "trace_roots_only": True},
        "limit": 100,
        "offset": 200,
        "sort_by": [
            {"field": "summary.weave.latency_ms", "direction": "desc"},
            {"field": "started_at", "direction": "asc"},
        ],
        "columns": ["id", "inputs.x", "summary"],
        "include_feedback": True,
    }
    req = CallsQueryReq.model_validate(body)
    assert req.filter == CallsFilter(op_names=[OP_REF], trace_roots_only=True)
    assert req.sort_by == [
        SortBy(field="summary.weave.latency_ms", direction="desc"),
        SortBy(field="started_at", direction="asc"),
    ]
    assert req.model_dump(exclude_unset=True) == body


# --- objects, tables, refs ----------------------------------------------------------


def test_obj_create_round_trips_a_custom_object() -> None:
    body = {
        "obj": {
            "project_id": PROJECT,
            "object_id": "my-object",
            "val": {
                "_type": "MyModel",
                "_class_name": "MyModel",
                "_bases": ["Object", "BaseModel"],
                "name": "x",
                "nested": f"weave:///{PROJECT}/object/other:abc",
            },
            "builtin_object_class": None,
            "wb_user_id": None,
        }
    }
    req = ObjCreateReq.model_validate_json(json.dumps(body))
    assert json.loads(req.model_dump_json()) == body


def test_legacy_set_base_object_class_is_folded_without_a_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        obj = ObjSchemaForInsert.model_validate(
            {"project_id": PROJECT, "object_id": "m", "val": {}, "set_base_object_class": "Model"}
        )
        dumped = obj.model_dump()
    assert obj.builtin_object_class == "Model"
    assert "set_base_object_class" not in dumped


def test_obj_read_response_tolerates_new_fields() -> None:
    res = ObjReadRes.model_validate(
        {
            "obj": {
                "project_id": PROJECT,
                "object_id": "m",
                "created_at": "2025-03-04T05:06:07Z",
                "digest": "abc",
                "version_index": 0,
                "is_latest": 1,
                "kind": "object",
                "base_object_class": None,
                "val": {"a": 1},
                "something_new": True,
            },
            "also_new": 1,
        }
    )
    assert res.obj.val == {"a": 1}
    assert res.obj.leaf_object_class is None


def test_obj_schema_requires_base_object_class_even_when_null() -> None:
    # weave declares it Optional but without a default: present, possibly null.
    with pytest.raises(pydantic.ValidationError) as info:
        ObjReadRes.model_validate(
            {
                "obj": {
                    "project_id": PROJECT,
                    "object_id": "m",
                    "created_at": "2025-03-04T05:06:07Z",
                    "digest": "abc",
                    "version_index": 0,
                    "is_latest": 1,
                    "kind": "object",
                    "val": None,
                }
            }
        )
    assert _error_locs(info.value) == ["obj.base_object_class"]


def test_objs_query_round_trips() -> None:
    body = {
        "project_id": PROJECT,
        "filter": {"object_ids": ["m"], "is_op": False, "latest_only": True},
        "sort_by": [{"field": "created_at", "direction": "desc"}],
        "limit": 5,
        "metadata_only": True,
    }
    assert ObjQueryReq.model_validate(body).model_dump(exclude_unset=True) == body


def test_table_create_round_trips_and_old_servers_omit_row_digests() -> None:
    body = {"table": {"project_id": PROJECT, "rows": [{"a": 1}, {"a": 2, "b": [1, 2]}]}}
    assert json.loads(TableCreateReq.model_validate_json(json.dumps(body)).model_dump_json()) == (
        body
    )
    assert TableCreateRes.model_validate({"digest": "d"}).row_digests == []
    assert TableUpdateRes.model_validate({"digest": "d"}).updated_row_digests == []


def test_table_update_with_append_pop_insert_round_trips() -> None:
    body = {
        "project_id": PROJECT,
        "base_digest": "tabledigest",
        "updates": [
            {"append": {"row": {"text": "hello", "label": 1}}},
            {"pop": {"index": 0}},
            {"insert": {"index": 1, "row": {"text": "inserted"}}},
        ],
    }
    req = TableUpdateReq.model_validate_json(json.dumps(body))
    assert [type(u) for u in req.updates] == [TableAppendSpec, TablePopSpec, TableInsertSpec]
    assert json.loads(req.model_dump_json()) == body


def test_table_update_unknown_operation_names_its_index() -> None:
    body = {
        "project_id": PROJECT,
        "base_digest": "d",
        "updates": [{"append": {"row": {}}}, {"remove": {"index": 0}}],
    }
    with pytest.raises(pydantic.ValidationError) as info:
        TableUpdateReq.model_validate(body)
    assert _error_locs(info.value) == ["updates.1"]
    assert "append, pop, insert" in str(info.value)


def test_table_update_bad_payload_names_the_field() -> None:
    body = {"project_id": PROJECT, "base_digest": "d", "updates": [{"pop": {"index": "first"}}]}
    with pytest.raises(pydantic.ValidationError) as info:
        TableUpdateReq.model_validate(body)
    assert _error_locs(info.value) == ["updates.0.pop.pop.index"]


def test_table_query_round_trips() -> None:
    body = {
        "project_id": PROJECT,
        "digest": "d",
        "filter": {"row_digests": ["r1", "r2"]},
        "limit": 10,
        "offset": 3,
        "sort_by": [{"field": "col.a", "direction": "asc"}],
    }
    assert TableQueryReq.model_validate(body).model_dump(exclude_unset=True) == body


def test_refs_read_batch_values_may_be_anything_or_null() -> None:
    res = RefsReadBatchRes.model_validate({"vals": [{"a": 1}, None, [1, 2], "s"]})
    assert res.vals == [{"a": 1}, None, [1, 2], "s"]


# --- feedback and service ------------------------------------------------------------


FEEDBACK_CREATE: dict[str, Any] = {
    "project_id": PROJECT,
    "weave_ref": f"weave:///{PROJECT}/call/{CALL_START['id']}",
    "creator": None,
    "feedback_type": "wandb.reaction.1",
    "payload": {"emoji": "👍", "detoned": "👍", "detoned_alias": ":thumbs_up:"},
    "annotation_ref": None,
    "runnable_ref": None,
    "call_ref": None,
    "trigger_ref": None,
    "wb_user_id": None,
}


def test_feedback_create_round_trips() -> None:
    req = FeedbackCreateReq.model_validate_json(json.dumps(FEEDBACK_CREATE, ensure_ascii=False))
    assert req.payload["emoji"] == "👍"
    assert json.loads(req.model_dump_json()) == FEEDBACK_CREATE


def test_feedback_create_missing_type_is_named() -> None:
    body = dict(FEEDBACK_CREATE)
    del body["feedback_type"]
    with pytest.raises(pydantic.ValidationError) as info:
        FeedbackCreateReq.model_validate(body)
    assert _error_locs(info.value) == ["feedback_type"]


def test_feedback_record_replace_and_purge() -> None:
    created = FeedbackCreateRes.model_validate(
        {"id": "f1", "created_at": "2025-03-04T05:06:07Z", "wb_user_id": "u", "payload": {}}
    )
    record = Feedback.model_validate(
        {**FEEDBACK_CREATE, "id": created.id, "created_at": "2025-03-04T05:06:07Z"}
    )
    assert isinstance(record, FeedbackCreateReq)
    replace = FeedbackReplaceReq.model_validate({**FEEDBACK_CREATE, "feedback_id": "f1"})
    assert replace.feedback_id == "f1"
    assert isinstance(FeedbackReplaceRes.model_validate(created.model_dump()), FeedbackCreateRes)

    purge = FeedbackPurgeReq.model_validate(
        {
            "project_id": PROJECT,
            "query": {"$expr": {"$eq": [{"$getField": "id"}, {"$literal": "f1"}]}},
        }
    )
    assert json.loads(purge.model_dump_json())["query"]["$expr"]["$eq"][1] == {"$literal": "f1"}
    with pytest.raises(pydantic.ValidationError) as info:
        FeedbackPurgeReq.model_validate({"project_id": PROJECT})
    assert _error_locs(info.value) == ["query"]


def test_feedback_query_with_fields_and_sort() -> None:
    body = {
        "project_id": PROJECT,
        "fields": ["id", "feedback_type", "payload.note"],
        "sort_by": [{"field": "created_at", "direction": "desc"}],
        "limit": 10,
    }
    assert FeedbackQueryReq.model_validate(body).model_dump(exclude_unset=True) == body


def test_server_info() -> None:
    info = ServerInfoRes.model_validate_json(
        '{"min_required_weave_python_version": "0.0.1", "new": 1}'
    )
    assert info.min_required_weave_python_version == "0.0.1"


# --- the module as a whole ------------------------------------------------------------


def test_all_exports_exist_and_models_have_docstrings() -> None:
    assert len(_models.__all__) == len(set(_models.__all__))
    for name in _models.__all__:
        obj = getattr(_models, name)
        if isinstance(obj, type) and issubclass(obj, pydantic.BaseModel):
            assert obj.__doc__ and obj.__doc__.strip(), f"{name} has no docstring"


def test_thread_models_as_weaves() -> None:
    # ThreadSchema's figures are required (nullable) fields, as in weave's interface.
    with pytest.raises(pydantic.ValidationError, match="p99_turn_duration_ms"):
        _models.ThreadSchema.model_validate(
            {
                "thread_id": "t",
                "turn_count": 1,
                "start_time": "2025-01-01T00:00:00Z",
                "last_updated": "2025-01-01T00:00:01Z",
                "first_turn_id": "a",
                "last_turn_id": "a",
                "p50_turn_duration_ms": 1000.0,
            }
        )
    req = _models.ThreadsQueryReq.model_validate(
        {"project_id": "e/p", "filter": {"thread_ids": ["t"]}, "sort_by": [
            {"field": "turn_count", "direction": "desc"}]}
    )
    assert json.loads(req.model_dump_json(exclude_none=True)) == {
        "project_id": "e/p",
        "filter": {"thread_ids": ["t"]},
        "sort_by": [{"field": "turn_count", "direction": "desc"}],
    }
    assert CallsFilter(thread_ids=["t"], turn_ids=["a"]).model_dump(exclude_none=True) == {
        "thread_ids": ["t"],
        "turn_ids": ["a"],
    }
