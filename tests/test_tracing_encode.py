"""Encoding of queued call records: the fast paths write what the plain encoder writes."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime

import pytest

from weave_client._tracing import (
    CallFrame,
    attributes,
    current_attributes,
    encode_body,
    encode_record,
    iso_timestamp,
    make_end,
    make_start,
    record_body,
)


def _reference(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.mark.parametrize(
    "seconds",
    [
        0.0,
        1.9999995,  # rounds up into the next second
        1.0000005,  # a half microsecond: rounded half to even, as datetime does
        1_700_000_000.9999996,
        1_700_000_000.0000005,
        1_700_000_000.123456,
        -0.5,
        -1.0000004,
    ],
)
def test_iso_timestamp_matches_datetime_at_the_edges(seconds: float) -> None:
    assert iso_timestamp(seconds) == _reference(seconds)


def test_iso_timestamp_matches_datetime_on_random_times() -> None:
    rng = random.Random(4)
    for _ in range(20_000):
        seconds = rng.uniform(-1e9, 4e9)
        assert iso_timestamp(seconds) == _reference(seconds), seconds
    # Consecutive records in the same second (the cached date part) and across it.
    base = 1_700_000_000.0
    for i in range(3000):
        seconds = base + i * 0.000937
        assert iso_timestamp(seconds) == _reference(seconds), seconds


def _start_record(attrs: dict[str, object]) -> tuple[object, ...]:
    frame = CallFrame("ent/proj", "weave:///ent/proj/op/f:abc", None)
    frame.inputs = {"x": 1, "text": 'quote " and \\ and }}}'}
    frame.started_at = 1_700_000_000.25
    return make_start(frame, attrs)


@pytest.mark.parametrize("scoped", [False, True])
def test_start_record_encodes_like_the_plain_encoder(scoped: bool) -> None:
    if scoped:
        with attributes({"env": "prod"}):
            record = _start_record(current_attributes())
    else:
        record = _start_record(current_attributes())
    encoded = json.loads(encode_record(record))
    plain = json.loads(encode_body("start", record_body(record)))
    assert encoded == plain
    start = encoded["req"]["start"]
    assert start["attributes"]["weave"]["source"] == "python-sdk"
    assert start["inputs"] == {"x": 1, "text": 'quote " and \\ and }}}'}
    assert start["started_at"] == "2023-11-14T22:13:20.250000Z"
    if scoped:
        assert start["attributes"]["env"] == "prod"


def test_end_record_encodes_like_the_plain_encoder() -> None:
    frame = CallFrame("ent/proj", "weave:///ent/proj/op/f:abc", None)
    record = make_end(frame, {"y": float("nan")}, None, None, 1_700_000_001.5)
    encoded = json.loads(encode_record(record))
    assert encoded == json.loads(encode_body("end", record_body(record)))
    assert encoded["req"]["end"]["output"] == {"y": "nan"}


@pytest.mark.parametrize("in_thread", [False, True])
def test_start_records_take_the_direct_path(
    in_thread: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every start record (inside a conversation thread too) is written directly:
    the general encoder, the slow path, is never reached for it."""
    from weave_client import _record_json
    from weave_client._conversation import thread

    if in_thread:
        with thread("conv-1"):
            record = _start_record(current_attributes())
    else:
        record = _start_record(current_attributes())
    plain = json.loads(encode_body("start", record_body(record)))

    def general_path(*args: object) -> bytes:
        raise AssertionError("the start record fell back to the general encoder")

    monkeypatch.setattr(_record_json, "encode_body", general_path)
    encoded = json.loads(encode_record(record))
    assert encoded == plain
    start = encoded["req"]["start"]
    if in_thread:
        assert start["thread_id"] == "conv-1" and start["turn_id"] == start["id"]
    else:
        assert "thread_id" not in start and "turn_id" not in start


@pytest.mark.parametrize("case", ["success", "error", "rolled_up", "usage"])
def test_end_records_take_the_direct_path(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """End records (the shared leaf summaries written from their cached text included)
    are written directly and match the general encoder."""
    from weave_client import _record_json

    parent = CallFrame("ent/proj", "weave:///ent/proj/op/f:abc", None)
    frame = CallFrame("ent/proj", "weave:///ent/proj/op/g:def", parent)
    output: object = 3
    error = None
    if case == "error":
        error = ValueError("bad")
    elif case == "rolled_up":
        child = CallFrame("ent/proj", "weave:///ent/proj/op/h:123", frame)
        make_end(child, 1, 1, None, 1_700_000_000.75)
        assert frame.child_summaries is not None and len(frame.child_summaries) == 1
    elif case == "usage":
        output = {"model": "m", "usage": {"prompt_tokens": 3}}
    record = make_end(frame, output, output, error, 1_700_000_001.5)
    plain = json.loads(encode_body("end", record_body(record)))

    def general_path(*args: object) -> bytes:
        raise AssertionError("the end record fell back to the general encoder")

    monkeypatch.setattr(_record_json, "encode_body", general_path)
    encoded = json.loads(encode_record(record))
    assert encoded == plain
    counts = encoded["req"]["end"]["summary"]["status_counts"]
    expected = {"error": {"success": 0, "error": 1}, "rolled_up": {"success": 2, "error": 0}}
    assert counts == expected.get(case, {"success": 1, "error": 0})
    # The parent got this call's summary (its list made by the first child to end).
    assert parent.child_summaries == [record[5]]


def test_repeated_attributes_are_written_from_the_cache() -> None:
    """A client's attributes= dict, on consecutive start records, and then a different
    dict: each record carries its own attributes."""
    client_attrs = {"team": "a", "weave": {"source": "python-sdk"}}
    first = json.loads(encode_record(_start_record(client_attrs)))
    second = json.loads(encode_record(_start_record(client_attrs)))
    other = json.loads(encode_record(_start_record({"team": "b"})))
    default = json.loads(encode_record(_start_record(current_attributes())))
    assert first["req"]["start"]["attributes"] == client_attrs
    assert second["req"]["start"]["attributes"] == client_attrs
    assert other["req"]["start"]["attributes"] == {"team": "b"}
    assert default["req"]["start"]["attributes"]["weave"]["source"] == "python-sdk"
    assert "team" not in default["req"]["start"]["attributes"]
