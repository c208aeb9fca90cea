"""Bad input (issue 6): hostile values never break a traced call; malformed
arguments fail at the call site, naming the bad part, before anything is sent."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.faultserver import FaultServer
from tests.reliability.helpers import stored_calls
from weave_client import (
    InvalidNameError,
    InvalidRefError,
    UnsaveableValueError,
    async_op,
)
from weave_client._async._client import AsyncWeaveClient


class BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("repr refused")


def nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def cycle() -> list[Any]:
    value: list[Any] = []
    value.append(value)
    return value


def hostile_values() -> dict[str, Any]:
    return {
        "unencodable": object(),
        "bad_repr": BadRepr(),
        "cycle": cycle(),
        "non_str_keys": {(1, 2): "a", 3: "b", None: "c"},
        "huge": "x" * 5_000_000,
        "deep": nested(3000),
        "nan": float("nan"),
        "set": {1, 2},
    }


@async_op
async def rel_identity(value: Any) -> Any:
    return value


async def test_hostile_op_inputs_and_outputs_are_recorded_visibly(
    upstream_url: str, entity: str, project: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="weave_client")
    values = hostile_values()
    async with AsyncWeaveClient(entity, project, server_url=upstream_url) as client:
        for value in values.values():
            # The user's value comes back untouched: no exception, no copy.
            assert await rel_identity(value) is value
        result = await client.flush(timeout=60)
    assert result.pending == 0 and result.failed == 0, result
    stored = {c["started_at"]: c for c in stored_calls(upstream_url, f"{entity}/{project}")}
    calls = [stored[k] for k in sorted(stored)]
    assert len(calls) == len(values)
    recorded = dict(zip(values, calls, strict=True))
    for name, call in recorded.items():
        assert call["ended_at"] is not None, name
        assert list(call["inputs"]) == ["value"], (name, call["inputs"])
    inputs = {name: call["inputs"]["value"] for name, call in recorded.items()}
    outputs = {name: call["output"] for name, call in recorded.items()}
    for shown in (inputs, outputs):
        assert shown["unencodable"].startswith("<object object at 0x")
        assert shown["bad_repr"].startswith("<BadRepr")  # a fallback even for a failing repr
        assert shown["cycle"] == ["<cycle: list>"]
        assert shown["non_str_keys"] == {"(1, 2)": "a", "3": "b", "null": "c"}
        assert shown["huge"].startswith("<weave_client: value truncated, 5000002 bytes")
        depth, inner = 0, shown["deep"]
        while isinstance(inner, list):
            depth, inner = depth + 1, inner[0]
        assert inner == "<too deep: list>" and depth < 3000
        assert shown["nan"] is None
        assert shown["set"] == "{1, 2}"
    # The truncation was said out loud; nothing failed in the background.
    assert "truncation marker" in caplog.text
    assert "sender failed" not in caplog.text and "not stored" not in caplog.text


@pytest.fixture
def recorder() -> Iterator[FaultServer]:
    """A server that records every request (and answers 200 {}), to prove none was sent."""
    with FaultServer() as server:
        yield server


async def test_unsaveable_values_fail_at_save_naming_the_path(
    recorder: FaultServer, entity: str, project: str
) -> None:
    async with AsyncWeaveClient(entity, project, server_url=recorder.url) as client:
        cases: dict[str, tuple[Any, str]] = {
            "cycle": ({"a": cycle()}, 'obj["a"][0]'),
            "non_str_keys": ({"a": {(1, 2): 1}}, "key (1, 2) has type tuple"),
            "unencodable": ({"a": [1, object()]}, 'obj["a"][1]'),
            "deep": (nested(5000), "obj[0][0]"),
        }
        for name, (value, where) in cases.items():
            with pytest.raises(UnsaveableValueError) as info:
                await client.save(value, f"rel-{name}")
            assert where in str(info.value), (name, str(info.value)[:300])
    assert recorder.requests == []


def _bad_calls(
    client: AsyncWeaveClient,
) -> dict[str, tuple[Callable[[], Any], Any, str]]:
    """name -> (the call, the exception type, a part of the message naming the bad part)."""
    return {
        "ref without digest": (
            lambda: client.get("weave:///e/p/object/"),
            InvalidRefError,
            "missing name:digest",
        ),
        "ref of unknown kind": (
            lambda: client.get("weave:///e/p/bogus/x:1"),
            InvalidRefError,
            "unknown kind 'bogus'",
        ),
        "not a ref": (lambda: client.get("not a ref"), InvalidRefError, "'not a ref'"),
        "name with slash": (
            lambda: client.save({"a": 1}, "bad/name"),
            InvalidNameError,
            "'bad/name'",
        ),
        "empty name": (lambda: client.save({"a": 1}, ""), InvalidNameError, "empty"),
        "table name": (lambda: client.table("a:b", [{"x": 1}]), InvalidNameError, "'a:b'"),
        "unknown filter field": (
            lambda: client.calls(filter={"bogus": 1}),
            TypeError,
            "'bogus'",
        ),
        "filter value": (
            lambda: client.calls(trace_roots_only="maybe"),
            ValueError,
            "trace_roots_only",
        ),
        "op name": (lambda: client.calls(op_names=[3]), ValueError, "got 3"),
        "empty sort field": (lambda: client.calls(sort_by=""), ValueError, "sort_by entry ''"),
        "sort direction": (
            lambda: client.calls(sort_by={"field": "started_at", "direction": "up"}),
            ValueError,
            "'up'",
        ),
        "misspelt direction": (
            lambda: client.calls(sort_by="started_at sideways"),
            ValueError,
            "'started_at sideways'",
        ),
        "unknown sort field": (
            lambda: client.calls(sort_by="-startd_at"),
            ValueError,
            "'startd_at'",
        ),
        "hostile sort field": (
            lambda: client.calls(sort_by=[{"field": "x'); DROP TABLE calls;--"}]),
            ValueError,
            "DROP TABLE",
        ),
        "query operator": (
            lambda: client.calls(query={"$bogus": [1]}),
            ValueError,
            "$bogus",
        ),
        "query arity": (
            lambda: client.calls(query={"$eq": [{"$getField": "x"}]}),
            ValueError,
            "$eq",
        ),
        "limit": (lambda: client.calls(limit=-1), ValueError, "-1"),
    }


async def test_malformed_arguments_fail_before_anything_is_sent(
    recorder: FaultServer, entity: str, project: str
) -> None:
    async with AsyncWeaveClient(entity, project, server_url=recorder.url) as client:
        for name, (call, error, part) in _bad_calls(client).items():
            with pytest.raises(error) as info:
                await call()
            assert part in str(info.value), (name, str(info.value))
    assert recorder.requests == []


@pytest.mark.parametrize(
    ("entity_name", "project_name", "part"),
    [("", "p", "entity name is empty"), ("e", "a/b", "'a/b'"), ("e/x", "p", "'e/x'")],
)
def test_malformed_entity_or_project_fails_at_construction(
    recorder: FaultServer, entity_name: str, project_name: str, part: str
) -> None:
    with pytest.raises(InvalidNameError) as info:
        AsyncWeaveClient(entity_name, project_name, server_url=recorder.url)
    assert part in str(info.value)
    assert recorder.requests == []
