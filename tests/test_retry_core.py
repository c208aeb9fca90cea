"""The shared retry core (weave_client/_retry.py): pure functions, no I/O, no clock."""

from __future__ import annotations

import random

import pytest

from weave_client._errors import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    status_error_class,
)
from weave_client._retry import RetryPolicy, is_transient, should_retry_status


def status_error(code: int) -> Exception:
    return status_error_class(code)("boom", status_code=code, route="/call/upsert_batch")


@pytest.mark.parametrize("code", [408, 429, 500, 502, 503, 504, 599])
def test_retryable_statuses_are_transient(code: int) -> None:
    assert should_retry_status(code)
    assert is_transient(status_error(code))


@pytest.mark.parametrize("code", [400, 401, 403, 404, 409, 413, 422, 499])
def test_other_statuses_are_not(code: int) -> None:
    assert not should_retry_status(code)
    assert not is_transient(status_error(code))


def test_connection_errors_and_timeouts_are_transient_other_errors_not() -> None:
    assert is_transient(APIConnectionError())
    assert is_transient(APITimeoutError())
    assert not is_transient(APIResponseValidationError("bad body", route="/x"))
    assert not is_transient(ValueError("not an API error"))


def test_the_schedule_doubles_up_to_its_cap() -> None:
    policy = RetryPolicy(max_retries=8, delay=0.5, max_delay=8.0)
    assert [policy.ceiling(r) for r in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    # A huge retry number neither overflows nor passes the cap.
    assert policy.ceiling(10_000) == 8.0


def test_without_jitter_the_wait_is_the_ceiling() -> None:
    policy = RetryPolicy(max_retries=5, delay=0.5, max_delay=10.0, jitter=False)
    assert [policy.next_delay(r) for r in range(6)] == [0.5, 1.0, 2.0, 4.0, 8.0, None]


def test_full_jitter_draws_below_the_ceiling_and_spreads() -> None:
    policy = RetryPolicy(max_retries=10, delay=1.0, max_delay=4.0)
    random.seed(11)
    for retry in range(6):
        draws = [policy.backoff(retry) for _ in range(200)]
        assert all(0.0 <= d <= policy.ceiling(retry) for d in draws)
        # Spread over the whole range: retries of many clients do not line up.
        assert min(draws) < 0.25 * policy.ceiling(retry) < 0.75 * policy.ceiling(retry) < max(draws)


def test_retry_after_replaces_the_draw_capped() -> None:
    policy = RetryPolicy(max_retries=2, delay=1.0, max_delay=4.0, max_retry_after=30.0)
    assert policy.next_delay(0, retry_after=12.5) == 12.5
    assert policy.next_delay(1, retry_after=600.0) == 30.0
    # Retries used up: no wait at all, whatever the server asked for.
    assert policy.next_delay(2, retry_after=1.0) is None


def test_no_retries_means_one_attempt() -> None:
    assert RetryPolicy(max_retries=0).next_delay(0) is None


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": True}, "max_retries"),
        ({"delay": -0.1}, "delay"),
        ({"max_delay": float("nan")}, "max_delay"),
        ({"max_retry_after": -5}, "max_retry_after"),
    ],
)
def test_bad_settings_are_refused_by_name(kwargs: dict[str, object], name: str) -> None:
    with pytest.raises(ValueError, match=name):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
