"""The I/O-free tracing pieces: ids, records, summaries, op source and digests."""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

import pytest

import weave_client
from weave_client import attributes
from weave_client._digest import bytes_digest, json_digest
from weave_client._ids import generate_id
from weave_client._tracing import (
    CallFrame,
    current_attributes,
    encode_record,
    encode_value,
    exception_json,
    make_end,
    make_start,
    op_save,
    op_source,
    sanitize_name,
    sum_dict_leaves,
)


def test_ids_are_uuidv7_unique_and_increasing() -> None:
    ids = [generate_id() for _ in range(20_000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    parsed = uuid.UUID(ids[0])
    assert parsed.version == 7 and parsed.variant == uuid.RFC_4122


def test_ids_from_many_threads_are_unique() -> None:
    out: list[list[str]] = [[] for _ in range(4)]

    def work(i: int) -> None:
        out[i] = [generate_id() for _ in range(5_000)]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({i for chunk in out for i in chunk}) == 20_000


def test_records_encode_to_the_upsert_batch_items() -> None:
    parent = CallFrame("e/p", "weave:///e/p/op/a:d1", None)
    child = CallFrame("e/p", "weave:///e/p/op/b:d2", parent)
    child.inputs = {"x": 1}
    child.started_at = 0.5
    start = json.loads(encode_record(make_start(child, {"k": "v"})))
    assert start == {
        "mode": "start",
        "req": {
            "start": {
                "project_id": "e/p",
                "id": child.id,
                "op_name": "weave:///e/p/op/b:d2",
                "display_name": None,
                "trace_id": parent.trace_id,
                "parent_id": parent.id,
                "started_at": "1970-01-01T00:00:00.500000Z",
                "attributes": {"k": "v"},
                "inputs": {"x": 1},
            }
        },
    }
    end = json.loads(encode_record(make_end(child, float("nan"), None, None, 1.0)))
    assert end["req"]["end"]["output"] == "nan"  # not JSON: written as Python prints it
    assert end["req"]["end"]["summary"] == {"status_counts": {"success": 1, "error": 0}}
    assert parent.child_summaries == [{"status_counts": {"success": 1, "error": 0}}]


class Usage:
    def model_dump(self, exclude_unset: bool = False) -> dict[str, Any]:
        return {"prompt_tokens": 2, "total_tokens": 3}


class Completion:
    model = "m-obj"
    usage = Usage()


def test_usage_from_objects_and_roll_up() -> None:
    root = CallFrame("e/p", "op", None)
    a = CallFrame("e/p", "op", root)
    b = CallFrame("e/p", "op", root)
    make_end(a, None, Completion(), None, 1.0)
    make_end(b, None, {"model": "m-obj", "usage": {"prompt_tokens": 5}}, ValueError("x"), 1.0)
    summary = make_end(root, None, None, None, 1.0)[5]
    assert summary == {
        "usage": {"m-obj": {"requests": 2, "prompt_tokens": 7, "total_tokens": 3}},
        "status_counts": {"success": 2, "error": 1},
    }


def test_sum_dict_leaves_as_weave() -> None:
    assert sum_dict_leaves([{"a": 1, "n": {"x": 1.5}}, {"a": 2, "n": {"x": 1, "y": 2}}]) == {
        "a": 3,
        "n": {"x": 2.5, "y": 2},
    }


def test_exception_json_keeps_type_message_and_traceback() -> None:
    try:
        raise KeyError("missing")
    except KeyError as exc:
        recorded = json.loads(exception_json(exc))
    assert recorded["type"] == "KeyError" and recorded["message"] == "'missing'"
    assert recorded["traceback"][-1]["function_name"] == (
        "test_exception_json_keeps_type_message_and_traceback"
    )


def test_attributes_scopes_merge_and_reject_bad_keys() -> None:
    assert set(current_attributes()) == {"weave"}
    with attributes({"a": 1, "weave": {"mine": True}}):
        with attributes({"b": 2}):
            attrs = current_attributes()
    assert attrs["a"] == 1 and attrs["b"] == 2
    assert attrs["weave"]["mine"] is True and attrs["weave"]["source"] == "python-sdk"
    with pytest.raises(TypeError, match="keys must be str"), attributes({1: "x"}):  # type: ignore[dict-item]
        pass


def test_encode_value_fast_path_snapshots_and_redacts() -> None:
    value = {"a": 1, "b": "x"}
    encoded = encode_value(value)
    value["a"] = 2
    assert encoded == {"a": 1, "b": "x"}
    assert encode_value({"api_key": "secret"}) == {"api_key": "REDACTED"}
    assert "lock" in str(encode_value(threading.Lock())).lower()


def test_op_source_replaces_our_decorator() -> None:
    source = op_source(_decorated_sample.resolve_fn, "sample")
    assert source == (
        "import weave\n\n@keep\n@weave.op()\ndef _decorated_sample(x: int) -> int:\n"
        "    return x + 1\n"
    )
    save = op_save("e/p", "sample", source)
    assert save.val["files"]["obj.py"] == bytes_digest(source.encode())
    assert save.digest == json_digest(save.val)


def keep(fn: Any) -> Any:
    return fn


@keep
@weave_client.op(
    name="sample",
)
def _decorated_sample(x: int) -> int:
    return x + 1


def test_sanitize_name_as_weave() -> None:
    assert sanitize_name("My Op!") == "My-Op"
    assert sanitize_name("a..b") == "a-b"
    with pytest.raises(ValueError, match="invalid op name '!!'"):
        sanitize_name("!!")
