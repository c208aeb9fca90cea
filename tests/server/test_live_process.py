"""Watchers handed off to the niced live process (``_live_process``).

The server lets go of each subscribed connection and the child serves it; when
the child cannot start or dies, the failure is logged once and watchers are
served in the server from then on (one the dead child held reconnects with
``since`` and misses nothing); the child stops with the server.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from httpx_ws import WebSocketDisconnect, WebSocketNetworkError, WebSocketSession, connect_ws
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Ping, Pong, Request, TextMessage

from weave_client.server import BackgroundServer, create_app, start_background_server
from weave_client.server._live import Broadcaster

PROJECT = "live-team/live"


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


def _subscribe(ws: WebSocketSession, since: int | None = None) -> list[dict[str, Any]]:
    """Subscribe; the events replayed before ``ready``."""
    ws.send_text(json.dumps({"project_id": PROJECT, "since": since}))
    got: list[dict[str, Any]] = []
    while not got or got[-1]["kind"] != "ready":
        got.extend(json.loads(line) for line in ws.receive_text(timeout=30).split("\n"))
    return got[:-1]


def _broadcaster(server: BackgroundServer) -> Broadcaster:
    broadcaster: Broadcaster = server._app.state.broadcaster
    return broadcaster


def _child(server: BackgroundServer) -> subprocess.Popen[bytes] | None:
    live = _broadcaster(server)._live
    assert live is not None
    return live._child


@pytest.fixture
def server(tmp_path: Path) -> Iterator[BackgroundServer]:
    with start_background_server(tmp_path / "live.db", watch_process=True) as s:
        yield s


def test_the_live_process_serves_the_watchers(server: BackgroundServer) -> None:
    ids = [str(uuid.uuid4()) for _ in range(300)]
    with httpx.Client() as http, contextlib.ExitStack() as stack:
        watchers = [
            stack.enter_context(connect_ws(server.url + "/calls/watch", http)) for _ in range(3)
        ]
        for ws in watchers:
            _subscribe(ws)
        # The server let go of them: it keeps no watcher and frames nothing for them.
        assert not _broadcaster(server)._watchers
        child = _child(server)
        assert child is not None and child.poll() is None and child.pid != os.getpid()
        _write(http, server.url, ids)
        for ws in watchers:
            got = _events(ws, 600)
            assert [e["seq"] for e in got] == list(range(1, 601))
            assert [e["call"]["id"] for e in got] == ids + ids
            assert got[0]["call"]["inputs"] == {"q": "é" * 40}


def test_a_child_that_dies_is_said_once_and_a_resumed_watcher_misses_nothing(
    server: BackgroundServer, caplog: pytest.LogCaptureFixture
) -> None:
    first = [str(uuid.uuid4()) for _ in range(20)]
    later = [str(uuid.uuid4()) for _ in range(20)]
    with httpx.Client() as http:
        with connect_ws(server.url + "/calls/watch", http) as ws:
            _subscribe(ws)
            _write(http, server.url, first)
            got = _events(ws, 40)
            child = _child(server)
            assert child is not None
            child.kill()
            child.wait()
            # Its connections die with it.
            with pytest.raises((WebSocketDisconnect, WebSocketNetworkError)):
                ws.receive_text(timeout=30)
        with caplog.at_level(logging.ERROR, logger="weave_client.server"):
            _write(http, server.url, later)
            with connect_ws(server.url + "/calls/watch", http) as ws:
                got += _subscribe(ws, since=got[-1]["seq"])  # the 40 events it missed
                assert len(_broadcaster(server)._watchers) == 1  # served in the server
                _write(http, server.url, [str(uuid.uuid4())])
                got += _events(ws, 2)
    assert [e["call"]["id"] for e in got[:40]] == first + first
    assert [e["call"]["id"] for e in got[40:80]] == later + later
    assert [e["seq"] for e in got] == list(range(1, 83))
    failures = [r for r in caplog.records if "live process failed" in r.getMessage()]
    assert len(failures) == 1, caplog.text
    assert "serving watchers in the server process" in failures[0].getMessage()
    assert _child(server) is None


def test_a_child_that_cannot_start_is_said_and_watchers_are_served_in_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-such-python"))
    ids = [str(uuid.uuid4()) for _ in range(5)]
    with (
        caplog.at_level(logging.ERROR, logger="weave_client.server"),
        start_background_server(tmp_path / "live.db", watch_process=True) as server,
        httpx.Client() as http,
        connect_ws(server.url + "/calls/watch", http) as ws,
    ):
        _subscribe(ws)
        assert len(_broadcaster(server)._watchers) == 1
        _write(http, server.url, ids)
        got = _events(ws, 10)
    assert [e["call"]["id"] for e in got] == ids + ids
    failures = [r for r in caplog.records if "live process failed" in r.getMessage()]
    assert len(failures) == 1 and "no-such-python" in failures[0].getMessage()


def test_the_child_stops_with_the_server_closing_its_watchers_with_1012(tmp_path: Path) -> None:
    server = start_background_server(tmp_path / "live.db", watch_process=True)
    try:
        with httpx.Client() as http, connect_ws(server.url + "/calls/watch", http) as ws:
            _subscribe(ws)
            child = _child(server)
            assert child is not None and child.poll() is None
            server.stop()
            # As uvicorn closes its own WebSockets at shutdown: the client may come back.
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_text(timeout=30)
        assert closed.value.code == 1012
        assert child.wait(timeout=10) == 0
    finally:
        server.stop()


def test_a_handed_off_watcher_is_answered_pong_and_its_close(server: BackgroundServer) -> None:
    # Clients' keepalive pings (httpx-ws sends one every 20 s under calls_live) and
    # their close are answered by the live process once the server let go.
    with socket.create_connection((server.host, server.port), timeout=30) as sock:
        ws = WSConnection(ConnectionType.CLIENT)
        sock.sendall(ws.send(Request(host=server.host, target="/calls/watch")))

        def until(kind: type[Any]) -> Any:
            while True:
                for event in ws.events():
                    if isinstance(event, kind):
                        return event
                ws.receive_data(sock.recv(65536) or None)

        until(AcceptConnection)
        sock.sendall(ws.send(TextMessage(data=json.dumps({"project_id": PROJECT}))))
        assert json.loads(until(TextMessage).data)["kind"] == "ready"
        assert not _broadcaster(server)._watchers  # handed off
        sock.sendall(ws.send(Ping(payload=b"still there?")))
        assert until(Pong).payload == b"still there?"
        sock.sendall(ws.send(CloseConnection(code=1000, reason="bye")))
        assert until(CloseConnection).code == 1000
        assert sock.recv(65536) == b""  # and the connection ends


def test_under_another_asgi_servers_protocol_watchers_stay_in_the_server(tmp_path: Path) -> None:
    # uvicorn's own WebSocket protocol offers no hand-off (_ws_protocol.HAND_OFF):
    # the watchers are served in the server, and no live process is started.
    app = create_app(tmp_path / "live.db", watch_process=True)
    config = uvicorn.Config(app, ws="wsproto", lifespan="off", log_level="warning")
    uvicorn_server = uvicorn.Server(config)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        thread = threading.Thread(target=uvicorn_server.run, kwargs={"sockets": [listener]})
        thread.start()
        try:
            while not uvicorn_server.started:
                time.sleep(0.01)
            with httpx.Client() as http, connect_ws(url + "/calls/watch", http) as ws:
                _subscribe(ws)
                broadcaster: Broadcaster = app.state.broadcaster
                assert len(broadcaster._watchers) == 1
                _write(http, url, ["elsewhere"])
                assert [e["kind"] for e in _events(ws, 2)] == ["start", "end"]
            assert broadcaster._live is not None and broadcaster._live._child is None
        finally:
            uvicorn_server.should_exit = True
            thread.join(10)
            app.state.close()
