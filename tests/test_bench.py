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

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts" / "benchmarks"
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
        assert 0.0 < result.extra["chunk_mean_us"] < 1000.0
        assert result.calls_made == SMALL_N[figure] + figs.WARMUP_CALLS + 2 * figs.CHUNK_CALLS
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
                "bare",
                result=figs.Result(
                    "overhead_async", "bare", 0.5, 1000, extra={"chunk_mean_us": 0.5}
                ),
            ),
            "ours": bench_harness.Outcome(
                "ours",
                result=figs.Result(
                    "overhead_async",
                    "ours",
                    10.5,
                    1000,
                    calls_made=1200,
                    extra={"chunk_mean_us": 12.5},
                ),
                stored=1200,
            ),
        }
    }
    table, ok = bench_harness.render(outcomes, ns)
    assert ok, table
    assert "10 µs" in table  # 10.5 - 0.5
    assert "12 µs" in table  # the chunk mean, 12.5 - 0.5


def _overhead(side: str, median: float, chunk: float) -> bench_harness.Outcome:
    result = figs.Result(
        "overhead_async", side, median, 1000, calls_made=1000, extra={"chunk_mean_us": chunk}
    )
    return bench_harness.Outcome(side, result=result, stored=1000)


def _overhead_verdicts(outcomes: dict[str, bench_harness.Outcome]) -> list[str]:
    ns = {"overhead_async": {side: 1000 for side in outcomes}}
    table, _ = bench_harness.render({"overhead_async": outcomes}, ns)
    rows = [line for line in table.splitlines() if line.startswith("overhead")]
    return [row.split()[-1] for row in rows]


def test_overhead_rows_are_judged_against_the_floor_and_weave() -> None:
    bare = _overhead("bare", 0.1, 0.1)
    floor = _overhead("floor", 2.1, 3.1)  # 2 and 3 µs over the bare function
    weave = _overhead("weave", 500.1, 600.1)
    # ours: 4.9 µs median (2.45x the floor), 7.6 µs chunk mean (2.53x: over 2.5x)
    outcomes = {"bare": bare, "floor": floor, "ours": _overhead("ours", 5.0, 7.7), "weave": weave}
    assert _overhead_verdicts(outcomes) == ["PASS", "FAIL"]
    outcomes["ours"] = _overhead("ours", 5.0, 7.1)
    assert _overhead_verdicts(outcomes) == ["PASS", "PASS"]
    # within the floor's bound, but not 50x less than weave
    outcomes["weave"] = _overhead("weave", 200.1, 600.1)
    assert _overhead_verdicts(outcomes) == ["FAIL", "PASS"]


def test_throughput_rows_need_at_least_the_target() -> None:
    def outcome(rate: float, stored: int) -> bench_harness.Outcome:
        result = figs.Result("server", "ours", rate, 1000, calls_made=3000)
        return bench_harness.Outcome("ours", result=result, stored=stored)

    ns = {"server": {"ours": 1000}}
    table, ok = bench_harness.render({"server": {"ours": outcome(31_000.0, 3000)}}, ns)
    assert ok, table
    table, ok = bench_harness.render({"server": {"ours": outcome(29_000.0, 3000)}}, ns)
    assert not ok, table
    table, ok = bench_harness.render({"server": {"ours": outcome(31_000.0, 2999)}}, ns)
    assert not ok and "stored 2999 of 3000" in table


def test_floor_records_a_start_and_an_end_per_call_with_time_ordered_ids() -> None:
    floor = figs.FloorAdapter()
    traced = floor.op(lambda x, y: x + y)
    assert [traced(i, 1) for i in range(3)] == [1, 2, 3]
    records = list(floor.records)
    assert [r[0] for r in records] == ["start", "end"] * 3
    ids = [r[1] for r in records[::2]]
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert all(len(i) == 36 and i[14] == "7" for i in ids)  # UUIDv7 layout
    floor.flush()
    assert not floor.records


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


def test_repeated_figures_run_interleaved_with_weave_once_at_the_end() -> None:
    sides = ["bare", "floor", "ours", "weave"]
    assert bench_harness._run_order("overhead_async", sides) == [
        "bare", "floor", "ours", "ours", "floor", "bare", "bare", "floor", "ours", "weave",
    ]  # fmt: skip
    # Not repeated, and no floor side for memory.
    assert bench_harness._run_order("memory", sides) == ["bare", "ours", "weave"]


def test_a_side_run_three_times_is_its_median_and_complete_only_if_every_run_was() -> None:
    runs = [_outcome("ours", v, 100, 100) for v in (5.0, 1.0, 3.0)]
    for run, chunk in zip(runs, (50.0, 10.0, 30.0), strict=True):
        assert run.result is not None
        run.result.extra = {"chunk_mean_us": chunk, "rounds": [{"x": 1}]}
    merged = bench_harness.median_outcome(runs)
    assert merged.result is not None and merged.complete
    assert merged.result.value == 3.0 and merged.result.extra["chunk_mean_us"] == 30.0
    assert merged.result.extra["repeats"] == [5.0, 1.0, 3.0]
    assert (merged.result.calls_made, merged.stored) == (300, 300)
    # One run lost a call: the side is not complete.
    runs[1].stored = 99
    assert not bench_harness.median_outcome(runs).complete
    # One run failed: the side is that failure.
    failed = bench_harness.Outcome("ours", error="exit 1: boom")
    assert bench_harness.median_outcome([runs[0], failed, runs[2]]) is failed
    # A single run is kept whole (its non-numeric extras included).
    assert bench_harness.median_outcome([runs[0]]) is runs[0]
