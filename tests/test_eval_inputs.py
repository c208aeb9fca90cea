"""The I/O-free parts of an evaluation shared by both flavours: what it is given
(``_eval_inputs``) and the state of a run (``_eval_state``)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from weave_client import AsyncDataset, Dataset, Model, Scorer, op
from weave_client._eval_inputs import (
    as_model,
    check_scorers,
    dataset_fields,
    default_display_name,
    predict_op,
    scorer_plan,
)
from weave_client._eval_state import EvalRun, current_row
from weave_client._flow import is_op


class Echo(Model):
    @op
    def predict(self, question: str) -> str:
        return question


class Exact(Scorer):
    @op
    def score(self, expected: str, output: str) -> bool:
        return expected == output


def length(output: str) -> int:
    return len(output)


def test_scorers_become_ops_or_stay_scorers_and_bad_ones_are_named() -> None:
    scorers = check_scorers([length, Exact()])
    assert scorers is not None and is_op(scorers[0]) and isinstance(scorers[1], Exact)
    assert [(name, is_op(score)) for _, name, score in scorer_plan(scorers)] == [
        ("length", True),
        ("Exact", True),
    ]
    assert check_scorers(None) is None and scorer_plan(None) == []
    with pytest.raises(TypeError, match="must be a list, got dict"):
        check_scorers({"a": length})
    with pytest.raises(TypeError, match=r"scorers\[0\] is the class Exact; pass an instance: Exact\(\)"):
        check_scorers([Exact])
    with pytest.raises(ValueError, match=r"duplicate names: \['length'\]"):
        check_scorers([length, length])


def test_the_model_is_a_model_or_an_op_and_the_error_names_the_flavours_decorator() -> None:
    model = Echo()
    assert as_model(model, "@op") is model
    assert predict_op(model).__self__ is model
    traced = as_model(length, "@op")
    assert is_op(traced) and predict_op(traced) is traced
    with pytest.raises(TypeError, match=r"a function decorated with @async_op\), got 3"):
        as_model(3, "@async_op")
    with pytest.raises(TypeError, match=r"decorated with @op\), got 'text'"):
        as_model("text", "@op")


def test_a_dataset_of_either_flavour_gives_its_fields_and_anything_else_none() -> None:
    rows = [{"question": "a"}]
    for dataset in (Dataset(name="d", description="x", rows=rows), AsyncDataset(name="d", rows=rows)):
        fields = dataset_fields(dataset)
        assert fields is not None
        assert (fields["name"], fields["rows"]) == ("d", rows)
    assert dataset_fields(rows) is None and dataset_fields("d") is None


def test_the_display_name_is_the_evaluation_name_or_weaves_default() -> None:
    class Named:
        evaluation_name = "mine"

    assert default_display_name({"self": Named()}) == "mine"
    assert default_display_name({}).startswith("eval-")
    assert len(default_display_name({}).split("-")) == 6  # eval-YYYY-MM-DD-adjective-noun


def test_a_run_counts_failures_per_step_and_row_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    run = EvalRun(total=2, show_progress=False, scorer_plan=[])
    assert run.totals() == {}
    caplog.set_level(logging.WARNING, logger="weave_client")
    for _ in range(2):
        failed: list[str] = []
        token = current_row.set(failed)
        try:
            run.failed("predict", ValueError("boom"))
        finally:
            current_row.reset(token)
        run.row_done(failed=bool(failed))
        assert failed == ["predict"]
    run.usages.append({"m": {"requests": 1, "total_tokens": 5}})
    assert run.totals() == {
        "usage": {"m": {"requests": 1, "total_tokens": 5}},
        "failures": {"rows": 2, "predict": 2},
    }
    assert run.done == 2
    assert [r.getMessage() for r in caplog.records].count(
        "weave_client: predict raised ValueError: boom (recorded on its call; further"
        " failures are counted in the summary under 'failures')"
    ) == 1
    run.close()


def test_a_run_holds_scores_until_taken() -> None:
    run = EvalRun(total=1, show_progress=False, scorer_plan=[])
    item: tuple[str, Any, Any, Any] = ("weave:///e/p/call/1", None, None, 1)
    run.add_scores([item])
    run.add_scores([item])
    assert run.take_scores() == [item, item]
    assert run.take_scores() == []
