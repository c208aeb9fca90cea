"""``python -m weave_client calls``: the table and tree views against a real local server."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from weave_client.__main__ import main
from weave_client._cli_calls import show_calls
from weave_client._errors import AuthenticationError, InvalidSettingError
from weave_client.server import BackgroundServer, start_background_server

from .seed import EXCEPTION_MESSAGE, Seeded, seed_project

_ENV_VARS = ("WEAVE_TRACE_SERVER_URL", "WF_TRACE_SERVER_URL", "WANDB_API_KEY", "WEAVE_CLIENT_DB")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The command resolves its server from the environment; start each test from none.
    for name in _ENV_VARS:
        monkeypatch.delenv(name, raising=False)


def _render(width: int = 200, **kwargs: object) -> str:
    out = io.StringIO()
    show_calls(console=Console(file=out, width=width, color_system=None), **kwargs)  # type: ignore[arg-type]
    return out.getvalue()


def test_table_lists_latest_calls_newest_first(viewer_server: BackgroundServer, seeded: Seeded) -> None:
    text = _render(server_url=viewer_server.url, project_id=seeded.project_id)
    lines = [line for line in text.splitlines() if "success" in line or "error" in line]
    assert len(lines) == 7
    assert "generate" in lines[0] and "error" in lines[0] and "700 ms" in lines[0]
    root = next(line for line in lines if "pipeline run #1" in line)
    assert "run_pipeline" in root and "child error" in root and "1.50 s" in root and "150" in root
    assert "420 ms" in lines[-1]  # the old trace is last
    # The Output column: an error's exception, else the output.
    assert "ValueError: " in lines[0]
    retrieve = next(line for line in lines if "retrieve" in line)
    assert '["doc-1", "doc-2"]' in retrieve


def test_the_output_column_is_left_out_on_a_narrow_console(
    viewer_server: BackgroundServer, seeded: Seeded
) -> None:
    # On 80 columns the other seven keep their room.
    narrow = _render(width=80, server_url=viewer_server.url, project_id=seeded.project_id)
    assert "Latency" in narrow and "Output" not in narrow and "doc-1" not in narrow
    wide = _render(width=130, server_url=viewer_server.url, project_id=seeded.project_id)
    assert "Output" in wide and "doc-1" in wide


def test_table_filters_by_op_and_limits(viewer_server: BackgroundServer, seeded: Seeded) -> None:
    text = _render(
        server_url=viewer_server.url, project_id=seeded.project_id, op="run_pipeline", limit=1
    )
    rows = [line for line in text.splitlines() if "run_pipeline" in line]
    assert len(rows) == 1 and "pipeline run #1" in rows[0]
    assert "generate" not in text


def test_tree_shows_traces_with_status_latency_and_output(
    viewer_server: BackgroundServer, seeded: Seeded
) -> None:
    text = _render(server_url=viewer_server.url, project_id=seeded.project_id, tree=True, limit=2)
    assert f"trace {seeded.trace_id}" in text
    assert f"trace {seeded.eval_trace_id}" in text
    assert "trace " + seeded.trace_id not in text.split(f"trace {seeded.eval_trace_id}")[1]
    lines = text.splitlines()
    root = next(i for i, line in enumerate(lines) if "run_pipeline" in line)
    assert "child error" in lines[root] and "150 tokens" in lines[root]
    # Children are drawn under their parent, in start order, with tree guides.
    retrieve = next(i for i, line in enumerate(lines) if "retrieve" in line)
    generate = next(i for i, line in enumerate(lines) if "generate  error" in line)
    assert root < retrieve < generate
    assert lines[retrieve].lstrip().startswith("├── ") and lines[generate].lstrip().startswith("└── ")
    assert '→ ["doc-1", "doc-2"]' in lines[retrieve]
    assert f"ValueError: {EXCEPTION_MESSAGE}" in lines[generate]
    assert "420 ms" not in text  # the old trace is past the limit


def test_the_project_defaults_to_the_most_recent_one(tmp_path: Path) -> None:
    with start_background_server(tmp_path / "two.db") as server:
        seed_project(server.url, "older/one")
        seed_project(server.url, "newer/two")
        text = _render(server_url=server.url)
    assert "Latest calls in newer/two" in text


def test_without_a_server_it_reads_the_local_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "local.db"
    with start_background_server(db) as server:
        seeded = seed_project(server.url, "me/local")
    monkeypatch.setenv("WEAVE_CLIENT_DB", str(db))
    text = _render(tree=True)
    assert f"trace {seeded.trace_id}" in text


def test_without_a_server_or_local_data_it_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nothing-here.db"
    monkeypatch.setenv("WEAVE_CLIENT_DB", str(missing))
    assert main(["calls"]) == 1
    err = capsys.readouterr().err
    assert "no local traces" in " ".join(err.split()) and str(missing) in err.replace("\n", "")
    assert not missing.exists()  # reading never creates a database


def test_bad_arguments_fail_with_a_clear_message(viewer_server: BackgroundServer) -> None:
    with pytest.raises(InvalidSettingError, match="--project must be 'entity/project', got 'oops'"):
        _render(server_url=viewer_server.url, project_id="oops")
    with pytest.raises(InvalidSettingError, match="--limit must be at least 1, got 0"):
        _render(server_url=viewer_server.url, project_id="a/b", limit=0)


def test_api_key_is_sent_and_never_shown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = "sekret-cli-key-123"
    with start_background_server(tmp_path / "auth.db", api_key=key) as server:
        with pytest.raises(AuthenticationError) as info:
            _render(server_url=server.url, project_id="a/b")
        assert info.value.status_code == 401 and info.value.route == "/calls/query"
        # The server's own words, read from its {"reason": ...} body.
        assert info.value.message.startswith("authentication required: HTTP Basic auth")
        with pytest.raises(AuthenticationError) as wrong:
            _render(server_url=server.url, project_id="a/b", api_key="not-" + key)
        assert key not in str(wrong.value)
        monkeypatch.setenv("WANDB_API_KEY", key)
        text = _render(server_url=server.url, project_id="a/b")
    assert "No calls in a/b." in text
    assert key not in text


def test_python_m_weave_client_calls_end_to_end(viewer_server: BackgroundServer, seeded: Seeded) -> None:
    env = {k: v for k, v in os.environ.items() if k not in _ENV_VARS}
    proc = subprocess.run(
        [sys.executable, "-m", "weave_client", "calls", "--server-url", viewer_server.url,
         "--project", seeded.project_id, "--tree", "--op", "run_pipeline", "--limit", "1"],
        capture_output=True, text=True, timeout=60, env={**env, "COLUMNS": "160"},
    )
    assert proc.returncode == 0, proc.stderr
    assert f"trace {seeded.trace_id}" in proc.stdout
    assert "retrieve" in proc.stdout and f"ValueError: {EXCEPTION_MESSAGE}" in proc.stdout
    # Not a terminal: no colour codes.
    assert "\x1b[" not in proc.stdout


def test_tokens_and_cost_per_call_and_per_trace(
    viewer_server: BackgroundServer, seeded: Seeded
) -> None:
    # The seeded root used gpt-4o-mini: 120 prompt and 30 completion tokens at the
    # built-in price (0.15 and 0.60 USD per million tokens) is $0.000036.
    table = _render(server_url=viewer_server.url, project_id=seeded.project_id)
    root = next(line for line in table.splitlines() if "pipeline run #1" in line)
    assert "150" in root and "$0.000036" in root
    tree = _render(server_url=viewer_server.url, project_id=seeded.project_id, tree=True, limit=1)
    lines = tree.splitlines()
    header = next(line for line in lines if line.startswith(f"trace {seeded.trace_id}"))
    assert "150 tokens" in header and "$0.000036" in header
    root_line = next(line for line in lines if "run_pipeline" in line)
    assert "150 tokens" in root_line and "$0.000036" in root_line
    retrieve = next(line for line in lines if "retrieve" in line)
    assert "$" not in retrieve  # no usage, no cost


def test_follow_prints_calls_as_they_end(viewer_server: BackgroundServer) -> None:
    from ..live_tracer import finish_tracer, start_tracer

    project_id = "viewer-team/follow"
    env = {k: v for k, v in os.environ.items() if k not in _ENV_VARS}
    follower = subprocess.Popen(
        [sys.executable, "-m", "weave_client", "calls", "--follow", "--server-url",
         viewer_server.url, "--project", project_id, "--roots", "--since", "0", "--limit", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**env, "COLUMNS": "160"},
    )  # fmt: skip
    try:
        finish_tracer(start_tracer(viewer_server.url, project_id, calls=3, fail_every=3))
        out, err = follower.communicate(timeout=60)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.communicate()
    assert follower.returncode == 0, err
    lines = out.splitlines()
    assert lines[0].startswith(f"Following calls in {project_id}")
    steps = [line for line in lines[1:] if "step" in line]
    assert len(steps) == 3
    assert "success" in steps[0] and "→ 0" in steps[0]
    assert "error" in steps[2] and "ValueError: step 2 failed" in steps[2]
    assert not any("child" in line for line in lines)  # --roots


def test_follow_refuses_tree(viewer_server: BackgroundServer) -> None:
    assert main(["calls", "--follow", "--tree", "--server-url", viewer_server.url]) == 1
