"""Evaluations end to end: a model over a dataset with scorers, traced to a real server.

The call tree runs against both servers (``server_url``: ours and weave's
reference); the rest against ours. The sync twin (tests/_sync) runs the same
evaluation with ``@op`` functions and the thread-pool runner.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

import weave_client
from weave_client import Model, ObjectRef, Scorer, async_op
from weave_client._async._call import AsyncCall as Call
from weave_client._async._client import AsyncWeaveClient
from weave_client._async._dataset import AsyncDataset as Dataset
from weave_client._async._evaluation import AsyncEvaluation as Evaluation
from weave_client._models import ObjReadReq
from weave_client._synchronization import async_sleep

ROWS = [
    {"question": "a", "expected": "A", "weight": 1},
    {"question": "b", "expected": "B", "weight": 2},
    {"question": "c", "expected": "x", "weight": 3},
]


class Upper(Model):
    suffix: str = ""

    @async_op
    async def predict(self, question: str) -> str:
        return question.upper() + self.suffix


@async_op
async def exact(expected: str, output: str) -> bool:
    return expected == output


@weave_client.op
def length(output: str) -> int:
    # A sync scorer: the async evaluation runs it in a worker thread.
    return len(output)


class Match(Scorer):
    @async_op
    async def score(self, output: str, expected: str, weight: int) -> dict[str, Any]:
        return {"correct": output == expected, "weighted": weight if output == expected else 0}


@pytest.fixture
def client(local_client: AsyncWeaveClient) -> AsyncWeaveClient:
    """These tests run on our local server only."""
    return local_client


async def _tree(client: AsyncWeaveClient) -> tuple[Call, dict[str, list[Call]]]:
    """The one root call and every call's children by parent id (start order)."""
    calls = await client.calls()
    roots = [c for c in calls if c.parent_id is None]
    assert len(roots) == 1, [c.op_short_name for c in roots]
    children: dict[str, list[Call]] = {}
    for c in calls:
        if c.parent_id is not None:
            children.setdefault(c.parent_id, []).append(c)
    return roots[0], children


# --- the call tree --------------------------------------------------------------------


async def test_call_tree_and_refs_match_weave(server_url: str, entity: str, project: str) -> None:
    async with AsyncWeaveClient(entity, project, server_url=server_url) as client:
        evaluation = Evaluation(
            dataset=Dataset(name="letters", rows=ROWS), scorers=[exact, length, Match()], verbose=False
        )
        model = Upper()
        summary = await evaluation.evaluate(model)
        root, children = await _tree(client)
        self_ref = root.inputs["self"]
        model_ref = root.inputs["model"]
        read = await client._api.obj_read(
            ObjReadReq(project_id=client.project_id, object_id=self_ref.name, digest=self_ref.digest)
        )
        stored = read.obj.val

    assert root.op_short_name == "Evaluation.evaluate"
    assert root.display_name is not None and root.display_name.startswith("eval-")
    # self and model are recorded as refs to the saved objects, as weave records them.
    assert isinstance(self_ref, ObjectRef) and self_ref.name == "letters-evaluation"
    assert isinstance(model_ref, ObjectRef) and model_ref.name == "Upper"
    assert root.output == summary

    top = [c.op_short_name for c in children[root.id]]
    assert top == ["Evaluation.predict_and_score"] * 3 + ["Evaluation.summarize"]
    examples = []
    for pas in children[root.id][:3]:
        assert pas.inputs["self"] == self_ref and pas.inputs["model"] == model_ref
        examples.append(pas.inputs["example"])
        assert [c.op_short_name for c in children[pas.id]] == [
            "Upper.predict",
            "exact",
            "length",
            "Match.score",
        ]
        assert children[pas.id][0].inputs["self"] == model_ref
        assert pas.output["scores"].keys() == {"exact", "length", "Match"}
    assert sorted(e["question"] for e in examples) == ["a", "b", "c"]
    summarize = children[root.id][3]
    assert [c.op_short_name for c in children[summarize.id]] == ["Scorer.summarize"]

    # The evaluation object: weave's class shape, dataset and scorers as refs.
    assert stored["_class_name"] == "Evaluation"
    assert stored["_bases"] == ["Object", "BaseModel"]
    assert stored["dataset"].startswith(f"weave:///{entity}/{project}/object/letters:")
    assert [s.split("/")[-2] for s in stored["scorers"]] == ["op", "op", "object"]
    assert stored["trials"] == 1
    assert "parallelism" not in stored and "verbose" not in stored


