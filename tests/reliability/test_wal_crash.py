"""The write-ahead log across a SIGKILL (issue 6): a process killed mid-run while
the server is down has its calls delivered by the next client on the same
project at start-up, none stored twice, and the API key never on disk."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

from tests.fault_proxy import FaultProxy
from tests.reliability.helpers import stored_calls
from weave_client import WeaveClient

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk-CRASH-9b8c7d-distinctive-key"

CHILD = """
    import sys
    from weave_client import WeaveClient, op

    @op
    def crash_op(i):
        return i * 2

    url, cache_dir, project = sys.argv[1:4]
    with WeaveClient("crash", project, server_url=url, api_key=sys.argv[4],
                     cache_dir=cache_dir, wal=True, max_retries=0) as client:
        i = 0
        while True:  # until killed
            crash_op(i)
            print(i, flush=True)
            i += 1
"""


def test_sigkilled_process_calls_are_delivered_by_the_next_client(
    upstream_url: str, project: str, tmp_path: Path
) -> None:
    cache_dir = tmp_path / "cache"
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(CHILD))
    project_id = f"crash/{project}"
    # Down while the child runs: every request answered 503.
    with FaultProxy(upstream_url, fault_rate=1.0, kinds=["503"]) as proxy:
        child = subprocess.Popen(
            [sys.executable, str(script), proxy.url, str(cache_dir), project, KEY],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=ROOT,
        )
        try:
            assert child.stdout is not None
            finished = -1
            deadline = time.monotonic() + 60
            while finished < 300 and time.monotonic() < deadline:
                line = child.stdout.readline()
                if not line:
                    break
                finished = int(line)
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait(timeout=30)
            if child.stdout is not None:
                child.stdout.close()
        assert child.returncode == -signal.SIGKILL
        assert finished >= 300, finished
        assert stored_calls(upstream_url, project_id) == []
        segments = sorted((cache_dir / "wal").rglob("seg-*.jsonl"))
        assert segments, "nothing was written ahead"
        files = [p for p in (cache_dir / "wal").rglob("*") if p.is_file()]
        assert not any(KEY.encode() in p.read_bytes() for p in files)

        # Back up; the next client on the same server and project starts.
        proxy.fault_rate = 0.0
        with WeaveClient(
            "crash", project, server_url=proxy.url, cache_dir=cache_dir, wal=True
        ) as client:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                calls = stored_calls(upstream_url, project_id)
                done = {c["inputs"]["i"] for c in calls if c["ended_at"] is not None}
                if done >= set(range(finished + 1)):
                    break
                time.sleep(0.1)
            client.flush(timeout=30)
            replayed = client._sender.replayed

    calls = stored_calls(upstream_url, project_id)
    ids = Counter(c["id"] for c in calls)
    done = {c["inputs"]["i"] for c in calls if c["ended_at"] is not None}
    print(
        f"\n[wal crash] child killed after {finished + 1} finished calls; next client replayed"
        f" {replayed} records: {len(calls)} calls stored, {len(done)} finished,"
        f" {sum(n - 1 for n in ids.values())} duplicated"
        "\n  reproduce: .venv/bin/pytest -q -s tests/reliability/test_wal_crash.py"
    )
    # Every call the child saw finish is stored, finished, once; at most the call
    # in progress at the kill is missing its end (it never ended).
    assert set(range(finished + 1)) <= done
    assert all(n == 1 for n in ids.values())
    assert len(calls) - len(done) <= 1
    assert sorted((cache_dir / "wal").rglob("seg-*.jsonl")) == []
