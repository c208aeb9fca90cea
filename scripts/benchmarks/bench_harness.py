"""The harness behind ``scripts/bench``: our client vs weave's client vs the bare function.

Starts our local trace server (background thread, temp SQLite file), then runs every figure
of ``_bench_figures`` once per side (the figures of ``REPEATS`` that many times, interleaved,
each side's median kept), each run in a fresh worker process:

- ``bare`` and ``ours`` under this interpreter (the project's ``.venv``):
  ``python scripts/benchmarks/bench_harness.py --worker FIGURE --side ours ...``;
- ``weave`` under ``.venv-compat/bin/python scripts/benchmarks/bench_weave.py FIGURE ...``.

plus the evaluation figure of issue 5, which ``scripts/benchmarks/bench_eval.py`` runs in workers of
its own (``run_figure``). Every side logs to the same server, each figure in a project of its
own; after a figure the
harness asks the server how many calls it stored and fails the figure when any is missing.
It prints one table (figure, bare, ours, weave, ratio = weave / ours, target, result) and
exits 1 when one of our targets is missed or our side failed, 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCRIPTS = Path(__file__).resolve().parent
ROOT = SCRIPTS.parents[1]
sys.path.insert(0, str(SCRIPTS))

import _bench_figures as figs  # noqa: E402

COMPAT_PYTHON = ROOT / ".venv-compat" / "bin" / "python"
# weave's calls cost ~100x ours, so by default its side runs fewer of them where the figure
# allows (a median; a memory peak, labelled with its n) to keep a run near two minutes.
# --weave-full runs the numbers on its side too (about two more minutes).
WEAVE_QUICK_N = {"overhead_async": 5_000, "overhead_sync": 5_000, "memory": 20_000}
ENTITY = "bench"
WORKER_TIMEOUT_S = 600.0

# Environment that could point a worker at a real account; the bench talks to loopback only.
_HOSTED_ENV = ("WANDB_API_KEY", "WANDB_BASE_URL", "WEAVE_TRACE_SERVER_URL", "WF_TRACE_SERVER_URL")


class OursAdapter(figs.Adapter):
    """Our client: ``AsyncWeaveClient`` + ``@async_op``, ``WeaveClient`` + ``@op``."""

    name = "ours"

    def __init__(self) -> None:
        self.aclient: Any = None
        self.client: Any = None

    async def aopen(self, server_url: str, entity: str, project: str) -> None:
        import weave_client

        self.aclient = weave_client.AsyncWeaveClient(
            entity, project, server_url=server_url, api_key="bench-dummy-key"
        )
        await self.aclient.__aenter__()

    async def aflush(self) -> None:
        await self.aclient.flush()

    async def aclose(self) -> None:
        await self.aclient.__aexit__(None, None, None)

    def open(self, server_url: str, entity: str, project: str) -> None:
        import weave_client

        self.client = weave_client.WeaveClient(
            entity, project, server_url=server_url, api_key="bench-dummy-key"
        )
        self.client.__enter__()

    def flush(self) -> None:
        self.client.flush()

    def close(self) -> None:
        self.client.__exit__(None, None, None)

    def async_op(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        import weave_client

        traced: Callable[..., Awaitable[Any]] = weave_client.async_op(fn)
        return traced

    def op(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        import weave_client

        traced: Callable[..., Any] = weave_client.op(fn)
        return traced


WORKER_ADAPTERS: dict[str, Callable[[], figs.Adapter]] = {
    "bare": figs.Adapter,
    "floor": figs.FloorAdapter,
    "ours": OursAdapter,
}


# Figures whose sides (but weave's) run this many times, interleaved (bare, floor, ours,
# then ours, floor, bare...), each side's figure the median of its runs. On a 2-core VM one
# run of a few seconds moves 30-50% with the machine's load at that moment; the per-call
# targets are ratios between sides, so the sides are measured side by side in time.
REPEATS = {"overhead_async": 3, "overhead_sync": 3, "calls_flush": 3}

# Figures of our client alone (scripts/benchmarks/_bench_ours.py), run by the harness itself.
OURS_ONLY = ("server", "import_time", "client_stall", "live")
# The floor is a tracer without a client: it runs the per-call figures.
FLOOR_FIGURES = ("overhead_async", "overhead_sync", "calls_flush", "loop_lag")


def run_ours_only(figure: str, scale: float) -> Outcome:
    """One of OURS_ONLY, as an Outcome of our side (stored: every call the figure made)."""
    import _bench_ours

    try:
        if figure == "server":
            calls = max(1000, round(_bench_ours.SERVER_CALLS * scale))
            result, stored = _bench_ours.server_throughput(calls)
            return Outcome("ours", result=result, stored=stored)
        if figure == "live":
            calls = max(1000, round(_bench_ours.LIVE_CALLS * scale))
            result, stored = _bench_ours.live_watchers(calls)
            return Outcome("ours", result=result, stored=stored)
        if figure == "import_time":
            result = _bench_ours.import_time()
        else:
            result = _bench_ours.client_stall()
    except Exception as exc:  # the table says which figure failed and why
        return Outcome("ours", error=f"{type(exc).__name__}: {exc}"[-400:])
    return Outcome("ours", result=result, stored=result.calls_made)


# -- running workers --------------------------------------------------------------------------


@dataclass
class Outcome:
    """One figure on one side: its result, or why there is none."""

    side: str
    result: figs.Result | None = None
    error: str | None = None
    stored: int | None = None
    # Exactly calls_made stored (our figures: a duplicate is a bug too), or at least that many.
    exact: bool = True

    @property
    def complete(self) -> bool:
        """Measured, and (for a client) every call it made is on the server."""
        if self.result is None:
            return False
        if self.side in CLIENTLESS:
            return True
        if self.stored is None:
            return False
        if self.exact:
            return self.stored == self.result.calls_made
        return self.stored >= self.result.calls_made


# The evaluation figure (issue 5) lives in scripts/benchmarks/bench_eval.py, which runs its own worker
# processes; the harness adds its rows to the table.
EVALUATION = "evaluation"
EVALUATION_ROWS = 1000


def run_evaluation(server_url: str, rows: int, with_weave: bool) -> dict[str, Outcome]:
    """scripts/benchmarks/bench_eval.py's figure, as Outcomes (value: the wall time of evaluate())."""
    try:
        import bench_eval
    except ImportError as exc:
        return {"ours": Outcome("ours", error=f"scripts/benchmarks/bench_eval.py unusable: {exc!r}")}
    outcomes: dict[str, Outcome] = {}
    for res in bench_eval.run_figure(server_url, rows=rows, with_weave=with_weave):
        side = str(res["side"])
        if "error" in res:
            outcomes[side] = Outcome(side, error=str(res["error"]).strip()[-300:])
            continue
        result = figs.Result(
            EVALUATION,
            side,
            float(res["evaluate_s"]),
            rows,
            calls_made=int(res["expected"]),
            extra={"flush_s": float(res["flush_s"])},
        )
        # bench_eval counts a side complete at "at least the expected calls".
        outcomes[side] = Outcome(side, result=result, stored=int(res["stored"]), exact=False)
    return outcomes


