#!/usr/bin/env python
"""Reliability figures too slow for the test suite (issue 6).

``faults``: N traced calls (default 10,000: 5,000 parents with one child each) per
flavour through a fault-injecting proxy (tests/fault_proxy.py) at a 30% mixed
fault rate in front of our real local server; then the server is read directly
and calls counted by id: stored, missing, duplicated, unfinished.

``load``: 50,000 calls in all: the sync client shared by 16 threads (25,000) and
the async client by 1,000 tasks (25,000), each call a parent with one child;
every call stored once, every child under its parent.

``outage``: the server is down (connections reset) when the client starts and
comes back ``--down`` seconds later (default 60); with the write-ahead log on,
N calls (default 20,000) traced meanwhile fill the memory queue to its bound
(``--max-queue``, default 5,000), spill to disk, and are all delivered once the
server answers; prints how long delivery took after it came back.

Each prints every figure with the command that reproduces it and exit non-zero
when a call is lost, duplicated or misplaced::

    .venv/bin/python scripts/benchmarks/bench_reliability.py faults [--calls 10000] [--rate 0.3] [--seed 6]
    .venv/bin/python scripts/benchmarks/bench_reliability.py load [--calls 50000]
    .venv/bin/python scripts/benchmarks/bench_reliability.py outage [--down 60] [--calls 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # the proxy and the counting helpers live under tests/

from _common import temp_server  # noqa: E402

from tests.fault_proxy import FaultProxy  # noqa: E402
from tests.reliability.helpers import (  # noqa: E402
    exactly_once_report,
    stored_calls,
    tune_for_faults,
)
from weave_client import (  # noqa: E402
    AsyncWeaveClient,
    ContextThreadPoolExecutor,
    WeaveClient,
    async_op,
    op,
)

ENTITY = "bench"


@op
def child(worker: int, i: int) -> int:
    return i


@op
def parent(worker: int, i: int) -> int:
    return child(worker, i) + 1


@async_op
async def achild(worker: int, i: int) -> int:
    await asyncio.sleep(0)
    return i


@async_op
async def aparent(worker: int, i: int) -> int:
    await asyncio.sleep(0)
    return await achild(worker, i) + 1


def check(server_url: str, project_id: str, expected_calls: int) -> dict[str, Any]:
    calls = stored_calls(server_url, project_id)
    roots = {c["id"]: c for c in calls if c["parent_id"] is None}
    children = [c for c in calls if c["parent_id"] is not None]
    by_key = {(c["inputs"]["worker"], c["inputs"]["i"]): c for c in roots.values()}
    misplaced = sum(
        1
        for c in children
        if (p := by_key.get((c["inputs"]["worker"], c["inputs"]["i"]))) is None
        or c["parent_id"] != p["id"]
        or c["trace_id"] != p["trace_id"]
    )
    report: dict[str, Any] = exactly_once_report(calls, set(roots) | {c["id"] for c in children})
    report["missing"] = expected_calls - len({c["id"] for c in calls})
    report["misplaced"] = misplaced
    return report


def ok(report: dict[str, Any], expected: int) -> bool:
    return report["stored"] == expected and not any(
        report[k] for k in ("missing", "duplicated", "unfinished", "misplaced")
    )


# --- faults -----------------------------------------------------------------------------------


def faults_sync(url: str, project: str, parents: int) -> dict[str, Any]:
    with WeaveClient(ENTITY, project, server_url=url) as client:
        tune_for_faults(client, timeout=0.3, batch_size=100)
        for i in range(parents):
            parent(0, i)
        result = client.flush(timeout=600)
    return {"flush": result}


async def faults_async(url: str, project: str, parents: int) -> dict[str, Any]:
    async with AsyncWeaveClient(ENTITY, project, server_url=url) as client:
        tune_for_faults(client, timeout=0.3, batch_size=100)
        for i in range(parents):
            await aparent(0, i)
        result = await client.flush(timeout=600)
    return {"flush": result}


def run_faults(args: argparse.Namespace) -> bool:
    parents = args.calls // 2
    good = True
    with temp_server() as server:
        upstream = str(server.url).rstrip("/")
        for flavour in ("sync", "async"):
            project = f"faults-{flavour}-{int(time.time())}"
            with FaultProxy(
                upstream, fault_rate=args.rate, seed=args.seed, slow_delay=0.6
            ) as proxy:
                started = time.perf_counter()
                if flavour == "sync":
                    out = faults_sync(proxy.url, project, parents)
                else:
                    out = asyncio.run(faults_async(proxy.url, project, parents))
                elapsed = time.perf_counter() - started
                stats, requests = dict(proxy.stats), sum(proxy.requests.values())
            report = check(upstream, f"{ENTITY}/{project}", 2 * parents)
            good &= ok(report, 2 * parents) and out["flush"].failed == 0
            print(
                f"faults [{flavour}]: {2 * parents} calls, {requests} requests,"
                f" {sum(stats.values())} injected faults ({args.rate:.0%} rate) {stats};"
                f" {report}; {elapsed:.1f} s"
            )
    print(
        "  reproduce: .venv/bin/python scripts/benchmarks/bench_reliability.py faults"
        f" --calls {args.calls} --rate {args.rate} --seed {args.seed}"
    )
    return good


# --- load -------------------------------------------------------------------------------------


def share(total: int, workers: int, worker: int) -> int:
    """Worker ``worker``'s part of ``total`` items split as evenly as possible."""
    return total // workers + (1 if worker < total % workers else 0)


