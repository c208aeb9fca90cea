"""The figures of ``scripts/bench``: one measurement code for every side.

Stdlib only, because it runs in two environments: the project's ``.venv`` (the bare
function and our client, from ``scripts/bench``) and weave's pinned ``.venv-compat``
(weave's own client, from ``scripts/benchmarks/bench_weave.py``). A side is an ``Adapter``: how to
open a client, decorate a function, flush and close. Every figure function takes one and
returns a ``Result``; a worker process runs exactly one figure, so peak memory and warm
caches never leak from one figure into the next.

Figures (issue 4, "Speed, side by side"):

- ``overhead_async``: the wall time of one ``await traced(1, 2)`` (µs), two ways: the
  median of single calls (``value``), and the mean over chunks of 2,000 consecutive
  calls with the sender running alongside (``extra["chunk_mean_us"]``: each chunk ends
  with one turn of the event loop, inside its timing, so the sender takes and sends
  batches while the calls go on; its encoding thread competes for the GIL, as in a busy
  program). The harness subtracts the bare function's figure to get the overhead.
- ``calls_flush``: ``n`` sequential traced calls, then flush (s, end to end); the harness
  checks the server stored every call.
- ``loop_lag``: ``n`` traced calls at once under ``asyncio.gather``, each awaiting a short
  sleep, then flush, while a 1 ms ticker measures how late the event loop wakes it. Two
  numbers: the worst stall *outside* the loop iterations that run the calls' own first and
  last steps (what the tracing machinery adds: queueing, encoding, sending; the figure with
  the target), and the stall of the start burst itself (every call's first step in one loop
  iteration; it scales with the caller-side overhead). Five rounds, each stall the
  median of the rounds' (weave's side: one round).
- ``overhead_sync``: as ``overhead_async`` for a plain function and the sync client
  (whose sender is a thread of its own: it runs alongside every call).

Sides: ``bare`` (the function itself, ``Adapter``), ``floor`` (``FloorAdapter``: the
least a tracer must do per call), ``ours``, ``weave``.
- ``memory``: ``n`` traced async calls back to back, then flush; peak RSS above the
  baseline taken just before the first call (MB). The calls never yield to the event loop,
  so an asyncio sender cannot drain during them: all ``n`` are queued at once.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import itertools
import json
import os
import random
import re
import statistics
import time
import urllib.request
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any

FIGURES = ("overhead_async", "calls_flush", "loop_lag", "overhead_sync", "memory")

# Calls per figure (the numbers; a median needs no more than 10,000 samples).
DEFAULT_N = {
    "overhead_async": 10_000,
    "calls_flush": 20_000,
    "loop_lag": 10_000,
    "overhead_sync": 10_000,
    "memory": 100_000,
}

WARMUP_CALLS = 200
CHUNK_CALLS = 2_000
LAG_TICK_S = 0.001
LAG_CALL_SLEEP_S = 0.2
LAG_ROUNDS = 5


@dataclass
class Result:
    """What a worker reports for one figure on one side."""

    figure: str
    side: str
    value: float
    n: int
    # Calls made in the figure's project (warm-up included), for the stored-count check.
    calls_made: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self))


class Adapter:
    """A side of the comparison. The base class is the bare function: no client at all."""

    name = "bare"

    async def aopen(self, server_url: str, entity: str, project: str) -> None:
        """Open the async flavour (called inside the running event loop)."""

    async def aflush(self) -> None:
        """Wait until every call made so far is stored."""

    async def aclose(self) -> None:
        """Flush and release the client."""

    def open(self, server_url: str, entity: str, project: str) -> None:
        """Open the sync flavour."""

    def flush(self) -> None:
        """Wait until every call made so far is stored (sync flavour)."""

    def close(self) -> None:
        """Flush and release the client (sync flavour)."""

    def async_op(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        """Trace a coroutine function."""
        return fn

    def op(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Trace a plain function."""
        return fn


# -- the floor: the least a tracer must do per call ---------------------------------------------

_floor_current: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "bench_floor_current", default=None
)
_floor_seq = itertools.count()
_floor_bits = random.Random().getrandbits
_floor_time_ns = time.time_ns