def median_outcome(runs: list[Outcome]) -> Outcome:
    """One side's repeated runs of a figure as one Outcome: the median value and the
    median of each numeric extra; complete only when every run was (its calls all
    stored). The runs' values are kept in ``extra["repeats"]``."""
    if len(runs) == 1:
        return runs[0]
    side = runs[0].side
    failed = next((o for o in runs if o.result is None), None)
    if failed is not None:
        return failed
    results = [o.result for o in runs if o.result is not None]
    extra: dict[str, Any] = {"repeats": [r.value for r in results]}
    for key, first in results[0].extra.items():
        values = [r.extra.get(key) for r in results]
        if isinstance(first, int | float) and all(isinstance(v, int | float) for v in values):
            extra[key] = statistics.median(values)
    result = figs.Result(
        results[0].figure,
        side,
        statistics.median(r.value for r in results),
        results[0].n,
        calls_made=sum(r.calls_made for r in results),
        extra=extra,
    )
    stored = [o.stored for o in runs]
    total = None if any(v is None for v in stored) else sum(v for v in stored if v is not None)
    error = next((o.error for o in runs if o.error), None)
    return Outcome(side, result=result, error=error, stored=total, exact=runs[0].exact)


def _worker_command(side: str, figure: str) -> list[str]:
    if side == "weave":
        return [str(COMPAT_PYTHON), str(SCRIPTS / "bench_weave.py"), figure]
    return [sys.executable, str(Path(__file__).resolve()), "--worker", figure]


