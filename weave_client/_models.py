"""Pydantic v2 wire models of the Weave trace server HTTP API.

Field-for-field compatible with ``weave==0.51.59``
(``weave/trace_server/trace_server_interface.py`` and ``interface/query.py``):
same class names, field names, defaults, aliases (``$expr``, ``$eq``, ...) and
``extra`` behaviour, so the client and the local server speak exactly what the
hosted service speaks. Shared by both client flavours and the server.

Conventions worth knowing:

- Request models ignore unknown fields, as weave's do, except ``CallsFilter``,
  ``SortBy`` and ``Query``, which forbid them (a typo in a filter must not
  silently widen a query). Response models ignore unknown fields, so a newer
  server that adds fields does not break an older client.
- The query-language models serialize by alias by default (``{"$eq": ...}``)
  and also accept their Python field names (``EqOperation(eq_=(a, b))``), so
  queries can be built in typed Python code.
- Unions that weave resolves by trial (query operands, batch items, table
  updates) are discriminated here by their key, which picks the same member
  weave picks but makes a validation error point at the one bad field instead
  of listing every member's complaints.
"""

from __future__ import annotations

import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_serializer,
    model_validator,
    with_config,
)
from typing_extensions import TypedDict  # pydantic needs this one before Python 3.12

__all__ = [
    "AndOperation",
    "CallBatchEndMode",
    "CallBatchItem",
    "CallBatchStartMode",
    "CallCreateBatchReq",
    "CallCreateBatchRes",
    "CallEndReq",
    "CallEndRes",
    "CallReadReq",
    "CallReadRes",
    "CallSchema",
    "CallStartReq",
    "CallStartRes",
    "CallUpdateReq",
    "CallUpdateRes",
    "CallsDeleteReq",
    "CallsDeleteRes",
    "CallsFilter",
    "CallsQueryReq",
    "CallsQueryRes",
    "CallsQueryStatsReq",
    "CallsQueryStatsRes",
    "CastTo",
    "ContainsOperation",
    "ContainsSpec",
    "ConvertOperation",
    "ConvertSpec",
    "CostCreateInput",
    "CostCreateReq",
    "CostCreateRes",
    "CostPurgeReq",
    "CostPurgeRes",
    "CostQueryOutput",
    "CostQueryReq",
    "CostQueryRes",
    "EndedCallSchemaForInsert",
    "EnsureProjectExistsRes",
    "EqOperation",
    "ExtraKeysTypedDict",
    "Feedback",
    "FeedbackCreateReq",
    "FeedbackCreateRes",
    "FeedbackDict",
    "FeedbackPurgeReq",
    "FeedbackPurgeRes",
    "FeedbackQueryReq",
    "FeedbackQueryRes",
    "FeedbackReplaceReq",
    "FeedbackReplaceRes",
    "FileContentReadReq",
    "FileContentReadRes",
    "FileCreateReq",
    "FileCreateRes",
    "GetFieldOperator",
    "GtOperation",
    "GteOperation",
    "InOperation",
    "LLMCostSchema",
    "LLMUsageSchema",
    "LiteralOperation",
    "NotOperation",
    "ObjCreateReq",
    "ObjCreateRes",
    "ObjDeleteReq",
    "ObjDeleteRes",
    "ObjQueryReq",
    "ObjQueryRes",
    "ObjReadReq",
    "ObjReadRes",
    "ObjSchema",
    "ObjSchemaForInsert",
    "ObjectVersionFilter",
    "Operand",
    "Operation",
    "OrOperation",
    "Query",
    "RefsReadBatchReq",
    "RefsReadBatchRes",
    "ServerInfoRes",
    "SortBy",
    "StartedCallSchemaForInsert",
    "SummaryInsertMap",
    "SummaryMap",
    "TableAppendSpec",
    "TableAppendSpecPayload",
    "TableCreateReq",
    "TableCreateRes",
    "TableInsertSpec",
    "TableInsertSpecPayload",
    "TablePopSpec",
    "TablePopSpecPayload",
    "TableQueryReq",
    "TableQueryRes",
    "TableQueryStatsReq",
    "TableQueryStatsRes",
    "TableRowFilter",
    "TableRowSchema",
    "TableSchemaForInsert",
    "TableUpdateReq",
    "TableUpdateRes",
    "TableUpdateSpec",
    "ThreadSchema",
    "ThreadsQueryFilter",
    "ThreadsQueryReq",
    "TraceStatus",
    "WeaveSummarySchema",
]


# ---------------------------------------------------------------------------
# The query language (weave's interface/query.py): a subset of MongoDB's
# aggregation operators plus ``$contains``.
# ---------------------------------------------------------------------------

