"""The local server's ``/calls/watch`` WebSocket route, spoken to directly with httpx-ws.

Calls are written over HTTP (``/call/upsert_batch``, ``/call/update``,
``/calls/delete``); the watcher must get each change once, in order, filtered,
with Basic auth as every route, and a watcher too slow to read is closed with
4408 while ingestion goes on.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_ws import WebSocketDisconnect, WebSocketSession, WebSocketUpgradeError, connect_ws
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Message, Request, TextMessage
from wsproto.extensions import PerMessageDeflate

from weave_client._live import CLOSE_BAD_REQUEST, CLOSE_TOO_SLOW
from weave_client._models import CallSchema
from weave_client.server import BackgroundServer, start_background_server
from weave_client.server import _live as live_module

PROJECT = "watch-team/watch"
KEY = "watch-secret-key"


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _start(
    call_id: str, op: str = "step", parent: str | None = None, **extra: Any
) -> dict[str, Any]:
    start = {
        "project_id": PROJECT, "id": call_id, "trace_id": parent or call_id, "parent_id": parent,
        "op_name": op, "started_at": _now(), "attributes": {}, "inputs": {"x": 1}, **extra,
    }  # fmt: skip
    return {"mode": "start", "req": {"start": start}}


def _end(call_id: str, **extra: Any) -> dict[str, Any]:
    end = {"project_id": PROJECT, "id": call_id, "ended_at": _now(), "summary": {}, "output": 2}
    return {"mode": "end", "req": {"end": {**end, **extra}}}


def _post(http: httpx.Client, url: str, path: str, body: Any) -> None:
    r = http.post(url + path, json=body)
    assert r.status_code == 200, r.text


def _subscribe(ws: WebSocketSession, **sub: Any) -> int:
    ws.send_text(json.dumps({"project_id": PROJECT, **sub}))
    ready = json.loads(ws.receive_text(timeout=30))
    assert ready["kind"] == "ready"
    return int(ready["seq"])


def _events(ws: WebSocketSession, n: int) -> list[dict[str, Any]]:
    """The next ``n`` messages (events waiting together share a message, one per line)."""
    out: list[dict[str, Any]] = []
    while len(out) < n:
        out.extend(json.loads(line) for line in ws.receive_text(timeout=30).split("\n"))
    assert len(out) == n, out
    return out


@pytest.fixture(params=["in-server", "handed-off"])
def server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[BackgroundServer]:
    # Each test once with the watchers served by the server, once handed off to the
    # niced live process that `python -m weave_client serve` uses (_live_process).
    process = request.param == "handed-off"
    with start_background_server(tmp_path / "watch.db", watch_process=process) as s:
        yield s


def test_each_change_once_in_order(server: BackgroundServer) -> None:
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    with httpx.Client() as http, connect_ws(server.url + "/calls/watch", http) as ws:
        head = _subscribe(ws)
        assert head == 0
        _post(http, server.url, "/call/upsert_batch", {"batch": [_start(a), _start(b, "child", a)]})
        _post(http, server.url, "/call/upsert_batch", {"batch": [_end(b), _end(a, exception="E")]})
        _post(http, server.url, "/call/update", {"project_id": PROJECT, "call_id": a, "display_name": "renamed"})  # fmt: skip
        _post(http, server.url, "/calls/delete", {"project_id": PROJECT, "call_ids": [a]})
        got = _events(ws, 7)
    kinds = [(e["kind"], e["call"]["id"]) for e in got]
    assert kinds[:5] == [("start", a), ("start", b), ("end", b), ("end", a), ("update", a)]
    # Deleting the root deletes its child too.
    assert sorted(kinds[5:]) == sorted([("delete", a), ("delete", b)])
    assert [e["seq"] for e in got] == list(range(1, 8))
    assert got[0]["call"]["inputs"] == {"x": 1}
    assert got[3]["call"]["exception"] == "E" and got[4]["call"]["display_name"] == "renamed"
    assert got[3]["call"]["summary"]["weave"]["status"] == "error"
    assert all(e["call"]["deleted_at"] for e in got[5:])


def test_since_replays_and_filters(server: BackgroundServer) -> None:
    root, child, other = str(uuid.uuid4()), str(uuid.uuid4()), str(uuid.uuid4())
    with httpx.Client() as http:
        batch = [_start(root, display_name="Root"), _start(child, "child", root),
                 _start(other, "other"), _end(child, exception="boom"), _end(root),
                 _end(other, summary={"status_counts": {"error": 1}, "weave": {"x": 1}})]  # fmt: skip
        _post(http, server.url, "/call/upsert_batch", {"batch": batch})
        # Stored whole in one batch: one end event per call, the child's first.
        with connect_ws(server.url + "/calls/watch", http) as ws:
            ws.send_text(json.dumps({"project_id": PROJECT, "since": 0}))
            got = _events(ws, 4)
        assert [(e["kind"], e["call"]["id"]) for e in got[:3]] == [
            ("end", child),
            ("end", root),
            ("end", other),
        ]
        assert got[3] == {"kind": "ready", "seq": 3}
        # The call in an event is the call /calls/query returns, field for field.
        queried = http.post(server.url + "/calls/query", json={"project_id": PROJECT}).json()
        by_id = {c["id"]: c for c in queried["calls"]}
        for event in got[:3]:
            same = by_id[event["call"]["id"]]
            assert CallSchema.model_validate(event["call"]) == CallSchema.model_validate(same)
            assert event["call"]["summary"] == same["summary"]
        for sub, want in (
            ({"filter": {"trace_roots_only": True}}, {root, other}),
            ({"filter": {"op_names": ["child"]}}, {child}),
            ({"filter": {"trace_ids": [root]}}, {root, child}),
            ({"filter": {"call_ids": [other]}}, {other}),
            ({"filter": {"parent_ids": [root]}}, {child}),
            ({"filter": {"thread_ids": []}}, set()),
        ):
            with connect_ws(server.url + "/calls/watch", http) as ws:
                ws.send_text(json.dumps({"project_id": PROJECT, "since": 0, **sub}))
                ids = set()
                while True:
                    msgs = [json.loads(t) for t in ws.receive_text(timeout=30).split("\n")]
                    ids.update(m["call"]["id"] for m in msgs if m["kind"] != "ready")
                    if msgs[-1]["kind"] == "ready":
                        break
            assert ids == want, sub
        # Another project sees nothing of these.
        with connect_ws(server.url + "/calls/watch", http) as ws:
            ws.send_text(json.dumps({"project_id": "x/y", "since": 0}))
            assert json.loads(ws.receive_text(timeout=30))["kind"] == "ready"


def test_bad_subscription_is_closed_with_4400(server: BackgroundServer) -> None:
    for message, words in (
        ("not json", "invalid subscribe message"),
        (json.dumps({"project_id": PROJECT, "filter": {"op_names": "x"}}), "filter.op_names"),
        (json.dumps({"project_id": PROJECT, "since": 0, "nope": 1}), "nope"),
        (json.dumps({"project_id": PROJECT, "filter": {"input_refs": ["r"]}}), "input_refs"),
    ):
        with connect_ws(server.url + "/calls/watch") as ws:
            ws.send_text(message)
            with pytest.raises(WebSocketDisconnect) as info:
                ws.receive_text(timeout=30)
        assert info.value.code == CLOSE_BAD_REQUEST
        assert words in info.value.reason


def test_events_written_by_another_server_on_the_same_file(tmp_path: Path) -> None:
    # An embedded server in a traced program and `calls --follow`'s own server share the file.
    db = tmp_path / "shared.db"
    with start_background_server(db) as watched, start_background_server(db) as writer:
        call_id = str(uuid.uuid4())
        with httpx.Client() as http, connect_ws(watched.url + "/calls/watch", http) as ws:
            _subscribe(ws)
            _post(
                http, writer.url, "/call/upsert_batch", {"batch": [_start(call_id), _end(call_id)]}
            )
            (event,) = _events(ws, 1)
    assert (event["kind"], event["call"]["id"]) == ("end", call_id)


def test_basic_auth_as_every_route(tmp_path: Path) -> None:
    with start_background_server(tmp_path / "auth.db", api_key=KEY) as server:
        for auth in (None, ("api", "wrong")):
            with pytest.raises(WebSocketUpgradeError) as info:
                with connect_ws(server.url + "/calls/watch", auth=auth):
                    pass
            assert info.value.response.status_code == 401
            assert info.value.response.headers["www-authenticate"].startswith("Basic")
        with connect_ws(server.url + "/calls/watch", auth=("api", KEY)) as ws:
            assert _subscribe(ws) == 0


class _RawWatcher:
    """A WebSocket client over a plain socket (wsproto) that reads only when told to.

    By default its receive buffer is small, so a watcher that does not read fills up
    fast. With ``deflate`` it offers permessage-deflate as browsers do (wsproto's
    client side of it inflates) and counts the bytes it read off the wire.
    """

    def __init__(
        self, server: BackgroundServer, *, deflate: bool = False, since: int | None = None
    ) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if not deflate:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.settimeout(30)
        self.sock.connect((server.host, server.port))
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.wire_bytes = 0
        self.deflate = PerMessageDeflate() if deflate else None
        extensions = [self.deflate] if self.deflate else []
        request = Request(host=server.host, target="/calls/watch", extensions=extensions)
        self.sock.sendall(self.ws.send(request))
        assert any(isinstance(e, AcceptConnection) for e in self._read())
        sub = json.dumps({"project_id": PROJECT, "since": since})
        self.sock.sendall(self.ws.send(TextMessage(data=sub)))
        self._messages: list[dict[str, Any]] = []
        self._text = ""

    def _read(self) -> list[Any]:
        data = self.sock.recv(65536)
        self.wire_bytes += len(data)
        self.ws.receive_data(data or None)
        return list(self.ws.events())

    def _take(self, events: list[Any]) -> CloseConnection | None:
        for event in events:
            if isinstance(event, CloseConnection):
                return event
            if isinstance(event, TextMessage):
                self._text += event.data
                if event.message_finished:
                    self._messages.extend(json.loads(line) for line in self._text.split("\n"))
                    self._text = ""
        return None

    def read_until_closed(self) -> tuple[int, str, list[dict[str, Any]]]:
        """Read everything; the close code and reason, and the messages that came before."""
        while True:
            closed = self._take(self._read())
            if closed is not None:
                return closed.code, closed.reason, self._messages

    def read(self, n: int) -> list[dict[str, Any]]:
        """The first ``n`` messages (``ready`` among them)."""
        while len(self._messages) < n:
            assert self._take(self._read()) is None, "closed by the server"
        return self._messages[:n]

    def close(self) -> None:
        self.sock.close()


def _replay(http: httpx.Client, url: str, since: int) -> list[dict[str, Any]]:
    """Every message of a subscribe with ``since``, up to and including ``ready``."""
    with connect_ws(url + "/calls/watch", http) as ws:
        ws.send_text(json.dumps({"project_id": PROJECT, "since": since}))
        got: list[dict[str, Any]] = []
        while not got or got[-1]["kind"] != "ready":
            got.extend(json.loads(t) for t in ws.receive_text(timeout=30).split("\n"))
    return got


def test_old_events_are_pruned_and_a_replay_from_before_says_so(tmp_path: Path) -> None:
    db = tmp_path / "keep.db"
    with start_background_server(db, keep_events=10) as server, httpx.Client() as http:
        ids = [str(uuid.uuid4()) for _ in range(30)]
        for c in ids:  # a start and an end each: 60 events, seq 1 to 60
            _post(http, server.url, "/call/upsert_batch", {"batch": [_start(c)]})
            _post(http, server.url, "/call/upsert_batch", {"batch": [_end(c)]})
        with sqlite3.connect(db) as conn:
            (count, oldest, newest) = conn.execute(
                "SELECT COUNT(*), MIN(seq), MAX(seq) FROM call_events"
            ).fetchone()
        # The newest 10 are kept, pruned a tenth of that (one event) at a time.
        assert newest == 60 and count == 10 and oldest == 51
        got = _replay(http, server.url, since=0)
        assert got[-1] == {"kind": "ready", "pruned_through": 50, "seq": 60}
        assert [e["seq"] for e in got[:-1]] == list(range(51, 61))
        assert [e["call"]["id"] for e in got[:-1] if e["kind"] == "end"] == ids[-5:]
        # From within what is kept: no word of pruning.
        assert _replay(http, server.url, since=55)[-1] == {"kind": "ready", "seq": 60}
        # Every call is still stored: only the events are pruned.
        r = http.post(server.url + "/calls/query_stats", json={"project_id": PROJECT})
        assert r.json()["count"] == 30


def test_a_backlog_of_old_events_is_pruned_a_bounded_slice_per_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "backlog.db"

    def stored() -> tuple[int, int]:
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT COUNT(*), MIN(seq) FROM call_events").fetchone()

    with start_background_server(db) as server, httpx.Client() as http:  # keeps them all
        for _ in range(20):
            _post(http, server.url, "/call/upsert_batch", {"batch": [_start(str(uuid.uuid4()))]})
    assert stored() == (20, 1)
    monkeypatch.setattr(live_module, "_PRUNE_ROWS", 4)
    with start_background_server(db, keep_events=5) as server, httpx.Client() as http:
        counts = []
        for _ in range(5):
            _post(http, server.url, "/call/upsert_batch", {"batch": [_start(str(uuid.uuid4()))]})
            counts.append(stored()[0])
    # 21 events after the first write, 4 pruned per write until only the newest 5 are left.
    assert counts == [17, 14, 11, 8, 5]
    assert stored() == (5, 21)


def test_keep_events_must_be_positive(tmp_path: Path) -> None:
    def checkpointers() -> int:
        return sum(t.name == "weave-server-checkpoint" for t in threading.enumerate())

    before = checkpointers()
    with pytest.raises(ValueError, match="keep_events: must be at least 1, got 0"):
        start_background_server(tmp_path / "x.db", keep_events=0)
    assert checkpointers() == before  # the database it opened is closed again


@pytest.mark.parametrize("handed_off", [False, True])
def test_slow_watcher_is_closed_and_ingestion_goes_on(tmp_path: Path, handed_off: bool) -> None:
    big = "x" * 20_000
    with start_background_server(
        tmp_path / "slow.db", watch_queue_size=50, watch_process=handed_off
    ) as server:
        slow = _RawWatcher(server)
        try:
            with (
                httpx.Client(timeout=60) as http,
                connect_ws(
                    server.url + "/calls/watch", http, max_message_size_bytes=1 << 20
                ) as fast,
            ):
                _subscribe(fast)
                ids = [str(uuid.uuid4()) for _ in range(400)]
                # The slow watcher reads nothing while a few MB of events go out.
                for i in range(0, len(ids), 20):
                    batch = [_start(c, inputs={"big": big}) for c in ids[i : i + 20]]
                    _post(http, server.url, "/call/upsert_batch", {"batch": batch})
                    # The fast one keeps up and gets every event.
                    assert [e["call"]["id"] for e in _events(fast, 20)] == ids[i : i + 20]
                code, reason, before = slow.read_until_closed()
                assert code == CLOSE_TOO_SLOW
                assert "too slow" in reason
                events = [m for m in before if m["kind"] != "ready"]
                assert 0 < len(events) < 400
                # Reconnecting from the last seq it got gives exactly the rest.
                with connect_ws(
                    server.url + "/calls/watch", http, max_message_size_bytes=1 << 24
                ) as again:
                    again.send_text(json.dumps({"project_id": PROJECT, "since": events[-1]["seq"]}))
                    rest: list[dict[str, Any]] = []
                    while not rest or rest[-1]["kind"] != "ready":
                        rest.extend(
                            json.loads(t) for t in again.receive_text(timeout=30).split("\n")
                        )
                got = [e["call"]["id"] for e in events + rest[:-1]]
                assert got == ids
                r = http.post(server.url + "/calls/query_stats", json={"project_id": PROJECT})
                assert r.json()["count"] == 400
        finally:
            slow.close()


def test_a_client_offering_permessage_deflate_gets_the_same_events_compressed(
    server: BackgroundServer,
) -> None:
    # Browsers offer permessage-deflate: they get it without server context takeover,
    # so one compressed frame per message serves every such watcher (_ws_protocol),
    # replayed and live events alike, next to a watcher that reads plain frames.
    ids = [str(uuid.uuid4()) for _ in range(300)]
    with httpx.Client() as http, connect_ws(server.url + "/calls/watch", http) as plain:
        _subscribe(plain)
        _post(http, server.url, "/call/upsert_batch", {"batch": [_start(c) for c in ids[:100]]})
        deflating = _RawWatcher(server, deflate=True, since=0)
        try:
            assert deflating.read(101)[100] == {"kind": "ready", "seq": 100}  # replayed 100
            _post(http, server.url, "/call/upsert_batch", {"batch": [_start(c) for c in ids[100:]]})
            _post(http, server.url, "/call/upsert_batch", {"batch": [_end(c) for c in ids]})
            got = deflating.read(601)
            want = _events(plain, 600)
        finally:
            deflating.close()
    assert deflating.deflate is not None and deflating.deflate.server_no_context_takeover
    assert got[:100] + got[101:] == want
    assert [e["seq"] for e in want] == list(range(1, 601))
    text_bytes = sum(len(json.dumps(e)) for e in want)
    assert deflating.wire_bytes < text_bytes / 5, (deflating.wire_bytes, text_bytes)


def test_many_watchers_get_each_shared_message_whole(
    server: BackgroundServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Watchers of one project share each message, framed once (_ws_protocol): every
    # watcher reads every event whole, multi-byte text and messages past 64 KB
    # included, and no live message is framed again per watcher by wsproto.
    framed_by_wsproto: list[int] = []
    send = WSConnection.send

    def counting_send(self: WSConnection, event: Any) -> bytes:
        if isinstance(event, Message) and isinstance(event.data, str):
            framed_by_wsproto.append(len(event.data))
        return send(self, event)

    monkeypatch.setattr(WSConnection, "send", counting_send)
    ids = [str(uuid.uuid4()) for _ in range(200)]
    text = "é✓ " * 200  # 1,000 bytes of UTF-8 per call's inputs, 600 characters
    with httpx.Client() as http, contextlib.ExitStack() as stack:
        watchers = [
            stack.enter_context(connect_ws(server.url + "/calls/watch", http)) for _ in range(3)
        ]
        for ws in watchers:
            _subscribe(ws)
        starts = [_start(c, inputs={"q": text}) for c in ids]
        _post(http, server.url, "/call/upsert_batch", {"batch": starts})
        _post(http, server.url, "/call/upsert_batch", {"batch": [_end(c) for c in ids]})
        got = [_events(ws, 400) for ws in watchers]
    for events in got:
        assert [e["seq"] for e in events] == list(range(1, 401))
        assert [e["call"]["id"] for e in events] == ids + ids
        assert all(e["call"]["inputs"]["q"] == text for e in events)
    # Only the three "ready" messages went through wsproto's own framing (in the live
    # process when handed off: none in the server).
    handed_off = server._app.state.broadcaster._live is not None
    assert len(framed_by_wsproto) == (0 if handed_off else 3), framed_by_wsproto