def load_sync(url: str, project: str, parents: int, threads: int) -> Any:
    with WeaveClient(ENTITY, project, server_url=url) as client:

        def work(worker: int) -> None:
            for i in range(share(parents, threads, worker)):
                parent(worker, i)

        with ContextThreadPoolExecutor(max_workers=threads) as pool:
            for future in [pool.submit(work, w) for w in range(threads)]:
                future.result()
        return client.flush(timeout=600)


async def load_async(url: str, project: str, parents: int, tasks: int) -> Any:
    async with AsyncWeaveClient(ENTITY, project, server_url=url) as client:

        async def work(worker: int) -> None:
            for i in range(share(parents, tasks, worker)):
                await aparent(worker, i)

        await asyncio.gather(*(work(w) for w in range(tasks)))
        return await client.flush(timeout=600)


def run_load(args: argparse.Namespace) -> bool:
    parents_each = args.calls // 4  # half the calls per flavour, half of them parents
    good = True
    with temp_server() as server:
        url = str(server.url).rstrip("/")
        for flavour, width in (("sync", args.threads), ("async", args.tasks)):
            project = f"load-{flavour}-{int(time.time())}"
            started = time.perf_counter()
            if flavour == "sync":
                result = load_sync(url, project, parents_each, width)
            else:
                result = asyncio.run(load_async(url, project, parents_each, width))
            elapsed = time.perf_counter() - started
            expected = 2 * parents_each
            report = check(url, f"{ENTITY}/{project}", expected)
            good &= ok(report, expected) and result.failed == 0 and result.pending == 0
            what = f"{width} threads" if flavour == "sync" else f"{width} tasks"
            print(f"load [{flavour}, {what}]: {expected} calls; {report}; {elapsed:.1f} s")
    print(
        "  reproduce: .venv/bin/python scripts/benchmarks/bench_reliability.py load"
        f" --calls {args.calls} --threads {args.threads} --tasks {args.tasks}"
    )
    return good


# --- outage -----------------------------------------------------------------------------------