# Every query model accepts both ``{"$eq": ...}`` (the wire) and ``eq_=...``
# (Python), and writes the wire form by default, so a plain ``model_dump_json()``
# is already correct. (Spelled out in each class: the mypy plugin reads only a
# literal ``ConfigDict(...)``.)


class LiteralOperation(BaseModel):
    """A constant JSON value: ``{"$literal": "predict"}``.

    Nested dicts and lists hold further literals:
    ``{"$literal": {"a": {"$literal": 1}}}``.
    """

    model_config = ConfigDict(validate_by_name=True, serialize_by_alias=True)

    literal_: (
        str | int | float | bool | dict[str, LiteralOperation] | list[LiteralOperation] | None
    ) = Field(alias="$literal")


class GetFieldOperator(BaseModel):
    """A field of the row, dot-separated for nested JSON: ``{"$getField": "inputs.x"}``."""

    model_config = ConfigDict(validate_by_name=True, serialize_by_alias=True)

    get_field_: str = Field(alias="$getField")


CastTo = Literal["double", "string", "int", "bool", "exists"]
"""The types ``$convert`` can cast to (``exists`` tests for presence)."""


class ConvertSpec(BaseModel):
    """The body of ``$convert``: the operand and the type to cast it to."""

    model_config = ConfigDict(validate_by_name=True, serialize_by_alias=True)

    input: Operand
    to: CastTo


class ConvertOperation(BaseModel):
    """Cast an operand: ``{"$convert": {"input": {...}, "to": "int"}}``."""

    model_config = ConfigDict(validate_by_name=True, serialize_by_alias=True)

    convert_: ConvertSpec = Field(alias="$convert")


class AndOperation(BaseModel):
    """Logical AND of every operand: ``{"$and": [...]}``."""

    model_config = ConfigDict(validate_by_name=True, serialize_by_alias=True)

    and_: list[Operand] = Field(alias="$and")


class OrOperation(BaseModel):
    """Logical OR of the operands: ``{"$or": [...]}``."""

    model_config = ConfigDict(validate_by_name=True, serialize_by_alias=True)

    or_: list[Operand] = Field(alias="$or")


class NotOperation(BaseModel):
    """Logical NOT of one operand: ``{"$not": [{...}]}``."""

    model_config = ConfigDict(validate_by_name=True, serialize_by_alias=True)

    not_: tuple[Operand] = Field(alias="$not")


class EqOperation(BaseModel):
    """Equality of two operands: ``{"$eq": [a, b]}``."""

    model_config = ConfigDict(validate_by_name=True, serialize_by_alias=True)

    eq_: tuple[Operand, Operand] = Field(alias="$eq")


class GtOperation(BaseModel):
    """``a > b``: ``{"$gt": [a, b]}``."""

    model_config = ConfigDict(validate_by_name=True, serialize_by_alias=True)

    gt_: tuple[Operand, Operand] = Field(alias="$gt")


class GteOperation(BaseModel):
    """``a >= b``: ``{"$gte": [a, b]}``."""

    model_config = ConfigDict(validate_by_name=True, serialize_by_alias=True)

    gte_: tuple[Operand, Operand] = Field(alias="$gte")


class InOperation(BaseModel):
    """Membership of the first operand in a list: ``{"$in": [a, [b, c]]}``."""

    model_config = ConfigDict(validate_by_name=True, serialize_by_alias=True)

    in_: tuple[Operand, list[Operand]] = Field(alias="$in")


class ContainsSpec(BaseModel):
    """The body of ``$contains``: substring ``substr`` in ``input``."""

    model_config = ConfigDict(validate_by_name=True, serialize_by_alias=True)

    input: Operand
    substr: Operand
    case_insensitive: bool | None = False


class ContainsOperation(BaseModel):
    """Substring match (a weave addition to the Mongo subset): ``{"$contains": {...}}``."""

    model_config = ConfigDict(validate_by_name=True, serialize_by_alias=True)

    contains_: ContainsSpec = Field(alias="$contains")


# Every operand model with its wire key and Python field name, in the order of
# weave's `Operand` union: when an object carries several operator keys, weave's
# smart union keeps the first member that validates, and so does the tag lookup.
_OPERAND_MODELS: tuple[tuple[str, str, type[BaseModel]], ...] = (
    ("$literal", "literal_", LiteralOperation),
    ("$getField", "get_field_", GetFieldOperator),
    ("$convert", "convert_", ConvertOperation),
    ("$and", "and_", AndOperation),
    ("$or", "or_", OrOperation),
    ("$not", "not_", NotOperation),
    ("$eq", "eq_", EqOperation),
    ("$gt", "gt_", GtOperation),
    ("$gte", "gte_", GteOperation),
    ("$in", "in_", InOperation),
    ("$contains", "contains_", ContainsOperation),
)
_OPERAND_TAG_BY_TYPE: dict[type[BaseModel], str] = {cls: key for key, _, cls in _OPERAND_MODELS}
_OPERATION_KEYS = ", ".join(key for key, _, _ in _OPERAND_MODELS[3:])


