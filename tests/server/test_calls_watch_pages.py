"""``/calls/watch`` events written a run per statement and read a page per query.

A batch's events are inserted with one statement per run of one project and
kind, and a page builds each call's JSON once for its start and its end. These
tests pin what that must keep: every event of a mixed batch (two projects,
starts, ends of earlier calls, a call stored whole, an id with a NUL) numbered in
batch order and delivered once, in order, after a restart; a start and an end in
one page carrying the same call; and the derived summary (status, latency,
trace name) as ``/calls/query`` answers it.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
from httpx_ws import WebSocketSession, connect_ws

from weave_client.server import start_background_server

PROJECT = "pages-team/pages"
OTHER = "pages-team/other"


def _start(call_id: str, started_at: str, project: str = PROJECT, **extra: Any) -> dict[str, Any]:
    start = {
        "project_id": project, "id": call_id, "trace_id": call_id, "op_name": "step",
        "started_at": started_at, "attributes": {}, "inputs": {"x": 1}, **extra,
    }  # fmt: skip
    return {"mode": "start", "req": {"start": start}}


def _end(call_id: str, ended_at: str, project: str = PROJECT, **extra: Any) -> dict[str, Any]:
    end = {"project_id": project, "id": call_id, "ended_at": ended_at, "summary": {}, "output": 2}
    return {"mode": "end", "req": {"end": {**end, **extra}}}


def _post(http: httpx.Client, url: str, batch: list[dict[str, Any]]) -> None:
    r = http.post(url + "/call/upsert_batch", json={"batch": batch})
    assert r.status_code == 200, r.text


def _watch(ws: WebSocketSession, project: str, n: int, since: int | None = 0) -> list[Any]:
    ws.send_text(json.dumps({"project_id": project, "since": since}))
    out: list[dict[str, Any]] = []
    ready = False
    while len(out) < n or not ready:
        for line in ws.receive_text(timeout=30).split("\n"):
            msg = json.loads(line)
            if msg["kind"] == "ready":
                ready = True
            else:
                out.append(msg)
    assert len(out) == n, out
    return out


def _ts(second: int) -> str:
    return f"2025-03-01T10:00:{second:02d}.250000+00:00"


def test_a_mixed_batch_is_numbered_in_order_and_replayed_after_a_restart(
    tmp_path: Path,
) -> None:
    db = tmp_path / "pages.db"
    early, late, other, nul, whole = "early", "late", "other", "nul\u0000id", "whole"
    with start_background_server(db) as server, httpx.Client() as http:
        _post(
            http,
            server.url,
            [_start(early, _ts(1)), _start(late, _ts(2)), _start(other, _ts(2), project=OTHER)],
        )
        _post(
            http,
            server.url,
            [
                _start("open1", _ts(3)),
                _start("o2", _ts(3), project=OTHER),
                _start(nul, _ts(3)),
                _start(whole, _ts(4)),
                _start("open3", _ts(4)),
                # Ends are numbered by ended_at (late before early); a call stored
                # whole (nul, whole) gets its end only.
                _end(early, _ts(9)),
                _end(late, _ts(5)),
                _end(whole, _ts(7)),
                _end(nul, _ts(8)),
                _end(other, _ts(6), project=OTHER),
            ],
        )
    # Resumed on the same file by a new server: everything, once, in the stored order.
    with start_background_server(db) as server:
        with connect_ws(server.url + "/calls/watch") as ws:
            got = _watch(ws, PROJECT, 8)
        with connect_ws(server.url + "/calls/watch") as ws:
            others = _watch(ws, OTHER, 3)
        with connect_ws(server.url + "/calls/watch") as ws:
            resumed = _watch(ws, PROJECT, 4, since=got[3]["seq"])
    assert [(m["kind"], m["call"]["id"]) for m in got] == [
        ("start", early),
        ("start", late),
        ("start", "open1"),
        ("start", "open3"),
        ("end", late),
        ("end", whole),
        ("end", nul),
        ("end", early),
    ]
    assert [(m["kind"], m["call"]["id"]) for m in others] == [
        ("start", other),
        ("start", "o2"),
        ("end", other),
    ]
    seqs = [m["seq"] for m in got]
    assert seqs == sorted(seqs)
    assert seqs[1] < others[0]["seq"] < seqs[2] < others[1]["seq"] < seqs[3]
    assert seqs[4] < others[2]["seq"] < seqs[5]
    assert resumed == got[4:]
    # A start read after its call ended carries the end too.
    assert got[0]["call"]["ended_at"] == _ts(9)
    assert got[2]["call"]["ended_at"] is None


def test_start_and_end_in_one_page_carry_the_same_call_as_query_answers(tmp_path: Path) -> None:
    ids = [str(uuid.uuid4()) for _ in range(4)]
    with start_background_server(tmp_path / "pages.db") as server, httpx.Client() as http:
        _post(
            http,
            server.url,
            [
                _start(ids[0], _ts(1), display_name="named"),
                _start(ids[1], _ts(1), op_name="weave:///pages-team/pages/op/pkg.fn:abc"),
                _start(ids[2], _ts(1), parent_id=ids[1], trace_id=ids[1]),
                _start(ids[3], _ts(1)),
            ],
        )
        # The ends in a second batch: each start and end are events of one page.
        _post(
            http,
            server.url,
            [
                _end(ids[0], "2025-03-01T09:59:59.999999+00:00"),  # before its start
                _end(ids[1], _ts(3), summary={"status_counts": {"error": 1}}),
                _end(ids[2], _ts(2), exception="boom"),
            ],
        )
        r = http.post(server.url + "/calls/query", json={"project_id": PROJECT, "sort_by": None})
        assert r.status_code == 200, r.text
        queried = {c["id"]: c for c in r.json()["calls"]}
        with connect_ws(server.url + "/calls/watch") as ws:
            got = _watch(ws, PROJECT, 7)
    by_call: dict[str, list[dict[str, Any]]] = {}
    for m in got:
        by_call.setdefault(m["call"]["id"], []).append(m)
    assert [m["kind"] for m in by_call[ids[3]]] == ["start"]
    for call_id in ids[:3]:
        start, end = by_call[call_id]
        assert (start["kind"], end["kind"]) == ("start", "end")
        assert start["call"] == end["call"]
    for call_id, messages in by_call.items():
        assert messages[0]["call"]["summary"] == queried[call_id]["summary"]
        assert messages[0]["call"]["inputs"] == queried[call_id]["inputs"]
    weave = {c: by_call[c][0]["call"]["summary"]["weave"] for c in ids}
    # Floored, as Python's timedelta does (the .999999 is not rounded up to a second).
    assert weave[ids[0]]["latency_ms"] == -1251
    assert weave[ids[0]]["trace_name"] == "named"
    assert weave[ids[1]]["status"] == "descendant_error"
    assert weave[ids[1]]["trace_name"] == "pkg.fn"
    assert weave[ids[2]]["status"] == "error"
    assert weave[ids[3]]["status"] == "running"
    assert "latency_ms" not in weave[ids[3]]
