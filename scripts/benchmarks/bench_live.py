#!/usr/bin/env python
"""Live traces: what ``/calls/watch`` watchers cost ingestion, and how soon they hear of a call.

Starts ``python -m weave_client serve`` on a temp database (its own process)
for each measurement:

1. ingestion rate: ``/call/upsert_batch`` calls/s (bodies encoded before the
   clock starts; each batch starts 125 calls and ends the 125 before, as the
   client's sender mixes them) with no watcher, then with ``--watchers``
   watchers connected (in another process, reading every event), alternating
   the two sides ``--rounds`` times (which side goes first alternates too) and
   comparing the medians. Every round runs on a fresh server and database, so
   neither side meets a bigger file. PASS when the rate with watchers is within
   10% of the rate without;
2. latency: ``--latency-calls`` calls started and ended one by one; for each,
   the time from sending its end to its ``end`` event arriving at a watcher
   (one system-wide monotonic clock across the processes), median and worst.

    .venv/bin/python scripts/benchmarks/bench_live.py [--watchers 10] [--calls 20000] [--rounds 5]

Exits 1 when the ingestion target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from _common import process_cpu, server_process

from weave_client._ids import generate_id

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
    """Batches starting BATCH calls and ending the BATCH before (the last one ends the rest);
    UUIDv7 ids, as the clients make them (see bench_server.make_bodies)."""
    ids = [generate_id() for _ in range(calls)]
    out = []
    for k in range(0, calls + BATCH, BATCH):
        batch = [_start(c, k + j) for j, c in enumerate(ids[k : k + BATCH])]
        prev = ids[max(0, k - BATCH) : k]
        batch += [_end(c, k - BATCH + j) for j, c in enumerate(prev)]
        if batch:
            out.append(orjson.dumps({"batch": batch}))
    return out


def _cpu(pid: int) -> float:
    cpu = process_cpu(pid)
    if cpu is None:
        raise SystemExit("bench_live: reads CPU times from /proc (Linux only)")
    return cpu


def _ingest(http: httpx.Client, url: str, bodies: list[bytes], calls: int) -> float:
    start = time.perf_counter()
    for body in bodies:
        r = http.post(url + "/call/upsert_batch", content=body)
        r.raise_for_status()
    return calls / (time.perf_counter() - start)


# -- the watchers' process ---------------------------------------------------------------------


class _LeanWatcher:
    """A minimal WebSocket client for the watchers: RFC 6455 framing by hand over asyncio
    streams, reading whole messages with large reads, and offering permessage-deflate as
    browsers do (``lean-plain``: not). The watchers stand in for clients on other
    machines; a lean reader keeps what they take of this machine's two cores (which the
    server needs) small. ``--watcher-client httpx-ws`` uses the real client stack."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, url: str, deflate: bool) -> _LeanWatcher:
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port), limit=1 << 24)
        key = base64.b64encode(os.urandom(16)).decode()
        offer = "Sec-WebSocket-Extensions: permessage-deflate\r\n" if deflate else ""
        writer.write(
            f"GET /calls/watch HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\n{offer}\r\n".encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise RuntimeError(f"the upgrade was refused: {head[:80]!r}")
        if deflate and b"server_no_context_takeover" not in head.lower():
            raise RuntimeError(f"permessage-deflate was not agreed as expected: {head!r}")
        return cls(reader, writer)

    async def send_text(self, text: str) -> None:
        data = text.encode()
        assert len(data) < 126
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.writer.write(bytes([0x81, 0x80 | len(data)]) + mask + masked)
        await self.writer.drain()

    async def receive(self) -> bytes:
        """The next text message, its UTF-8 bytes (the watchers count lines in bytes)."""
        parts: list[bytes] = []
        while True:
            b0, b1 = await self.reader.readexactly(2)
            size = b1 & 0x7F
            if size == 126:
                size = int.from_bytes(await self.reader.readexactly(2), "big")
            elif size == 127:
                size = int.from_bytes(await self.reader.readexactly(8), "big")
            payload = await self.reader.readexactly(size)  # server frames are not masked
            opcode = b0 & 0x0F
            if opcode == 0x8:
                raise ConnectionError(f"closed by the server: {payload[2:]!r}")
            if opcode in (0x1, 0x0):
                parts.append(payload)
                if b0 & 0x80:
                    data = b"".join(parts)
                    if b0 & 0x40:  # compressed, no context taken over (RFC 7692)
                        data = zlib.decompressobj(-15).decompress(data + b"\x00\x00\xff\xff")
                    return data


async def _watchers_main(url: str, n: int, client: str) -> None:
    from httpx_ws import aconnect_ws

    counts = [0] * n
    ready = asyncio.Event()
    ready_count = 0

    async def on_message(k: int, data: bytes) -> None:
        nonlocal ready_count
        # One event per line; counted without parsing, but for the latency probes.
        if data.startswith(b'{"kind":"ready"'):
            ready_count += 1
            if ready_count == n:
                ready.set()
            return
        counts[k] += data.count(b"\n") + 1
        if k == 0 and b'"op_name":"latency"' in data:
            for line in data.split(b"\n"):
                msg = json.loads(line)
                if msg["kind"] == "end" and msg["call"]["op_name"] == "latency":
                    print(f"{msg['call']['id']} {time.monotonic()}", flush=True)

    async def watch(k: int) -> None:
        subscribe = json.dumps({"project_id": PROJECT})
        if client in ("lean", "lean-plain"):
            ws = await _LeanWatcher.connect(url, deflate=client == "lean")
            await ws.send_text(subscribe)
            while True:
                await on_message(k, await ws.receive())
        async with httpx.AsyncClient() as http, aconnect_ws(
            url + "/calls/watch", http, max_message_size_bytes=1 << 24
        ) as hws:
            await hws.send_text(subscribe)
            while True:
                await on_message(k, (await hws.receive_text()).encode())

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


def _start_watchers(url: str, n: int, client: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--watchers-child", url, str(n), client],
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
        cid = generate_id()
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


@dataclass
class LiveFigures:
    """What one measurement gives (rates are medians over the rounds)."""

    without: list[float]  # calls/s, each round, no watcher
    with_: list[float]  # calls/s, each round, the watchers connected
    cpu_without: list[float]  # server CPU seconds per round
    cpu_with: list[float]
    received: int  # events the fewest-served watcher got, over the rounds
    cpu_watchers: list[float]  # the watchers' process CPU seconds per watched round
    expected: int
    latency_ms: list[float]
    latency_calls: int

    @property
    def ratio(self) -> float:
        return statistics.median(self.with_) / statistics.median(self.without)


def _round(
    watchers: int, calls: int, watched: bool, client: str
) -> tuple[float, float, int, float]:
    """One measurement on a fresh server and database (every round starts from the
    same state): (calls/s, server CPU seconds, events the fewest-served watcher got,
    the watchers' CPU seconds)."""
    with tempfile.TemporaryDirectory() as tmp:
        with server_process(Path(tmp) / "live.db") as (server, url), httpx.Client(
            timeout=120
        ) as http:
            _ingest(http, url, _bodies(2000), 2000)  # warm up
            bodies = _bodies(calls)
            proc = _start_watchers(url, watchers, client) if watched else None
            cpu = _cpu(server.pid)
            rate = _ingest(http, url, bodies, calls)
            received, watchers_cpu = 0, 0.0
            if proc is not None:
                assert proc.stdin is not None and proc.stdout is not None
                proc.stdin.write(f"{2 * calls}\n")
                proc.stdin.flush()
                out = proc.stdout.readline()  # once every event arrived (or a minute)
                watchers_cpu = _cpu(proc.pid)
                proc.communicate(timeout=60)
                received = min(int(c) for c in out.split("counts ")[-1].split())
            # (Server CPU with watchers: ingestion and fan-out, until all was sent.)
            return rate, _cpu(server.pid) - cpu, received, watchers_cpu


def measure(
    watchers: int = 10,
    calls: int = 20_000,
    rounds: int = 5,
    latency_calls: int = 100,
    client: str = "lean",
) -> LiveFigures:
    """The ingestion rate without and with ``watchers`` watchers, and the end-to-event latency."""
    figures = LiveFigures([], [], [], [], 0, [], 2 * calls * rounds, [], latency_calls)
    for r in range(rounds):
        # The side going first alternates (ABBA), against drift in the machine's load.
        for watched in (False, True) if r % 2 == 0 else (True, False):
            rate, cpu, received, watchers_cpu = _round(watchers, calls, watched, client)
            (figures.with_ if watched else figures.without).append(rate)
            (figures.cpu_with if watched else figures.cpu_without).append(cpu)
            if watched:
                figures.received += received
                figures.cpu_watchers.append(watchers_cpu)
    with tempfile.TemporaryDirectory() as tmp:
        with server_process(Path(tmp) / "latency.db") as (_, url), httpx.Client(
            timeout=120
        ) as http:
            proc = _start_watchers(url, watchers, client)
            figures.latency_ms = _latency(http, url, proc, latency_calls)
            proc.communicate("0\n", timeout=60)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--watchers", type=int, default=10)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--latency-calls", type=int, default=100)
    parser.add_argument(
        "--watcher-client",
        choices=("lean", "lean-plain", "httpx-ws"),
        default="lean",
        help="the watchers' WebSocket client: a minimal reader taking permessage-deflate "
        "as browsers do (default), the same without it, or httpx-ws (no compression)",
    )
    parser.add_argument("--watchers-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.watchers_child:
        # The watchers stand in for clients on other machines (browsers, monitors): on
        # this machine their own CPU must not be charged to the server, so they run niced.
        os.nice(10)
        url, n, client = args.watchers_child
        asyncio.run(_watchers_main(url, int(n), client))
        return 0

    f = measure(args.watchers, args.calls, args.rounds, args.latency_calls, args.watcher_client)
    ok = f.ratio >= 0.9
    print(f"ingestion, no watcher:        {statistics.median(f.without):,.0f} calls/s  (rounds: "
          + ", ".join(f"{r:,.0f}" for r in f.without) + ")")  # fmt: skip
    print(f"ingestion, {args.watchers} watchers:      {statistics.median(f.with_):,.0f} calls/s  "
          "(rounds: " + ", ".join(f"{r:,.0f}" for r in f.with_) + ")")  # fmt: skip
    print(f"with watchers / without: {f.ratio:.1%}  target >= 90%  {'PASS' if ok else 'FAIL'}")
    print(f"events each watcher received while loaded (fewest): {f.received:,} of {f.expected:,}")
    k = 1000 / args.calls
    print(
        "server CPU per 1,000 calls: "
        f"{statistics.median(f.cpu_without) * k * 1000:.0f} ms without watchers, "
        f"{statistics.median(f.cpu_with) * k * 1000:.0f} ms with (ingestion and fan-out); "
        f"the watchers' own process: {statistics.median(f.cpu_watchers) * k * 1000:.0f} ms "
        f"({args.watcher_client})"
    )
    lat = f.latency_ms
    if len(lat) < f.latency_calls:
        print(f"latency: only {len(lat)} of {f.latency_calls} end events arrived")
        ok = False
    if lat:
        print(f"latency, call end -> event at a watcher ({len(lat)} calls, "
              f"{args.watchers} watchers): median {statistics.median(lat):.1f} ms, "
              f"worst {max(lat):.1f} ms")  # fmt: skip
    return 0 if ok and f.received == f.expected else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
