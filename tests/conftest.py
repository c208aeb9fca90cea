"""Shared fixtures: real trace servers on loopback and a fresh project per test.

- ``local_server`` / ``local_server_url``: our own server (``weave_client.server``), in-process
  on a background thread, on a temp SQLite file, one per session.
- ``reference_server_url``: weave's own server (weave==0.51.59), run by
  ``tests/compat/reference_server.py`` under ``.venv-compat/bin/python``, one per session.
- ``server_kind`` / ``server_url``: parametrized over both (ids ``local`` and ``reference``),
  so a test asking for ``server_url`` runs against each. Items of the ``reference`` param and
  everything under ``tests/compat`` carry the ``compat`` marker: ``-m "not compat"`` is the
  fast subset, ``-m compat`` the compat tier alone.
- ``entity`` / ``project`` / ``project_id``: unique per test, so tests never see each
  other's data on the shared session servers.

Every fixture here is a plain sync function, so the hand-written ``tests/_async`` and the
generated ``tests/_sync`` use them alike.
"""

from __future__ import annotations

import os
import queue
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
COMPAT_DIR = Path(__file__).resolve().parent / "compat"
COMPAT_PYTHON = ROOT / ".venv-compat" / "bin" / "python"
REFERENCE_SERVER_SCRIPT = COMPAT_DIR / "reference_server.py"

SERVER_KINDS = ("local", "reference")
TEST_ENTITY = "test-entity"

# How long the reference server may take to come up (importing weave is about a second;
# a loaded 2-core machine running several suites at once can be much slower).
REFERENCE_STARTUP_TIMEOUT_S = 60.0

# Environment that would point a client at the hosted service or a real account. Tests talk
# only to servers on loopback; a test that wants one of these sets it itself (monkeypatch).
_HOSTED_ENV = ("WANDB_API_KEY", "WANDB_BASE_URL", "WEAVE_TRACE_SERVER_URL", "WF_TRACE_SERVER_URL")


def pytest_configure(config: pytest.Config) -> None:
    for name in _HOSTED_ENV:
        os.environ.pop(name, None)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    compat = pytest.mark.compat
    for item in items:
        callspec = getattr(item, "callspec", None)
        params: dict[str, Any] = callspec.params if callspec is not None else {}
        if (
            params.get("server_kind") == "reference"
            or "reference_server_url" in getattr(item, "fixturenames", ())
            or COMPAT_DIR in item.path.resolve().parents
        ):
            item.add_marker(compat)


# -- our local server -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def local_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Our trace server on 127.0.0.1 (a free port) over a fresh SQLite file, for the session;
    as ``python -m weave_client serve`` runs it, its live watchers handed off to the
    live process."""
    from weave_client.server import start_background_server

    db_path = tmp_path_factory.mktemp("local-server") / "trace.db"
    server = start_background_server(db_path=db_path, port=0, watch_process=True)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def local_server_url(local_server: Any) -> str:
    """Base URL of the session's local server, e.g. ``http://127.0.0.1:41234``."""
    return str(local_server.url).rstrip("/")


@pytest.fixture
def upstream_url(tmp_path: Path) -> Iterator[str]:
    """A fresh local server per test (its own database), so proxies and counts never mix."""
    from weave_client.server import start_background_server

    server = start_background_server(db_path=tmp_path / "trace.db", port=0)
    try:
        yield str(server.url).rstrip("/")
    finally:
        server.stop()


@pytest.fixture(scope="session")
def llm_server() -> Iterator[Any]:
    """The OpenAI/Anthropic wire-format server of tests/llm_server.py, for the session."""
    from tests.llm_server import LLMServer

    with LLMServer() as server:
        yield server


# -- weave's reference server -----------------------------------------------------------------


class ReferenceServer:
    """A running ``tests/compat/reference_server.py`` subprocess."""

    def __init__(self, process: subprocess.Popen[str], url: str, log_path: Path) -> None:
        self.process = process
        self.url = url
        self.log_path = log_path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()