def _operand_tag(value: Any) -> str | None:
    """The operator key of a raw or already-built operand (None: not an operand)."""
    if isinstance(value, BaseModel):
        return _OPERAND_TAG_BY_TYPE.get(type(value))
    if isinstance(value, dict):
        for key, name, _ in _OPERAND_MODELS:
            if key in value or name in value:
                return key
    return None


Operation = Annotated[
    Annotated[AndOperation, Tag("$and")]
    | Annotated[OrOperation, Tag("$or")]
    | Annotated[NotOperation, Tag("$not")]
    | Annotated[EqOperation, Tag("$eq")]
    | Annotated[GtOperation, Tag("$gt")]
    | Annotated[GteOperation, Tag("$gte")]
    | Annotated[InOperation, Tag("$in")]
    | Annotated[ContainsOperation, Tag("$contains")],
    Discriminator(
        _operand_tag,
        custom_error_type="invalid_operation",
        custom_error_message=f"expected an operation: an object with one of {_OPERATION_KEYS}",
    ),
]
"""A boolean-valued operation (what ``$expr`` holds)."""

Operand = Annotated[
    Annotated[LiteralOperation, Tag("$literal")]
    | Annotated[GetFieldOperator, Tag("$getField")]
    | Annotated[ConvertOperation, Tag("$convert")]
    | Annotated[AndOperation, Tag("$and")]
    | Annotated[OrOperation, Tag("$or")]
    | Annotated[NotOperation, Tag("$not")]
    | Annotated[EqOperation, Tag("$eq")]
    | Annotated[GtOperation, Tag("$gt")]
    | Annotated[GteOperation, Tag("$gte")]
    | Annotated[InOperation, Tag("$in")]
    | Annotated[ContainsOperation, Tag("$contains")],
    Discriminator(
        _operand_tag,
        custom_error_type="invalid_operand",
        custom_error_message=(
            "expected an operand: an object with one of $literal, $getField, $convert, "
            + _OPERATION_KEYS
        ),
    ),
]
"""Anything an operation takes as an argument: a literal, a field, a cast or an operation."""


class Query(BaseModel):
    """The top level of a query: one boolean operation under ``$expr``.

    ``{"$expr": {"$eq": [{"$getField": "op_name"}, {"$literal": "predict"}]}}``
    """

    model_config = ConfigDict(extra="forbid", validate_by_name=True, serialize_by_alias=True)

    expr_: Operation = Field(alias="$expr")


for _model in (
    LiteralOperation,
    GetFieldOperator,
    ConvertSpec,
    ConvertOperation,
    AndOperation,
    OrOperation,
    NotOperation,
    EqOperation,
    GtOperation,
    GteOperation,
    InOperation,
    ContainsSpec,
    ContainsOperation,
    Query,
):
    _model.model_rebuild()  # resolve the recursive `Operand` references
del _model


# ---------------------------------------------------------------------------
# Summary and usage dictionaries (TypedDicts, as weave types them).
# ---------------------------------------------------------------------------


@with_config(ConfigDict(extra="allow"))
class ExtraKeysTypedDict(TypedDict):
    """Base of the summary TypedDicts: unknown keys are kept, not dropped."""


class LLMUsageSchema(TypedDict, total=False):
    """Token counts of one model within a call's ``summary.usage``."""

    prompt_tokens: int | None
    input_tokens: int | None
    completion_tokens: int | None
    output_tokens: int | None
    requests: int | None
    total_tokens: int | None


class LLMCostSchema(LLMUsageSchema):
    """Usage plus the costs a server computed for it (``include_costs``).

    Unlike the usage keys, weave declares every cost key required.
    """

    prompt_tokens_total_cost: float | None
    completion_tokens_total_cost: float | None
    prompt_token_cost: float | None
    completion_token_cost: float | None
    prompt_token_cost_unit: str | None
    completion_token_cost_unit: str | None
    effective_date: str | None
    provider_id: str | None
    pricing_level: str | None
    pricing_level_id: str | None
    created_at: str | None
    created_by: str | None


