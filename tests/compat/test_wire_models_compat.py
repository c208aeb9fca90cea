"""Compat tier: our wire models against weave 0.51.59's own, field for field.

weave runs only in its pinned venv (``.venv-compat``), so a subprocess there
describes weave's models as JSON (fields, aliases, required-ness, defaults,
``extra``; TypedDict keys) and re-validates payloads our models dumped. This
test compares both with ours. A missing ``.venv-compat`` is a failure, not a skip.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, get_type_hints

import pydantic
import pytest
from pydantic_core import PydanticUndefined
from typing_extensions import is_typeddict

from tests.test_wire_models import (
    CALL_END,
    CALL_START,
    FEEDBACK_CREATE,
    NESTED_QUERY,
    PROJECT,
)
from weave_client import _models

from ._weave_side import compat_python, run_weave_side

pytestmark = pytest.mark.compat

# Runs under weave's venv. Reads {"models": [...], "payloads": [[name, json], ...]} on
# stdin; prints the description of each named weave model and each payload as weave
# re-dumps it (or the error weave raised).
_DESCRIBE_WEAVE = r"""
import json, sys
from typing import get_type_hints
from pydantic import BaseModel
from pydantic_core import PydanticUndefined
from typing_extensions import is_typeddict
from weave.trace_server import trace_server_interface as tsi
from weave.trace_server.interface import query as tsq
from weave.trace_server import trace_service

def lookup(name):
    for mod in (tsi, tsq, trace_service):
        if hasattr(mod, name):
            return getattr(mod, name)
    return None

def default_of(field):
    if field.default_factory is not None:
        return {"factory": field.default_factory()}
    if field.default is PydanticUndefined:
        return None
    return {"value": field.default}

def describe(cls):
    if cls is None:
        return None
    if isinstance(cls, type) and issubclass(cls, BaseModel):
        return {
            "kind": "model",
            "extra": cls.model_config.get("extra"),
            "fields": {
                name: {
                    "alias": f.alias,
                    "required": f.is_required(),
                    "default": default_of(f),
                    "exclude": bool(f.exclude),
                }
                for name, f in cls.model_fields.items()
            },
        }
    if is_typeddict(cls):
        return {
            "kind": "typeddict",
            "keys": sorted(get_type_hints(cls)),
            "required": sorted(cls.__required_keys__),
        }
    if isinstance(cls, type) and issubclass(cls, str):
        return {"kind": "str_enum", "values": sorted(m.value for m in cls)}
    return {"kind": "other"}

request = json.load(sys.stdin)
out = {"models": {}, "payloads": []}
for name in request["models"]:
    out["models"][name] = describe(lookup(name))
for name, payload in request["payloads"]:
    try:
        model = lookup(name).model_validate_json(payload)
        out["payloads"].append({"ok": model.model_dump(mode="json", by_alias=True)})
    except Exception as exc:
        out["payloads"].append({"error": f"{type(exc).__name__}: {exc}"})
