"""weave==0.51.59's own client against our server: reactions, column selection, filters.

A user of weave traces a few calls, reacts to one (``call.feedback.add_reaction``), and
reads calls back with ``client.get_calls(columns=..., query=..., include_feedback=...)``
(which streams ``/calls/stream_query``). The same script runs against weave's reference
server, and the two answers are compared, except the ``$convert`` filter: there the
hosted service (a failed conversion is NULL, SQL three-valued logic) is the yardstick,
where weave's SQLite server casts it to 0.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

from ._weave_side import compat_python

WEAVE_SCRIPT = textwrap.dedent(
    """
    import json, sys

    import requests
    import weave
    from weave.trace import trace_sentry
    from weave.trace.weave_client import WeaveClient
    from weave.trace.weave_init import InitializedClient
    from weave.trace_server_bindings.remote_http_trace_server import RemoteHTTPTraceServer

    url, entity, project = sys.argv[1:4]
    trace_sentry.global_trace_sentry._disabled = True
    server = RemoteHTTPTraceServer(url, should_batch=True, auth=("api", "compat-dummy-key"))
    client = WeaveClient(entity, project, server, ensure_project_exists=False)
    InitializedClient(client)


    @weave.op
    def score(payload: dict) -> int:
        return 1


    payloads = [
        {"name": "five", "n": 5},
        {"name": "ten", "n": 10},
        {"name": "text", "n": "abc"},
        {"name": "numeric_text", "n": "7"},
        {"name": "missing"},
    ]
    for payload in payloads:
        score(payload)
    client.flush()

    def names(**kwargs):
        return sorted(c.inputs["payload"]["name"] for c in client.get_calls(**kwargs))

    n_int = {"$convert": {"input": {"$getField": "inputs.payload.n"}, "to": "int"}}
    out = {
        "gt": names(query={"$expr": {"$gt": [n_int, {"$literal": 6}]}}, columns=["inputs"]),
        "not_gt": names(
            query={"$expr": {"$not": [{"$gt": [n_int, {"$literal": 6}]}]}}, columns=["inputs"]
        ),
        "not_gte": names(
            query={"$expr": {"$not": [{"$gte": [n_int, {"$literal": 7}]}]}}, columns=["inputs"]
        ),
    }

    [five] = [c for c in client.get_calls() if c.inputs["payload"]["name"] == "five"]
    five.feedback.add_reaction("👍🏽")
    try:
        five.feedback.add_reaction("👍👍")
        out["two_emojis"] = "accepted"
    except requests.HTTPError as e:
        out["two_emojis"] = [e.response.status_code, str(e)]
    feedbacks = five.feedback.refresh()
    out["reaction_payloads"] = [f.payload for f in feedbacks]
    # weave's table of feedback (in a notebook it shows the alias).
    out["rendered"] = str(feedbacks.as_rich_table().columns[1]._cells)

    selected = list(client.get_calls(columns=["id", "summary"]))
    out["with_summary"] = sorted(
        [c.ended_at is not None, c.exception, c.summary["weave"]["status"]] for c in selected
    )
    [fb_call] = [
        c
        for c in client.get_calls(columns=["id"], include_feedback=True)
        if c.id == five.id
    ]
    weave_summary = fb_call.summary["weave"]
    out["feedback_summary"] = {
        "status": weave_summary.get("status"),
        "trace_name": weave_summary.get("trace_name"),
        "feedback": [f["payload"] for f in weave_summary.get("feedback", [])],
    }
    client.finish(use_progress_bar=False)
    print("RESULT " + json.dumps(out))
    """
)


def _run_weave(url: str, entity: str, project: str, tmp_path: Path) -> dict[str, Any]:
    script = tmp_path / "weave_answers.py"
    script.write_text(WEAVE_SCRIPT)
    proc = subprocess.run(
        [str(compat_python()), str(script), url, entity, project],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "WEAVE_PRINT_CALL_LINK": "false"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert len(lines) == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    result: dict[str, Any] = json.loads(lines[0][len("RESULT ") :])
    return result


TONED = {
    "emoji": "👍🏽",
    "alias": ":thumbs_up_medium_skin_tone:",
    "detoned": "👍",
    "detoned_alias": ":thumbs_up:",
}


@pytest.mark.compat
def test_weave_client_sees_hosted_answers_from_our_server(
    local_server_url: str, reference_server_url: str, entity: str, tmp_path: Path
) -> None:
    ours = _run_weave(local_server_url, entity, f"ours-{uuid.uuid4().hex[:8]}", tmp_path)
    theirs = _run_weave(reference_server_url, entity, f"ref-{uuid.uuid4().hex[:8]}", tmp_path)

    # Filters: a failed conversion ("abc", a missing n) is NULL, as on the hosted service,
    # so neither $gt nor its $not selects it.
    assert ours["gt"] == ["numeric_text", "ten"]
    assert ours["not_gt"] == ["five"]
    assert ours["not_gte"] == ["five"]

    # Reactions: stored augmented, more than one emoji refused with weave's message.
    assert ours["reaction_payloads"] == [TONED]
    status, message = ours["two_emojis"]
    assert status == 400 and "exactly one emoji" in message
    assert ours["rendered"] == "['👍🏽']"

    # Columns: with summary come ended_at and the call's own status; with include_feedback
    # and no summary, the derived summary still has status, trace_name and the feedback.
    assert ours["with_summary"] == [[True, None, "success"]] * 5
    assert ours["feedback_summary"] == {
        "status": "running",
        "trace_name": "score",
        "feedback": [TONED],
    }

    # The same script against weave's reference: the same answers but for $convert.
    for key in ("gt", "not_gt", "not_gte"):
        ours.pop(key), theirs.pop(key)
    ours["two_emojis"][1] = theirs["two_emojis"][1] = "(message)"
    # The reference drops a call end that overtakes its start (weave's client batches
    # them concurrently), leaving that call running: compare the calls it did end.
    ended = [entry for entry in theirs.pop("with_summary") if entry[0]]
    assert ended and all(entry == [True, None, "success"] for entry in ended)
    ours.pop("with_summary")
    assert ours == theirs