def run_worker(side: str, figure: str, n: int, server_url: str, workdir: Path) -> Outcome:
    """Run one figure on one side in a fresh process; check what the server stored."""
    if side == "weave" and not COMPAT_PYTHON.exists():
        return Outcome(side, error=f"{COMPAT_PYTHON} missing: run ./scripts/bootstrap")
    project = f"{figure.replace('_', '-')}-{side}-{uuid.uuid4().hex[:6]}"
    cmd = [
        *_worker_command(side, figure),
        *("--side", side, "--server-url", server_url),
        *("--entity", ENTITY, "--project", project, "--n", str(n)),
    ]
    env = {k: v for k, v in os.environ.items() if k not in _HOSTED_ENV}
    # The figures' own code must be importable however the worker is started.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    log_path = workdir / f"{figure}-{side}.log"
    side_dir = workdir / f"{figure}-{side}"
    side_dir.mkdir(exist_ok=True)
    try:
        with log_path.open("w") as log:
            proc = subprocess.run(
                cmd,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                cwd=side_dir,
                env=env,
                timeout=WORKER_TIMEOUT_S,
            )
    except subprocess.TimeoutExpired:
        return Outcome(side, error=f"timed out after {WORKER_TIMEOUT_S:.0f}s (log: {log_path})")
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        tail = log_path.read_text(errors="replace").strip().splitlines()[-8:]
        detail = " | ".join(tail) or "(no output)"
        return Outcome(side, error=f"exit {proc.returncode}: {detail} (log: {log_path})")
    result = figs.Result(**json.loads(lines[-1][len("RESULT ") :]))
    outcome = Outcome(side, result=result)
    if side not in CLIENTLESS:
        try:
            outcome.stored = figs.stored_calls(server_url, f"{ENTITY}/{project}")
        except OSError as exc:
            outcome.error = f"could not count stored calls: {exc!r}"
    return outcome


# -- the table --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    figure: str
    label: str
    unit: str
    target: float | None = None  # ours must be <= target (None: no absolute ceiling)
    minus_bare: bool = False  # overhead figures: subtract the bare function's value
    per_call: bool = False  # comparable across call counts (a median), so a ratio still holds
    extra_key: str | None = None  # read this extra of the Result instead of its value
    floor_max: float | None = None  # ours / floor must be <= this (when the floor ran)
    weave_min: float | None = None  # weave / ours must be >= this (when weave ran)
    at_least: float | None = None  # ours must be >= this (throughput figures)


def _overhead_rows(flavour: str) -> list[Row]:
    """A traced call's overhead, both ways: single calls' median and chunks' mean."""
    figure, what = f"overhead_{flavour}", f"overhead, one traced {flavour} call"
    same: dict[str, Any] = {
        "unit": "µs", "minus_bare": True, "per_call": True, "floor_max": 2.5, "weave_min": 50.0,
    }  # fmt: skip
    return [
        Row(figure, f"{what} (median of single calls)", **same),
        Row(figure, f"{what} (mean, chunks of 2,000, sender running)", **same,
            extra_key="chunk_mean_us"),
    ]  # fmt: skip

