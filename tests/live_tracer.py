"""Trace calls into a server from another process, for the live-traces tests and scripts/benchmarks/bench_live.py.

::

    python tests/live_tracer.py URL ENTITY/PROJECT [--calls N] [--hold S] [--fail-every K]

Each root call ``step(i)`` (i = 0..N-1, one after another) calls ``child(i)``
and returns; ``--hold`` seconds it stays running before ending; every K-th
step raises ``ValueError`` (caught here). Prints ``done`` when all are stored.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

HERE = Path(__file__).resolve()
# Each running tracer's stdout and stderr files, by pid.
_outputs: dict[int, tuple[IO[str], IO[str]]] = {}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("project_id")
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--hold", type=float, default=0.0)
    parser.add_argument("--fail-every", type=int, default=0)
    args = parser.parse_args()

    from weave_client import WeaveClient, op

    entity, project = args.project_id.split("/")
    with WeaveClient(entity, project, server_url=args.url) as client:

        @op
        def child(i: int) -> int:
            return i * 2

        @op
        def step(i: int) -> int:
            out = child(i)
            if args.hold:
                client.flush()  # the start goes out now: watchers see it running
                time.sleep(args.hold)
            if args.fail_every and i % args.fail_every == args.fail_every - 1:
                raise ValueError(f"step {i} failed")
            return out

        for i in range(args.calls):
            try:
                step(i)
            except ValueError:
                pass
        client.flush()
    print("done", flush=True)


def start_tracer(
    url: str, project_id: str, *, calls: int = 3, hold: float = 0.0, fail_every: int = 0
) -> subprocess.Popen[str]:
    """Run this script in a subprocess; wait on it with ``finish_tracer``.

    Its output goes to temporary files, not pipes: the test reads it only at the
    end, and a tracer that wrote more than a pipe holds would block, never
    tracing what the test waits for.
    """
    out, err = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
    proc = subprocess.Popen(
        [sys.executable, str(HERE), url, project_id, "--calls", str(calls),
         "--hold", str(hold), "--fail-every", str(fail_every)],
        stdout=out, stderr=err, text=True,
    )  # fmt: skip
    _outputs[proc.pid] = (out, err)
    return proc


def post_calls(url: str, project_id: str, n: int) -> None:
    """Store ``n`` whole calls of op ``bulk``, one request (one commit, one event) each."""
    import uuid
    from datetime import UTC, datetime

    import httpx

    with httpx.Client(timeout=60) as http:
        for i in range(n):
            cid = str(uuid.uuid4())
            start = {"project_id": project_id, "id": cid, "trace_id": cid, "op_name": "bulk",
                     "started_at": datetime.now(UTC).isoformat(), "attributes": {},
                     "inputs": {"i": i}}  # fmt: skip
            r = http.post(url + "/call/upsert_batch",
                          json={"batch": [{"mode": "start", "req": {"start": start}}]})  # fmt: skip
            r.raise_for_status()


def finish_tracer(proc: subprocess.Popen[str], timeout: float = 120.0) -> None:
    """Wait for a tracer; fail with its stderr if it did not finish cleanly."""
    proc.wait(timeout=timeout)
    texts = []
    for f in _outputs.pop(proc.pid):
        f.seek(0)
        texts.append(f.read())
        f.close()
    out, err = texts
    assert proc.returncode == 0 and "done" in out, f"tracer failed ({proc.returncode}): {err}"


if __name__ == "__main__":
    main()