async def test_each_score_is_feedback_on_its_predict_call(
    server_url: str, entity: str, project: str
) -> None:
    # As weave's evaluation (apply_scorer on the model's call): one
    # wandb.runnable.<scorer> feedback per score, on the predict call.
    async with AsyncWeaveClient(entity, project, server_url=server_url) as client:
        evaluation = Evaluation(dataset=ROWS, scorers=[exact, length, Match()], verbose=False)
        await evaluation.evaluate(Upper())
        await client.flush()
        calls = await client.calls()
        feedback = await client.feedback_query()
    by_id = {c.id: c for c in calls}
    predicts = {c.ref.uri(): c for c in calls if c.op_short_name == "Upper.predict"}
    assert len(predicts) == 3 and len(feedback) == 9
    kinds: dict[str, set[str]] = {}
    for fb in feedback:
        assert fb.weave_ref in predicts
        kinds.setdefault(fb.weave_ref, set()).add(fb.feedback_type)
        assert fb.call_ref is not None and fb.runnable_ref is not None
        score_call = by_id[fb.call_ref.rsplit("/", 1)[1]]
        predict = predicts[fb.weave_ref]
        # The score call is the predict call's sibling under predict_and_score.
        assert score_call.parent_id == predict.parent_id
        assert fb.payload == {"output": score_call.output}
        if fb.feedback_type == "wandb.runnable.Match":
            assert "/object/Match:" in fb.runnable_ref
        else:
            assert fb.runnable_ref == score_call.op_name
    assert set(kinds) == set(predicts)
    assert all(
        k == {"wandb.runnable.exact", "wandb.runnable.length", "wandb.runnable.Match"}
        for k in kinds.values()
    )


# --- the summary ------------------------------------------------------------------------


async def test_summary_numbers_are_weaves(client: AsyncWeaveClient) -> None:
    evaluation = Evaluation(dataset=ROWS, scorers=[exact, length, Match()], verbose=False)
    summary = await evaluation.evaluate(Upper())
    # Outputs "A", "B", "C": exact is right for rows 0 and 1.
    assert summary["exact"] == {"true_count": 2, "true_fraction": pytest.approx(2 / 3)}
    assert summary["length"] == {"mean": 1.0}
    assert summary["Match"] == {
        "correct": {"true_count": 2, "true_fraction": pytest.approx(2 / 3)},
        "weighted": {"mean": pytest.approx((1 + 2 + 0) / 3)},
    }
    assert set(summary["model_latency"]) == {"mean"}
    assert summary["model_latency"]["mean"] >= 0
    # String outputs cannot be summarized (weave leaves them out); no failures key.
    assert "output" not in summary and "failures" not in summary


async def test_numeric_outputs_and_token_usage_are_summarized(client: AsyncWeaveClient) -> None:
    @async_op
    async def scored(x: int) -> dict[str, Any]:
        return {"value": x * 2, "model": "m-1", "usage": {"prompt_tokens": x, "completion_tokens": 1}}

    summary = await Evaluation(dataset=[{"x": 1}, {"x": 2}, {"x": 6}], verbose=False).evaluate(scored)
    assert summary["output"]["value"] == {"mean": pytest.approx(6.0)}
    assert summary["usage"]["m-1"] == {"requests": 3, "prompt_tokens": 9, "completion_tokens": 3}


async def test_class_scorer_summarize_overrides(client: AsyncWeaveClient) -> None:
    class Total(Scorer):
        @async_op
        async def score(self, output: str, weight: int) -> int:
            return weight * len(output)

        @weave_client.op
        def summarize(self, score_rows: list[Any]) -> dict[str, Any]:
            return {"total": sum(score_rows), "n": len(score_rows)}

    evaluation = Evaluation(dataset=ROWS, scorers=[Total(name="tot")], verbose=False)
    summary = await evaluation.evaluate(Upper(suffix="!"))
    assert summary["tot"] == {"total": (1 + 2 + 3) * 2, "n": 3}
    root, children = await _tree(client)
    summarize = children[root.id][-1]
    assert [c.op_short_name for c in children[summarize.id]] == ["Total.summarize"]