def run_outage(args: argparse.Namespace) -> bool:
    parents = args.calls // 2
    good = True
    with temp_server() as server, tempfile.TemporaryDirectory() as tmp:
        upstream = str(server.url).rstrip("/")
        for flavour in args.flavours.split(","):
            project = f"outage-{flavour}-{int(time.time())}"
            cache_dir = Path(tmp) / f"cache-{flavour}"
            with FaultProxy(upstream, fault_rate=1.0, kinds=["reset_before"]) as proxy:
                started = time.monotonic()
                if flavour == "sync":
                    stats = outage_sync(proxy, project, cache_dir, parents, args, started)
                else:
                    stats = asyncio.run(
                        outage_async(proxy, project, cache_dir, parents, args, started)
                    )
            report = check(upstream, f"{ENTITY}/{project}", 2 * parents)
            left = sorted((cache_dir / "wal").rglob("seg-*.jsonl"))
            good &= ok(report, 2 * parents) and not left
            print(
                f"outage [{flavour}]: down {args.down:.0f} s, {2 * parents} calls traced"
                f" meanwhile; queue bound {args.max_queue}, {stats['spilled']} records"
                f" spilled to disk; all delivered {stats['delivered']:.1f} s after the server"
                f" came back; {report}; WAL segments left: {len(left)}"
            )
    print(
        "  reproduce: .venv/bin/python scripts/benchmarks/bench_reliability.py outage"
        f" --down {args.down} --calls {args.calls} --max-queue {args.max_queue}"
        f" --flavours {args.flavours}"
    )
    return good


def _delivered(upstream: str, project: str, expected: int) -> bool:
    calls = stored_calls(upstream, f"{ENTITY}/{project}")
    return len(calls) == expected and all(c["ended_at"] for c in calls)


def outage_sync(
    proxy: FaultProxy,
    project: str,
    cache_dir: Path,
    parents: int,
    args: argparse.Namespace,
    started: float,
) -> dict[str, Any]:
    with WeaveClient(ENTITY, project, server_url=proxy.url, cache_dir=cache_dir, wal=True) as c:
        c._sender.max_queue = args.max_queue
        for i in range(parents):
            parent(0, i)
        time.sleep(max(0.0, started + args.down - time.monotonic()))
        proxy.fault_rate = 0.0
        back = time.monotonic()
        while not _delivered(proxy.upstream, project, 2 * parents):
            time.sleep(0.2)
        return {"spilled": c._sender.spilled, "delivered": time.monotonic() - back}


async def outage_async(
    proxy: FaultProxy,
    project: str,
    cache_dir: Path,
    parents: int,
    args: argparse.Namespace,
    started: float,
) -> dict[str, Any]:
    async with AsyncWeaveClient(
        ENTITY, project, server_url=proxy.url, cache_dir=cache_dir, wal=True
    ) as c:
        c._sender.max_queue = args.max_queue
        for i in range(parents):
            await aparent(0, i)
        await asyncio.sleep(max(0.0, started + args.down - time.monotonic()))
        proxy.fault_rate = 0.0
        back = time.monotonic()
        # Polling the server is the point: it is the outside observer of delivery.
        while not _delivered(proxy.upstream, project, 2 * parents):  # noqa: ASYNC110
            await asyncio.sleep(0.2)
        return {"spilled": c._sender.spilled, "delivered": time.monotonic() - back}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    faults = commands.add_parser("faults", help="N calls per flavour under injected faults")
    faults.add_argument("--calls", type=int, default=10_000)
    faults.add_argument("--rate", type=float, default=0.3)
    faults.add_argument("--seed", type=int, default=6)
    load = commands.add_parser("load", help="50,000 calls from 16 threads and 1,000 tasks")
    load.add_argument("--calls", type=int, default=50_000)
    load.add_argument("--threads", type=int, default=16)
    load.add_argument("--tasks", type=int, default=1000)
    outage = commands.add_parser("outage", help="server down at start, back after --down s")
    outage.add_argument("--down", type=float, default=60.0)
    outage.add_argument("--calls", type=int, default=20_000)
    outage.add_argument("--max-queue", type=int, default=5_000)
    outage.add_argument("--flavours", default="sync,async")
    args = parser.parse_args()
    runs = {"faults": run_faults, "load": run_load, "outage": run_outage}
    good = runs[args.command](args)
    print("OK: every call stored exactly once" if good else "FAILED: see the counts above")
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
