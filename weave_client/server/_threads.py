"""``/threads/stream_query``: conversation threads with figures over their turns.

As weave's threads query: a thread is the calls sharing a ``thread_id``; its
figures are taken over its *turn* calls only (``id = turn_id``, the top-level
calls of a ``thread(...)`` block), not their nested children:

- ``turn_count``; ``start_time`` (earliest turn start) and ``last_updated``
  (latest turn end; the latest start while no turn has ended);
- ``first_turn_id`` (earliest start) and ``last_turn_id`` (latest end);
- ``p50_turn_duration_ms`` / ``p99_turn_duration_ms`` over the ended turns
  (linear interpolation; None when no turn has ended).

Threads come sorted by ``last_updated`` descending unless ``sort_by`` says
otherwise; ``limit``/``offset`` page them. The reply is JSONL, one
``ThreadSchema`` per line, as weave's streaming routes.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from .._models import ThreadSchema, ThreadsQueryReq
from ._common import InvalidRequest
from ._db import Database
from ._schema import format_timestamp

__all__ = ["ThreadStore"]

SORT_FIELDS = frozenset(
    {
        "thread_id",
        "turn_count",
        "start_time",
        "last_updated",
        "p50_turn_duration_ms",
        "p99_turn_duration_ms",
    }
)


def percentile(sorted_values: list[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) of ascending values, linearly interpolated; None if empty."""
    if not sorted_values:
        return None
    pos = (len(sorted_values) - 1) * q
    low = math.floor(pos)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (pos - low)


def _thread(thread_id: str, turns: list[tuple[str, datetime, datetime | None]]) -> ThreadSchema:
    """The figures of one thread from its turns ``(id, started_at, ended_at)``."""
    first = min(turns, key=lambda t: (t[1], t[0]))
    ended = [t for t in turns if t[2] is not None]
    if ended:
        last = max(ended, key=lambda t: (t[2], t[0]))
        last_updated = last[2]
    else:
        last = max(turns, key=lambda t: (t[1], t[0]))
        last_updated = last[1]
    durations = sorted((t[2] - t[1]).total_seconds() * 1000.0 for t in ended)  # type: ignore[operator]
    return ThreadSchema(
        thread_id=thread_id,
        turn_count=len(turns),
        start_time=first[1],
        last_updated=last_updated,
        first_turn_id=first[0],
        last_turn_id=last[0],
        p50_turn_duration_ms=percentile(durations, 0.5),
        p99_turn_duration_ms=percentile(durations, 0.99),
    )


def _sort_key(field: str) -> Any:
    def key(t: ThreadSchema) -> tuple[bool, Any]:
        value = getattr(t, field)
        # None (no ended turn) sorts after every value, in either direction.
        return (value is None, value if value is not None else 0)

    return key


class ThreadStore:
    """Threads of the calls table (read-only)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def query(self, req: ThreadsQueryReq) -> list[ThreadSchema]:
        """The threads ``req`` asks for, sorted and paged."""
        for entry in req.sort_by or ():
            if entry.field not in SORT_FIELDS:
                raise InvalidRequest(
                    f"sort_by: field {entry.field!r} is not one of {sorted(SORT_FIELDS)}"
                )
        if req.limit is not None and req.limit < 0:
            raise InvalidRequest(f"limit: must not be negative, got {req.limit}")
        if req.offset is not None and req.offset < 0:
            raise InvalidRequest(f"offset: must not be negative, got {req.offset}")
        sql = [
            "SELECT thread_id, id, started_at, ended_at FROM calls",
            "WHERE project_id = ? AND id = turn_id AND deleted_at IS NULL",
        ]
        params: list[Any] = [req.project_id]
        f = req.filter
        if f is not None and f.thread_ids:
            sql.append(f"AND thread_id IN ({','.join('?' * len(f.thread_ids))})")
            params.extend(f.thread_ids)
        else:
            sql.append("AND thread_id IS NOT NULL AND thread_id != ''")
        if f is not None and f.after_datetime is not None:
            sql.append("AND started_at > ?")
            params.append(format_timestamp(f.after_datetime))
        if f is not None and f.before_datetime is not None:
            sql.append("AND started_at < ?")
            params.append(format_timestamp(f.before_datetime))
        sql.append("ORDER BY thread_id")
        threads = list(self._group(" ".join(sql), params))
        # Stable sorts, last key first: the first sort_by entry decides.
        order = req.sort_by or []
        if not order:
            threads.sort(key=_sort_key("last_updated"), reverse=True)
            threads.sort(key=lambda t: t.last_updated is None)
        for entry in reversed(order):
            threads.sort(key=_sort_key(entry.field), reverse=entry.direction == "desc")
            # Keep None last in descending order too.
            threads.sort(key=lambda t, f=entry.field: getattr(t, f) is None)  # type: ignore[misc]
        start = req.offset or 0
        end = start + req.limit if req.limit is not None else None
        return threads[start:end]

    def _group(self, sql: str, params: list[Any]) -> Iterator[ThreadSchema]:
        with self.db.read() as conn:
            current: str | None = None
            turns: list[tuple[str, datetime, datetime | None]] = []
            for thread_id, call_id, started_at, ended_at in conn.execute(sql, params):
                if started_at is None:
                    continue  # an end without its start yet: not a turn so far
                if thread_id != current:
                    if current is not None and turns:
                        yield _thread(current, turns)
                    current, turns = thread_id, []
                turns.append(
                    (
                        call_id,
                        datetime.fromisoformat(started_at),
                        datetime.fromisoformat(ended_at) if ended_at else None,
                    )
                )
            if current is not None and turns:
                yield _thread(current, turns)

    def stream_lines(self, req: ThreadsQueryReq) -> Iterator[bytes]:
        """The reply of ``/threads/stream_query``: one ``ThreadSchema`` JSON per line."""
        threads = self.query(req)  # errors surface before the 200 starts

        def lines() -> Iterator[bytes]:
            for t in threads:
                yield t.model_dump_json().encode() + b"\n"

        return lines()
