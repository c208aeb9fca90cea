"""What the benchmark scripts share: where things are, a local server on a scratch
database, counting what it stored, and printing a figure with the command behind it.

Every script here is run as ``.venv/bin/python scripts/benchmarks/<name>.py`` (or through
``./scripts/bench``); importing this module puts the repository root on ``sys.path`` so
``weave_client`` and ``tests`` (the fault proxy, the tracer helpers) import as in the tests.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

BENCHMARKS = Path(__file__).resolve().parent
ROOT = BENCHMARKS.parent.parent
COMPAT_PYTHON = ROOT / ".venv-compat" / "bin" / "python"
PYTHON = ROOT / ".venv" / "bin" / "python"

for path in (str(ROOT), str(BENCHMARKS)):
    if path not in sys.path:
        sys.path.insert(0, path)

__all__ = [
    "BENCHMARKS",
    "COMPAT_PYTHON",
    "PYTHON",
    "ROOT",
    "command",
    "process_cpu",
    "server_process",
    "stored_in_db",
    "temp_server",
]


@contextlib.contextmanager
def temp_server(prefix: str = "weave-bench-", **options: Any) -> Iterator[Any]:
    """Our local trace server on a scratch SQLite file, stopped and removed afterwards.

    Yields the running server (``.url``, ``.stop()``); ``options`` go to
    ``start_background_server`` (``api_key``, ``port``...).
    """
    from weave_client.server import start_background_server

    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        server = start_background_server(db_path=Path(tmp) / "bench.db", **options)
        try:
            yield server
        finally:
            server.stop()


@contextlib.contextmanager
def server_process(db_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``python -m weave_client serve`` on ``db_path`` and a free port, in a process of
    its own (the load does not share its GIL); yields it and its URL once healthy, and
    stops it afterwards. Log level warning: no line per request or watcher."""
    import httpx

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "weave_client", "serve", "--port", str(port),
         "--db", str(db_path), "--log-level", "warning"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server on {url} did not start")
            time.sleep(0.05)
        yield proc, url
    finally:
        proc.terminate()
        proc.wait(30)


def process_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) a process has used so far (Linux /proc; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stored_in_db(db_path: Path, project_id: str, *, whole: bool = False) -> int:
    """How many calls of ``project_id`` the server's database holds (read directly);
    with ``whole``, only those with both their start and their end."""
    where = " AND started_at IS NOT NULL AND ended_at IS NOT NULL" if whole else ""
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        (count,) = conn.execute(
            f"SELECT count(*) FROM calls WHERE project_id = ?{where}", (project_id,)
        ).fetchone()
    return int(count)


def command(script: str, *args: str) -> str:
    """The command line that reproduces a figure, for printing beside it."""
    return " ".join([".venv/bin/python", f"scripts/benchmarks/{script}", *args])
