#!/usr/bin/env python
"""Throughput of the local server's ``/call/upsert_batch``: calls stored per second.

Starts ``python -m weave_client serve`` on a temporary SQLite file in its own
process (so the sending side does not share the server's GIL), sends
``--calls`` calls (a start and an end each) in batches of ``--batch`` calls
over real HTTP, checks every call landed, and prints the figure. Bodies are
encoded before the clock starts, so the figure is the server's (HTTP, parsing,
SQLite), not the client's. The figure is the best of ``--rounds`` rounds (3).
Exits non-zero below ``--target`` calls/s (default 20,000) or if any call is
missing. ``--in-process`` uses ``start_background_server`` instead.

    .venv/bin/python scripts/benchmarks/bench_server.py [--calls 100000] [--batch 1000] [--senders 2]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from _common import process_cpu, server_process, stored_in_db

from weave_client._ids import generate_id
from weave_client.server import start_background_server

PROJECT = "bench/server"
SERVER_PID: list[int] = []


def server_cpu() -> float | None:
    """CPU seconds (user + system) the server process has used so far (Linux /proc)."""
    return process_cpu(SERVER_PID[0]) if SERVER_PID else None


def make_bodies(n_calls: int, batch: int, project: str = PROJECT) -> list[bytes]:
    """Pre-encoded batch bodies: each call's start and end in the same batch.

    Call and trace ids are UUIDv7, as weave's client and ours make them: time-ordered,
    so SQLite appends to its id indexes. (Random UUIDv4 ids, which no client sends,
    cost the server about a quarter more CPU per call: each lands on its own index page.)
    """
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    bodies = []
    for first in range(0, n_calls, batch):
        items = []
        trace_id = generate_id()
        for i in range(first, min(first + batch, n_calls)):
            call_id = generate_id()
            started = t0 + timedelta(milliseconds=i)
            items.append(
                {
                    "mode": "start",
                    "req": {
                        "start": {
                            "project_id": project,
                            "id": call_id,
                            "trace_id": trace_id,
                            "op_name": "weave:///bench/server/op/predict:abc123",
                            "started_at": started.isoformat(),
                            "attributes": {"weave": {"client_version": "0.1.0", "source": "bench"}},
                            "inputs": {"x": i, "prompt": "hello world", "params": {"t": 0.5}},
                        }
                    },
                }
            )
            items.append(
                {
                    "mode": "end",
                    "req": {
                        "end": {
                            "project_id": project,
                            "id": call_id,
                            "ended_at": (started + timedelta(milliseconds=3)).isoformat(),
                            "output": {"y": i * 2, "text": "a short answer"},
                            "summary": {},
                        }
                    },
                }
            )
        bodies.append(json.dumps({"batch": items}).encode())
    return bodies


@contextlib.contextmanager
def serve_subprocess(db_path: Path) -> Iterator[str]:
    """``python -m weave_client serve`` in its own process; yields its URL once healthy.

    The server's pid is kept in ``SERVER_PID`` (for its CPU time)."""
    with server_process(db_path) as (proc, url):
        SERVER_PID[:] = [proc.pid]
        try:
            yield url
        finally:
            SERVER_PID.clear()


@contextlib.contextmanager
def serve_in_process(db_path: Path) -> Iterator[str]:
    with start_background_server(db_path) as server:
        yield server.url


def warm_up(url: str) -> None:
    """One small batch before the timing (first-request imports, page cache)."""
    with httpx.Client(base_url=url) as warm:
        warm.post(
            "/call/upsert_batch", content=make_bodies(10, 10, "bench/warmup")[0]
        ).raise_for_status()


def send_all(url: str, bodies: list[bytes], senders: int) -> float:
    """Post every body over ``senders`` connections; returns the seconds taken."""
    queue = list(reversed(bodies))
    lock = threading.Lock()
    errors: list[str] = []

    def sender() -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            while True:
                with lock:
                    if not queue or errors:
                        return
                    body = queue.pop()
                r = client.post(
                    "/call/upsert_batch", content=body, headers={"content-type": "application/json"}
                )
                if r.status_code != 200:
                    errors.append(f"HTTP {r.status_code}: {r.text[:200]}")
                    return

    threads = [threading.Thread(target=sender) for _ in range(senders)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise RuntimeError(errors[0])
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000, help="calls per round")
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--senders", type=int, default=2, help="concurrent HTTP connections")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="timed rounds (each a fresh project); the best is the figure, as timeit reports, "
        "since other load on the machine only ever slows a round down",
    )
    parser.add_argument("--target", type=float, default=20_000.0, help="calls/s to reach")
    parser.add_argument(
        "--in-process", action="store_true", help="run the server in this process (a thread)"
    )
    args = parser.parse_args()

    projects = [f"{PROJECT}-{i}" for i in range(args.rounds)]
    rounds = [make_bodies(args.calls, args.batch, project) for project in projects]
    rates: list[float] = []
    cpu_ms: list[float] = []  # server CPU per 1,000 calls, each round
    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "bench.db"
        serve = serve_in_process if args.in_process else serve_subprocess
        with serve(db_path) as url:
            warm_up(url)
            for bodies in rounds:
                cpu = server_cpu()
                try:
                    elapsed = send_all(url, bodies, args.senders)
                except RuntimeError as exc:
                    print(f"FAILED: {exc}", file=sys.stderr)
                    return 1
                rates.append(args.calls / elapsed)
                after = server_cpu()
                if cpu is not None and after is not None:
                    cpu_ms.append((after - cpu) * 1_000_000 / args.calls)
        stored = [stored_in_db(db_path, project, whole=True) for project in projects]

    best = max(rates)
    print(
        f"/call/upsert_batch: {args.calls} calls (start+end) per round in batches of {args.batch}, "
        f"{args.senders} senders: best {best:,.0f} calls/s "
        f"(rounds: {', '.join(f'{r:,.0f}' for r in rates)}; target {args.target:,.0f}); "
        f"stored {sum(stored)} of {args.calls * args.rounds}",
        flush=True,
    )
    if cpu_ms:
        # Less sensitive than calls/s to other load on the machine (it still inflates it).
        print(
            "server CPU per 1,000 calls: " + ", ".join(f"{c:.0f}" for c in cpu_ms) + " ms (rounds)",
            flush=True,
        )
    if stored != [args.calls] * args.rounds:
        print(f"FAILED: stored {stored} calls per round, expected {args.calls}", file=sys.stderr)
        return 1
    if best < args.target:
        print("FAILED: below target", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
