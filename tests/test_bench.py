"""The benchmark harness's plumbing (scripts/bench): figures, workers and the table.

No speed is asserted here (speed is for scripts/bench to print); these check that each
figure measures something sane with the bare function, that a worker process reports a
result line, and that the table passes and fails on the right values.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
sys.path.insert(0, str(SCRIPTS))

import _bench_figures as figs  # noqa: E402
import bench_harness  # noqa: E402

SMALL_N = {
    "overhead_async": 300,
    "calls_flush": 300,
    "loop_lag": 200,
    "overhead_sync": 300,
    "memory": 2000,
}


@pytest.mark.parametrize("figure", figs.FIGURES)
def test_bare_figure_measures(figure: str) -> None:
    result = figs.run_figure(figure, figs.Adapter(), "http://unused", "e", "p", SMALL_N[figure])
    assert result.figure == figure
    assert result.side == "bare"
    assert result.n == SMALL_N[figure]
    assert result.value >= 0.0
    if figure.startswith("overhead"):
        # a bare call takes well under a millisecond; a broken clock or unit would not
        assert 0.0 < result.value < 1000.0
        assert result.extra["p90_us"] >= result.value
    if figure == "loop_lag":
        assert result.extra["ticks"] > 0
        assert result.extra["start_burst_stall_ms"] >= 0.0


def test_worker_process_prints_one_result_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(SCRIPTS / "bench_harness.py"),
            "--worker",
            "overhead_sync",
            *("--side", "bare", "--server-url", "http://unused"),
            *("--entity", "e", "--project", "p", "--n", "100"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert len(lines) == 1
    result = figs.Result(**json.loads(lines[0][len("RESULT ") :]))
    assert (result.figure, result.side, result.n) == ("overhead_sync", "bare", 100)


def _outcome(side: str, value: float, calls: int, stored: int | None) -> bench_harness.Outcome:
    result = figs.Result("calls_flush", side, value, calls, calls_made=calls)
    return bench_harness.Outcome(side, result=result, stored=stored)


def test_table_passes_and_fails_on_target_and_stored_count() -> None:
    ns = {"calls_flush": {"bare": 20_000, "ours": 20_000, "weave": 20_000}}
    good = {
        "calls_flush": {
            "bare": _outcome("bare", 0.01, 20_000, None),
            "ours": _outcome("ours", 1.5, 20_000, 20_000),
            "weave": _outcome("weave", 30.0, 20_000, 20_000),
        }
    }
    table, ok = bench_harness.render(good, ns)
    assert ok, table
    assert "PASS" in table and "20.0x" in table

    slow = {"calls_flush": {**good["calls_flush"], "ours": _outcome("ours", 2.5, 20_000, 20_000)}}
    table, ok = bench_harness.render(slow, ns)
    assert not ok and "FAIL" in table

    lost = {"calls_flush": {**good["calls_flush"], "ours": _outcome("ours", 1.0, 20_000, 19_999)}}
    table, ok = bench_harness.render(lost, ns)
    assert not ok
    assert "stored 19999 of 20000" in table

    missing = {"calls_flush": {**good["calls_flush"]}}
    missing["calls_flush"]["ours"] = bench_harness.Outcome("ours", error="exit 1: ImportError")
    table, ok = bench_harness.render(missing, ns)
    assert not ok
    assert "ImportError" in table


def test_overhead_rows_subtract_the_bare_function() -> None:
    ns = {"overhead_async": {"bare": 1000, "ours": 1000}}
    outcomes = {
        "overhead_async": {
            "bare": bench_harness.Outcome(
                "bare", result=figs.Result("overhead_async", "bare", 0.5, 1000)
            ),
            "ours": bench_harness.Outcome(
                "ours",
                result=figs.Result("overhead_async", "ours", 10.5, 1000, calls_made=1200),
                stored=1200,
            ),
        }
    }
    table, ok = bench_harness.render(outcomes, ns)
    assert ok, table
    assert "10 µs" in table  # 10.5 - 0.5


def test_evaluation_rows_need_at_least_the_expected_calls() -> None:
    def outcome(side: str, value: float, stored: int) -> bench_harness.Outcome:
        result = figs.Result("evaluation", side, value, 1000, calls_made=4002)
        return bench_harness.Outcome(side, result=result, stored=stored, exact=False)

    ns = {"evaluation": {"ours": 1000, "weave": 1000}}
    table, ok = bench_harness.render(
        {"evaluation": {"ours": outcome("ours", 1.2, 4002), "weave": outcome("weave", 5.0, 4010)}},
        ns,
    )
    assert ok, table
    table, ok = bench_harness.render({"evaluation": {"ours": outcome("ours", 1.2, 4001)}}, ns)
    assert not ok
    assert "stored 4001 of 4002" in table
