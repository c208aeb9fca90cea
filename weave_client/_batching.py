"""The batching core of the background sender (no I/O).

How encoded records are cut into requests bounded by count and bytes
(:func:`pack`), the request body they make (:func:`batch_body`), what to do when
the server refuses a batch (:func:`plan_failure`), and the order in which the
parts of a refused batch are tried (:class:`Bisection`). The sender's flavours
only send and wait.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence

from ._errors import RequestTooLargeError
from ._retry import is_transient

__all__ = [
    "MIN_SHRINK_BYTES",
    "Bisection",
    "Step",
    "batch_body",
    "batch_bytes",
    "pack",
    "plan_failure",
    "shrink_limit",
]

#: Below this size budget a single record the server finds too large is given up.
MIN_SHRINK_BYTES = 1024


def batch_body(payloads: Sequence[bytes]) -> bytes:
    """The ``/call/upsert_batch`` request body of encoded items."""
    return b'{"batch":[' + b",".join(payloads) + b"]}"


def batch_bytes(sizes: Iterable[int]) -> int:
    """What items of these sizes weigh against a byte bound: each one plus its separator."""
    return sum(size + 1 for size in sizes)


def pack(sizes: Sequence[int], *, max_bytes: int, max_count: int | None = None) -> list[range]:
    """Cut items of these encoded sizes, in order, into batches.

    A batch holds at most ``max_count`` items (no count bound when None) whose
    :func:`batch_bytes` is at most ``max_bytes``; an item bigger than that on its
    own still makes a batch of one (the server says whether it takes it). Returns
    the index ranges, covering every item once.
    """
    if max_bytes < 1:
        raise ValueError(f"max_bytes must be at least 1, got {max_bytes!r}")
    if max_count is not None and max_count < 1:
        raise ValueError(f"max_count must be at least 1, got {max_count!r}")
    batches: list[range] = []
    start, size = 0, 0
    for i, item in enumerate(sizes):
        full = max_count is not None and i - start >= max_count
        if i > start and (full or size + item + 1 > max_bytes):
            batches.append(range(start, i))
            start, size = i, 0
        size += item + 1
    if start < len(sizes):
        batches.append(range(start, len(sizes)))
    return batches


class Step(enum.Enum):
    """What to do with a batch the server did not take."""

    #: A transient failure: send the same batch again after a backoff.
    RETRY = "retry"
    #: Refused (413, or a 4xx that one of its records caused): try each half alone.
    SPLIT = "split"
    #: One record the server finds too large (413): send it again truncated.
    SHRINK = "shrink"
    #: One record refused for good: give it up (logged and counted).
    FAIL = "fail"


def plan_failure(error: BaseException, count: int) -> Step:
    """The next step for a batch of ``count`` records that failed with ``error``.

    Transient failures (:func:`~weave_client._retry.is_transient`) are retried.
    A 413 splits the batch until a record stands alone, which is then shrunk; any
    other refusal (400, 422, ...) splits it until the bad record stands alone,
    which is then given up, so the rest of the batch is still stored.
    """
    if is_transient(error):
        return Step.RETRY
    if count > 1:
        return Step.SPLIT
    if isinstance(error, RequestTooLargeError):
        return Step.SHRINK
    return Step.FAIL


def shrink_limit(size: int, max_item_bytes: int) -> int | None:
    """The size budget for a lone record of ``size`` bytes the server refused as too
    large: half of what it was allowed, or None below :data:`MIN_SHRINK_BYTES`."""
    limit = min(size, max_item_bytes) // 2
    return None if limit < MIN_SHRINK_BYTES else limit


class Bisection:
    """The parts of a batch to send, depth first, in the batch's order.

    Starts with the whole batch (``range(0, count)``). After a refusal,
    :meth:`split` replaces the current part with its two halves (first half
    next); after the current part is settled (stored, or given up),
    :meth:`done` moves on. Records are thus settled in their original order, and
    ``k`` bad records among ``n`` cost about ``2 k log2 n`` extra requests.
    """

    __slots__ = ("_todo",)

    def __init__(self, count: int) -> None:
        if count < 0:
            raise ValueError(f"count must be 0 or more, got {count!r}")
        self._todo: list[range] = [range(0, count)] if count else []

    @property
    def current(self) -> range | None:
        """The part to send now, or None when every part is settled."""
        return self._todo[-1] if self._todo else None

    def done(self) -> None:
        """The current part is settled; move on to the next."""
        self._todo.pop()

    def split(self) -> None:
        """Replace the current part (of two or more records) with its halves."""
        part = self._todo.pop()
        if len(part) < 2:
            self._todo.append(part)
            raise ValueError(f"cannot split a part of {len(part)} record(s)")
        half = part.start + len(part) // 2
        self._todo.append(range(half, part.stop))
        self._todo.append(range(part.start, half))

    def __repr__(self) -> str:
        return f"Bisection(todo={[(r.start, r.stop) for r in reversed(self._todo)]})"
