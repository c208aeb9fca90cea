"""The I/O-free evaluation pieces: weave's auto summary, argument matching, flavour checks."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest

import weave_client
from weave_client import Scorer, async_op, op
from weave_client._eval_summary import auto_summarize, format_summary, sum_usage, transpose
from weave_client._flow import ArgumentMismatchError, scorer_arguments, scorer_name


class Score(pydantic.BaseModel):
    ok: bool
    value: float


def test_auto_summarize_matches_weaves_rules() -> None:
    assert auto_summarize([]) == {}
    assert auto_summarize([None, None]) is None
    assert auto_summarize(["a", "b"]) is None
    assert auto_summarize([1, 2, None, 6]) == {"mean": 3.0}
    assert auto_summarize([True, False, True, None]) == {
        "true_count": 2,
        "true_fraction": pytest.approx(2 / 3),
    }
    nested = [{"a": 1, "b": {"c": True}, "s": "x"}, {"a": 3, "b": {"c": False}}]
    assert auto_summarize(nested) == {
        "a": {"mean": 2.0},
        "b": {"c": {"true_count": 1, "true_fraction": 0.5}},
    }
    # A nested summary naming its own key is merged, as weave does.
    assert auto_summarize([{"mean": 1}, {"mean": 3}]) == {"mean": 2.0}
    assert auto_summarize([Score(ok=True, value=1.0), Score(ok=False, value=0.0)]) == {
        "ok": {"true_count": 1, "true_fraction": 0.5},
        "value": {"mean": 0.5},
    }


def test_transpose_usage_and_table() -> None:
    assert transpose([{"a": 1, "b": 2}, {"a": 3}]) == {"a": [1, 3], "b": [2]}
    usage = sum_usage(
        [{"m": {"requests": 1, "total_tokens": 5}}, None, {"m": {"requests": 1, "total_tokens": 7}}]
    )
    assert usage == {"m": {"requests": 2, "total_tokens": 12}}
    table = format_summary({"exact": {"true_fraction": 0.5}, "model_latency": {"mean": 0.01}})
    assert "exact.true_fraction" in table and "0.5" in table and "model_latency.mean" in table


def test_scorer_arguments() -> None:
    @op
    def plain(output: str, expected: str) -> bool:
        return output == expected

    class Mapped(Scorer):
        @op
        def score(self, output: str, answer: str, extra: int = 0) -> bool:
            return output == answer

    row = {"question": "q", "expected": "E"}
    assert scorer_arguments(plain, row, "out") == {"expected": "E", "output": "out"}
    mapped = Mapped(column_map={"answer": "expected"})
    assert scorer_arguments(mapped, row, "out") == {"answer": "E", "output": "out"}
    assert scorer_name(mapped) == "Mapped" and scorer_name(Mapped(name="m 1")) == "m-1"
    with pytest.raises(ArgumentMismatchError, match="must take an 'output'"):

        @op
        def no_output(expected: str) -> bool:
            return True

        scorer_arguments(no_output, row, "out")
    with pytest.raises(ValueError, match="both 'output' and 'model_output'"):

        class Both(Scorer):
            @op
            def score(self, output: Any, model_output: Any) -> bool:
                return True

        Both()


def test_the_sync_flavour_refuses_async_ops_clearly() -> None:
    @async_op
    async def async_model(question: str) -> str:
        return question

    evaluation = weave_client.Evaluation(dataset=[{"question": "q"}], verbose=False)
    with pytest.raises(TypeError, match=r"async function; evaluate it with weave_client\.AsyncEvaluation"):
        evaluation.evaluate(async_model)