class FeedbackDict(TypedDict, total=False):
    """Feedback attached to a call in ``summary.weave.feedback`` (``include_feedback``)."""

    id: str
    feedback_type: str
    weave_ref: str
    payload: dict[str, Any]
    creator: str | None
    created_at: datetime.datetime | None
    wb_user_id: str | None


class TraceStatus(StrEnum):
    """The status a server derives for a call (``summary.weave.status``)."""

    SUCCESS = "success"
    ERROR = "error"
    RUNNING = "running"
    DESCENDANT_ERROR = "descendant_error"


class WeaveSummarySchema(ExtraKeysTypedDict, total=False):
    """``summary.weave``: derived by the server on read, never sent by the client."""

    status: TraceStatus | None
    trace_name: str | None
    latency_ms: int | None
    costs: dict[str, LLMCostSchema] | None
    feedback: list[FeedbackDict] | None


class SummaryInsertMap(ExtraKeysTypedDict, total=False):
    """The summary a client sends with a call end: usage per model, status counts, extras."""

    usage: dict[str, LLMUsageSchema]
    status_counts: dict[TraceStatus, int]


class SummaryMap(SummaryInsertMap, total=False):
    """The summary a server returns: what was sent plus the derived ``weave`` part."""

    weave: WeaveSummarySchema | None


# ---------------------------------------------------------------------------
# Calls
# ---------------------------------------------------------------------------


class CallSchema(BaseModel):
    """A call as the server returns it (``/call/read``, ``/calls/query``, streams)."""

    id: str
    project_id: str
    op_name: str
    display_name: str | None = None
    trace_id: str
    parent_id: str | None = None
    thread_id: str | None = None
    turn_id: str | None = None
    started_at: datetime.datetime
    attributes: dict[str, Any]
    inputs: dict[str, Any]
    ended_at: datetime.datetime | None = None
    exception: str | None = None
    output: Any | None = None
    summary: SummaryMap | None = None
    wb_user_id: str | None = None
    wb_run_id: str | None = None
    wb_run_step: int | None = None
    deleted_at: datetime.datetime | None = None
    storage_size_bytes: int | None = None
    total_storage_size_bytes: int | None = None

    @field_serializer("attributes", "summary", when_used="unless-none")
    def _dump_open_dicts(self, value: dict[str, Any]) -> dict[str, Any]:
        # Dump as the plain dict it is, so keys outside the TypedDict survive.
        return dict(value)


class StartedCallSchemaForInsert(BaseModel):
    """The start of a call as a client sends it; ``id`` and ``trace_id`` may be left to the server."""

    project_id: str
    id: str | None = None
    op_name: str
    display_name: str | None = None
    trace_id: str | None = None
    parent_id: str | None = None
    thread_id: str | None = None
    turn_id: str | None = None
    started_at: datetime.datetime
    attributes: dict[str, Any]
    inputs: dict[str, Any]
    wb_user_id: str | None = Field(
        None, description="Do not set directly. Server will automatically populate this field."
    )
    wb_run_id: str | None = None
    wb_run_step: int | None = None


class EndedCallSchemaForInsert(BaseModel):
    """The end of a call as a client sends it: output or exception, and the summary."""

    project_id: str
    id: str
    ended_at: datetime.datetime
    exception: str | None = None
    output: Any | None = None
    summary: SummaryInsertMap

    @field_serializer("summary")
    def _dump_summary(self, value: dict[str, Any]) -> dict[str, Any]:
        # Dump as the plain dict it is, so keys outside the TypedDict survive.
        return dict(value)


class CallStartReq(BaseModel):
    """Body of ``POST /call/start``."""

    start: StartedCallSchemaForInsert


class CallStartRes(BaseModel):
    """Reply to ``/call/start``: the call's id and trace id (generated when not sent)."""

    id: str
    trace_id: str


class CallEndReq(BaseModel):
    """Body of ``POST /call/end``."""

    end: EndedCallSchemaForInsert


class CallEndRes(BaseModel):
    """Reply to ``/call/end`` (empty)."""


class CallBatchStartMode(BaseModel):
    """A start record within ``/call/upsert_batch``: ``{"mode": "start", "req": {"start": ...}}``."""

    mode: str = "start"
    req: CallStartReq


class CallBatchEndMode(BaseModel):
    """An end record within ``/call/upsert_batch``: ``{"mode": "end", "req": {"end": ...}}``."""

    mode: str = "end"
    req: CallEndReq


