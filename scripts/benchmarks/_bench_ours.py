"""The figures of ``scripts/bench`` that only our client has (issue 12).

- ``import_time``: ``import weave_client`` in a fresh interpreter (s), the median of
  ``IMPORT_RUNS`` runs (a fresh process each, so nothing is cached in memory).
- ``client_stall``: the worst event-loop stall while ``await create_async_client(...)``
  creates a client that starts the embedded local server (ms): a 1 ms ticker runs
  alongside, in a fresh process with no server configured; minus the worst lateness of
  the same ticker left idle as long right after (what the loaded machine adds by itself;
  both are kept in the result's extras).
- ``server``: the local server's ``/call/upsert_batch`` throughput (calls/s), as
  ``scripts/benchmarks/bench_server.py`` measures it: a server process of its own, bodies of
  1,000 calls encoded before the clock starts, two senders, the best of the rounds, and
  every call of every round checked in the database afterwards.
- ``live``: live traces (issue 13), as ``scripts/benchmarks/bench_live.py`` measures them:
  the ``/call/upsert_batch`` rate with 10 ``/calls/watch`` watchers as a percentage of the
  rate with none (a fresh server per round, medians of 5), and the latency from a call's
  end to its event at a watcher; "stored" is what the fewest-served watcher received.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import _bench_figures as figs

ROOT = Path(__file__).resolve().parents[2]
IMPORT_RUNS = 5
SERVER_CALLS = 50_000
SERVER_BATCH = 1_000
SERVER_ROUNDS = 3
LIVE_CALLS = 20_000

_IMPORT_PROBE = (
    "import time; t0 = time.perf_counter(); import weave_client; "
    "print(time.perf_counter() - t0)"
)

# A fresh process: a 1 ms ticker on the loop while a client with the embedded server
# (no server URL, no API key: the local server starts) is created and closed. The
# client's module is imported first, as a program imports it (the import has its figure).
_STALL_PROBE = r"""
import asyncio, json, time
from weave_client import create_async_client  # imported as a program does, before its loop

async def main():
    clock = time.perf_counter
    lags = []
    stop = asyncio.Event()

    async def ticker():
        while not stop.is_set():
            due = clock() + 0.001
            await asyncio.sleep(0.001)
            lags.append(clock() - due)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)
    lags.clear()
    t0 = clock()
    client = await create_async_client("bench", "stall")
    created = clock() - t0
    await asyncio.sleep(0.01)
    stall = max(lags)
    # The same ticker with nothing else to do, as long: what the machine alone adds.
    lags.clear()
    await asyncio.sleep(created + 0.01)
    idle = max(lags)
    stop.set()
    await task
    await client.aclose()
    print("RESULT " + json.dumps({"stall_ms": stall * 1000.0, "idle_ms": idle * 1000.0,
                                  "create_s": created, "url": client.server_url}))

asyncio.run(main())
"""


def _clean_env(tmp: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "WANDB_API_KEY",
            "WANDB_BASE_URL",
            "WEAVE_TRACE_SERVER_URL",
            "WF_TRACE_SERVER_URL",
        )
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["WEAVE_CLIENT_DB"] = str(Path(tmp) / "embedded.db")
    env["WEAVE_CLIENT_CACHE_DIR"] = str(Path(tmp) / "cache")
    return env


def import_time(runs: int = IMPORT_RUNS) -> figs.Result:
    """Median seconds of ``import weave_client`` over ``runs`` fresh interpreters."""
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(runs):
            out = subprocess.run(
                [sys.executable, "-c", _IMPORT_PROBE],
                capture_output=True,
                text=True,
                check=True,
                env=_clean_env(tmp),
                cwd=tmp,
                timeout=120,
            )
            times.append(float(out.stdout.strip().splitlines()[-1]))
    return figs.Result(
        "import_time",
        "ours",
        statistics.median(times),
        runs,
        extra={"runs_s": times},
    )


def client_stall() -> figs.Result:
    """Worst loop stall (ms) while creating a client that starts the embedded server."""
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            [sys.executable, "-c", _STALL_PROBE],
            capture_output=True,
            text=True,
            env=_clean_env(tmp),
            cwd=tmp,
            timeout=120,
        )
        lines = [line for line in out.stdout.splitlines() if line.startswith("RESULT ")]
        if out.returncode != 0 or not lines:
            raise RuntimeError(f"exit {out.returncode}: {out.stderr.strip()[-400:]}")
        data: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
    return figs.Result(
        "client_stall",
        "ours",
        max(0.0, float(data["stall_ms"]) - float(data["idle_ms"])),
        1,
        extra={
            "stall_ms": data["stall_ms"],
            "idle_ms": data["idle_ms"],
            "create_s": data["create_s"],
        },
    )


def server_throughput(
    calls: int = SERVER_CALLS, rounds: int = SERVER_ROUNDS
) -> tuple[figs.Result, int]:
    """Best calls/s over ``rounds`` of ``calls`` calls, and how many calls were stored."""
    from _common import stored_in_db
    from bench_server import make_bodies, send_all, serve_subprocess, warm_up

    projects = [f"bench/server-{i}" for i in range(rounds)]
    bodies = [make_bodies(calls, SERVER_BATCH, project) for project in projects]
    rates = []
    with tempfile.TemporaryDirectory() as tmp:
        db_path = Path(tmp) / "server.db"
        with serve_subprocess(db_path) as url:
            warm_up(url)
            for round_bodies in bodies:
                rates.append(calls / send_all(url, round_bodies, senders=2))
        stored = sum(stored_in_db(db_path, project, whole=True) for project in projects)
    result = figs.Result(
        "server",
        "ours",
        max(rates),
        calls,
        calls_made=calls * rounds,
        extra={"rounds": rates},
    )
    return result, stored


def live_watchers(calls: int = LIVE_CALLS) -> tuple[figs.Result, int]:
    """scripts/benchmarks/bench_live.py's figures: the ingestion rate with 10 watchers as a
    percentage of the rate with none, and the call end -> event latency; "stored" is
    the events the fewest-served watcher received (every one expected)."""
    import bench_live

    f = bench_live.measure(watchers=10, calls=calls)
    result = figs.Result(
        "live",
        "ours",
        f.ratio * 100.0,
        calls,
        calls_made=f.expected,
        extra={
            "latency_median_ms": statistics.median(f.latency_ms) if f.latency_ms else None,
            "latency_worst_ms": max(f.latency_ms) if f.latency_ms else None,
            "without": f.without,
            "with": f.with_,
        },
    )
    return result, f.received
