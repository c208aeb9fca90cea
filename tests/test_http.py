"""The I/O-free half of the HTTP layer (weave_client._http): retry policy, Retry-After,
error mapping, redaction and JSONL parsing."""

from __future__ import annotations

import email.utils
import pickle
import random

import httpx
import pytest

from weave_client import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    BadRequestError,
    ConflictError,
    InternalServerError,
    RateLimitError,
)
from weave_client._http import (
    BasicAuth,
    RetryPolicy,
    Secret,
    error_message,
    make_status_error,
    parse_json_as,
    parse_jsonl,
    parse_retry_after,
    redact,
    should_retry_status,
    to_timeout,
)
from weave_client._models import ObjCreateRes, TableRowSchema

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "3"}, 3.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"Retry-After": " 7 "}, 7.0),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "Retry-After": "9"}, 0.25),
        ({"retry-after-ms": "junk", "Retry-After": "9"}, 9.0),
        ({"Retry-After": email.utils.formatdate(NOW + 30, usegmt=True)}, 30.0),
        ({"Retry-After": email.utils.formatdate(NOW - 30, usegmt=True)}, 0.0),
        ({"Retry-After": "-1"}, None),
        ({"Retry-After": "nan"}, None),
        ({"Retry-After": "soon"}, None),
        ({}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers, now=NOW) == expected


def test_parse_retry_after_reads_httpx_headers() -> None:
    assert parse_retry_after(httpx.Headers({"Retry-After": "2"})) == 2.0


@pytest.mark.parametrize(
    ("status", "retry"),
    [
        (408, True),
        (429, True),
        (500, True),
        (502, True),
        (503, True),
        (504, True),
        (400, False),
        (401, False),
        (403, False),
        (404, False),
        (409, False),
        (413, False),
        (422, False),
    ],
)
def test_which_statuses_are_retried(status: int, retry: bool) -> None:
    assert should_retry_status(status) is retry


def test_backoff_is_full_jitter_under_an_exponential_ceiling() -> None:
    random.seed(1234)
    policy = RetryPolicy(max_retries=5, delay=0.5, max_delay=8.0)
    for retry, ceiling in enumerate([0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]):
        draws = [policy.backoff(retry) for _ in range(400)]
        assert all(0.0 <= d <= ceiling for d in draws)
        # Full jitter spreads over the whole range, not just near the ceiling.
        assert min(draws) < ceiling * 0.1
        assert max(draws) > ceiling * 0.9


def test_backoff_honours_retry_after_up_to_the_cap() -> None:
    policy = RetryPolicy(delay=0.5, max_delay=8.0, max_retry_after=60.0)
    assert policy.backoff(0, retry_after=20.0) == 20.0
    assert policy.backoff(3, retry_after=0.0) == 0.0
    assert policy.backoff(0, retry_after=3600.0) == 60.0


def test_backoff_does_not_overflow_on_huge_retry_counts() -> None:
    assert 0.0 <= RetryPolicy(max_delay=1.0).backoff(10_000) <= 1.0


