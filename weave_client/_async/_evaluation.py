"""``AsyncEvaluation``: run a model over a dataset with scorers, traced as weave traces it.

The call tree matches weave's for the same evaluation::

    Evaluation.evaluate                 (self: the evaluation's ref, model: the model's ref)
      Evaluation.predict_and_score      one per row and trial
        <Model>.predict / <op>          the model
        <scorer> / <Scorer>.score       each scorer
      Evaluation.summarize
        <Scorer>.summarize              class scorers

Rows run concurrently, at most ``parallelism`` at once (default 10, or
``WEAVE_PARALLELISM``). In the async flavour async models and scorers are awaited
on the event loop and sync ones run in worker threads (context propagated, so
their calls nest); the sync flavour runs rows in a thread pool. A predict or
scorer that raises is recorded on its own call, counted in the summary under
``failures``, and the evaluation goes on.

The parts live by idea: running the rows in ``_eval_run``, the ``evaluate`` op and
its bound form in ``_eval_op``, what is saved in ``_eval_save``, scores as feedback
in ``_eval_feedback``; the I/O-free parts in ``weave_client._eval_inputs``,
``_eval_state`` and ``_eval_summary``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from pydantic import Field, PrivateAttr, field_validator

from .._context import current_client
from .._eval_inputs import check_scorers, dataset_fields
from .._eval_summary import auto_summarize, format_summary, transpose
from .._flow import Object, Scorer, as_op, is_op, scorer_name
from ._dataset import AsyncDataset
from ._eval_op import evaluate_op
from ._eval_run import predict_and_score, run_all, run_op
from ._eval_save import AsyncEvaluationResults, save_results
from ._op import AsyncOp, async_op

__all__ = ["AsyncEvaluation", "AsyncEvaluationResults", "Scorer"]


class AsyncEvaluation(Object):
    """An evaluation: a dataset, scorers, and ``evaluation.evaluate(model)`` to run them.

    - ``dataset``: a ``AsyncDataset`` or a list of dict rows.
    - ``scorers``: ops or functions taking ``output`` plus row columns by name,
      or ``Scorer`` instances (``score`` and optional ``summarize``).
    - ``preprocess_model_input``: maps a row to the model's arguments.
    - ``trials``: how many times each row is run.
    - ``evaluation_name``: the display name of the ``evaluate`` call.
    - ``parallelism`` (not saved): rows at once; default ``WEAVE_PARALLELISM`` or 10.
    - ``verbose`` (not saved): progress bar on a terminal and the summary table.

    ``evaluate(model)`` takes a ``Model`` or an op (a plain function is traced
    for you) and returns the summary dict: per scorer the auto summary (means,
    true counts and fractions) or its ``summarize``, ``output`` if summarizable,
    ``model_latency``; plus ``usage`` (token counts) and ``failures`` when any.
    """

    # Saved under weave's class name, whatever this flavour calls it.
    _weave_class_name: ClassVar[str] = "Evaluation"

    dataset: AsyncDataset
    scorers: list[Any] | None = None
    preprocess_model_input: Any = None
    trials: int = 1
    evaluation_name: str | None = None
    parallelism: int | None = Field(default=None, exclude=True)
    verbose: bool = Field(default=True, exclude=True)

    _preprocess: Callable[[dict[str, Any]], Any] | None = PrivateAttr(default=None)

    @field_validator("dataset", mode="before")
    @classmethod
    def _check_dataset(cls, value: Any) -> Any:
        if isinstance(value, AsyncDataset):
            return value
        if isinstance(value, list):
            return AsyncDataset(rows=value)
        fields = dataset_fields(value)
        if fields is not None:
            return AsyncDataset(**fields)
        raise TypeError(
            f"Evaluation dataset must be a Dataset or a list of dict rows, got {type(value).__name__}"
        )

    @field_validator("scorers", mode="before")
    @classmethod
    def _check_scorers(cls, value: Any) -> Any:
        return check_scorers(value)

    @field_validator("trials")
    @classmethod
    def _check_trials(cls, value: int) -> int:
        if value < 1:
            raise ValueError(f"trials must be at least 1, got {value!r}")
        return value

    @field_validator("parallelism")
    @classmethod
    def _check_parallelism(cls, value: int | None) -> int | None:
        if value is not None and value < 1:
            raise ValueError(f"parallelism must be at least 1, got {value!r}")
        return value

    def model_post_init(self, context: Any) -> None:
        super().model_post_init(context)
        pre = self.preprocess_model_input
        if pre is not None:
            if not callable(pre):
                raise TypeError(f"preprocess_model_input must be a function, got {pre!r}")
            # Saved as an op (a plain function cannot be saved); a plain function is
            # called as it is, untraced, as weave calls it.
            self._preprocess = pre
            self.preprocess_model_input = as_op(pre, what="preprocess_model_input")
        if self.name is None and self.dataset.name is not None:
            self.name = self.dataset.name + "-evaluation"

    # --- the traced steps -------------------------------------------------------------

    # Runs once per row: the function itself (in _eval_run, with the rest of row
    # running) is the op, no wrapper between.
    predict_and_score: ClassVar[AsyncOp[..., Any]] = async_op(name="Evaluation.predict_and_score")(
        predict_and_score
    )

    @async_op(name="Evaluation.summarize")
    async def summarize(self, eval_table: AsyncEvaluationResults) -> dict[str, Any]:
        """The summary of the per-row results: per scorer, then the other columns."""
        summary: dict[str, Any] = {}
        for column, values in transpose(eval_table.results()).items():
            if column == "scores":
                for scorer in self.scorers or ():
                    name = scorer_name(scorer)
                    scores = [
                        v.get(name) for v in values if isinstance(v, dict) and v.get(name) is not None
                    ]
                    summarize = getattr(scorer, "summarize", None)
                    if not is_op(scorer) and is_op(summarize):
                        summary[name] = await run_op(summarize, {"score_rows": scores})
                    else:
                        summary[name] = auto_summarize(scores)
            else:
                column_summary = auto_summarize(values)
                if column_summary:
                    summary[column] = column_summary
        return summary

    @evaluate_op
    async def evaluate(self, model: Any) -> dict[str, Any]:
        """Run ``model`` (a ``Model`` or an op) over the dataset with every scorer.

        With a current client the dataset, scorers, model and this evaluation are
        saved first (so the calls refer to them by ref, as weave's do) and every
        step is traced; without one it runs untraced. Returns the summary dict.
        A row whose model or scorer raises is counted under ``failures``; a row
        that does not fit the model's or a scorer's arguments stops the run with
        a ``TypeError`` saying which names are missing.
        """
        results, run = await run_all(self, model)
        eval_table = AsyncEvaluationResults(rows=results)
        client = current_client()
        if client is not None:
            await save_results(client, eval_table)
        summary: dict[str, Any] = await self.summarize(eval_table)
        summary.update(run.totals())
        if self.verbose:
            print(format_summary(summary, f"Evaluation summary ({self.name or 'Evaluation'})"))
        return summary