def floor_id() -> str:
    """A time-ordered id (UUIDv7 layout: milliseconds, a counter, random bits)."""
    value = (
        (_floor_time_ns() // 1_000_000) << 80
        | 0x7 << 76
        | (next(_floor_seq) & 0xFFF) << 64
        | 0b10 << 62
        | _floor_bits(62)
    )
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class FloorAdapter(Adapter):
    """The floor: a wrapper that reads and sets a contextvar (the current call), makes a
    time-ordered id, takes two timestamps and appends a start and an end record to a
    deque. No encoding, no sending, no client: what any tracer must do at the least."""

    name = "floor"

    def __init__(self) -> None:
        self.records: deque[tuple[object, ...]] = deque()

    # "Flushing" the floor hands its records over (drops them), as a sender takes ours:
    # a figure's later phase then starts from an empty queue on both sides.
    async def aflush(self) -> None:
        self.records.clear()

    def flush(self) -> None:
        self.records.clear()

    def async_op(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        append = self.records.append
        current = _floor_current
        clock = time.time

        async def traced(*args: Any, **kwargs: Any) -> Any:
            parent = current.get()
            call_id = floor_id()
            append(("start", call_id, parent, clock(), args, kwargs))
            token = current.set(call_id)
            try:
                result = await fn(*args, **kwargs)
            finally:
                current.reset(token)
            append(("end", call_id, clock(), result))
            return result

        return traced

    def op(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        append = self.records.append
        current = _floor_current
        clock = time.time

        def traced(*args: Any, **kwargs: Any) -> Any:
            parent = current.get()
            call_id = floor_id()
            append(("start", call_id, parent, clock(), args, kwargs))
            token = current.set(call_id)
            try:
                result = fn(*args, **kwargs)
            finally:
                current.reset(token)
            append(("end", call_id, clock(), result))
            return result

        return traced


# -- helpers ----------------------------------------------------------------------------------


def rss_bytes() -> int:
    """Current resident set size of this process."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) of this process; False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def peak_rss_bytes() -> int:
    with open("/proc/self/status") as f:
        match = re.search(r"VmHWM:\s+(\d+)\s+kB", f.read())
    if match is None:
        raise RuntimeError("no VmHWM in /proc/self/status")
    return int(match.group(1)) * 1024


def stored_calls(server_url: str, project_id: str) -> int:
    """How many calls the server holds for ``project_id`` (``/calls/query_stats``)."""
    body = json.dumps({"project_id": project_id}).encode()
    request = urllib.request.Request(
        f"{server_url}/calls/query_stats",
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return int(json.load(response)["count"])


async def _add(x: int, y: int) -> int:
    return x + y


def _add_sync(x: int, y: int) -> int:
    return x + y


def _median_us(samples_ns: list[int]) -> float:
    return statistics.median(samples_ns) / 1000.0


def _chunks(n: int) -> int:
    """Chunks of CHUNK_CALLS calls for a figure of ``n`` single calls (at least two)."""
    return max(2, n // CHUNK_CALLS)


async def _chunk_mean_async(traced: Callable[..., Awaitable[Any]], chunks: int) -> float:
    """Mean µs per call over ``chunks`` runs of CHUNK_CALLS consecutive calls; each run
    ends with one turn of the event loop (inside its timing) for the sender."""
    clock = time.perf_counter_ns
    total = 0
    for _ in range(chunks):
        t0 = clock()
        for _ in range(CHUNK_CALLS):
            await traced(1, 2)
        await asyncio.sleep(0)
        total += clock() - t0
    return total / (chunks * CHUNK_CALLS) / 1000.0


def _chunk_mean_sync(traced: Callable[..., Any], chunks: int) -> float:
    """As ``_chunk_mean_async``; the sync sender runs in its own thread throughout."""
    clock = time.perf_counter_ns
    total = 0
    for _ in range(chunks):
        t0 = clock()
        for _ in range(CHUNK_CALLS):
            traced(1, 2)
        total += clock() - t0
    return total / (chunks * CHUNK_CALLS) / 1000.0


def _overhead_result(
    figure: str, side: str, samples: list[int], chunks: int, chunk_mean: float
) -> Result:
    """An overhead figure: the median of the single calls' ``samples`` (ns), with the
    mean over ``chunks`` chunks of CHUNK_CALLS calls as an extra."""
    n = len(samples)
    return Result(
        figure,
        side,
        _median_us(samples),
        n,
        calls_made=n + WARMUP_CALLS + chunks * CHUNK_CALLS,
        extra={
            "p90_us": statistics.quantiles(samples, n=10)[-1] / 1000.0,
            "chunk_mean_us": chunk_mean,
            "chunks": chunks,
        },
    )


# -- figures ----------------------------------------------------------------------------------


async def overhead_async(
    adapter: Adapter, server_url: str, entity: str, project: str, n: int
) -> Result:
    await adapter.aopen(server_url, entity, project)
    traced = adapter.async_op(_add)
    # Warm-up: the first call of an op saves the op; the figure is about the steady state.
    for _ in range(WARMUP_CALLS):
        await traced(1, 2)
    samples = [0] * n
    clock = time.perf_counter_ns
    for i in range(n):
        t0 = clock()
        await traced(1, 2)
        samples[i] = clock() - t0
    # The chunks start with an empty queue: the sender keeps up with them or not.
    await adapter.aflush()
    chunks = _chunks(n)
    chunk_mean = await _chunk_mean_async(traced, chunks)
    await adapter.aclose()
    return _overhead_result("overhead_async", adapter.name, samples, chunks, chunk_mean)


async def calls_flush(
    adapter: Adapter, server_url: str, entity: str, project: str, n: int
) -> Result:
    await adapter.aopen(server_url, entity, project)
    traced = adapter.async_op(_add)
    t0 = time.perf_counter()
    for i in range(n):
        await traced(i, 1)
    t_calls = time.perf_counter() - t0
    await adapter.aflush()
    elapsed = time.perf_counter() - t0
    await adapter.aclose()
    return Result("calls_flush", adapter.name, elapsed, n, calls_made=n, extra={"calls_s": t_calls})


async def loop_lag(adapter: Adapter, server_url: str, entity: str, project: str, n: int) -> Result:
    """``LAG_ROUNDS`` rounds (one for weave's slow side); each stall is the median of the
    rounds' (the machine's own hiccups hit one round, not the figure)."""
    await adapter.aopen(server_url, entity, project)
    clock = time.perf_counter
    marks: dict[str, float] = {}

    async def work(i: int) -> int:
        marks["last_enter"] = clock()
        await asyncio.sleep(LAG_CALL_SLEEP_S)
        if "first_exit" not in marks:
            marks["first_exit"] = clock()
        return i

    traced = adapter.async_op(work)
    # Save the op before measuring, as a long-running program would have.
    await traced(-1)
    await adapter.aflush()
    rounds = [
        await _lag_round(adapter, traced, marks, n)
        for _ in range(1 if adapter.name == "weave" else LAG_ROUNDS)
    ]
    await adapter.aclose()

    def median(key: str) -> float:
        return statistics.median(r[key] for r in rounds)

    return Result(
        "loop_lag",
        adapter.name,
        median("background_ms"),
        n,
        calls_made=len(rounds) * n + 1,
        extra={
            "start_burst_stall_ms": median("start_burst_stall_ms"),
            "worst_stall_ms": median("worst_stall_ms"),
            "end_burst_stall_ms": median("end_burst_stall_ms"),
            "flush_s": median("flush_s"),
            "ticks": sum(int(r["ticks"]) for r in rounds),
            "rounds": rounds,
        },
    )


async def _lag_round(
    adapter: Adapter, traced: Callable[..., Awaitable[Any]], marks: dict[str, float], n: int
) -> dict[str, float]:
    clock = time.perf_counter
    marks.clear()
    ticks: list[tuple[float, float]] = []  # (when the tick was due, when it ran)
    stop = asyncio.Event()

    async def ticker() -> None:
        while not stop.is_set():
            due = clock() + LAG_TICK_S
            await asyncio.sleep(LAG_TICK_S)
            ticks.append((due, clock()))

    ticker_task = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)  # let the ticker settle into its rhythm
    marks["begin"] = clock()
    results = await asyncio.gather(*(traced(i) for i in range(n)))
    marks["gathered"] = clock()
    await adapter.aflush()
    marks["flushed"] = clock()
    await asyncio.sleep(0.01)
    stop.set()
    await ticker_task
    if sorted(results) != list(range(n)):
        raise RuntimeError("traced calls returned the wrong results")

    start_burst = (marks["begin"], marks["last_enter"])
    end_burst = (marks.get("first_exit", marks["gathered"]), marks["gathered"])

    def overlaps(due: float, ran: float, window: tuple[float, float]) -> bool:
        return due <= window[1] and ran >= window[0]

    background = [0.0]
    start_stall = [0.0]
    end_stall = [0.0]
    for due, ran in ticks:
        if ran < marks["begin"]:
            continue
        lag = max(0.0, ran - due)
        if overlaps(due, ran, start_burst):
            start_stall.append(lag)
        elif overlaps(due, ran, end_burst):
            end_stall.append(lag)
        else:
            background.append(lag)
    return {
        "background_ms": max(background) * 1000.0,
        "start_burst_stall_ms": max(start_stall) * 1000.0,
        "worst_stall_ms": max(*background, *start_stall, *end_stall) * 1000.0,
        "end_burst_stall_ms": max(end_stall) * 1000.0,
        "flush_s": marks["flushed"] - marks["gathered"],
        "ticks": float(len(ticks)),
    }


def overhead_sync(adapter: Adapter, server_url: str, entity: str, project: str, n: int) -> Result:
    adapter.open(server_url, entity, project)
    traced = adapter.op(_add_sync)
    for _ in range(WARMUP_CALLS):
        traced(1, 2)
    samples = [0] * n
    clock = time.perf_counter_ns
    for i in range(n):
        t0 = clock()
        traced(1, 2)
        samples[i] = clock() - t0
    adapter.flush()
    chunks = _chunks(n)
    chunk_mean = _chunk_mean_sync(traced, chunks)
    adapter.close()
    return _overhead_result("overhead_sync", adapter.name, samples, chunks, chunk_mean)


async def memory(adapter: Adapter, server_url: str, entity: str, project: str, n: int) -> Result:
    await adapter.aopen(server_url, entity, project)
    traced = adapter.async_op(_add)
    for _ in range(WARMUP_CALLS):
        await traced(1, 2)
    await adapter.aflush()
    gc.collect()
    baseline = rss_bytes()
    exact = reset_peak_rss()
    for i in range(n):
        await traced(i, 1)
    queued_peak = peak_rss_bytes() if exact else rss_bytes()
    await adapter.aflush()
    peak = peak_rss_bytes() if exact else max(queued_peak, rss_bytes())
    await adapter.aclose()
    mb = 1024.0 * 1024.0
    return Result(
        "memory",
        adapter.name,
        (peak - baseline) / mb,
        n,
        calls_made=n + WARMUP_CALLS,
        extra={
            "after_calls_mb": (queued_peak - baseline) / mb,
            "baseline_mb": baseline / mb,
            "exact_peak": exact,
        },
    )


FIGURE_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "overhead_async": overhead_async,
    "calls_flush": calls_flush,
    "loop_lag": loop_lag,
    "overhead_sync": overhead_sync,
    "memory": memory,
}


def run_figure(
    figure: str, adapter: Adapter, server_url: str, entity: str, project: str, n: int
) -> Result:
    """Run one figure on one side in this process."""
    fn = FIGURE_FUNCTIONS[figure]
    if asyncio.iscoroutinefunction(fn):
        result: Result = asyncio.run(fn(adapter, server_url, entity, project, n))
    else:
        result = fn(adapter, server_url, entity, project, n)
    return result


def worker_main(argv: list[str], adapters: dict[str, Callable[[], Adapter]]) -> int:
    """Entry point of a worker process: run one figure, print its Result as one JSON line."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("figure", choices=FIGURES)
    parser.add_argument("--side", choices=sorted(adapters), required=True)
    parser.add_argument("--server-url", required=True)
    parser.add_argument("--entity", required=True)
    parser.add_argument("--project", required=True)
    parser.add_argument("--n", type=int, required=True)
    args = parser.parse_args(argv)
    adapter = adapters[args.side]()
    result = run_figure(args.figure, adapter, args.server_url, args.entity, args.project, args.n)
    print("RESULT " + result.to_json(), flush=True)
    return 0
