"""The watchers' shared pages read by a niced child process (``_live_pages``).

The child must give the same messages as a read in the server's own process; when
it cannot start or dies, the failure is logged once and the pages are read in the
server, with no event lost; it stops with the server.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_ws import WebSocketSession, connect_ws

from weave_client.server import BackgroundServer, start_background_server
from weave_client.server._db import Database
from weave_client.server._live import Broadcaster
from weave_client.server._live_pages import ChildPages, read_chunks

PROJECT = "pages-team/pages"


def _batch(ids: list[str], mode: str) -> dict[str, Any]:
    now = datetime.now(UTC).isoformat()
    if mode == "start":
        reqs = [
            {"start": {"project_id": PROJECT, "id": c, "trace_id": c, "op_name": "step",
                       "started_at": now, "attributes": {}, "inputs": {"q": "é" * 40}}}
            for c in ids
        ]  # fmt: skip
    else:
        reqs = [
            {"end": {"project_id": PROJECT, "id": c, "ended_at": now, "summary": {}, "output": 1}}
            for c in ids
        ]
    return {"batch": [{"mode": mode, "req": r} for r in reqs]}


def _write(http: httpx.Client, url: str, ids: list[str]) -> None:
    for mode in ("start", "end"):
        r = http.post(url + "/call/upsert_batch", json=_batch(ids, mode))
        assert r.status_code == 200, r.text


def _events(ws: WebSocketSession, n: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while len(out) < n:
        out.extend(json.loads(line) for line in ws.receive_text(timeout=30).split("\n"))
    assert len(out) == n
    return out


def _subscribe(ws: WebSocketSession) -> None:
    ws.send_text(json.dumps({"project_id": PROJECT}))
    assert json.loads(ws.receive_text(timeout=30))["kind"] == "ready"


def _child(server: BackgroundServer) -> subprocess.Popen[bytes] | None:
    broadcaster: Broadcaster = server._app.state.broadcaster
    assert broadcaster._child_pages is not None
    return broadcaster._child_pages._child


@pytest.fixture
def server(tmp_path: Path) -> Iterator[BackgroundServer]:
    with start_background_server(tmp_path / "pages.db", watch_pages="process") as s:
        yield s


def test_the_child_reads_the_pages_a_read_in_the_server_gives(
    server: BackgroundServer, tmp_path: Path
) -> None:
    ids = [str(uuid.uuid4()) for _ in range(300)]
    with httpx.Client() as http:
        _write(http, server.url, ids)
    db = Database(tmp_path / "pages.db")
    child = ChildPages(db)
    try:
        for after in (0, 5, 599):
            with db.read() as conn:
                here = read_chunks(conn, after, PROJECT)
            there = child.read_chunks(after, PROJECT)
            assert there[0] == here[0] == 600 - after
            assert [(c.first, c.last, c.count, str(c.text)) for c in there[1]] == [
                (c.first, c.last, c.count, str(c.text)) for c in here[1]
            ]
            assert [c.text.frame for c in there[1]] == [c.text.frame for c in here[1]]  # type: ignore[attr-defined]
        assert len(here[1]) == 1 and len(there[1]) == 1  # the last page: one event
        assert child._child is not None and child._child.pid != os.getpid()
        assert child.read_chunks(600, PROJECT) == (0, [])
    finally:
        child.close()
        db.close()


def test_a_child_that_dies_is_said_once_and_no_event_is_lost(
    server: BackgroundServer, caplog: pytest.LogCaptureFixture
) -> None:
    first = [str(uuid.uuid4()) for _ in range(20)]
    later = [str(uuid.uuid4()) for _ in range(20)]
    with httpx.Client() as http, connect_ws(server.url + "/calls/watch", http) as ws:
        _subscribe(ws)
        child = _child(server)
        assert child is not None and child.poll() is None  # started by the subscription
        _write(http, server.url, first)
        got = _events(ws, 40)
        child.kill()
        child.wait()
        with caplog.at_level(logging.ERROR, logger="weave_client.server"):
            _write(http, server.url, later)
            got += _events(ws, 40)
            _write(http, server.url, [str(uuid.uuid4())])
            got += _events(ws, 2)
    assert [e["seq"] for e in got] == list(range(1, 83))
    assert [e["call"]["id"] for e in got[40:80]] == later + later
    failures = [r for r in caplog.records if "page reader process failed" in r.getMessage()]
    assert len(failures) == 1, caplog.text
    assert "reading pages in the server process" in failures[0].getMessage()
    assert _child(server) is None


def test_a_child_that_cannot_start_is_said_and_pages_are_read_in_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-such-python"))
    ids = [str(uuid.uuid4()) for _ in range(5)]
    with (
        caplog.at_level(logging.ERROR, logger="weave_client.server"),
        start_background_server(tmp_path / "pages.db", watch_pages="process") as server,
        httpx.Client() as http,
        connect_ws(server.url + "/calls/watch", http) as ws,
    ):
        _subscribe(ws)
        _write(http, server.url, ids)
        got = _events(ws, 10)
    assert [e["call"]["id"] for e in got] == ids + ids
    failures = [r for r in caplog.records if "page reader process failed" in r.getMessage()]
    assert len(failures) == 1 and "no-such-python" in failures[0].getMessage()


def test_the_child_stops_with_the_server(tmp_path: Path) -> None:
    with start_background_server(tmp_path / "pages.db", watch_pages="process") as server:
        with httpx.Client() as http, connect_ws(server.url + "/calls/watch", http) as ws:
            _subscribe(ws)
        child = _child(server)
        assert child is not None and child.poll() is None
    assert child.wait(timeout=10) == 0


def test_pages_must_be_thread_or_process(tmp_path: Path) -> None:
    db = Database(tmp_path / "pages.db")
    try:
        with pytest.raises(ValueError, match="'processes'"):
            Broadcaster(db, pages="processes")  # type: ignore[arg-type]
    finally:
        db.close()
