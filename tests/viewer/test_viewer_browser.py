"""The viewer in a real headless browser (Debian's chromium driven by Playwright).

A local server holds a seeded project (see seed.py); each test loads a view,
checks what the page shows against what was seeded, and saves a screenshot to
``.artifacts/viewer/``. A missing browser or driver fails the test with the
command that installs them: ``./scripts/bootstrap``.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from weave_client.server import BackgroundServer

from .seed import ANSWER, EXCEPTION_MESSAGE, NOTE, QUESTION, SCRIPT_INPUT, Seeded

CHROMIUM = os.environ.get("WEAVE_CLIENT_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / ".artifacts" / "viewer"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 15_000


def _require_browser() -> Any:
    if not Path(CHROMIUM).is_file():
        pytest.fail(
            f"no Chromium at {CHROMIUM}: run ./scripts/bootstrap (installs Debian's chromium "
            "as root), or point WEAVE_CLIENT_CHROMIUM at a chromium binary",
            pytrace=False,
        )
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError as exc:
        pytest.fail(
            f"the Playwright driver is missing from .venv ({exc}): run ./scripts/bootstrap",
            pytrace=False,
        )
    return sync_playwright, expect


def expect(locator: Any) -> Any:
    """Playwright's auto-waiting assertions (they poll without eval, which the page's CSP forbids)."""
    return _require_browser()[1](locator)


class Page:
    """A browser page on the viewer, collecting console errors, page errors and dialogs."""

    def __init__(self, page: Any, base_url: str) -> None:
        self.page = page
        self.base_url = base_url
        self.problems: list[str] = []
        self.dialogs: list[str] = []
        page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        page.on(
            "console",
            lambda msg: self.problems.append(f"console {msg.type}: {msg.text}")
            if msg.type == "error"
            else None,
        )

        def on_dialog(dialog: Any) -> None:
            self.dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)

    def goto(self, hash_route: str) -> None:
        self.page.goto(f"{self.base_url}/{hash_route}")

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

    def check_clean(self) -> None:
        assert self.dialogs == [], f"a dialog opened (escaping failed?): {self.dialogs}"
        assert self.problems == [], self.problems
        # No element of the page came from data: the only scripts are the page's own modules.
        assert self.page.locator("main script").count() == 0


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    sync_playwright, _ = _require_browser()
    profile = tmp_path_factory.mktemp("chromium-profile")  # a fresh user-data-dir
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 900},
        )
        context.set_default_timeout(TIMEOUT_MS)
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def view(browser_context: Any, viewer_server: BackgroundServer, seeded: Seeded) -> Iterator[Page]:
    page = Page(browser_context.new_page(), viewer_server.url)
    try:
        yield page
        page.check_clean()
    finally:
        page.page.close()


def _route(seeded: Seeded, *parts: str) -> str:
    return "#/" + "/".join([seeded.project_id, *parts])


def test_projects_page_lists_the_seeded_project(view: Page, seeded: Seeded) -> None:
    view.goto("#/")
    row = view.page.locator("table.projects tbody tr", has_text=seeded.project_id)
    row.wait_for()
    cells = row.locator("td").all_inner_texts()
    assert cells[:4] == [seeded.project_id, "3", "7", "7"]
    view.shot("projects")
    row.locator("a", has_text=seeded.project_id).click()
    view.page.locator("table.traces tbody tr").first.wait_for()
    assert view.page.url.endswith(_route(seeded, "traces"))


def test_trace_list_shows_root_calls_newest_first(view: Page, seeded: Seeded) -> None:
    view.goto(_route(seeded, "traces"))
    rows = view.page.locator("table.traces tbody tr")
    rows.first.wait_for()
    assert rows.count() == 3
    first = rows.nth(0).locator("td").all_inner_texts()
    assert first[:3] == ["run_pipeline", "pipeline run #1", "child error"]
    assert first[3] == "1.50 s"
    assert first[5] == "150"  # tokens from summary.usage
    # Newest first: the main trace, the evaluation (a minute old), the old trace.
    ops = [rows.nth(i).locator("td").first.inner_text() for i in range(3)]
    assert ops == ["run_pipeline", "Evaluation.evaluate", "run_pipeline"]
    assert view.page.locator(".pager-label").inner_text() == "1–3 of 3"
    view.shot("trace-list")


def test_trace_list_filters_by_text_status_and_op(view: Page, seeded: Seeded) -> None:
    view.goto(_route(seeded, "traces"))
    rows = view.page.locator("table.traces tbody tr")
    rows.first.wait_for()

    # Text search over inputs and outputs (case-insensitive $contains).
    view.page.fill("input[name=q]", "WHAT IS WEAVE")
    view.page.press("input[name=q]", "Enter")
    expect(rows).to_have_count(1)
    assert rows.nth(0).locator("td").nth(1).inner_text() == "pipeline run #1"
    assert "q=WHAT+IS+WEAVE" in view.page.url
    view.shot("trace-list-search")

    # Status: no root call failed itself.
    view.goto(_route(seeded, "traces") + "?status=error")
    view.page.get_by_text("No traces match these filters.").wait_for()

    # Op name, as a plain name (matches every version of the op).
    view.goto(_route(seeded, "traces"))
    rows.first.wait_for()
    view.page.fill("input[name=op]", "Evaluation.evaluate")
    view.page.press("input[name=op]", "Enter")
    expect(rows).to_have_count(1)
    assert rows.nth(0).locator("td").first.inner_text() == "Evaluation.evaluate"


def test_trace_tree_and_detail_panel(view: Page, seeded: Seeded) -> None:
    view.goto(_route(seeded, "traces"))
    view.page.locator("table.traces tbody tr").first.locator("a.op").click()

    tree = view.page.locator(".tree-rows .trow")
    tree.first.wait_for()
    assert tree.count() == 3
    names = [tree.nth(i).locator(".op").inner_text() for i in range(3)]
    assert names == ["run_pipeline", "retrieve", "generate"]
    levels = [tree.nth(i).get_attribute("aria-level") for i in range(3)]
    assert levels == ["1", "2", "2"]
    assert tree.nth(0).locator(".bar").count() == 1  # the waterfall bar

    # The root is selected: its inputs, output, usage and feedback.
    detail = view.page.locator("#detail")
    detail.locator(".panel-section.feedback li").first.wait_for()
    assert detail.locator(".call-title .op").inner_text() == "run_pipeline"
    inputs = detail.locator(".panel-section.inputs").inner_text()
    assert QUESTION in inputs
    assert ANSWER in detail.locator(".panel-section.output").inner_text()
    assert "150" in detail.locator(".panel-section.summary table.usage").inner_text()
    feedback = detail.locator(".panel-section.feedback").inner_text()
    assert "👍" in feedback
    assert NOTE in feedback  # its "<b>" shown as text
    assert detail.locator(".panel-section.feedback b").count() == 0
    view.shot("trace-root")

    # The child whose input is a script tag: shown as text, never run.
    tree.nth(1).click()
    detail.locator(".call-title .op", has_text="retrieve").wait_for()
    query_value = detail.locator(".panel-section.inputs .v-row", has_text="query").locator(".v-str")
    query_value.wait_for()
    assert query_value.inner_text() == SCRIPT_INPUT
    assert view.page.locator("#detail script").count() == 0
    assert f"call={seeded.retrieve_id}" in view.page.url
    view.shot("trace-script-input")

    # The failing child: its exception with type and message.
    tree.nth(2).click()
    exc = detail.locator(".panel-section.exception")
    exc.wait_for()
    assert exc.inner_text().endswith(f"ValueError: {EXCEPTION_MESSAGE}")
    assert detail.locator(".badge").first.inner_text() == "error"
    view.shot("trace-exception")

    # Collapse and expand the root.
    tree.nth(0).locator("button.toggle").click()
    assert tree.count() == 1
    assert tree.nth(0).locator(".count").inner_text() == "+2"
    tree.nth(0).locator("button.toggle").click()
    assert tree.count() == 3


def test_tokens_and_cost_per_trace_and_per_call(view: Page, seeded: Seeded) -> None:
    # gpt-4o-mini at the built-in price: 120 prompt + 30 completion tokens = $0.000036.
    view.goto(_route(seeded, "traces"))
    rows = view.page.locator("table.traces tbody tr")
    rows.first.wait_for()
    first = rows.nth(0).locator("td").all_inner_texts()
    assert first[5:7] == ["150", "$0.000036"]
    assert rows.nth(1).locator("td").all_inner_texts()[6] == "—"  # no usage, no cost
    rows.nth(0).locator("a.op").click()
    head = view.page.locator(".meta")
    head.locator(".trace-cost").wait_for()
    assert head.locator(".trace-tokens").inner_text() == "150 tokens"
    assert head.locator(".trace-cost").inner_text() == "$0.000036"
    detail = view.page.locator("#detail")
    detail.locator(".panel-section.summary table.usage").wait_for()
    assert detail.locator(".call-head dd.cost").inner_text() == "$0.000036"
    usage = detail.locator(".panel-section.summary table.usage").inner_text()
    assert "cost" in usage.lower() and "$0.000036" in usage
    view.shot("trace-cost")


def test_call_link_opens_its_trace_with_the_call_selected(view: Page, seeded: Seeded) -> None:
    view.goto(_route(seeded, "call", seeded.generate_id))
    view.page.locator("#detail .panel-section.exception").wait_for()
    assert f"/trace/{seeded.trace_id}" in view.page.url
    assert view.page.locator(".trow.selected .op").inner_text() == "generate"


def test_refs_in_values_link_to_objects(view: Page, seeded: Seeded) -> None:
    view.goto(_route(seeded, "trace", seeded.trace_id))
    config = view.page.locator("#detail .panel-section.inputs .v-row", has_text="config")
    link = config.locator("a.ref")
    link.wait_for()
    assert link.inner_text().startswith("pipeline-config:")
    assert link.get_attribute("title") == seeded.config_ref

    # Resolve the ref in place (/refs/read_batch).
    config.locator("button.mini").click()
    resolved = config.locator(".ref-value")
    resolved.locator(".v-row", has_text="temperature").wait_for()
    assert "0.2" in resolved.inner_text()

    link.click()
    view.page.locator(".page-head h2", has_text="pipeline-config").wait_for()
    value = view.page.locator(".panel-section.value")
    value.locator(".v-row", has_text="temperature").wait_for()
    assert "gpt-4o-mini" in value.inner_text()
    assert SCRIPT_INPUT in value.inner_text()
    assert re.search(r"/objects/pipeline-config\?digest=", view.page.url)
    view.shot("object-config")


def test_objects_list_and_dataset_rows_paged(view: Page, seeded: Seeded) -> None:
    view.goto(_route(seeded, "objects"))
    rows = view.page.locator("table.objects tbody tr")
    rows.first.wait_for()
    names = [rows.nth(i).locator("td").first.inner_text() for i in range(rows.count())]
    assert names == sorted(names)
    assert {"pipeline-config", "questions", "retrieve", "generate"} <= set(names)
    view.shot("objects")

    view.page.locator("table.objects a", has_text="questions").click()
    table = view.page.locator(".panel-section.rows table.rows tbody tr")
    table.first.wait_for()
    assert table.count() == 25
    assert table.nth(0).locator("td").all_inner_texts() == ["0", "q0", "a0", "0"]
    pager = view.page.locator(".panel-section.rows .pager")
    assert pager.locator(".pager-label").inner_text() == "1–25 of 30"
    view.shot("dataset-rows")
    pager.locator("a.pg-next").click()
    expect(table).to_have_count(5)
    assert table.nth(0).locator("td").nth(1).inner_text() == "q25"


def test_op_object_shows_its_source(view: Page, seeded: Seeded) -> None:
    view.goto(_route(seeded, "objects", "retrieve"))
    source = view.page.locator(".panel-section.source pre")
    source.wait_for()
    expect(source).to_have_text(re.compile(r"^def retrieve"))
    assert "# retrieve" in source.inner_text()


def test_evaluations_summary_and_rows(view: Page, seeded: Seeded) -> None:
    view.goto(_route(seeded, "evals"))
    evals = view.page.locator("table.evals tbody tr")
    evals.first.wait_for()
    assert evals.count() == 1
    assert "exact_match.correct.true_fraction 0.5000" in evals.first.inner_text()
    evals.first.locator("a", has_text="eval-questions").click()

    summary = view.page.locator("table.summary-table tbody tr")
    summary.first.wait_for()
    got = [summary.nth(i).locator("td").all_inner_texts() for i in range(summary.count())]
    assert ["exact_match", "correct.true_fraction", "0.5000"] in got
    assert ["model_latency", "mean", "0.2500"] in got
    rows = view.page.locator("table.eval-rows tbody tr")
    rows.first.wait_for()
    assert rows.count() == 2
    assert rows.nth(1).locator("td").all_inner_texts()[1:4] == [
        '{"question":"q1"}',
        "ax",
        '{"correct":false}',
    ]
    view.shot("evaluation")

    rows.nth(0).locator("a", has_text="#1").click()
    view.page.locator(".trow.selected").wait_for()
    assert view.page.locator(".trow.selected .op").inner_text() == "Evaluation.predict_and_score"
    assert f"call={seeded.predict_ids[0]}" in view.page.url


def test_table_view_pages_by_url(view: Page, seeded: Seeded) -> None:
    view.goto(_route(seeded, "table", seeded.table_digest) + "?offset=25")
    rows = view.page.locator("table.rows tbody tr")
    expect(rows).to_have_count(5)
    assert rows.nth(0).locator("td").all_inner_texts() == ["25", "q25", "a25", "2.5"]
    assert view.page.locator(".pager-label").inner_text() == "26–30 of 30"
    view.page.locator(".pager a.pg-first").click()
    expect(rows).to_have_count(30)  # the table view pages by 50
    assert view.page.url.endswith("?offset=0")


def test_trace_list_pages_through_many_traces(view: Page, viewer_server: BackgroundServer) -> None:
    project_id = "viewer-team/many"
    t0 = datetime.now(UTC) - timedelta(hours=1)
    batch = []
    for i in range(120):
        call_id = str(uuid.uuid4())
        start = t0 + timedelta(seconds=i)
        batch.append({"mode": "start", "req": {"start": {
            "project_id": project_id, "id": call_id, "trace_id": call_id, "op_name": "step",
            "display_name": f"step {i}", "started_at": start.isoformat(), "attributes": {},
            "inputs": {"i": i},
        }}})
        batch.append({"mode": "end", "req": {"end": {
            "project_id": project_id, "id": call_id, "ended_at": (start + timedelta(milliseconds=3)).isoformat(),
            "output": i, "summary": {},
        }}})
    assert httpx.post(viewer_server.url + "/call/upsert_batch", json={"batch": batch}).status_code == 200

    view.goto("#/" + project_id + "/traces")
    rows = view.page.locator("table.traces tbody tr")
    expect(rows).to_have_count(50)
    assert rows.nth(0).locator("td").nth(1).inner_text() == "step 119"  # newest first
    label = view.page.locator(".pager-label")
    assert label.inner_text() == "1–50 of 120"
    view.page.locator(".pager a.pg-next").click()
    expect(label).to_have_text("51–100 of 120")
    assert rows.nth(0).locator("td").nth(1).inner_text() == "step 69"
    view.page.locator(".pager a.pg-last").click()
    expect(label).to_have_text("101–120 of 120")
    expect(rows).to_have_count(20)
    assert rows.nth(19).locator("td").nth(1).inner_text() == "step 0"
    assert view.page.locator(".pager a.pg-next").count() == 0  # no page after the last
    view.shot("trace-list-last-page")


def test_keyboard_moves_the_selection_and_folds(view: Page, seeded: Seeded) -> None:
    view.goto(_route(seeded, "trace", seeded.trace_id))
    tree = view.page.locator(".tree-rows")
    view.page.locator(".trow.selected").wait_for()
    tree.focus()
    view.page.keyboard.press("ArrowDown")
    expect(view.page.locator(".trow.selected .op")).to_have_text("retrieve")
    view.page.locator("#detail .call-title .op", has_text="retrieve").wait_for()
    view.page.keyboard.press("ArrowUp")
    expect(view.page.locator(".trow.selected .op")).to_have_text("run_pipeline")
    view.page.keyboard.press("ArrowLeft")
    expect(view.page.locator(".trow")).to_have_count(1)
    view.page.keyboard.press("ArrowRight")
    expect(view.page.locator(".trow")).to_have_count(3)


def test_a_running_trace(view: Page, viewer_server: BackgroundServer) -> None:
    project_id = "viewer-team/running"
    root_id, child_id = str(uuid.uuid4()), str(uuid.uuid4())
    start = datetime.now(UTC) - timedelta(seconds=3)

    def started(call_id: str, op: str, parent: str | None) -> dict[str, Any]:
        return {"mode": "start", "req": {"start": {
            "project_id": project_id, "id": call_id, "trace_id": root_id, "parent_id": parent,
            "op_name": op, "started_at": start.isoformat(), "attributes": {}, "inputs": {},
        }}}

    batch = [
        started(root_id, "agent", None),
        started(child_id, "tool", root_id),
        {"mode": "end", "req": {"end": {
            "project_id": project_id, "id": child_id, "output": "done", "summary": {},
            "ended_at": (start + timedelta(seconds=1)).isoformat(),
        }}},
    ]
    assert httpx.post(viewer_server.url + "/call/upsert_batch", json={"batch": batch}).status_code == 200

    view.goto("#/" + project_id + "/traces")
    row = view.page.locator("table.traces tbody tr")
    expect(row).to_have_count(1)
    cells = row.locator("td").all_inner_texts()
    assert cells[0] == "agent" and cells[2] == "running"
    # A running call's latency is its duration so far, ticking (live mode).
    assert cells[3].endswith(" s") and row.locator("td .ticking").count() == 1
    row.locator("a.op").click()
    view.page.locator("#detail .panel-section.output").wait_for()
    assert view.page.locator("#detail .panel-section.output").inner_text().endswith("still running")
    assert view.page.locator(".trow").nth(0).locator(".bar.open").count() == 1
    assert view.page.locator(".trow").nth(1).locator(".bar-label").inner_text() == "1.00 s"
    view.shot("trace-running")


def test_threads_list_and_a_threads_turns(view: Page, viewer_server: BackgroundServer) -> None:
    project_id = "viewer-team/threads"
    t0 = datetime.now(UTC) - timedelta(minutes=2)
    batch: list[dict[str, Any]] = []

    def call(thread: str, at: float, took: float, text: str, parent: str | None = None,
             turn: str | None = None) -> str:
        call_id = str(uuid.uuid4())
        start = t0 + timedelta(seconds=at)
        batch.append({"mode": "start", "req": {"start": {
            "project_id": project_id, "id": call_id, "trace_id": turn or call_id,
            "parent_id": parent, "op_name": "lookup" if parent else "chat",
            "started_at": start.isoformat(), "attributes": {}, "inputs": {"text": text},
            "thread_id": thread, "turn_id": turn or call_id,
        }}})
        batch.append({"mode": "end", "req": {"end": {
            "project_id": project_id, "id": call_id, "output": text.upper(), "summary": {},
            "ended_at": (start + timedelta(seconds=took)).isoformat(),
        }}})
        return call_id

    first = call("conv-a", 0, 1.0, "hello")
    call("conv-a", 0.2, 0.5, "hello", parent=first, turn=first)
    second = call("conv-a", 10, 3.0, "and then?")
    call("conv-a", 10.5, 1.0, "and then?", parent=second, turn=second)
    call("conv-b", 30, 2.0, "another conversation")
    assert httpx.post(viewer_server.url + "/call/upsert_batch", json={"batch": batch}).status_code == 200

    view.goto("#/" + project_id + "/threads")
    rows = view.page.locator("table.threads tbody tr")
    expect(rows).to_have_count(2)
    expect(view.page.locator(".tabs a.tab.active")).to_have_text("Threads")
    # Latest activity first; turns only (the nested lookups are not counted).
    cells = [rows.nth(i).locator("td").all_inner_texts() for i in range(2)]
    assert [c[:2] for c in cells] == [["conv-b", "1"], ["conv-a", "2"]]
    assert cells[1][4] == "2.00 s" and cells[1][5] == "2.98 s"  # p50 and p99 of 1 s and 3 s
    view.shot("threads-list")

    rows.nth(1).locator("a.thread-id").click()
    turns = view.page.locator("table.turns tbody tr")
    expect(turns).to_have_count(2)
    texts = [turns.nth(i).locator("td").all_inner_texts() for i in range(2)]
    assert [t[1] for t in texts] == ["chat", "chat"]
    assert "hello" in texts[0][2] and "AND THEN?" in texts[1][3]
    assert view.page.locator(".page-head .meta").inner_text().startswith("2 turns")
    view.shot("thread-turns")

    turns.nth(1).locator("a.turn-link").click()
    expect(view.page.locator(".trow.selected .op")).to_have_text("chat")
    expect(view.page.locator(".trow")).to_have_count(2)
    assert view.page.url.endswith(f"?call={second}")