ROWS = [
    *_overhead_rows("async"),
    *_overhead_rows("sync"),
    Row("calls_flush", "{n} traced calls then flush, all stored", "s", 1.5),
    Row(
        "loop_lag",
        "loop stall from tracing, {n} gathered calls, start burst included (- bare)",
        "ms",
        60.0,
        minus_bare=True,
        extra_key="worst_stall_ms",
    ),
    Row("loop_lag", "loop stall from tracing outside the start burst (worst)", "ms", 5.0),
    Row(
        "loop_lag",
        "  info: start-burst stall, {n} calls' first steps at once",
        "ms",
        None,
        extra_key="start_burst_stall_ms",
    ),
    Row("memory", "peak memory, {n} calls queued (over baseline)", "MB", 100.0),
    Row("server", "local server /call/upsert_batch, all stored", "calls/s", at_least=30_000.0),
    Row("import_time", "import weave_client (median of fresh processes)", "s", 0.3),
    Row("client_stall", "loop stall creating a client (embedded server; - idle ticker)", "ms", 5.0),
    Row(EVALUATION, "evaluation, {n} rows (10 ms predict, 2 scorers, x10)", "s", 1.5),
    Row(
        "live",
        "ingestion with 10 /calls/watch watchers, % of none ({n} calls, medians of 5)",
        "%",
        at_least=90.0,
    ),
    Row(
        "live",
        "  info: latency, call end -> event at a watcher (median)",
        "ms",
        None,
        extra_key="latency_median_ms",
    ),
    Row(
        "live",
        "  info: latency, call end -> event at a watcher (worst of 100)",
        "ms",
        None,
        extra_key="latency_worst_ms",
    ),
]

# Sides measured without a client: nothing is stored, so nothing to count.
CLIENTLESS = ("bare", "floor")


def _value(row: Row, outcome: Outcome | None, bare: Outcome | None) -> float | None:
    if outcome is None or outcome.result is None:
        return None
    result = outcome.result
    if row.extra_key and row.extra_key not in result.extra:
        return None
    value = float(result.extra[row.extra_key]) if row.extra_key else result.value
    if row.minus_bare and outcome.side != "bare" and bare is not None:
        # Without a bare run (--sides) the raw call time stands in; the bare call is ~0.1 µs.
        base = bare.result
        if base is None or (row.extra_key and row.extra_key not in base.extra):
            return None
        value -= float(base.extra[row.extra_key]) if row.extra_key else base.value
    return value


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f} {unit}"
    return f"{value:.3g} {unit}"


def _targets(row: Row) -> str:
    parts = []
    if row.target is not None:
        parts.append(f"<= {_fmt(row.target, row.unit)}")
    if row.at_least is not None:
        parts.append(f">= {_fmt(row.at_least, row.unit)}")
    if row.floor_max is not None:
        parts.append(f"<= {row.floor_max:g}x floor")
    if row.weave_min is not None:
        parts.append(f">= {row.weave_min:g}x < weave")
    return ", ".join(parts) or "-"