@pytest.mark.parametrize(
    "kwargs",
    [{"max_retries": -1}, {"max_retries": 1.5}, {"max_retries": True}, {"delay": -0.1}],
)
def test_retry_policy_rejects_bad_values(kwargs: dict[str, object]) -> None:
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=name):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_to_timeout() -> None:
    assert to_timeout(2.5) == httpx.Timeout(2.5)
    custom = httpx.Timeout(1.0, connect=3.0)
    assert to_timeout(custom) is custom
    for bad in (0, -1, "5", True):
        with pytest.raises(ValueError, match="timeout"):
            to_timeout(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"message": "m"}', "m"),
        (b'{"error": "e"}', "e"),
        (b'{"detail": "d"}', "d"),
        (b'{"reason": "r"}', "r"),
        (
            b'{"detail": [{"loc": ["body", "x"], "msg": "Field required"}]}',
            "body.x: Field required",
        ),
        # Our server's 422: the one-line reason wins over FastAPI's list.
        (
            b'{"reason": "invalid request: x: Field required",'
            b' "detail": [{"loc": ["body", "x"], "msg": "Field required"}]}',
            "invalid request: x: Field required",
        ),
        (b'{"reason": "o:v0 was deleted at t", "deleted_at": "t"}', "o:v0 was deleted at t"),
        (b'{"detail": {"code": 7}}', '{"code": 7}'),
        (b'{"other": 1}', '{"other": 1}'),
        (b"plain words", "plain words"),
        (b"", "Service Unavailable"),
    ],
)
def test_error_message_finds_the_servers_words(body: bytes, message: str) -> None:
    assert error_message(body, "Service Unavailable")[0] == message


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (409, ConflictError),
        (429, RateLimitError),
        (504, InternalServerError),
        (418, APIStatusError),
    ],
)
def test_make_status_error_picks_the_class(status: int, cls: type[APIStatusError]) -> None:
    err = make_status_error(
        status, b'{"detail": "nope"}', route="/x/y", headers={"X-Request-Id": "req-1"}
    )
    assert type(err) is cls
    assert (err.status_code, err.message, err.route, err.request_id) == (
        status,
        "nope",
        "/x/y",
        "req-1",
    )


def test_make_status_error_scrubs_secrets_from_message_and_body() -> None:
    err = make_status_error(
        401, b'{"detail": "key sk-abc rejected", "echo": "sk-abc"}', route="/r", secrets=["sk-abc"]
    )
    assert "sk-abc" not in str(err)
    assert "sk-abc" not in repr(err.body)
    assert err.message == "key *** rejected"


def test_redact_ignores_empty_secrets() -> None:
    assert redact("abc", ["", "b"]) == "a***c"


def test_secret_hides_itself() -> None:
    secret = Secret("sk-hidden")
    assert "sk-hidden" not in repr(secret)
    assert "sk-hidden" not in str(secret)
    assert "sk-hidden" not in f"{secret}"
    assert secret.get() == "sk-hidden"
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(secret)
    auth = BasicAuth(secret)
    assert "sk-hidden" not in repr(auth)
    # httpx calls the flow; the header it sets is the standard Basic one for api:key.
    request = httpx.Request("GET", "http://127.0.0.1/health")
    flow = auth.sync_auth_flow(request)
    sent = next(flow)
    assert sent.headers["Authorization"] == httpx.BasicAuth("api", "sk-hidden")._auth_header


def test_parse_json_as_model_and_plain_types() -> None:
    assert parse_json_as(ObjCreateRes, b'{"digest": "d"}', route="/obj/create").digest == "d"
    assert parse_json_as(dict[str, int], b'{"a": 1}', route="/r") == {"a": 1}
    with pytest.raises(APIResponseValidationError, match=r"/obj/create .*ObjCreateRes.*digest"):
        parse_json_as(ObjCreateRes, b'{"dig": "d"}', route="/obj/create")
    with pytest.raises(APIResponseValidationError, match="ObjCreateRes"):
        parse_json_as(ObjCreateRes, b"<html>", route="/obj/create")


def test_parse_jsonl_complete_and_cut() -> None:
    good = b'{"digest": "a", "val": 1}\n\n{"digest": "b", "val": 2}\n'
    assert [r.digest for r in parse_jsonl(TableRowSchema, good, route="/t")] == ["a", "b"]
    # No final newline but a whole JSON value: complete.
    no_newline = b'{"digest": "a", "val": 1}\n{"digest": "b", "val": 2}'
    assert len(parse_jsonl(TableRowSchema, no_newline, route="/t")) == 2
    # Half a line at the end: the connection was cut.
    with pytest.raises(APIConnectionError, match="middle of line 2"):
        parse_jsonl(TableRowSchema, b'{"digest": "a", "val": 1}\n{"digest": "b", "va', route="/t")
    # A complete line of the wrong shape is a validation error, not a cut.
    with pytest.raises(APIResponseValidationError, match="Line 2"):
        parse_jsonl(TableRowSchema, b'{"digest": "a", "val": 1}\n{"x": 1}\n', route="/t")