def _batch_item_tag(value: Any) -> str | None:
    """``start`` or ``end``: by ``mode`` (as servers dispatch), else by the shape of ``req``."""
    if isinstance(value, CallBatchStartMode | CallBatchEndMode):
        return value.mode if value.mode in ("start", "end") else None
    if not isinstance(value, dict):
        return None
    mode = value.get("mode")
    if mode in ("start", "end"):
        return str(mode)
    req = value.get("req")
    if mode is None and isinstance(req, dict):
        if "start" in req:
            return "start"
        if "end" in req:
            return "end"
    return None


CallBatchItem = Annotated[
    Annotated[CallBatchStartMode, Tag("start")] | Annotated[CallBatchEndMode, Tag("end")],
    Discriminator(
        _batch_item_tag,
        custom_error_type="invalid_batch_item",
        custom_error_message='expected {"mode": "start", "req": {"start": ...}} '
        'or {"mode": "end", "req": {"end": ...}}',
    ),
]


class CallCreateBatchReq(BaseModel):
    """Body of ``POST /call/upsert_batch``: starts and ends, applied in order."""

    batch: list[CallBatchItem]


class CallCreateBatchRes(BaseModel):
    """Reply to ``/call/upsert_batch``: one result per item, in order."""

    res: list[CallStartRes | CallEndRes]


class CallReadReq(BaseModel):
    """Body of ``POST /call/read``."""

    project_id: str
    id: str
    include_costs: bool | None = False
    include_storage_size: bool | None = False
    include_total_storage_size: bool | None = False


class CallReadRes(BaseModel):
    """Reply to ``/call/read``; ``call`` is None when there is no such call."""

    call: CallSchema | None


class CallsDeleteReq(BaseModel):
    """Body of ``POST /calls/delete``: the calls (and, server-side, their descendants)."""

    project_id: str
    call_ids: list[str]
    wb_user_id: str | None = Field(
        None, description="Do not set directly. Server will automatically populate this field."
    )


class CallsDeleteRes(BaseModel):
    """Reply to ``/calls/delete`` (empty)."""


class CallsFilter(BaseModel):
    """Structured filter of ``/calls/query``; every given list narrows the result."""

    model_config = ConfigDict(extra="forbid")

    op_names: list[str] | None = None
    input_refs: list[str] | None = None
    output_refs: list[str] | None = None
    parent_ids: list[str] | None = None
    trace_ids: list[str] | None = None
    call_ids: list[str] | None = None
    thread_ids: list[str] | None = None
    turn_ids: list[str] | None = None
    trace_roots_only: bool | None = None
    wb_user_ids: list[str] | None = None
    wb_run_ids: list[str] | None = None


class SortBy(BaseModel):
    """One sort key: a top-level field or a dotted JSON path (``summary.weave.latency_ms``)."""

    model_config = ConfigDict(extra="forbid")

    field: str
    direction: Literal["asc", "desc"]


class CallsQueryReq(BaseModel):
    """Body of ``POST /calls/query`` and ``/calls/stream_query``."""

    project_id: str
    filter: CallsFilter | None = None
    limit: int | None = None
    offset: int | None = None
    sort_by: list[SortBy] | None = None
    query: Query | None = None
    include_costs: bool | None = False
    include_feedback: bool | None = False
    include_storage_size: bool | None = False
    include_total_storage_size: bool | None = False
    columns: list[str] | None = None
    expand_columns: list[str] | None = None
    return_expanded_column_values: bool | None = True


class CallsQueryRes(BaseModel):
    """Reply to ``/calls/query``."""

    calls: list[CallSchema]


class CallsQueryStatsReq(BaseModel):
    """Body of ``POST /calls/query_stats``: count the calls a query would return."""

    project_id: str
    filter: CallsFilter | None = None
    query: Query | None = None
    limit: int | None = None
    include_total_storage_size: bool | None = False
    expand_columns: list[str] | None = None


class CallsQueryStatsRes(BaseModel):
    """Reply to ``/calls/query_stats``."""

    count: int
    total_storage_size_bytes: int | None = None


class CallUpdateReq(BaseModel):
    """Body of ``POST /call/update``: today only the display name can change."""

    project_id: str
    call_id: str
    display_name: str | None = None
    wb_user_id: str | None = Field(
        None, description="Do not set directly. Server will automatically populate this field."
    )


class CallUpdateRes(BaseModel):
    """Reply to ``/call/update`` (empty)."""


# ---------------------------------------------------------------------------
# Threads (conversation threads: calls grouped by thread_id, one turn per top-level call)
# ---------------------------------------------------------------------------