json.dump(out, sys.stdout, default=str)
"""


def _our_named_types() -> dict[str, Any]:
    """Every model, TypedDict and enum we export (type aliases have no weave twin to diff)."""
    named: dict[str, Any] = {}
    for name in _models.__all__:
        obj = getattr(_models, name)
        if isinstance(obj, type) and (
            issubclass(obj, pydantic.BaseModel) or is_typeddict(obj) or issubclass(obj, str)
        ):
            named[name] = obj
    return named


def _default_of(field: Any) -> dict[str, Any] | None:
    if field.default_factory is not None:
        return {"factory": field.default_factory()}
    if field.default is PydanticUndefined:
        return None
    return {"value": field.default}


def _describe_ours(cls: Any) -> dict[str, Any]:
    if isinstance(cls, type) and issubclass(cls, pydantic.BaseModel):
        return {
            "kind": "model",
            "extra": cls.model_config.get("extra"),
            "fields": {
                name: {
                    "alias": f.alias,
                    "required": f.is_required(),
                    "default": _default_of(f),
                    "exclude": bool(f.exclude),
                }
                for name, f in cls.model_fields.items()
            },
        }
    if is_typeddict(cls):
        return {
            "kind": "typeddict",
            "keys": sorted(get_type_hints(cls)),
            "required": sorted(cls.__required_keys__),
        }
    return {"kind": "str_enum", "values": sorted(m.value for m in cls)}


# Payloads our models accept, to be re-validated by weave's models.
_PAYLOADS: list[tuple[str, dict[str, Any]]] = [
    ("CallStartReq", {"start": CALL_START}),
    ("CallEndReq", {"end": CALL_END}),
    (
        "CallCreateBatchReq",
        {
            "batch": [
                {"mode": "start", "req": {"start": CALL_START}},
                {"mode": "end", "req": {"end": CALL_END}},
            ]
        },
    ),
    (
        "CallsQueryReq",
        {
            "project_id": PROJECT,
            "filter": {"op_names": ["a"], "trace_roots_only": True},
            "sort_by": [{"field": "summary.weave.latency_ms", "direction": "desc"}],
            "query": NESTED_QUERY,
            "columns": ["id", "inputs.x"],
            "limit": 5,
        },
    ),
    ("CallsQueryStatsReq", {"project_id": PROJECT, "query": NESTED_QUERY}),
    (
        "TableUpdateReq",
        {
            "project_id": PROJECT,
            "base_digest": "d",
            "updates": [
                {"append": {"row": {"a": 1}}},
                {"pop": {"index": 0}},
                {"insert": {"index": 0, "row": {"b": [1, 2]}}},
            ],
        },
    ),
    (
        "ObjCreateReq",
        {"obj": {"project_id": PROJECT, "object_id": "m", "val": {"_type": "X", "a": [1]}}},
    ),
    ("FeedbackCreateReq", FEEDBACK_CREATE),
    (
        "CallsQueryRes",
        {
            "calls": [
                {
                    **CALL_START,
                    "ended_at": CALL_END["ended_at"],
                    "output": CALL_END["output"],
                    "summary": {
                        **CALL_END["summary"],
                        "weave": {"status": "success", "latency_ms": 100, "extra": [1]},
                    },
                }
            ]
        },
    ),
    (
        "ObjReadRes",
        {
            "obj": {
                "project_id": PROJECT,
                "object_id": "m",
                "created_at": "2025-03-04T05:06:07Z",
                "digest": "abc",
                "version_index": 2,
                "is_latest": 1,
                "kind": "op",
                "base_object_class": None,
                "val": {"_type": "CustomWeaveType", "files": {"obj.py": "d"}},
            }
        },
    ),
    ("TableCreateRes", {"digest": "d"}),
    (
        "ThreadsQueryReq",
        {
            "project_id": PROJECT,
            "filter": {"thread_ids": ["conv-42"], "after_datetime": "2025-01-01T00:00:00Z"},
            "limit": 10,
            "offset": 5,
            "sort_by": [{"field": "last_updated", "direction": "desc"}],
        },
    ),
    (
        "ThreadSchema",
        {
            "thread_id": "conv-42",
            "turn_count": 3,
            "start_time": "2025-01-01T00:00:00Z",
            "last_updated": "2025-01-01T00:00:22Z",
            "first_turn_id": "a1",
            "last_turn_id": "a3",
            "p50_turn_duration_ms": 2000.0,
            "p99_turn_duration_ms": None,
        },
    ),
    ("CallsFilter", {"thread_ids": ["conv-42"], "turn_ids": ["a1"]}),
    ("FeedbackReplaceReq", {**FEEDBACK_CREATE, "feedback_id": "f1"}),
    (
        "FeedbackPurgeReq",
        {
            "project_id": PROJECT,
            "query": {"$expr": {"$in": [{"$getField": "id"}, [{"$literal": "f1"}]]}},
        },
    ),
]


@pytest.fixture(scope="module")
def weave_side() -> dict[str, Any]:
    """weave's description of its models and its re-dump of our payloads (one subprocess)."""
    ours = {name: getattr(_models, name) for name, _ in _PAYLOADS}
    request = {
        "models": sorted(_our_named_types()),
        "payloads": [
            [name, ours[name].model_validate(body).model_dump_json()] for name, body in _PAYLOADS
        ],
    }
    return run_weave_side(
        _DESCRIBE_WEAVE, request, what="describing weave's models", timeout=120
    )


def test_every_exported_model_exists_in_weave(weave_side: dict[str, Any]) -> None:
    missing = [name for name, desc in weave_side["models"].items() if desc is None]
    assert missing == []
    assert len(weave_side["models"]) >= 90


@pytest.mark.parametrize("name", sorted(_our_named_types()))
def test_model_matches_weave(weave_side: dict[str, Any], name: str) -> None:
    ours = json.loads(json.dumps(_describe_ours(_our_named_types()[name]), default=str))
    theirs = weave_side["models"][name]
    assert theirs is not None, f"weave 0.51.59 has no {name}"
    assert ours == theirs


def test_payloads_dumped_by_our_models_are_read_back_identically_by_weave(
    weave_side: dict[str, Any],
) -> None:
    assert len(weave_side["payloads"]) == len(_PAYLOADS)
    for (name, body), theirs in zip(_PAYLOADS, weave_side["payloads"], strict=True):
        assert "error" not in theirs, f"weave rejected our {name}: {theirs.get('error')}"
        ours = getattr(_models, name).model_validate(body).model_dump(mode="json", by_alias=True)
        assert theirs["ok"] == ours, name


def test_missing_compat_venv_fails_and_says_to_bootstrap(tmp_path: Path) -> None:
    with pytest.raises(pytest.fail.Exception, match=r"run \./scripts/bootstrap"):
        compat_python(tmp_path / "no-such-venv" / "bin" / "python")


def test_weave_is_not_importable_here() -> None:
    # The comparison is only meaningful if weave comes from its own venv, never ours.
    with pytest.raises(ImportError):
        __import__("weave")
