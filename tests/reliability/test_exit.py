"""Interpreter exit with a server that never answers: bounded, and it says what was lost.

Each case runs a real child interpreter that traces calls against a port that
accepts connections and never answers, then exits without closing its client.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Generous: the point is "finishes", not "fast" (speed is for scripts/benchmarks/bench_reliability.py).
HANG_LIMIT_S = 45.0
REPRODUCE = ".venv/bin/pytest -q -s tests/reliability/test_exit.py"

SYNC_CHILD = """
    import logging, sys, time
    from weave_client import WeaveClient, op
    logging.basicConfig(level=logging.WARNING)

    @op
    def work(x):
        return x

    client = WeaveClient("e", "p", server_url=sys.argv[1], timeout=0.5, max_retries=0)
    client._sender.exit_timeout = 1.0   # the bound under test (default 10 s)
    client.__enter__()                   # made current, never closed
    for i in range(50):
        work(i)
    time.sleep(0.2)                      # the sender is stuck on its first request now
    for i in range(50):
        work(i)
    print("traced 100 calls", flush=True)
"""

ASYNC_CHILD = """
    import asyncio, logging, sys
    from weave_client import AsyncWeaveClient, async_op
    logging.basicConfig(level=logging.WARNING)

    @async_op
    async def work(x):
        return x

    async def main():
        client = AsyncWeaveClient("e", "p", server_url=sys.argv[1], timeout=0.5, max_retries=0)
        await client.__aenter__()        # made current, never closed
        for i in range(50):
            await work(i)
        await asyncio.sleep(0.2)         # the sender is stuck on its first request now
        for i in range(50):
            await work(i)
        print("traced 100 calls", flush=True)

    asyncio.run(main())                  # the loop ends with the client still open
"""


@pytest.fixture
def silent_server_url() -> Iterator[str]:
    """A port that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


def _run(child: str, url: str, tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(child))
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(script), url],
        capture_output=True,
        text=True,
        timeout=HANG_LIMIT_S,
        cwd=ROOT,
    )
    return done, time.monotonic() - started


def _reported(stderr: str) -> int:
    lost = [int(n) for n in re.findall(r"(\d+) call records not (?:stored|sent)", stderr)]
    return sum(lost)


SYNC_BACKLOG_CHILD = """
    import logging, sys
    from weave_client import WeaveClient, op
    logging.basicConfig(level=logging.WARNING)

    @op
    def work(x):
        return x

    client = WeaveClient("e", "backlog", server_url=sys.argv[1])
    client.__enter__()                   # made current, never closed
    for i in range(5000):                # far more than one batch: most is sent at exit
        work(i)
    print("traced 5000 calls", flush=True)
"""


def test_sync_exit_sends_a_backlog_after_the_interpreter_shuts_its_pools(
    local_server_url: str, tmp_path: Path
) -> None:
    # The sender flushes from an atexit hook, after concurrent.futures refuses new
    # work: nothing the sender needs then may run on a pool.
    import httpx

    done, _ = _run(SYNC_BACKLOG_CHILD, local_server_url, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "not stored" not in done.stderr and "not sent" not in done.stderr, done.stderr
    stats = httpx.post(
        f"{local_server_url}/calls/query_stats", json={"project_id": "e/backlog"}
    ).json()
    assert stats["count"] == 5000


FORK_CHILD = """
    import os, sys
    from weave_client import WeaveClient, op

    @op
    def work(x):
        return x

    with WeaveClient("e", "fork-parent", server_url=sys.argv[1]) as client:
        for i in range(600):             # a batch or more: the sender has run
            work(i)
        client.flush()
        pid = os.fork()
        if pid == 0:
            with WeaveClient("e", "fork-child", server_url=sys.argv[1]) as child:
                for i in range(600):
                    work(i)
                print("child", child.flush(timeout=20).pending, flush=True)
            os._exit(0)
        os.waitpid(pid, 0)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_sends_its_calls(local_server_url: str, tmp_path: Path) -> None:
    # A forked child has none of the parent's threads: nothing the child's sender
    # needs may wait on one of them (its batches would wait for good).
    done, _ = _run(FORK_CHILD, local_server_url, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "child 0" in done.stdout, (done.stdout, done.stderr)


def test_sync_exit_is_bounded_and_reports_unsent(silent_server_url: str, tmp_path: Path) -> None:
    done, elapsed = _run(SYNC_CHILD, silent_server_url, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "traced 100 calls" in done.stdout
    # 100 calls = 200 records, plus the op's version save: all pending, all reported.
    assert "exiting with 201 call records not sent after waiting 1.0 s" in done.stderr, done.stderr
    print(
        f"\n[exit sync] finished in {elapsed:.1f} s (exit_timeout 1.0 s)\n  reproduce: {REPRODUCE}"
    )


def test_async_loop_end_reports_every_unsent_record(silent_server_url: str, tmp_path: Path) -> None:
    done, elapsed = _run(ASYNC_CHILD, silent_server_url, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "traced 100 calls" in done.stdout
    # The batch in flight and the records still queued behind it: 200 in all.
    assert _reported(done.stderr) == 200, done.stderr
    print(f"\n[exit async] finished in {elapsed:.1f} s\n  reproduce: {REPRODUCE}")


CLOSE_CHILD = """
    import asyncio, logging, sys, time
    from weave_client import AsyncWeaveClient, WeaveClient, async_op, op
    logging.basicConfig(level=logging.WARNING)

    @op
    def work(x):
        return x

    @async_op
    async def awork(x):
        return x

    # Default request timeout (60 s) and retries: unbounded, close() would wait for
    # minutes on a server that never answers.
    started = time.monotonic()
    with WeaveClient("e", "p", server_url=sys.argv[1]) as client:
        client._sender.exit_timeout = 1.0
        for i in range(20):
            work(i)
    print(f"sync closed in {time.monotonic() - started:.1f} s", flush=True)

    async def main():
        async with AsyncWeaveClient("e", "p", server_url=sys.argv[1]) as client:
            client._sender.exit_timeout = 1.0
            for i in range(20):
                await awork(i)

    started = time.monotonic()
    asyncio.run(main())
    print(f"async closed in {time.monotonic() - started:.1f} s", flush=True)
"""


def test_close_gives_up_when_nothing_gets_stored(silent_server_url: str, tmp_path: Path) -> None:
    done, _ = _run(CLOSE_CHILD, silent_server_url, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "sync closed in" in done.stdout and "async closed in" in done.stdout, done.stdout
    # Both clients reported their 40 unsent records (20 calls each), op saves aside.
    assert _reported(done.stderr) == 80, done.stderr
    print(f"\n[close] {done.stdout.strip()}\n  reproduce: {REPRODUCE}")