class ThreadSchema(BaseModel):
    """One conversation thread as ``/threads/stream_query`` returns it (figures over its turns)."""

    thread_id: str
    turn_count: int
    """Turn calls (calls whose ``turn_id`` is their own id) in the thread."""
    start_time: datetime.datetime
    """Earliest start of a turn."""
    last_updated: datetime.datetime
    """Latest end of a turn."""
    first_turn_id: str | None
    """The turn that started first."""
    last_turn_id: str | None
    """The turn that ended last."""
    p50_turn_duration_ms: float | None
    """Median turn duration in milliseconds."""
    p99_turn_duration_ms: float | None
    """99th percentile turn duration in milliseconds."""


class ThreadsQueryFilter(BaseModel):
    """Filter of ``/threads/stream_query``."""

    after_datetime: datetime.datetime | None = None
    """Only threads whose turns started after this time."""
    before_datetime: datetime.datetime | None = None
    """Only threads whose turns started before this time."""
    thread_ids: list[str] | None = None
    """Only these threads."""


class ThreadsQueryReq(BaseModel):
    """Body of ``POST /threads/stream_query`` (the reply is JSONL of ``ThreadSchema``)."""

    project_id: str
    filter: ThreadsQueryFilter | None = None
    limit: int | None = None
    offset: int | None = None
    sort_by: list[SortBy] | None = None


# ---------------------------------------------------------------------------
# Objects
# ---------------------------------------------------------------------------


class ObjSchema(BaseModel):
    """One object version as the server returns it."""

    project_id: str
    object_id: str
    created_at: datetime.datetime
    deleted_at: datetime.datetime | None = None
    digest: str
    version_index: int
    is_latest: int
    kind: str
    base_object_class: str | None
    leaf_object_class: str | None = None
    val: Any
    wb_user_id: str | None = Field(
        None, description="Do not set directly. Server will automatically populate this field."
    )
    size_bytes: int | None = None


class ObjSchemaForInsert(BaseModel):
    """An object version to create; ``val`` is the encoded value."""

    project_id: str
    object_id: str
    val: Any
    builtin_object_class: str | None = None
    # Old UI clients still send this name; it is folded into builtin_object_class.
    set_base_object_class: str | None = Field(default=None, exclude=True, deprecated=True)
    wb_user_id: str | None = Field(
        None, description="Do not set directly. Server will automatically populate this field."
    )

    @model_validator(mode="after")
    def _fold_legacy_class(self) -> ObjSchemaForInsert:
        # Read through __dict__: the attribute itself warns that it is deprecated.
        legacy = self.__dict__.get("set_base_object_class")
        if legacy is not None and self.builtin_object_class is None:
            self.builtin_object_class = legacy
        return self


class ObjCreateReq(BaseModel):
    """Body of ``POST /obj/create``."""

    obj: ObjSchemaForInsert


class ObjCreateRes(BaseModel):
    """Reply to ``/obj/create``: the digest of the (new or existing) version."""

    digest: str


class ObjReadReq(BaseModel):
    """Body of ``POST /obj/read``; ``digest`` may be a digest, ``latest`` or ``v{N}``."""

    project_id: str
    object_id: str
    digest: str
    metadata_only: bool | None = False


class ObjReadRes(BaseModel):
    """Reply to ``/obj/read``."""

    obj: ObjSchema


class ObjectVersionFilter(BaseModel):
    """Filter of ``/objs/query``."""

    base_object_classes: list[str] | None = None
    leaf_object_classes: list[str] | None = None
    object_ids: list[str] | None = None
    is_op: bool | None = None
    latest_only: bool | None = None


class ObjQueryReq(BaseModel):
    """Body of ``POST /objs/query``; sort by ``object_id`` or ``created_at``."""

    project_id: str
    filter: ObjectVersionFilter | None = None
    limit: int | None = None
    offset: int | None = None
    sort_by: list[SortBy] | None = None
    metadata_only: bool | None = False
    include_storage_size: bool | None = False


class ObjQueryRes(BaseModel):
    """Reply to ``/objs/query``."""

    objs: list[ObjSchema]


class ObjDeleteReq(BaseModel):
    """Body of ``POST /obj/delete``; no ``digests`` deletes every version."""

    project_id: str
    object_id: str
    digests: list[str] | None = None


class ObjDeleteRes(BaseModel):
    """Reply to ``/obj/delete``: how many versions were deleted."""

    num_deleted: int


# ---------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------


class TableSchemaForInsert(BaseModel):
    """A table to create: its rows, in order."""

    project_id: str
    rows: list[dict[str, Any]]


class TableCreateReq(BaseModel):
    """Body of ``POST /table/create``."""

    table: TableSchemaForInsert


