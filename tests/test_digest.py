"""Digests: the server's algorithm, stable for equal content, different otherwise."""

from __future__ import annotations

import base64
import hashlib
import json
import math

import pytest

from weave_client._digest import (
    bytes_digest,
    canonical_json,
    json_digest,
    row_digest,
    str_digest,
    table_digest,
)


def _reference_bytes_digest(b: bytes) -> str:
    # The algorithm as DESIGN.md states it, spelled out step by step.
    enc = base64.urlsafe_b64encode(hashlib.sha256(b).digest()).decode()
    return enc.replace("-", "X").replace("_", "Y").rstrip("=")


@pytest.mark.parametrize(
    "content",
    [b"", b"hello", bytes(range(256)), b"\xff" * 1000, "héllo ✓".encode()],
)
def test_bytes_digest_matches_the_stated_algorithm(content: bytes) -> None:
    assert bytes_digest(content) == _reference_bytes_digest(content)


def test_known_digest_values() -> None:
    # Values computed by weave 0.51.59's own str_digest (see tests/compat).
    assert str_digest("hello") == "LPJNulXwow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ"
    assert len(bytes_digest(b"x")) == 43
    assert set(bytes_digest(b"abc" * 99)) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789XY"
    )


def test_digest_alphabet_has_no_url_or_ref_separators() -> None:
    for i in range(300):
        d = bytes_digest(str(i).encode())
        assert not set(d) & set("-_=/+:")


def test_str_digest_is_bytes_digest_of_utf8() -> None:
    assert str_digest("ünïcode ✓") == bytes_digest("ünïcode ✓".encode())


def test_canonical_json_sorts_keys_with_json_dumps_spacing() -> None:
    value = {"b": 1, "a": {"d": [1, 2.5, None, True], "c": "é"}}
    assert canonical_json(value) == json.dumps(value, sort_keys=True)
    assert canonical_json(value) == '{"a": {"c": "\\u00e9", "d": [1, 2.5, null, true]}, "b": 1}'


def test_canonical_json_nan_and_infinities_become_null() -> None:
    value = {"x": math.nan, "y": [math.inf, -math.inf, 1.5]}
    assert canonical_json(value) == '{"x": null, "y": [null, null, 1.5]}'
    assert json_digest(value) == json_digest({"x": None, "y": [None, None, 1.5]})
    # the input is not modified
    assert math.isnan(value["x"])


def test_canonical_json_rejects_non_json_values() -> None:
    with pytest.raises(TypeError):
        canonical_json({"x": object()})


def test_json_digest_is_stable_for_equal_content_whatever_the_key_order() -> None:
    a = {"name": "x", "vals": [1, 2, 3], "nested": {"p": 1, "q": 2}}
    b = {"nested": {"q": 2, "p": 1}, "vals": [1, 2, 3], "name": "x"}
    assert json_digest(a) == json_digest(b)
    assert json_digest(a) == str_digest(json.dumps(a, sort_keys=True))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ({"a": 1}, {"a": 2}),
        ({"a": 1}, {"b": 1}),
        ([1, 2], [2, 1]),
        (1, 1.0),
        ("1", 1),
        (None, "null"),
        ({"a": [1]}, {"a": [1, None]}),
    ],
)
def test_json_digest_differs_for_different_content(a: object, b: object) -> None:
    assert json_digest(a) != json_digest(b)


def test_row_and_table_digests_follow_the_server() -> None:
    rows = [{"x": 1}, {"x": 2}, {"x": 1}]
    digests = [row_digest(r) for r in rows]
    assert digests[0] == digests[2] == json_digest({"x": 1})
    expected = hashlib.sha256("".join(digests).encode()).hexdigest()
    assert table_digest(digests) == expected
    assert table_digest(iter(digests)) == expected
    assert table_digest(digests[:2]) != table_digest(digests[1::-1])
    assert table_digest([]) == hashlib.sha256(b"").hexdigest()
