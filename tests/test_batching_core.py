"""The shared batching core (weave_client/_batching.py): bounds, failure steps, bisection."""

from __future__ import annotations

import json
import math
import random

import pytest

from weave_client._batching import (
    MIN_SHRINK_BYTES,
    Bisection,
    Step,
    batch_body,
    batch_bytes,
    pack,
    plan_failure,
    shrink_limit,
)
from weave_client._errors import APIConnectionError, APITimeoutError, status_error_class


def status_error(code: int) -> Exception:
    return status_error_class(code)("boom", status_code=code, route="/call/upsert_batch")


# --- pack ---------------------------------------------------------------------------


def test_pack_bounds_bytes_counting_each_separator() -> None:
    # Each item weighs its size plus one separator: 4 + 4 fit in 8, a third does not.
    assert pack([3, 3, 3], max_bytes=8) == [range(0, 2), range(2, 3)]
    assert pack([3, 3, 3], max_bytes=7) == [range(0, 1), range(1, 2), range(2, 3)]


def test_pack_bounds_count() -> None:
    assert pack([1] * 7, max_bytes=1000, max_count=3) == [range(0, 3), range(3, 6), range(6, 7)]


def test_an_item_over_the_byte_bound_goes_alone() -> None:
    assert pack([2, 50, 2], max_bytes=10) == [range(0, 1), range(1, 2), range(2, 3)]


def test_pack_of_nothing_is_no_batch() -> None:
    assert pack([], max_bytes=10, max_count=2) == []


def test_pack_covers_every_item_once_in_order_and_fills_each_batch() -> None:
    rng = random.Random(6)
    for _ in range(200):
        sizes = [rng.randint(1, 60) for _ in range(rng.randint(1, 80))]
        max_bytes, max_count = rng.randint(20, 300), rng.choice([None, 1, 3, 10])
        batches = pack(sizes, max_bytes=max_bytes, max_count=max_count)
        assert [i for b in batches for i in b] == list(range(len(sizes)))
        for b, nxt in zip(batches, [*batches[1:], None], strict=True):
            weight = batch_bytes(sizes[i] for i in b)
            assert len(b) == 1 or weight <= max_bytes
            assert max_count is None or len(b) <= max_count
            if nxt is not None:  # cut only where the next item would break a bound
                over = weight + sizes[nxt.start] + 1 > max_bytes
                assert over or (max_count is not None and len(b) == max_count)


@pytest.mark.parametrize("kwargs", [{"max_bytes": 0}, {"max_bytes": 10, "max_count": 0}])
def test_pack_refuses_bounds_below_one(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="max_"):
        pack([1], **kwargs)


def test_batch_body_is_the_upsert_batch_request() -> None:
    items = [json.dumps({"mode": "start", "req": {"i": i}}).encode() for i in range(3)]
    body = batch_body(items)
    assert json.loads(body) == {"batch": [json.loads(i) for i in items]}
    # What pack weighs is the body minus its fixed frame (and one separator too many).
    assert len(body) == batch_bytes(map(len, items)) - 1 + len(b'{"batch":[]}')


# --- what to do after a failure -------------------------------------------------------


@pytest.mark.parametrize("count", [1, 2, 250])
def test_transient_failures_are_retried_whole(count: int) -> None:
    for error in (APIConnectionError(), APITimeoutError(), status_error(503), status_error(429)):
        assert plan_failure(error, count) is Step.RETRY


@pytest.mark.parametrize("code", [400, 413, 422])
def test_a_refused_batch_is_split(code: int) -> None:
    assert plan_failure(status_error(code), 2) is Step.SPLIT


def test_a_lone_record_too_large_is_shrunk_a_lone_invalid_one_failed() -> None:
    assert plan_failure(status_error(413), 1) is Step.SHRINK
    assert plan_failure(status_error(400), 1) is Step.FAIL
    assert plan_failure(status_error(422), 1) is Step.FAIL


def test_shrink_halves_the_budget_down_to_a_floor() -> None:
    assert shrink_limit(10_000, 1_000_000) == 5_000
    assert shrink_limit(10_000, 4_000) == 2_000  # never more than half the item limit
    assert shrink_limit(2 * MIN_SHRINK_BYTES, 10**9) == MIN_SHRINK_BYTES
    assert shrink_limit(2 * MIN_SHRINK_BYTES - 2, 10**9) is None


# --- bisection ------------------------------------------------------------------------


def drive(n: int, refused: set[int]) -> tuple[list[int], list[int], int]:
    """A server refusing (400) any batch holding one of ``refused``: what gets stored,
    what fails, in which order, and how many requests it takes."""
    plan = Bisection(n)
    settled: list[int] = []
    failed: list[int] = []
    requests = 0
    while (part := plan.current) is not None:
        requests += 1
        bad = refused.intersection(part)
        step = plan_failure(status_error(400), len(part)) if bad else None
        if step is Step.SPLIT:
            plan.split()
            continue
        if step is Step.FAIL:
            failed.extend(part)
        settled.extend(part)
        plan.done()
    return settled, failed, requests


def test_bisection_isolates_the_bad_records_and_stores_the_rest_in_order() -> None:
    rng = random.Random(3)
    for n in (1, 2, 3, 7, 64, 250):
        for k in range(min(n, 4) + 1):
            refused = set(rng.sample(range(n), k))
            settled, failed, requests = drive(n, refused)
            assert settled == list(range(n))  # each record settled once, in order
            assert sorted(failed) == sorted(refused)
            assert requests <= 1 + 2 * k * max(1, math.ceil(math.log2(n)))


def test_a_batch_the_server_takes_is_one_request() -> None:
    assert drive(250, set()) == (list(range(250)), [], 1)


def test_bisection_splits_to_fit_a_byte_limit() -> None:
    # A server refusing (413) more than 3 records: halves until every part fits.
    plan, parts = Bisection(10), []
    while (part := plan.current) is not None:
        if plan_failure(status_error(413), len(part)) is Step.SPLIT and len(part) > 3:
            plan.split()
            continue
        parts.append(part)
        plan.done()
    assert parts == [range(0, 2), range(2, 5), range(5, 7), range(7, 10)]


def test_bisection_edges() -> None:
    assert Bisection(0).current is None
    plan = Bisection(1)
    with pytest.raises(ValueError, match="cannot split"):
        plan.split()
    assert plan.current == range(0, 1)  # unchanged by the refused split
    with pytest.raises(ValueError, match="count"):
        Bisection(-1)