def render(
    outcomes: dict[str, dict[str, Outcome]], ns: dict[str, dict[str, int]]
) -> tuple[str, bool]:
    """The table, and whether every target of ours was met."""
    header = ("figure", "bare", "floor", "ours", "weave", "ours/floor", "weave/ours", "target", "result")
    table: list[tuple[str, ...]] = []
    notes: list[str] = []
    all_ok = True
    for row in ROWS:
        by_side = outcomes.get(row.figure)
        if by_side is None:
            continue
        bare, floor = by_side.get("bare"), by_side.get("floor")
        ours, weave = by_side.get("ours"), by_side.get("weave")
        v_bare = _value(row, bare, None) if bare else None
        v_floor = _value(row, floor, bare)
        v_ours = _value(row, ours, bare)
        v_weave = _value(row, weave, bare)
        counts = ns[row.figure]
        n_ours = counts.get("ours", counts.get("bare", counts.get("weave", 0)))
        label = row.label.format(n=f"{n_ours:,}")
        weave_text = _fmt(v_weave, row.unit)
        n_weave = counts.get("weave", n_ours)
        if n_weave != n_ours:
            weave_text += f" (n={n_weave:,})"
        weave_ratio: float | None = None
        ratio = "n/a"
        if v_ours is not None and v_weave is not None and v_ours > 0:
            if n_weave == n_ours or row.per_call:
                weave_ratio = v_weave / v_ours
                ratio = f"{weave_ratio:.1f}x"
            else:
                ratio = "(n differs)"
        floor_ratio: float | None = None
        if v_ours is not None and v_floor is not None and v_floor > 0:
            floor_ratio = v_ours / v_floor
        checked = any(
            t is not None for t in (row.target, row.at_least, row.floor_max, row.weave_min)
        )
        if not checked:
            verdict = "info"
        else:
            ok = v_ours is not None and ours is not None and ours.complete
            if ok and v_ours is not None:
                if row.target is not None and v_ours > row.target:
                    ok = False
                if row.at_least is not None and v_ours < row.at_least:
                    ok = False
                if row.floor_max is not None and floor is not None:
                    ok = ok and floor_ratio is not None and floor_ratio <= row.floor_max
                if row.weave_min is not None and weave is not None:
                    ok = ok and weave_ratio is not None and weave_ratio >= row.weave_min
            verdict = "PASS" if ok else "FAIL"
            all_ok = all_ok and ok
        table.append(
            (
                label,
                _fmt(v_bare, row.unit),
                _fmt(v_floor, row.unit),
                _fmt(v_ours, row.unit),
                weave_text,
                f"{floor_ratio:.2f}x" if floor_ratio is not None else "n/a",
                ratio,
                _targets(row) if checked else "-",
                verdict,
            )
        )
        if row.extra_key is None:
            for outcome in (bare, floor, ours, weave):
                if outcome is None:
                    continue
                if outcome.error:
                    notes.append(f"{row.figure} [{outcome.side}]: {outcome.error}")
                elif outcome.result and not outcome.complete:
                    notes.append(
                        f"{row.figure} [{outcome.side}]: stored {outcome.stored} of "
                        f"{outcome.result.calls_made} calls"
                    )
    widths = [max(len(r[i]) for r in [header, *table]) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in table]
    if notes:
        lines.append("")
        lines += [f"! {note}" for note in notes]
    return "\n".join(lines), all_ok


# -- main -------------------------------------------------------------------------------------


def _start_server(db_path: Path) -> Any:
    from weave_client.server import start_background_server

    return start_background_server(db_path=db_path, port=0)


