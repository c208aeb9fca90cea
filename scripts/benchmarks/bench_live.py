#!/usr/bin/env python
"""Live traces: what ``/calls/watch`` watchers cost ingestion, and how soon they hear of a call.

Starts ``python -m weave_client serve`` on a temp database (its own process),
then:

1. ingestion rate: ``/call/upsert_batch`` calls/s (bodies encoded before the
   clock starts; each batch starts 125 calls and ends the 125 before, as the
   client's sender mixes them) with no watcher, then with ``--watchers``
   watchers connected (in another process, reading every event), alternating
   the two sides ``--rounds`` times (which side goes first alternates too) and
   comparing the medians. PASS when the
   rate with watchers is within 10% of the rate without;
2. latency: ``--latency-calls`` calls started and ended one by one; for each,
   the time from sending its end to its ``end`` event arriving at a watcher
   (one system-wide monotonic clock across the processes), median and worst.

    .venv/bin/python scripts/benchmarks/bench_live.py [--watchers 10] [--calls 20000] [--rounds 3]

Exits 1 when the ingestion target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

PROJECT = "bench/live"
BATCH = 125


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _start(call_id: str, i: int) -> dict[str, Any]:
    start = {
        "project_id": PROJECT, "id": call_id, "trace_id": call_id, "op_name": "step",
        "started_at": _now(), "attributes": {}, "inputs": {"i": i, "q": f"question {i}"},
    }  # fmt: skip
    return {"mode": "start", "req": {"start": start}}


def _end(call_id: str, i: int) -> dict[str, Any]:
    end = {"project_id": PROJECT, "id": call_id, "ended_at": _now(), "summary": {}, "output": i}
    return {"mode": "end", "req": {"end": end}}


def _bodies(calls: int) -> list[bytes]:
    """Batches starting BATCH calls and ending the BATCH before (the last one ends the rest)."""
    ids = [str(uuid.uuid4()) for _ in range(calls)]
    out = []
    for k in range(0, calls + BATCH, BATCH):
        batch = [_start(c, k + j) for j, c in enumerate(ids[k : k + BATCH])]
        prev = ids[max(0, k - BATCH) : k]
        batch += [_end(c, k - BATCH + j) for j, c in enumerate(prev)]
        if batch:
            out.append(orjson.dumps({"batch": batch}))
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(db: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    proc = subprocess.Popen(
        # (Log level warning, as in bench_server.py: no INFO line per watcher connecting.)
        [
            sys.executable,
            "-m",
            "weave_client",
            "serve",
            "--port",
            str(port),
            "--db",
            str(db),
            "--log-level",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health").status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("bench_live: the server did not start")


def _cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _ingest(http: httpx.Client, url: str, bodies: list[bytes], calls: int) -> float:
    start = time.perf_counter()
    for body in bodies:
        r = http.post(url + "/call/upsert_batch", content=body)
        r.raise_for_status()
    return calls / (time.perf_counter() - start)


# -- the watchers' process ---------------------------------------------------------------------


async def _watchers_main(url: str, n: int) -> None:
    from httpx_ws import aconnect_ws

    counts = [0] * n
    ready = asyncio.Event()
    ready_count = 0

    async def watch(k: int) -> None:
        nonlocal ready_count
        async with httpx.AsyncClient() as http, aconnect_ws(url + "/calls/watch", http) as ws:
            await ws.send_text(json.dumps({"project_id": PROJECT}))
            while True:
                text = await ws.receive_text()
                # One event per line; counted without parsing, but for the latency probes.
                if text.startswith('{"kind":"ready"'):
                    ready_count += 1
                    if ready_count == n:
                        ready.set()
                    continue
                counts[k] += text.count("\n") + 1
                if k == 0 and '"op_name":"latency"' in text:
                    for line in text.split("\n"):
                        msg = json.loads(line)
                        if msg["kind"] == "end" and msg["call"]["op_name"] == "latency":
                            print(f"{msg['call']['id']} {time.monotonic()}", flush=True)

    tasks = [asyncio.create_task(watch(k)) for k in range(n)]
    await ready.wait()
    print("ready", flush=True)
    # The bench then says how many events to expect (a line on stdin): wait for them
    # (at most a minute), report how many each watcher got.
    line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    expect = int(line or 0)
    deadline = time.monotonic() + 60
    while min(counts) < expect and time.monotonic() < deadline:  # noqa: ASYNC110 (a bench probe)
        await asyncio.sleep(0.05)
    print("counts " + " ".join(map(str, counts)), flush=True)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _start_watchers(url: str, n: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--watchers-child", url, str(n)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if line != "ready":
        proc.kill()
        raise SystemExit(f"bench_live: the watchers did not connect ({line!r})")
    return proc


def _latency(http: httpx.Client, url: str, watchers: subprocess.Popen[str], n: int) -> list[float]:
    sent: dict[str, float] = {}
    for i in range(n):
        cid = str(uuid.uuid4())
        start = _start(cid, i)
        start["req"]["start"]["op_name"] = "latency"
        http.post(url + "/call/upsert_batch", json={"batch": [start]}).raise_for_status()
        body = orjson.dumps({"batch": [_end(cid, i)]})
        sent[cid] = time.monotonic()
        http.post(url + "/call/upsert_batch", content=body).raise_for_status()
        time.sleep(0.02)
    assert watchers.stdin is not None and watchers.stdout is not None
    got: dict[str, float] = {}
    while len(got) < n:
        line = watchers.stdout.readline()
        if not line:
            break
        cid, t = line.split()
        got[cid] = float(t)
    return [(got[c] - t) * 1000 for c, t in sent.items() if c in got]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--watchers", type=int, default=10)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency-calls", type=int, default=100)
    parser.add_argument("--watchers-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.watchers_child:
        # The watchers stand in for clients on other machines (browsers, monitors): on
        # this machine their own CPU must not be charged to the server, so they run niced.
        os.nice(10)
        url, n = args.watchers_child
        asyncio.run(_watchers_main(url, int(n)))
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        server, url = _serve(Path(tmp) / "live.db")
        try:
            with httpx.Client(timeout=120) as http:
                _ingest(http, url, _bodies(2000), 2000)  # warm up
                without: list[float] = []
                with_: list[float] = []
                cpu_without: list[float] = []
                cpu_with: list[float] = []
                received = 0
                for r in range(args.rounds):
                    # The database grows round by round: the two sides take turns going
                    # first (ABBA), so neither always meets the bigger file.
                    for watched_side in (False, True) if r % 2 == 0 else (True, False):
                        if not watched_side:
                            bodies = _bodies(args.calls)
                            cpu = _cpu(server.pid)
                            without.append(_ingest(http, url, bodies, args.calls))
                            cpu_without.append(_cpu(server.pid) - cpu)
                            continue
                        watchers = _start_watchers(url, args.watchers)
                        bodies = _bodies(args.calls)
                        cpu = _cpu(server.pid)
                        with_.append(_ingest(http, url, bodies, args.calls))
                        out, _ = watchers.communicate(f"{2 * args.calls}\n", timeout=300)
                        cpu_with.append(_cpu(server.pid) - cpu)  # ingestion and fan-out
                        counts = [int(c) for c in out.split("counts ")[-1].split()]
                        received += min(counts)
                base, watched = statistics.median(without), statistics.median(with_)
                ratio = watched / base
                ok = ratio >= 0.9
                print(f"ingestion, no watcher:        {base:,.0f} calls/s  (rounds: "
                      + ", ".join(f"{r:,.0f}" for r in without) + ")")  # fmt: skip
                print(f"ingestion, {args.watchers} watchers:      {watched:,.0f} calls/s  (rounds: "
                      + ", ".join(f"{r:,.0f}" for r in with_) + ")")  # fmt: skip
                print(
                    f"with watchers / without: {ratio:.1%}  target >= 90%  {'PASS' if ok else 'FAIL'}"
                )
                print(
                    f"events each watcher received while loaded (fewest): {received:,} "
                    f"of {2 * args.calls * args.rounds:,}"
                )
                k = 1000 / args.calls
                print(
                    "server CPU per 1,000 calls: "
                    f"{statistics.median(cpu_without) * k * 1000:.0f} ms without watchers, "
                    f"{statistics.median(cpu_with) * k * 1000:.0f} ms with (ingestion and fan-out)"
                )

                watchers = _start_watchers(url, args.watchers)
                lat = _latency(http, url, watchers, args.latency_calls)
                watchers.communicate("0\n", timeout=60)
                if len(lat) < args.latency_calls:
                    print(f"latency: only {len(lat)} of {args.latency_calls} end events arrived")
                    ok = False
                if lat:
                    print(f"latency, call end -> event at a watcher ({len(lat)} calls, "
                          f"{args.watchers} watchers): median {statistics.median(lat):.1f} ms, "
                          f"worst {max(lat):.1f} ms")  # fmt: skip
        finally:
            server.terminate()
            server.wait(timeout=30)
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
