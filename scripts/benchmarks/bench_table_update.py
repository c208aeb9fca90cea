#!/usr/bin/env python
"""Rows/s of ``/table/update`` appends on the local server.

Creates a one-row table, then appends ``--rows`` rows in requests of ``--chunk``
rows (as the client's ``Table.append``/``Dataset.add_rows`` send them: one
``{"append": {"row": ...}}`` per row, each request on the digest the last one
returned), and prints the rate. The bodies are encoded before the clock starts,
so the figure is the server's (HTTP parsing, validation, digests, SQLite).

    .venv/bin/python scripts/benchmarks/bench_table_update.py [--rows 100000] [--chunk 25000]
"""

from __future__ import annotations

import argparse
import time

import httpx
import orjson
from _common import temp_server

PROJECT = "bench/table-update"


def _row(i: int) -> dict[str, object]:
    # A dataset-like row: a few strings, a number, a nested dict.
    return {
        "id": i,
        "question": f"What is {i} + {i}?",
        "answer": str(2 * i),
        "meta": {"split": "train" if i % 5 else "test", "score": i / 7},
    }


def run(rows: int, chunk: int) -> float:
    """Append ``rows`` rows in requests of ``chunk``; returns rows per second."""
    with temp_server() as server, httpx.Client(base_url=server.url, timeout=300) as http:
        created = http.post(
            "/table/create", json={"table": {"project_id": PROJECT, "rows": [_row(-1)]}}
        )
        created.raise_for_status()
        digest = created.json()["digest"]
        chunks = [
            [{"append": {"row": _row(i)}} for i in range(start, min(start + chunk, rows))]
            for start in range(0, rows, chunk)
        ]
        started = time.perf_counter()
        for updates in chunks:
            # The base digest is only known once the previous request answered.
            body = orjson.dumps({"project_id": PROJECT, "base_digest": digest, "updates": updates})
            res = http.post(
                "/table/update", content=body, headers={"Content-Type": "application/json"}
            )
            res.raise_for_status()
            digest = res.json()["digest"]
        elapsed = time.perf_counter() - started
        count = http.post(
            "/table/query_stats", json={"project_id": PROJECT, "digest": digest}
        ).json()["count"]
        if count != rows + 1:
            raise SystemExit(f"expected {rows + 1} rows in the table, the server has {count}")
    return rows / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--chunk", type=int, default=25_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs; the best is printed")
    args = parser.parse_args()
    rates = [run(args.rows, args.chunk) for _ in range(args.repeat)]
    print(
        f"/table/update: {max(rates):,.0f} rows/s appending {args.rows:,} rows "
        f"in requests of {args.chunk:,} (best of {args.repeat}: "
        f"{', '.join(f'{r:,.0f}' for r in rates)})"
    )


if __name__ == "__main__":
    main()
