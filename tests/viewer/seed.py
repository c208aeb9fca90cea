"""Seed a project on a running trace server over its HTTP API, for the viewer tests.

What it writes (all through the public routes, as a client would):

- ops ``run_pipeline``, ``retrieve``, ``generate`` (op objects with source files);
- a trace: root ``run_pipeline`` (usage, feedback, an input ref to an object) with
  two children, ``retrieve`` whose input is ``<script>alert(1)</script>`` and
  ``generate`` which raised ``ValueError``;
- an older, plain successful trace;
- an object ``pipeline-config``, a table and a ``Dataset`` object over it;
- an evaluation: ``Evaluation.evaluate`` with two ``Evaluation.predict_and_score`` children.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

SCRIPT_INPUT = "<script>alert(1)</script>"
EXCEPTION_MESSAGE = "model refused: prompt too long"
QUESTION = "What is weave?"
ANSWER = "A toolkit for tracing LLM apps."
NOTE = "looks right <b>bold?</b>"


@dataclass
class Seeded:
    """Ids and refs of what :func:`seed_project` wrote."""

    project_id: str
    root_id: str = ""
    trace_id: str = ""
    retrieve_id: str = ""
    generate_id: str = ""
    old_root_id: str = ""
    eval_id: str = ""
    eval_trace_id: str = ""
    predict_ids: list[str] = field(default_factory=list)
    config_ref: str = ""
    table_digest: str = ""
    dataset_ref: str = ""
    op_refs: dict[str, str] = field(default_factory=dict)


def _ts(t: datetime) -> str:
    return t.astimezone(UTC).isoformat()


def _post(http: httpx.Client, route: str, body: dict[str, Any]) -> Any:
    res = http.post(route, content=json.dumps(body), headers={"Content-Type": "application/json"})
    assert res.status_code == 200, f"{route}: {res.status_code} {res.text}"
    return res.json()


def _op(http: httpx.Client, project_id: str, name: str, source: str) -> str:
    res = http.post(
        "/file/create",
        data={"project_id": project_id},
        files={"file": ("obj.py", source.encode(), "text/plain")},
    )
    assert res.status_code == 200, res.text
    val = {
        "_type": "CustomWeaveType",
        "weave_type": {"type": "Op"},
        "files": {"obj.py": res.json()["digest"]},
    }
    digest = _post(http, "/obj/create", {"obj": {"project_id": project_id, "object_id": name, "val": val}})[
        "digest"
    ]
    return f"weave:///{project_id}/op/{name}:{digest}"


class _Calls:
    def __init__(self, project_id: str) -> None:
        self.project_id = project_id
        self.batch: list[dict[str, Any]] = []

    def add(
        self,
        op_name: str,
        trace_id: str,
        start: datetime,
        end: datetime | None,
        inputs: dict[str, Any],
        *,
        parent_id: str | None = None,
        output: Any = None,
        exception: str | None = None,
        summary: dict[str, Any] | None = None,
        display_name: str | None = None,
    ) -> str:
        call_id = str(uuid.uuid4())
        self.batch.append(
            {
                "mode": "start",
                "req": {
                    "start": {
                        "project_id": self.project_id,
                        "id": call_id,
                        "op_name": op_name,
                        "display_name": display_name,
                        "trace_id": trace_id,
                        "parent_id": parent_id,
                        "started_at": _ts(start),
                        "attributes": {"weave": {"client_version": "test", "source": "viewer-seed"}},
                        "inputs": inputs,
                    }
                },
            }
        )
        if end is not None:
            self.batch.append(
                {
                    "mode": "end",
                    "req": {
                        "end": {
                            "project_id": self.project_id,
                            "id": call_id,
                            "ended_at": _ts(end),
                            "exception": exception,
                            "output": output,
                            "summary": summary or {},
                        }
                    },
                }
            )
        return call_id


def seed_project(base_url: str, project_id: str) -> Seeded:
    """Write the viewer test data into ``project_id`` on the server at ``base_url``."""
    s = Seeded(project_id)
    with httpx.Client(base_url=base_url, timeout=30) as http:
        ops = {
            name: _op(http, project_id, name, f"def {name}(x):\n    return x  # {name}\n")
            for name in ("run_pipeline", "retrieve", "generate")
        }
        ops["Evaluation.evaluate"] = _op(http, project_id, "Evaluation.evaluate", "async def evaluate(self, model): ...\n")
        ops["Evaluation.predict_and_score"] = _op(
            http, project_id, "Evaluation.predict_and_score", "async def predict_and_score(self, model, example): ...\n"
        )
        s.op_refs = ops

        config = {"model": "gpt-4o-mini", "temperature": 0.2, "note": SCRIPT_INPUT}
        digest = _post(
            http, "/obj/create", {"obj": {"project_id": project_id, "object_id": "pipeline-config", "val": config}}
        )["digest"]
        s.config_ref = f"weave:///{project_id}/object/pipeline-config:{digest}"

        rows = [{"question": f"q{i}", "expected": f"a{i}", "score": i / 10} for i in range(30)]
        s.table_digest = _post(http, "/table/create", {"table": {"project_id": project_id, "rows": rows}})["digest"]
        dataset = {
            "_type": "Dataset",
            "_class_name": "Dataset",
            "_bases": ["Object", "BaseModel"],
            "name": "questions",
            "description": None,
            "rows": f"weave:///{project_id}/table/{s.table_digest}",
        }
        ds_digest = _post(
            http, "/obj/create", {"obj": {"project_id": project_id, "object_id": "questions", "val": dataset}}
        )["digest"]
        s.dataset_ref = f"weave:///{project_id}/object/questions:{ds_digest}"

        calls = _Calls(project_id)
        now = datetime.now(UTC)

        # An older, plain trace.
        t_old = now - timedelta(minutes=30)
        s.old_root_id = calls.add(
            ops["run_pipeline"], str(uuid.uuid4()), t_old, t_old + timedelta(milliseconds=420),
            {"question": "an older question"}, output={"answer": "old"},
        )

        # The main trace: root with two children, one failing, one with a script input.
        t0 = now - timedelta(seconds=5)
        s.trace_id = str(uuid.uuid4())
        s.root_id = calls.add(
            ops["run_pipeline"], s.trace_id, t0, t0 + timedelta(milliseconds=1500),
            {"question": QUESTION, "config": s.config_ref},
            output={"answer": ANSWER},
            display_name="pipeline run #1",
            summary={
                "usage": {"gpt-4o-mini": {"requests": 1, "prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150}},
                "status_counts": {"success": 2, "error": 1},
            },
        )
        s.retrieve_id = calls.add(
            ops["retrieve"], s.trace_id, t0 + timedelta(milliseconds=50), t0 + timedelta(milliseconds=650),
            {"query": SCRIPT_INPUT, "k": 3}, parent_id=s.root_id, output=["doc-1", "doc-2"],
        )
        s.generate_id = calls.add(
            ops["generate"], s.trace_id, t0 + timedelta(milliseconds=700), t0 + timedelta(milliseconds=1400),
            {"prompt": "Answer: " + QUESTION}, parent_id=s.root_id,
            exception=json.dumps({"type": "ValueError", "message": EXCEPTION_MESSAGE}),
        )

        # An evaluation of two rows.
        te = now - timedelta(seconds=60)
        s.eval_trace_id = str(uuid.uuid4())
        s.eval_id = calls.add(
            ops["Evaluation.evaluate"], s.eval_trace_id, te, te + timedelta(seconds=2),
            {"self": s.dataset_ref, "model": ops["generate"]},
            output={
                "exact_match": {"correct": {"true_count": 1, "true_fraction": 0.5}},
                "model_latency": {"mean": 0.25},
            },
            display_name="eval-questions",
        )
        for i, ok in enumerate((True, False)):
            s.predict_ids.append(
                calls.add(
                    ops["Evaluation.predict_and_score"], s.eval_trace_id,
                    te + timedelta(milliseconds=100 + 500 * i), te + timedelta(milliseconds=500 + 500 * i),
                    {"self": s.dataset_ref, "model": ops["generate"], "example": {"question": f"q{i}"}},
                    parent_id=s.eval_id,
                    output={"output": f"a{i if ok else 'x'}", "scores": {"exact_match": {"correct": ok}}, "model_latency": 0.25},
                )
            )
        _post(http, "/call/upsert_batch", {"batch": calls.batch})

        call_ref = f"weave:///{project_id}/call/{s.root_id}"
        for ftype, payload in (("wandb.reaction.1", {"emoji": "👍"}), ("wandb.note.1", {"note": NOTE})):
            _post(
                http,
                "/feedback/create",
                {"project_id": project_id, "weave_ref": call_ref, "feedback_type": ftype, "payload": payload},
            )
    return s