# --- arguments -----------------------------------------------------------------------


async def test_scorer_arguments_by_name_column_map_and_kwargs(client: AsyncWeaveClient) -> None:
    seen: list[dict[str, Any]] = []

    class Mapped(Scorer):
        @async_op
        async def score(self, output: str, answer: str) -> bool:
            return output == answer

    @async_op
    async def everything(output: str, **kwargs: Any) -> int:
        seen.append(kwargs)
        return len(kwargs)

    evaluation = Evaluation(
        dataset=ROWS[:2],
        scorers=[Mapped(column_map={"answer": "expected"}), everything],
        verbose=False,
    )
    summary = await evaluation.evaluate(Upper())
    assert summary["Mapped"] == {"true_count": 2, "true_fraction": 1.0}
    # A **kwargs scorer gets every column plus the whole row as `inputs`.
    assert {frozenset(s) for s in seen} == {frozenset({"question", "expected", "weight", "inputs"})}
    assert seen[0]["inputs"]["question"] in ("a", "b")


async def test_argument_mismatches_stop_with_a_clear_error(client: AsyncWeaveClient) -> None:
    class Bad(Scorer):
        @async_op
        async def score(self, output: str, answer: str) -> bool:
            return True

    with pytest.raises(TypeError, match="'nope'"):
        await Evaluation(
            dataset=ROWS, scorers=[Bad(column_map={"answer": "nope"})], verbose=False
        ).evaluate(Upper())
    with pytest.raises(TypeError, match="column_map key 'wrong'"):
        await Evaluation(
            dataset=ROWS, scorers=[Bad(column_map={"wrong": "expected"})], verbose=False
        ).evaluate(Upper())

    @async_op
    async def needs_prompt(prompt: str) -> str:
        return prompt

    with pytest.raises(TypeError, match=r"needs 'prompt'.*'question'"):
        await Evaluation(dataset=ROWS, verbose=False).evaluate(needs_prompt)


async def test_preprocess_model_input(client: AsyncWeaveClient) -> None:
    @async_op
    async def echo(prompt: str) -> str:
        return prompt

    def to_prompt(row: dict[str, Any]) -> dict[str, Any]:
        return {"prompt": row["question"] * 2}

    evaluation = Evaluation(
        dataset=ROWS, scorers=[length], preprocess_model_input=to_prompt, verbose=False
    )
    summary = await evaluation.evaluate(echo)
    assert summary["length"] == {"mean": 2.0}


# --- failures, trials, concurrency ------------------------------------------------------


async def test_failures_are_recorded_counted_and_do_not_stop(client: AsyncWeaveClient) -> None:
    @async_op
    async def flaky(question: str) -> str:
        if question == "b":
            raise ValueError("model broke on b")
        return question.upper()

    @async_op
    async def picky(output: str) -> int:
        if output == "C":
            raise RuntimeError("scorer broke on C")
        return 1

    evaluation = Evaluation(dataset=ROWS, scorers=[exact, picky], verbose=False)
    summary = await evaluation.evaluate(flaky)
    assert summary["failures"] == {"rows": 2, "predict": 1, "picky": 1}
    # The rows that worked are still scored: "A" is exact, "C" is not.
    assert summary["exact"] == {"true_count": 1, "true_fraction": 0.5}
    assert summary["picky"] == {"mean": 1.0}

    calls = await client.calls()
    failed = {c.op_short_name: c.exception for c in calls if c.exception}
    assert set(failed) == {"flaky", "picky"}
    assert "model broke on b" in (failed["flaky"] or "")
    assert "scorer broke on C" in (failed["picky"] or "")
    root = next(c for c in calls if c.parent_id is None)
    assert root.exception is None and root.output == summary


async def test_trials_run_every_row_again(client: AsyncWeaveClient) -> None:
    evaluation = Evaluation(dataset=ROWS, scorers=[exact], trials=2, verbose=False)
    summary = await evaluation.evaluate(Upper())
    assert summary["exact"] == {"true_count": 4, "true_fraction": pytest.approx(4 / 6)}
    root, children = await _tree(client)
    assert [c.op_short_name for c in children[root.id]].count("Evaluation.predict_and_score") == 6