def _log_tail(log_path: Path, lines: int = 30) -> str:
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def start_reference_server(
    log_path: Path,
    python: Path = COMPAT_PYTHON,
    timeout: float = REFERENCE_STARTUP_TIMEOUT_S,
) -> ReferenceServer:
    """Start weave's reference server on a free loopback port and wait until /health answers.

    Fails the calling test (never skips) when the compat venv is missing or the server does
    not come up, with what to do about it.
    """
    if not python.exists():
        pytest.fail(
            f"the compat tier needs weave's pinned venv, but {python} does not exist; "
            "run ./scripts/bootstrap to create it (tests/compat/requirements.txt)",
            pytrace=False,
        )
    log = log_path.open("w")
    try:
        process = subprocess.Popen(
            [str(python), str(REFERENCE_SERVER_SCRIPT), "--host", "127.0.0.1", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            cwd=ROOT,
        )
    finally:
        log.close()  # the child holds its own copy

    # The script prints the port alone on one line once its socket listens; read it on a
    # thread so a child that hangs before printing cannot hang the session.
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    deadline = time.monotonic() + timeout
    server: ReferenceServer | None = None
    try:
        try:
            first_line = lines.get(timeout=timeout).strip()
        except queue.Empty:
            first_line = ""
        if not first_line.isdigit():
            pytest.fail(
                f"weave's reference server ({REFERENCE_SERVER_SCRIPT.name}) did not announce "
                f"a port within {timeout:.0f}s (exit code {process.poll()}); got "
                f"{first_line!r}. Its log ({log_path}):\n{_log_tail(log_path)}\n"
                "If weave or its dependencies are missing, run ./scripts/bootstrap.",
                pytrace=False,
            )
        server = ReferenceServer(process, f"http://127.0.0.1:{int(first_line)}", log_path)
        _wait_healthy(server, deadline)
        return server
    except BaseException:
        if server is not None:
            server.stop()
        elif process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        raise


def _wait_healthy(server: ReferenceServer, deadline: float) -> None:
    last_error = "no attempt"
    with httpx.Client(timeout=2.0) as http:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                break
            try:
                response = http.get(f"{server.url}/health")
            except httpx.TransportError as exc:
                last_error = repr(exc)
            else:
                if response.status_code == 200:
                    return
                last_error = f"HTTP {response.status_code}: {response.text[:200]}"
            time.sleep(0.05)
    pytest.fail(
        f"weave's reference server at {server.url} never answered GET /health "
        f"(exit code {server.process.poll()}, last error {last_error}). "
        f"Its log ({server.log_path}):\n{_log_tail(server.log_path)}",
        pytrace=False,
    )


@pytest.fixture(scope="session")
def reference_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of weave's own reference server (weave==0.51.59), for the session."""
    log_path = tmp_path_factory.mktemp("reference-server") / "server.log"
    server = start_reference_server(log_path)
    try:
        yield server.url
    finally:
        server.stop()


# -- both, parametrized -----------------------------------------------------------------------


@pytest.fixture(scope="session", params=SERVER_KINDS, ids=SERVER_KINDS)
def server_kind(request: pytest.FixtureRequest) -> str:
    """Which server ``server_url`` points at: ``"local"`` or ``"reference"``."""
    return str(request.param)


@pytest.fixture(scope="session")
def server_url(server_kind: str, request: pytest.FixtureRequest) -> str:
    """Base URL of a real trace server: ours, then (as its own test item) weave's reference."""
    fixture = "local_server_url" if server_kind == "local" else "reference_server_url"
    return str(request.getfixturevalue(fixture))


# -- a fresh project per test -----------------------------------------------------------------


@pytest.fixture
def entity() -> str:
    """The entity every test writes under (projects keep tests apart, not entities)."""
    return TEST_ENTITY


@pytest.fixture
def project() -> str:
    """A project name no other test uses: ``p-<8 hex digits>``."""
    return f"p-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def project_id(entity: str, project: str) -> str:
    """``"entity/project"``, unique to this test."""
    return f"{entity}/{project}"
