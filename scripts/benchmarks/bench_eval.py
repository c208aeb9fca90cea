"""The evaluation figure (issue 5): 1,000 rows, a 10 ms async predict, two scorers, parallelism 10.

    .venv/bin/python scripts/benchmarks/bench_eval.py [--rows 1000] [--no-weave] [--json]

Starts our local trace server on a temp SQLite file (in this process), then runs the
evaluation in a fresh worker process with our async client (``AsyncEvaluation``), and the
same evaluation with weave's own client (weave==0.51.59, under ``.venv-compat``), both
logging to that server, each in a project of its own. The figure is the wall time of
``evaluate()`` (target: at most 1.5 s for ours); the time to flush what is left and the
number of calls stored are reported too, and a side that lost calls fails.

Prints one table and exits 1 when our target is missed or our side failed. For the
harness (``scripts/bench``): ``run_figure(server_url, rows, with_weave)`` returns the rows
of that table as dicts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

SCRIPTS = Path(__file__).resolve().parent
ROOT = SCRIPTS.parents[1]
COMPAT_PYTHON = ROOT / ".venv-compat" / "bin" / "python"
ENTITY = "bench"
TARGET_S = 1.5
PREDICT_S = 0.01
PARALLELISM = 10


def _rows(n: int) -> list[dict[str, Any]]:
    return [{"question": f"q{i}", "expected": f"Q{i}" if i % 3 else "x"} for i in range(n)]


def _expected_calls(n: int) -> int:
    # evaluate + summarize, and per row: predict_and_score, predict, two scorers.
    return 2 + 4 * n


# --- our side --------------------------------------------------------------------------


async def _ours(server_url: str, project: str, n: int) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    import weave_client
    from weave_client import AsyncEvaluation, AsyncWeaveClient, Model, async_op

    class Upper(Model):
        @async_op
        async def predict(self, question: str) -> str:
            await asyncio.sleep(PREDICT_S)
            return question.upper()

    @async_op
    async def exact(expected: str, output: str) -> bool:
        return expected == output

    @async_op
    async def length(output: str) -> int:
        return len(output)

    async with AsyncWeaveClient(ENTITY, project, server_url=server_url) as client:
        evaluation = AsyncEvaluation(
            dataset=weave_client.AsyncDataset(name="bench-rows", rows=_rows(n)),
            scorers=[exact, length],
            parallelism=PARALLELISM,
            verbose=False,
        )
        started = time.perf_counter()
        summary = await evaluation.evaluate(Upper())
        evaluate_s = time.perf_counter() - started
        started = time.perf_counter()
        await client.flush()
        flush_s = time.perf_counter() - started
    return {"evaluate_s": evaluate_s, "flush_s": flush_s, "summary_keys": sorted(summary)}


# --- weave's side (runs under .venv-compat) --------------------------------------------------


def _weave(server_url: str, project: str, n: int) -> dict[str, Any]:
    import weave
    from weave.trace import trace_sentry
    from weave.trace.weave_client import WeaveClient
    from weave.trace.weave_init import InitializedClient
    from weave.trace_server_bindings.remote_http_trace_server import RemoteHTTPTraceServer

    os.environ["WEAVE_PARALLELISM"] = str(PARALLELISM)
    trace_sentry.global_trace_sentry._disabled = True
    server = RemoteHTTPTraceServer(server_url, should_batch=True, auth=("api", "bench-dummy-key"))
    client = WeaveClient(ENTITY, project, server, ensure_project_exists=False)
    InitializedClient(client)

    class Upper(weave.Model):
        @weave.op
        async def predict(self, question: str) -> str:
            await asyncio.sleep(PREDICT_S)
            return question.upper()

    @weave.op
    async def exact(expected: str, output: str) -> bool:
        return expected == output

    @weave.op
    async def length(output: str) -> int:
        return len(output)

    evaluation = weave.Evaluation(
        dataset=weave.Dataset(name="bench-rows", rows=_rows(n)), scorers=[exact, length]
    )
    started = time.perf_counter()
    summary = asyncio.run(evaluation.evaluate(Upper()))
    evaluate_s = time.perf_counter() - started
    started = time.perf_counter()
    client.finish(use_progress_bar=False)
    flush_s = time.perf_counter() - started
    return {"evaluate_s": evaluate_s, "flush_s": flush_s, "summary_keys": sorted(summary)}


# --- the harness ---------------------------------------------------------------------------


def _stored_calls(server_url: str, project_id: str) -> int:
    import httpx

    res = httpx.post(
        f"{server_url}/calls/query_stats", json={"project_id": project_id}, timeout=60
    )
    res.raise_for_status()
    return int(res.json()["count"])


def _run_side(side: str, server_url: str, project: str, n: int) -> dict[str, Any]:
    """Run one side in a fresh worker process (the server stays in this one), as
    scripts/bench runs its figures: the side pays for its own work only."""
    python = COMPAT_PYTHON if side == "weave" else ROOT / ".venv" / "bin" / "python"
    if not python.exists():
        return {"error": f"{python} missing (run scripts/bootstrap)"}
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            [str(python), str(Path(__file__).resolve()), "--side", side,
             "--server-url", server_url, "--project", project, "--rows", str(n)],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=tmp,
            env={"PATH": "/usr/bin:/bin", "HOME": tmp, "WEAVE_PRINT_CALL_LINK": "false"},
        )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or len(lines) != 1:
        return {"error": (proc.stderr or proc.stdout)[-1500:]}
    result: dict[str, Any] = json.loads(lines[0][len("RESULT "):])
    return result


def run_figure(server_url: str, rows: int = 1000, with_weave: bool = True) -> list[dict[str, Any]]:
    """Run the figure on each side against ``server_url``; one dict per side."""
    out = []
    sides = ["ours", "weave"] if with_weave else ["ours"]
    for side in sides:
        project = f"eval-{side}-{uuid.uuid4().hex[:8]}"
        result = _run_side(side, server_url, project, rows)
        if "error" not in result:
            result["stored"] = _stored_calls(server_url, f"{ENTITY}/{project}")
            result["expected"] = _expected_calls(rows)
        result["side"] = side
        out.append(result)
    return out


def _table(results: list[dict[str, Any]], rows: int) -> tuple[str, bool]:
    ok = True
    lines = [
        f"evaluation: {rows} rows, {PREDICT_S * 1000:.0f} ms async predict, two scorers, "
        f"parallelism {PARALLELISM} (target: ours <= {TARGET_S} s)",
        f"{'side':<6} {'evaluate':>10} {'flush':>8} {'calls stored':>14}  result",
    ]
    ours_s = None
    for r in results:
        if "error" in r:
            lines.append(f"{r['side']:<6} {'-':>10} {'-':>8} {'-':>14}  FAILED: {r['error'][:200]}")
            ok = ok and r["side"] != "ours"
            continue
        complete = r["stored"] >= r["expected"]
        verdict = "ok" if complete else f"MISSING {r['expected'] - r['stored']} calls"
        if r["side"] == "ours":
            ours_s = r["evaluate_s"]
            if r["evaluate_s"] > TARGET_S:
                verdict = f"MISSED target {TARGET_S} s"
            ok = ok and complete and r["evaluate_s"] <= TARGET_S
        lines.append(
            f"{r['side']:<6} {r['evaluate_s']:>9.3f}s {r['flush_s']:>7.3f}s "
            f"{r['stored']:>7}/{r['expected']:<6}  {verdict}"
        )
    weave = next((r for r in results if r["side"] == "weave" and "error" not in r), None)
    if weave is not None and ours_s:
        lines.append(f"ratio (weave / ours, evaluate): {weave['evaluate_s'] / ours_s:.1f}x")
    return "\n".join(lines), ok


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--no-weave", action="store_true", help="skip weave's own client")
    parser.add_argument("--json", action="store_true", help="print the results as JSON too")
    parser.add_argument("--side", choices=["ours", "weave"], help=argparse.SUPPRESS)
    parser.add_argument("--server-url", help=argparse.SUPPRESS)
    parser.add_argument("--project", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.side == "weave":  # the worker, under .venv-compat
        print("RESULT " + json.dumps(_weave(args.server_url, args.project, args.rows)))
        return 0
    if args.side == "ours":  # the worker, under .venv
        result = asyncio.run(_ours(args.server_url, args.project, args.rows))
        print("RESULT " + json.dumps(result))
        return 0

    sys.path.insert(0, str(ROOT))
    for name in ("WANDB_API_KEY", "WANDB_BASE_URL", "WEAVE_TRACE_SERVER_URL"):
        os.environ.pop(name, None)
    from weave_client.server import start_background_server

    with tempfile.TemporaryDirectory() as tmp:
        server = start_background_server(os.path.join(tmp, "bench.db"))
        try:
            results = run_figure(server.url, args.rows, not args.no_weave)
        finally:
            server.stop()
    table, ok = _table(results, args.rows)
    print(table)
    if args.json:
        print(json.dumps(results))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
