"""The viewer's live mode in headless chromium: calls traced by another process appear and finish.

``tests/live_tracer.py`` traces into the module's local server from a
subprocess while the page is open; the trace list and an open trace must show
each call running (with a ticking duration) and then ended, without a reload,
and the pause control must hold updates until resumed. Screenshots go to
``.artifacts/viewer/`` as the other browser tests'.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from weave_client.server import BackgroundServer, start_background_server

from ..live_tracer import finish_tracer, start_tracer
from .test_viewer_browser import Page, browser_context, expect

__all__ = ["browser_context"]  # the module's browser fixture, shared


@pytest.fixture
def live_view(browser_context: Any, viewer_server: BackgroundServer) -> Iterator[Page]:
    page = Page(browser_context.new_page(), viewer_server.url)
    try:
        yield page
        page.check_clean()
    finally:
        page.page.close()


def _loads(view: Page) -> list[str]:
    loads: list[str] = []
    view.page.on("load", lambda _: loads.append(view.page.url))
    return loads


def test_trace_list_and_trace_update_live(live_view: Page, viewer_server: BackgroundServer) -> None:
    view = live_view
    project_id = f"viewer-team/live-{uuid.uuid4().hex[:8]}"
    loads = _loads(view)
    view.goto(f"#/{project_id}/traces")
    view.page.get_by_text("No traces in this project yet.").wait_for()
    expect(view.page.locator(".page-head .live.live")).to_have_count(1)

    rows = view.page.locator("table.traces tbody tr")
    tracer = start_tracer(viewer_server.url, project_id, calls=2, hold=2.0, fail_every=2)
    try:
        # The first call shows up running, its duration ticking.
        expect(rows).to_have_count(1)
        first = rows.nth(0)
        expect(first.locator("td").nth(2)).to_have_text("running")
        ticking = first.locator(".ticking")
        expect(ticking).to_have_count(1)
        shown = ticking.inner_text()
        expect(ticking).not_to_have_text(shown)
        view.shot("live-trace-list-running")
        # It ends with success; the second (newest first) ends with an error.
        expect(rows).to_have_count(2)
        expect(rows.nth(1).locator("td").nth(2)).to_have_text("success")
        expect(rows.nth(0).locator("td").nth(2)).to_have_text("error")
        expect(view.page.locator("table.traces .ticking")).to_have_count(0)
    finally:
        finish_tracer(tracer)
    view.shot("live-trace-list-ended")

    # An open trace: its root runs, ticks, gets its child and ends, all in place.
    tracer = start_tracer(viewer_server.url, project_id, calls=1, hold=2.5)
    try:
        expect(rows).to_have_count(3)
        expect(rows.nth(0).locator("td").nth(2)).to_have_text("running")
        rows.nth(0).locator("a.op").click()
        tree = view.page.locator(".tree-rows .trow")
        tree.first.wait_for()
        head = view.page.locator(".page-head")
        expect(head.locator(".badge")).to_have_text("running")
        expect(head.locator(".live.live")).to_have_count(1)
        expect(tree).to_have_count(2)  # step and its child
        view.shot("live-trace-running")
        expect(head.locator(".badge")).to_have_text("success")
        expect(tree.first.locator(".dot")).to_have_attribute("title", "success")
        expect(view.page.locator("#detail .call-head .badge")).to_have_text("success")
    finally:
        finish_tracer(tracer)
    view.shot("live-trace-ended")
    assert len(loads) == 1, f"the page reloaded: {loads}"
    # The page's watchers were served by the live process (as under `serve`), which
    # sent them compressed frames (chromium takes permessage-deflate).
    live = viewer_server._app.state.broadcaster._live
    assert live is not None and live.serving
    assert live.handed_off_deflating > 0


def test_pause_holds_updates_until_resumed(
    live_view: Page, viewer_server: BackgroundServer
) -> None:
    view = live_view
    project_id = f"viewer-team/pause-{uuid.uuid4().hex[:8]}"
    view.goto(f"#/{project_id}/traces")
    view.page.get_by_text("No traces in this project yet.").wait_for()
    control = view.page.locator(".page-head .live")
    expect(control).to_have_class("live live")
    control.locator("button").click()
    expect(control).to_have_class("live paused")
    finish_tracer(start_tracer(viewer_server.url, project_id, calls=1))
    view.page.get_by_text("No traces in this project yet.").wait_for()
    view.shot("live-paused")
    control.locator("button", has_text="Resume").click()
    rows = view.page.locator("table.traces tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.nth(0).locator("td").nth(2)).to_have_text("success")
    expect(control).to_have_class("live live")


def test_a_view_away_longer_than_the_kept_events_says_it_missed_updates(
    browser_context: Any, tmp_path: Path
) -> None:
    # The server keeps the newest 10 events. While it is down, another server on the same
    # file stores 20 calls (40 events): when the first comes back, the viewer resumes
    # after its last event, the server says those were pruned, and the view offers a reload.
    db_path = tmp_path / "pruned.db"
    server = start_background_server(db_path, port=0, keep_events=10)
    port = server.port
    view = Page(browser_context.new_page(), server.url)
    project_id = f"viewer-team/pruned-{uuid.uuid4().hex[:8]}"
    try:
        view.goto(f"#/{project_id}/traces")
        view.page.get_by_text("No traces in this project yet.").wait_for()
        control = view.page.locator(".page-head .live")
        rows = view.page.locator("table.traces tbody tr")
        finish_tracer(start_tracer(server.url, project_id, calls=1))
        expect(rows).to_have_count(1)
        expect(control).to_have_class("live live")
        server.stop()
        expect(control).to_have_class("live connecting")
        with start_background_server(db_path, port=0, keep_events=10) as meanwhile:
            finish_tracer(start_tracer(meanwhile.url, project_id, calls=20))
        server = start_background_server(db_path, port=port, keep_events=10)
        expect(control).to_have_class("live missed")
        expect(control.locator(".live-label")).to_have_text("missed updates")
        expect(rows).not_to_have_count(21)  # the pruned calls never reached the view
        view.shot("live-missed")
        control.locator("button", has_text="Reload").click()
        expect(rows).to_have_count(21)
        expect(control).to_have_class("live live")
        # The only errors: the browser's own notes of the reconnects that failed while
        # no server listened.
        assert all("WebSocket connection to" in p for p in view.problems), view.problems
        assert view.dialogs == []
    finally:
        view.page.close()
        server.stop()
