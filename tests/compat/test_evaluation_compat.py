"""The same small evaluation, run by weave==0.51.59's own client and by ours, compared.

Both log to weave's reference server (each in a project of its own). weave's side runs
in the pinned compat venv (``.venv-compat``), pointed at the server the way
``scripts/benchmarks/bench_weave.py`` does it (no W&B involved). Then the two projects are read
back over the wire and compared: the call tree (op names, nesting, counts), each score's
``wandb.runnable`` feedback on its predict call, the inputs of the root (``self`` and ``model`` as object refs), the classes of the objects
each side saved, and the keys and numbers of the summary.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

# Ours: the rows, model and scorers of the client's own evaluation tests.
from tests._async.test_evaluation import ROWS, Match, Upper, exact, length
from weave_client import AsyncWeaveClient
from weave_client._async._dataset import AsyncDataset as Dataset
from weave_client._async._evaluation import AsyncEvaluation as Evaluation
from weave_client._eval_summary import flatten_summary
from weave_client._models import CallsQueryReq, ObjQueryReq
from weave_client._refs import parse_ref

from ._weave_side import compat_python

# weave's side: the same classes and functions as ours, with weave's own decorators.
WEAVE_SCRIPT = textwrap.dedent(
    """
    import asyncio, json, sys
    from typing import Any

    import weave
    from weave.trace import trace_sentry
    from weave.trace.weave_client import WeaveClient
    from weave.trace.weave_init import InitializedClient
    from weave.trace_server_bindings.remote_http_trace_server import RemoteHTTPTraceServer

    url, entity, project = sys.argv[1:4]
    rows = json.loads(sys.argv[4])
    trace_sentry.global_trace_sentry._disabled = True
    server = RemoteHTTPTraceServer(url, should_batch=True, auth=("api", "compat-dummy-key"))
    client = WeaveClient(entity, project, server, ensure_project_exists=False)
    InitializedClient(client)


    class Upper(weave.Model):
        suffix: str = ""

        @weave.op
        async def predict(self, question: str) -> str:
            return question.upper() + self.suffix


    @weave.op
    async def exact(expected: str, output: str) -> bool:
        return expected == output


    @weave.op
    def length(output: str) -> int:
        return len(output)


    class Match(weave.Scorer):
        @weave.op
        async def score(self, output: str, expected: str, weight: int) -> dict:
            return {"correct": output == expected, "weighted": weight if output == expected else 0}


    evaluation = weave.Evaluation(
        dataset=weave.Dataset(name="letters", rows=rows), scorers=[exact, length, Match()]
    )
    summary = asyncio.run(evaluation.evaluate(Upper()))
    client.finish(use_progress_bar=False)
    print("SUMMARY " + json.dumps(summary))
    """
)


def _run_weave(url: str, entity: str, project: str, tmp_path: Path) -> dict[str, Any]:
    script = tmp_path / "weave_evaluation.py"
    script.write_text(WEAVE_SCRIPT)
    proc = subprocess.run(
        [str(compat_python()), str(script), url, entity, project, json.dumps(ROWS)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "WEAVE_PRINT_CALL_LINK": "false"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("SUMMARY ")]
    assert len(lines) == 1, proc.stdout[-2000:]
    summary: dict[str, Any] = json.loads(lines[0][len("SUMMARY ") :])
    return summary


def _short(op_name: str) -> str:
    if op_name.startswith("weave:///"):
        ref = parse_ref(op_name)
        return str(getattr(ref, "name", op_name))
    return op_name


async def _project_state(client: AsyncWeaveClient) -> dict[str, Any]:
    """The call tree (op names, nested), the root call, and every saved object, read
    over the wire."""
    res = await client._api.calls_query(CallsQueryReq(project_id=client.project_id))
    calls = sorted(res.calls, key=lambda c: c.started_at)
    children: dict[str | None, list[Any]] = {}
    for c in calls:
        children.setdefault(c.parent_id, []).append(c)

    def tree(call: Any) -> Any:
        kids = [tree(k) for k in children.get(call.id, [])]
        # Rows run concurrently: compare each level as a sorted multiset.
        return [_short(call.op_name), sorted(kids, key=json.dumps)]

    [root] = children[None]
    objs = await client._api.objs_query(ObjQueryReq(project_id=client.project_id))
    # Each score's feedback: its type, what it is on, the runnable, the score call, the
    # payload (calls by op name, refs by kind and name: ids and digests differ).
    by_id = {c.id: c for c in calls}

    def call_op(uri: str | None) -> str | None:
        ref = parse_ref(uri) if uri else None
        return _short(by_id[ref.id].op_name) if ref is not None else None  # type: ignore[union-attr]

    def runnable(uri: str | None) -> tuple[str, str] | None:
        ref = parse_ref(uri) if uri else None
        return (uri.split("/")[-2], ref.name) if uri and ref else None  # type: ignore[union-attr]

    feedback = sorted(
        (
            f.feedback_type,
            call_op(f.weave_ref),
            runnable(f.runnable_ref),
            call_op(f.call_ref),
            json.dumps(f.payload, sort_keys=True),
        )
        for f in await client.feedback_query()
    )
    return {"tree": tree(root), "root": root, "objs": objs.objs, "feedback": feedback}


@pytest.mark.compat
async def test_same_evaluation_same_tree_objects_and_summary(
    reference_server_url: str, entity: str, tmp_path: Path
) -> None:
    weave_project, our_project = "eval-weave-" + tmp_path.name[-8:], "eval-ours-" + tmp_path.name[-8:]
    weave_summary = _run_weave(reference_server_url, entity, weave_project, tmp_path)

    async with AsyncWeaveClient(entity, our_project, server_url=reference_server_url) as ours:
        evaluation = Evaluation(
            dataset=Dataset(name="letters", rows=ROWS),
            scorers=[exact, length, Match()],
            verbose=False,
        )
        our_summary = await evaluation.evaluate(Upper())
        await ours.flush()
        our_state = await _project_state(ours)
    async with AsyncWeaveClient(entity, weave_project, server_url=reference_server_url) as reader:
        weave_state = await _project_state(reader)

    # The call tree: same ops, same nesting, same counts.
    assert our_state["tree"] == weave_state["tree"]
    # The scores as feedback on the predict calls: same types, targets, runnables, payloads.
    assert len(weave_state["feedback"]) == 3 * len(ROWS)
    assert our_state["feedback"] == weave_state["feedback"]
    assert our_state["tree"][0] == "Evaluation.evaluate"

    # The root's inputs: self and model are refs to saved objects of the same names.
    for state in (our_state, weave_state):
        inputs = state["root"].inputs
        assert set(inputs) == {"self", "model"}
        assert parse_ref(inputs["self"]).name == "letters-evaluation"  # type: ignore[union-attr]
        assert parse_ref(inputs["model"]).name == "Upper"  # type: ignore[union-attr]

    # The objects saved: the same names, each with the same class (ops included).
    def named(state: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for o in state["objs"]:
            val = o.val
            cls = val.get("_class_name") if isinstance(val, dict) else None
            bases = val.get("_bases") if isinstance(val, dict) else None
            kind = val.get("weave_type", {}).get("type") if isinstance(val, dict) else None
            out[o.object_id] = (cls, tuple(bases or ()), kind)
        return out

    ours_named, weave_named = named(our_state), named(weave_state)
    for name in ("letters", "letters-evaluation", "Upper", "Match", "EvaluationResults"):
        assert ours_named[name] == weave_named[name], name
    def keys(state: dict[str, Any], name: str) -> set[str]:
        return {k for o in state["objs"] if o.object_id == name for k in o.val}

    def op_attrs(state: dict[str, Any], name: str) -> dict[str, str]:
        # Ops held by an object are stored as op refs: attribute -> op name.
        val = next(o.val for o in state["objs"] if o.object_id == name)
        return {
            k: _short(v) for k, v in val.items() if isinstance(v, str) and "/op/" in v
        }

    # The same fields, and the same ops stored with each object (weave's object records).
    for name in ("letters", "letters-evaluation", "Upper", "Match", "EvaluationResults"):
        assert keys(our_state, name) == keys(weave_state, name), name
        assert op_attrs(our_state, name) == op_attrs(weave_state, name), name
    assert op_attrs(our_state, "letters-evaluation") == {
        "evaluate": "Evaluation.evaluate",
        "predict_and_score": "Evaluation.predict_and_score",
        "summarize": "Evaluation.summarize",
    }
    # Every op weave saved, we saved too (as an Op object).
    weave_ops = {n for n, v in weave_named.items() if v[2] == "Op"}
    our_ops = {n for n, v in ours_named.items() if v[2] == "Op"}
    assert weave_ops <= our_ops, weave_ops - our_ops

    # The summary: same keys, same numbers (latency aside).
    ours_flat = dict(flatten_summary(our_summary))
    weave_flat = dict(flatten_summary(weave_summary))
    assert ours_flat.keys() == weave_flat.keys()
    for key in ours_flat.keys() - {"model_latency.mean"}:
        assert ours_flat[key] == pytest.approx(weave_flat[key]), key
    # The same objects by name: dataset, evaluation, model, scorer, results, ops.
    assert sorted(ours_named) == sorted(weave_named)


@pytest.mark.compat
def test_bench_figure_runs_both_clients_against_our_server(local_server_url: str) -> None:
    # scripts/benchmarks/bench_eval.py: ours and weave's own evaluation, each in a worker process,
    # both logging every call to our server (weave's client included: it posts JSON
    # without Content-Type, which our server must read).
    import sys

    scripts = Path(__file__).resolve().parents[2] / "scripts" / "benchmarks"
    sys.path.insert(0, str(scripts))
    try:
        import bench_eval
    finally:
        sys.path.remove(str(scripts))

    results = bench_eval.run_figure(local_server_url, rows=20, with_weave=True)
    by_side = {r["side"]: r for r in results}
    assert set(by_side) == {"ours", "weave"}
    for side, result in by_side.items():
        assert "error" not in result, (side, result.get("error"))
        assert result["stored"] == result["expected"] == 2 + 4 * 20, side
        assert result["evaluate_s"] > 0
    assert by_side["ours"]["summary_keys"] == by_side["weave"]["summary_keys"]
