"""Helpers shared by the reliability tests (both flavours) and scripts/benchmarks/bench_reliability.py."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import httpx

from weave_client._http import RetryPolicy, to_timeout


def tune_for_faults(
    client: Any,
    *,
    timeout: float = 0.3,
    max_retries: int = 3,
    batch_size: int = 50,
    sender_attempts: int = 10,
) -> None:
    """Tiny backoffs and small batches for fault tests.

    The defaults (0.5 s doubling to 8 s, batches of 1,000) are right for a real
    service but would make a fault test crawl and give it few requests to break.
    The client has no public knobs for backoff delays, so this sets them on its
    API client and sender directly.
    """
    api = client._api
    api._timeout = to_timeout(timeout)
    api._retry = RetryPolicy(
        max_retries=max_retries, delay=0.002, max_delay=0.02, max_retry_after=0.05
    )
    sender = client._sender
    sender.max_batch_size = batch_size
    sender.max_attempts = sender_attempts
    sender.retry_delay = 0.005
    sender.max_retry_delay = 0.05


def stored_calls(server_url: str, project_id: str) -> list[dict[str, Any]]:
    """Every call row of ``project_id``, read straight from the server (no client code)."""
    with httpx.Client(timeout=60) as http:
        response = http.post(
            f"{server_url}/calls/stream_query",
            json={"project_id": project_id},
            headers={"Accept": "application/jsonl"},
        )
        response.raise_for_status()
    return [json.loads(line) for line in response.text.splitlines() if line.strip()]


def exactly_once_report(calls: list[dict[str, Any]], expected_ids: set[str]) -> dict[str, int]:
    """Counts of what landed: stored, missing, duplicated, unexpected, unfinished."""
    counts = Counter(c["id"] for c in calls)
    return {
        "stored": len(calls),
        "missing": len(expected_ids - counts.keys()),
        "duplicated": sum(n - 1 for n in counts.values() if n > 1),
        "unexpected": len(counts.keys() - expected_ids),
        "unfinished": sum(1 for c in calls if c.get("ended_at") is None),
    }
