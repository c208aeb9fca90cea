"""How fast the trace viewer's requests are on a big project (a benchmark, not a test).

Seeds a fresh local server with N root calls (default 100,000; every 97th one
failed), then times each request the viewer's trace list makes (a page of calls
plus its count) for the first, middle and last page, with a status filter, a
text search and an op filter, and the project list. Prints the median of a few
runs per request and exits non-zero when one exceeds the target.

    .venv/bin/python scripts/benchmarks/bench_viewer.py [--calls 100000] [--target-ms 500]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from _common import temp_server

PROJECT = "bench/viewer"
PAGE = 50
# The columns the viewer's trace list asks for (see static/traces.js).
LIST_COLUMNS = [
    "id", "trace_id", "parent_id", "op_name", "display_name",
    "started_at", "ended_at", "exception", "summary",
]


def seed(http: httpx.Client, n: int) -> None:
    t0 = datetime.now(UTC) - timedelta(seconds=n)
    for first in range(0, n, 1000):
        batch: list[dict[str, Any]] = []
        for i in range(first, min(first + 1000, n)):
            call_id = str(uuid.uuid4())
            start = t0 + timedelta(seconds=i)
            batch.append({"mode": "start", "req": {"start": {
                "project_id": PROJECT, "id": call_id, "trace_id": call_id,
                "op_name": f"weave:///{PROJECT}/op/op{i % 5}:abc", "started_at": start.isoformat(),
                "attributes": {}, "inputs": {"x": i, "text": f"item number {i}"},
            }}})
            batch.append({"mode": "end", "req": {"end": {
                "project_id": PROJECT, "id": call_id,
                "ended_at": (start + timedelta(milliseconds=5)).isoformat(),
                "output": {"y": i}, "summary": {},
                "exception": '{"type": "ValueError", "message": "boom"}' if i % 97 == 0 else None,
            }}})
        res = http.post("/call/upsert_batch", json={"batch": batch})
        res.raise_for_status()


def timed(http: httpx.Client, method: str, route: str, body: Any = None, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        res = http.request(method, route, json=body)
        times.append((time.perf_counter() - start) * 1000)
        res.raise_for_status()
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--target-ms", type=float, default=500.0)
    args = parser.parse_args()

    with temp_server() as server:
        with httpx.Client(base_url=server.url, timeout=300) as http:
            start = time.perf_counter()
            seed(http, args.calls)
            print(f"seeded {args.calls:,} calls in {time.perf_counter() - start:.1f} s\n")

            roots = {"project_id": PROJECT, "filter": {"trace_roots_only": True}}
            newest = [{"field": "started_at", "direction": "desc"}]
            status = {"$expr": {"$eq": [{"$getField": "summary.weave.status"}, {"$literal": "error"}]}}
            text = {"$expr": {"$or": [
                {"$contains": {"input": {"$getField": field}, "substr": {"$literal": "NUMBER 4242"},
                               "case_insensitive": True}}
                for field in ("inputs", "output")
            ]}}
            by_op = {"project_id": PROJECT, "filter": {
                "trace_roots_only": True, "op_names": ["op3", f"weave:///{PROJECT}/op/op3:*"]}}
            last = max(0, (args.calls - 1) // PAGE * PAGE)

            def page(base: dict[str, Any], offset: int = 0, **extra: Any) -> dict[str, Any]:
                return {**base, **extra, "sort_by": newest, "limit": PAGE, "offset": offset,
                        "columns": LIST_COLUMNS}

            cases: list[tuple[str, str, str, Any]] = [
                ("trace list: first page", "POST", "/calls/query", page(roots)),
                ("trace list: middle page", "POST", "/calls/query", page(roots, args.calls // 2)),
                ("trace list: last page", "POST", "/calls/query", page(roots, last)),
                ("trace list: count", "POST", "/calls/query_stats", roots),
                ("status=error: first page", "POST", "/calls/query", page(roots, query=status)),
                ("status=error: count", "POST", "/calls/query_stats", {**roots, "query": status}),
                ("text search: first page", "POST", "/calls/query", page(roots, query=text)),
                ("text search: count", "POST", "/calls/query_stats", {**roots, "query": text}),
                ("op filter: page at 10,000", "POST", "/calls/query", page(by_op, 10_000)),
                ("op filter: count", "POST", "/calls/query_stats", by_op),
                ("projects (GET /viewer/projects)", "GET", "/viewer/projects", None),
            ]
            failed = 0
            print(f"{'request':36s} {'median ms':>10s}  target {args.target_ms:g} ms")
            for name, method, route, body in cases:
                ms = timed(http, method, route, body)
                ok = ms <= args.target_ms
                failed += not ok
                print(f"{name:36s} {ms:10.1f}  {'ok' if ok else 'SLOW'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
