"""What ``import weave_client`` and creating a client do before any request (issue 12).

Each check runs in a fresh interpreter: the embedded server and the imported modules
are process-wide. No timing here (``scripts/bench`` measures the speed): these check
that the import loads no heavy part, that a client's constructor only reserves the
embedded server's address, and that the server starts (off the event loop) when the
client is created or entered, for both flavours.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(code: str, tmp_path: Path) -> str:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("WANDB_API_KEY", "WANDB_BASE_URL", "WEAVE_TRACE_SERVER_URL", "WF_TRACE_SERVER_URL")
    }
    env["WEAVE_CLIENT_DB"] = str(tmp_path / "embedded.db")
    env["WEAVE_CLIENT_CACHE_DIR"] = str(tmp_path / "cache")
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_import_loads_no_heavy_module(tmp_path: Path) -> None:
    out = _run(
        """
        import sys
        import weave_client
        heavy = ["pydantic", "httpx", "fastapi", "uvicorn", "rich", "weave_client._models"]
        print(sorted(m for m in heavy if m in sys.modules))
        print(weave_client.AsyncWeaveClient.__name__, weave_client.op.__name__)
        print("pydantic" in sys.modules)
        print(sorted(set(weave_client.__all__) - set(dir(weave_client))))
        """,
        tmp_path,
    )
    assert out.splitlines() == ["[]", "AsyncWeaveClient op", "True", "[]"]


def test_async_client_starts_the_embedded_server_when_created(tmp_path: Path) -> None:
    out = _run(
        """
        import asyncio
        from weave_client import AsyncWeaveClient, create_async_client
        from weave_client import _embedded

        async def main():
            client = AsyncWeaveClient("e", "p")
            print(_embedded.embedded_started(), client.server_url == _embedded.embedded_url())
            async with client:
                print(_embedded.embedded_started())
                ref = await client.save({"a": 1}, "thing")
                print((await client.get(ref)) == {"a": 1})
            other = await create_async_client("e", "q")
            print(other.server_url == client.server_url)
            await other.aclose()

        asyncio.run(main())
        """,
        tmp_path,
    )
    assert out.splitlines() == ["False True", "True", "True", "True"]


def test_sync_client_starts_the_embedded_server_when_created(tmp_path: Path) -> None:
    out = _run(
        """
        from weave_client import WeaveClient, create_client
        from weave_client import _embedded

        client = WeaveClient("e", "p")
        print(_embedded.embedded_started())
        with client:
            print(_embedded.embedded_started())
            ref = client.save([1, 2], "thing")
            print(client.get(ref) == [1, 2])
        other = create_client("e", "q")
        print(other.server_url == client.server_url)
        other.close()
        """,
        tmp_path,
    )
    assert out.splitlines() == ["False", "True", "True", "True"]


def test_traced_calls_start_the_embedded_server_without_a_request(tmp_path: Path) -> None:
    # A client made current without create/enter (as a process-wide default could be):
    # the sender starts the server before its first send, so no call is lost.
    out = _run(
        """
        import asyncio
        from weave_client import AsyncWeaveClient, async_op
        from weave_client import _embedded

        @async_op
        async def double(x: int) -> int:
            return 2 * x

        async def main():
            client = AsyncWeaveClient("e", "p")
            client._make_current()
            print([await double(i) for i in range(3)], _embedded.embedded_started())
            result = await client.flush(timeout=60)
            print(result.pending, result.failed, _embedded.embedded_started())
            calls = await client.calls()
            print(sorted(c.output for c in calls))
            await client.aclose()

        asyncio.run(main())
        """,
        tmp_path,
    )
    assert out.splitlines() == ["[0, 2, 4] False", "0 0 True", "[0, 2, 4]"]


def test_embedded_server_is_a_child_process_that_outlives_no_client(tmp_path: Path) -> None:
    """The embedded server runs in a child process (its imports never hold the client's
    GIL), serves what the client stored to ``calls`` readers of the same database, and
    exits by itself when the client process dies without closing anything."""
    import signal
    import time

    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("WANDB_API_KEY", "WANDB_BASE_URL", "WEAVE_TRACE_SERVER_URL", "WF_TRACE_SERVER_URL")
    }
    env["WEAVE_CLIENT_DB"] = str(tmp_path / "embedded.db")
    env["WEAVE_CLIENT_CACHE_DIR"] = str(tmp_path / "cache")
    env["PYTHONPATH"] = str(ROOT)
    code = """
        import os, sys
        from weave_client import create_client, op
        from weave_client import _embedded

        @op
        def double(x):
            return 2 * x

        client = create_client("e", "p")
        print(double(21), "fastapi" in sys.modules, _embedded._server.proc.pid, flush=True)
        client.flush()
        print("flushed", flush=True)
        sys.stdin.read()  # killed here
        """
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    try:
        assert proc.stdout is not None
        answer, imported, child = proc.stdout.readline().split()
        assert (answer, imported) == ("42", "False")
        assert proc.stdout.readline().strip() == "flushed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(int(child), 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            os.kill(int(child), signal.SIGKILL)
            raise AssertionError("the embedded server outlived its client process")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    listed = subprocess.run(
        [sys.executable, "-m", "weave_client", "calls", "--tree", "--project", "e/p"],
        capture_output=True,
        text=True,
        env={**env, "COLUMNS": "200"},
        cwd=tmp_path,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr
    assert "double" in listed.stdout and "→ 42" in listed.stdout
