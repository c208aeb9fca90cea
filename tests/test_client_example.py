"""scripts/example_usage.py runs every scenario end to end and stores what it says it stored."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

from weave_client import WeaveClient

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "example_usage.py"


def test_example_runs_every_scenario(local_server_url: str) -> None:
    project = f"example-{uuid.uuid4().hex[:8]}"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--server-url", local_server_url, "--project", project],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    for heading in (
        "== Basic",
        "== Concurrent operations with asyncio.gather",
        "== A service class using the client",
        "== Streaming through calls",
        "== Querying with filters and sort",
        "== Feedback",
        "== Error handling",
        "== LLM calls traced without decorators (openai, anthropic)",
    ):
        assert heading in out
    assert "my_async_function(5, 3) = 8" in out
    assert "streamed 20 process_item calls" in out
    assert "traced openai.chat.completions.create (no decorator)" in out
    assert "traced anthropic.AsyncMessages.stream (no decorator)" in out
    assert "gpt-4o-mini: 1 request(s), 17 tokens, $0.000005" in out
    assert "caught NotFoundError" in out
    assert "caught TypeError" in out and "_thread.lock" in out
    assert "flushed: FlushResult(pending=0, failed=0, dropped=0)" in out

    # What it printed is really stored.
    with WeaveClient("demo", project, server_url=local_server_url) as client:
        assert client.get(f"weave:///demo/{project}/object/my-object:latest") == {
            "data": "value",
            "numbers": [1, 2, 3],
        }
        items = client.calls(op_names=["process_item"])
        assert len(items) == 20
        assert {c.display_name for c in items} == {f"Processing item-{i}" for i in range(20)}
        roots = client.calls(trace_roots_only=True)
        assert {c.op_short_name for c in roots} == {
            "my_async_function",
            "process_many_items",
            "SummaryService.summarize",
            "answer",
        }
        assert client.table("items").count() == 100
        summed = client.calls(op_names=["my_async_function"])[0]
        assert [f.feedback_type for f in summed.feedback.query()] == [
            "wandb.reaction.1",
            "wandb.note.1",
            "correctness",
        ]