async def test_concurrency_is_bounded_by_the_limit(
    client: AsyncWeaveClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}

    @async_op
    async def slow(question: str) -> str:
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        await async_sleep(0.02)
        with lock:
            state["now"] -= 1
        return question

    rows = [{"question": str(i)} for i in range(12)]
    await Evaluation(dataset=rows, parallelism=3, verbose=False).evaluate(slow)
    assert state["peak"] == 3

    # WEAVE_PARALLELISM applies when no argument is given.
    state["peak"] = 0
    monkeypatch.setenv("WEAVE_PARALLELISM", "2")
    await Evaluation(dataset=rows, verbose=False).evaluate(slow)
    assert state["peak"] == 2


class SyncUpper(Model):
    @weave_client.op
    def predict(self, question: str) -> str:
        # A sync model: the async evaluation runs it in a worker thread.
        return question.upper()


async def test_sync_model_nests_and_other_flavours_dataset_is_accepted(
    client: AsyncWeaveClient,
) -> None:
    # weave_client.Dataset is the sync flavour's class; the evaluation takes it as its own.
    dataset = weave_client.Dataset(name="letters", rows=ROWS)
    evaluation = Evaluation(dataset=dataset, scorers=[exact], verbose=False)
    assert isinstance(evaluation.dataset, Dataset)
    summary = await evaluation.evaluate(SyncUpper())
    assert summary["exact"] == {"true_count": 2, "true_fraction": pytest.approx(2 / 3)}
    root, children = await _tree(client)
    for pas in children[root.id][:3]:
        assert [c.op_short_name for c in children[pas.id]] == ["SyncUpper.predict", "exact"]


async def test_a_stored_dataset_streams_through_in_batches(client: AsyncWeaveClient) -> None:
    @async_op
    async def ident(x: int) -> int:
        return x

    @async_op
    async def is_even(output: int) -> bool:
        return output % 2 == 0

    ref = await client.save(Dataset(rows=[{"x": i} for i in range(450)]), "numbers")
    stored = await client.get(ref)
    assert isinstance(stored, Dataset) and stored._local_rows is None
    # Parallelism 2: batches of 200 rows, so three batches.
    evaluation = Evaluation(dataset=stored, scorers=[is_even], parallelism=2, verbose=False)
    summary = await evaluation.evaluate(ident)
    assert summary["output"] == {"mean": pytest.approx(224.5)}
    assert summary["is_even"] == {"true_count": 225, "true_fraction": 0.5}
    root, children = await _tree(client)
    assert len(children[root.id]) == 451
    # The results table keeps the dataset's order.
    summarize = children[root.id][-1]
    results = await client.get(summarize.inputs["eval_table"])
    table = await client.get(results.rows)
    assert [row["output"] async for row in table][:5] == [0, 1, 2, 3, 4]


async def test_runs_untraced_without_a_client() -> None:
    summary = await Evaluation(dataset=ROWS, scorers=[exact], verbose=False).evaluate(Upper())
    assert summary["exact"]["true_count"] == 2


async def test_summary_table_is_printed(
    client: AsyncWeaveClient, capsys: pytest.CaptureFixture[str]
) -> None:
    await Evaluation(dataset=ROWS, scorers=[exact]).evaluate(Upper())
    captured = capsys.readouterr()
    assert "Evaluation summary" in captured.out
    assert "exact.true_count" in captured.out and "model_latency.mean" in captured.out
    # Not a terminal: no progress bar.
    assert "Evaluating" not in captured.err and "Evaluating" not in captured.out


def test_invalid_setups_are_refused() -> None:
    with pytest.raises(TypeError, match="pass an instance"):
        Evaluation(dataset=ROWS, scorers=[Match])
    with pytest.raises(ValueError, match="trials"):
        Evaluation(dataset=ROWS, trials=0)
    with pytest.raises(ValueError, match="duplicate"):
        Evaluation(dataset=ROWS, scorers=[exact, exact])
    with pytest.raises(TypeError, match="Dataset"):
        Evaluation(dataset="rows.csv")
    assert weave_client.Scorer is Scorer