def _run_order(figure: str, sides: list[str]) -> list[str]:
    """The workers to run for ``figure``, in order: the sides but weave's ``REPEATS``
    times, every other round reversed (so no side always runs first), then weave's."""
    local = [s for s in sides if s != "weave" and (s != "floor" or figure in FLOOR_FIGURES)]
    order: list[str] = []
    for i in range(REPEATS.get(figure, 1)):
        order += local if i % 2 == 0 else local[::-1]
    return order + (["weave"] if "weave" in sides else [])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/bench", description=__doc__.splitlines()[0] if __doc__ else None
    )
    all_figures = (*figs.FIGURES, *OURS_ONLY, EVALUATION)
    parser.add_argument(
        "--figures",
        default=",".join(all_figures),
        help=f"comma-separated subset of {','.join(all_figures)}",
    )
    parser.add_argument(
        "--sides", default="bare,floor,ours,weave", help="comma-separated subset"
    )
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply every call count (quick runs: 0.1)"
    )
    parser.add_argument(
        "--weave-full",
        action="store_true",
        help="run weave's side at the full call counts too (slower by about two minutes)",
    )
    parser.add_argument("--server-url", help="use this running server instead of starting one")
    parser.add_argument("--json", type=Path, help="also write every raw result to this file")
    args = parser.parse_args(argv)

    figures = [f for f in args.figures.split(",") if f]
    sides = [s for s in args.sides.split(",") if s]
    unknown = sorted(set(figures) - set(all_figures)) + sorted(
        set(sides) - {"bare", "floor", "ours", "weave"}
    )
    if unknown:
        parser.error(f"unknown figure or side: {', '.join(unknown)}")

    with tempfile.TemporaryDirectory(prefix="weave-bench-") as tmp:
        workdir = Path(tmp)
        server = None
        server_url = args.server_url
        if server_url is None:
            server = _start_server(workdir / "bench.db")
            server_url = str(server.url).rstrip("/")
        print(f"server: {server_url}", file=sys.stderr)
        outcomes: dict[str, dict[str, Outcome]] = {}
        ns: dict[str, dict[str, int]] = {}
        started = time.perf_counter()
        try:
            for figure in figures:
                if figure in OURS_ONLY:
                    if "ours" not in sides:
                        continue
                    t0 = time.perf_counter()
                    outcomes[figure] = {"ours": run_ours_only(figure, args.scale)}
                    ns[figure] = {"ours": outcomes[figure]["ours"].result.n
                                  if outcomes[figure]["ours"].result else 0}
                    outcome = outcomes[figure]["ours"]
                    status = "ok" if outcome.result else f"failed: {outcome.error}"
                    print(
                        f"  {figure:<15} ours   {time.perf_counter() - t0:6.1f}s  {status}",
                        file=sys.stderr,
                    )
                    continue
                if figure == EVALUATION:
                    if "ours" not in sides:
                        continue  # bench_eval always runs our side; weave's only beside it
                    rows = max(1, round(EVALUATION_ROWS * args.scale))
                    t0 = time.perf_counter()
                    outcomes[figure] = run_evaluation(server_url, rows, "weave" in sides)
                    ns[figure] = {side: rows for side in outcomes[figure]}
                    for side, outcome in outcomes[figure].items():
                        status = "ok" if outcome.result else f"failed: {outcome.error}"
                        print(f"  {figure:<15} {side:<6} rows={rows:<4,} {status}", file=sys.stderr)
                    print(f"  ({time.perf_counter() - t0:.1f}s)", file=sys.stderr)
                    continue
                runs: dict[str, list[Outcome]] = {}
                for side in _run_order(figure, sides):
                    base = figs.DEFAULT_N[figure]
                    if side == "weave" and not args.weave_full:
                        base = WEAVE_QUICK_N.get(figure, base)
                    n = max(1, round(base * args.scale))
                    t0 = time.perf_counter()
                    outcome = run_worker(side, figure, n, server_url, workdir)
                    status = "ok" if outcome.result else f"failed: {outcome.error}"
                    print(
                        f"  {figure:<15} {side:<6} n={n:<7,} {time.perf_counter() - t0:6.1f}s  {status}",
                        file=sys.stderr,
                    )
                    runs.setdefault(side, []).append(outcome)
                    ns.setdefault(figure, {})[side] = n
                outcomes[figure] = {side: median_outcome(r) for side, r in runs.items()}
        finally:
            if server is not None:
                server.stop()
        table, all_ok = render(outcomes, ns)
        print(table)
        print(
            f"\n(total {time.perf_counter() - started:.0f}s; overheads are per call minus the"
            " bare function's; ours/floor: ours over the floor's; weave/ours: how many times"
            " less than weave)"
        )
        if args.json:
            raw = {
                f: {
                    s: {
                        "result": o.result.__dict__ if o.result else None,
                        "error": o.error,
                        "stored": o.stored,
                    }
                    for s, o in by_side.items()
                }
                for f, by_side in outcomes.items()
            }
            args.json.write_text(json.dumps(raw, indent=2))
    if "ours" not in sides:
        return 0
    return 0 if all_ok else 1


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        sys.exit(figs.worker_main(sys.argv[2:], WORKER_ADAPTERS))
    sys.exit(main())