class TableCreateRes(BaseModel):
    """Reply to ``/table/create``: the table digest and each row's digest."""

    digest: str
    # Older servers omit it, hence the default.
    row_digests: list[str] = Field(default_factory=list)


class TableAppendSpecPayload(BaseModel):
    """The row to append."""

    row: dict[str, Any]


class TableAppendSpec(BaseModel):
    """Append a row: ``{"append": {"row": {...}}}``."""

    append: TableAppendSpecPayload


class TablePopSpecPayload(BaseModel):
    """The index of the row to remove."""

    index: int


class TablePopSpec(BaseModel):
    """Remove a row: ``{"pop": {"index": 3}}``."""

    pop: TablePopSpecPayload


class TableInsertSpecPayload(BaseModel):
    """Where to insert, and the row."""

    index: int
    row: dict[str, Any]


class TableInsertSpec(BaseModel):
    """Insert a row before ``index``: ``{"insert": {"index": 0, "row": {...}}}``."""

    insert: TableInsertSpecPayload


_TABLE_UPDATE_KEYS: tuple[tuple[str, type[BaseModel]], ...] = (
    ("append", TableAppendSpec),
    ("pop", TablePopSpec),
    ("insert", TableInsertSpec),
)


def _table_update_tag(value: Any) -> str | None:
    """The operation key of a raw or built table update (None: not an update)."""
    for key, cls in _TABLE_UPDATE_KEYS:
        if isinstance(value, cls) or (isinstance(value, dict) and key in value):
            return key
    return None


TableUpdateSpec = Annotated[
    Annotated[TableAppendSpec, Tag("append")]
    | Annotated[TablePopSpec, Tag("pop")]
    | Annotated[TableInsertSpec, Tag("insert")],
    Discriminator(
        _table_update_tag,
        custom_error_type="invalid_table_update",
        custom_error_message="expected an object with one of append, pop, insert",
    ),
]
"""One table edit: ``TableAppendSpec``, ``TablePopSpec`` or ``TableInsertSpec``."""


class TableUpdateReq(BaseModel):
    """Body of ``POST /table/update``: edits applied in order to ``base_digest``."""

    project_id: str
    base_digest: str
    updates: list[TableUpdateSpec]


class TableUpdateRes(BaseModel):
    """Reply to ``/table/update``: the new table digest and the digests of rows written."""

    digest: str
    # Older servers omit it, hence the default.
    updated_row_digests: list[str] = Field(default_factory=list)


class TableRowSchema(BaseModel):
    """One table row as the server returns it."""

    digest: str
    val: Any
    original_index: int | None = None


class TableRowFilter(BaseModel):
    """Filter of ``/table/query``: only these rows."""

    row_digests: list[str] | None = None


class TableQueryReq(BaseModel):
    """Body of ``POST /table/query`` and ``/table/query_stream``."""

    project_id: str
    digest: str
    filter: TableRowFilter | None = None
    limit: int | None = None
    offset: int | None = None
    sort_by: list[SortBy] | None = None


class TableQueryRes(BaseModel):
    """Reply to ``/table/query``."""

    rows: list[TableRowSchema]


class TableQueryStatsReq(BaseModel):
    """Body of ``POST /table/query_stats``."""

    project_id: str
    digest: str


class TableQueryStatsRes(BaseModel):
    """Reply to ``/table/query_stats``: the number of rows."""

    count: int


# ---------------------------------------------------------------------------
# Refs and files
# ---------------------------------------------------------------------------


class RefsReadBatchReq(BaseModel):
    """Body of ``POST /refs/read_batch``: ``weave:///`` URIs to resolve."""

    refs: list[str]


class RefsReadBatchRes(BaseModel):
    """Reply to ``/refs/read_batch``: one value per ref, in order (None when missing)."""

    vals: list[Any]


class FileCreateReq(BaseModel):
    """A file to store; sent to ``/file/create`` as multipart (``project_id``, ``file``)."""

    project_id: str
    name: str
    content: bytes


class FileCreateRes(BaseModel):
    """Reply to ``/file/create``: the digest of the content."""

    digest: str


class FileContentReadReq(BaseModel):
    """Body of ``POST /file/content``."""

    project_id: str
    digest: str


class FileContentReadRes(BaseModel):
    """The file's bytes (``/file/content`` replies with the raw octet stream)."""

    content: bytes


# ---------------------------------------------------------------------------
# Feedback
# ---------------------------------------------------------------------------


class FeedbackCreateReq(BaseModel):
    """Body of ``POST /feedback/create``: feedback of any type on a ref."""

    project_id: str
    weave_ref: str
    creator: str | None = None
    feedback_type: str
    payload: dict[str, Any]
    annotation_ref: str | None = None
    runnable_ref: str | None = None
    call_ref: str | None = None
    trigger_ref: str | None = None
    wb_user_id: str | None = Field(
        None, description="Do not set directly. Server will automatically populate this field."
    )


class FeedbackCreateRes(BaseModel):
    """Reply to ``/feedback/create``: what the server filled in (a non-empty payload replaces)."""

    id: str
    created_at: datetime.datetime
    wb_user_id: str
    payload: dict[str, Any]


# Newer weave's ``/feedback/batch/create`` (the hosted service has it; weave 0.51.59 has
# neither the route nor these models, so they stay out of ``__all__``, which the compat
# tier checks against 0.51.59).
class FeedbackCreateBatchReq(BaseModel):
    """Body of ``POST /feedback/batch/create``: several feedback records at once."""

    batch: list[FeedbackCreateReq]


class FeedbackCreateBatchRes(BaseModel):
    """Reply to ``/feedback/batch/create``: one ``FeedbackCreateRes`` per item, in order."""

    res: list[FeedbackCreateRes]


class Feedback(FeedbackCreateReq):
    """A stored feedback record."""

    id: str
    created_at: datetime.datetime


class FeedbackQueryReq(BaseModel):
    """Body of ``POST /feedback/query``; ``fields`` may name dotted payload paths."""

    project_id: str
    fields: list[str] | None = None
    query: Query | None = None
    sort_by: list[SortBy] | None = None
    limit: int | None = None
    offset: int | None = None


class FeedbackQueryRes(BaseModel):
    """Reply to ``/feedback/query``: dicts, since only the requested fields are returned."""

    result: list[dict[str, Any]]


class FeedbackPurgeReq(BaseModel):
    """Body of ``POST /feedback/purge``: delete the feedback matching ``query``."""

    project_id: str
    query: Query


class FeedbackPurgeRes(BaseModel):
    """Reply to ``/feedback/purge`` (empty)."""


class FeedbackReplaceReq(FeedbackCreateReq):
    """Body of ``POST /feedback/replace``: a new record in place of ``feedback_id``."""

    feedback_id: str


class FeedbackReplaceRes(FeedbackCreateRes):
    """Reply to ``/feedback/replace``."""


# ---------------------------------------------------------------------------
# Service
# ---------------------------------------------------------------------------


class ServerInfoRes(BaseModel):
    """Reply to ``GET /server_info``."""

    min_required_weave_python_version: str


class EnsureProjectExistsRes(BaseModel):
    """Result of making sure a project exists (hosted service only)."""

    project_name: str


# --- costs (/cost/create, /cost/query, /cost/purge) ----------------------------


class CostCreateInput(BaseModel):
    """One model's token prices (USD per token unless the units say otherwise)."""

    prompt_token_cost: float
    completion_token_cost: float
    prompt_token_cost_unit: str | None = "USD"
    completion_token_cost_unit: str | None = "USD"
    effective_date: datetime.datetime | None = None
    """From when the price applies; the server's current time when absent."""
    provider_id: str | None = None
    """The provider (``openai``, ``anthropic``, ...); ``default`` when absent."""


class CostCreateReq(BaseModel):
    """Body of ``POST /cost/create``: prices by model id (``llm_id``)."""

    project_id: str
    costs: dict[str, CostCreateInput]
    wb_user_id: str | None = None


class CostCreateRes(BaseModel):
    """Reply to ``/cost/create``: ``(llm_id, cost id)`` pairs."""

    ids: list[tuple[str, str]]


class CostQueryReq(BaseModel):
    """Body of ``POST /cost/query``: the project's prices matching ``query``."""

    project_id: str
    fields: list[str] | None = None
    query: Query | None = None
    sort_by: list[SortBy] | None = None
    limit: int | None = None
    offset: int | None = None


class CostQueryOutput(BaseModel):
    """One stored price (only the requested ``fields`` are set)."""

    id: str | None = None
    llm_id: str | None = None
    prompt_token_cost: float | None = None
    completion_token_cost: float | None = None
    prompt_token_cost_unit: str | None = None
    completion_token_cost_unit: str | None = None
    effective_date: datetime.datetime | None = None
    provider_id: str | None = None


class CostQueryRes(BaseModel):
    """Reply to ``/cost/query``."""

    results: list[CostQueryOutput]


class CostPurgeReq(BaseModel):
    """Body of ``POST /cost/purge``: delete prices by id (``$eq``/``$in`` on ``id``)."""

    project_id: str
    query: Query


class CostPurgeRes(BaseModel):
    """Reply to ``/cost/purge`` (empty)."""
