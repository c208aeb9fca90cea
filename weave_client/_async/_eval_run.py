"""Running an evaluation's rows: predict and score each, concurrently, for every trial.

Rows run concurrently, at most ``parallelism`` at once, in batches so only one
batch of rows and tasks is held however large the dataset is. In the async
flavour async models and scorers are awaited on the event loop and sync ones run
in worker threads (context propagated, so their calls nest); the sync flavour
runs rows in a thread pool. A predict or scorer that raises is recorded on its
own call and counted by the run; a row that does not fit the model's or a
scorer's arguments stops the run.
"""

from __future__ import annotations

import contextvars
import functools
import sys
import time
from typing import TYPE_CHECKING, Any

from .. import _settings
from .._eval_inputs import predict_op, scorer_plan
from .._eval_state import BATCH_WAVES, SCORES_BATCH, EvalRun, current_row
from .._flow import (
    ArgumentMismatchError,
    is_async_function,
    is_op,
    model_arguments,
    op_function,
    op_of,
    score_op,
    scorer_arguments,
)
from .._synchronization import async_callable_kind, async_gather_bounded, async_run_blocking
from .._tracing import current_frame
from ._eval_feedback import send_score, send_scores

if TYPE_CHECKING:
    from ._evaluation import AsyncEvaluation

__all__ = ["check_runnable", "native", "predict_and_score", "run_all", "run_op", "run_op_call"]

# The run an evaluate() is in (tasks and worker threads inherit it), so the
# traced predict_and_score keeps weave's signature (self, model, example).
_current_run: contextvars.ContextVar[EvalRun | None] = contextvars.ContextVar(
    "weave_client_evaluation_run", default=None
)


def native(fn: Any) -> bool:
    """True for an op of this flavour; False for a sync op under the async flavour
    (run in a worker thread); ``TypeError`` for an async op under the sync flavour."""
    if async_callable_kind(op_function(fn)) == "function":
        return True
    if is_async_function(op_function(fn)):
        raise TypeError(
            # Raised by the sync flavour only, so it names the async API on purpose.
            f"{op_of(fn).name} is an async function; evaluate it with"  # unasync: keep
            " weave_client.AsyncEvaluation under an AsyncWeaveClient"  # unasync: keep
        )
    return False


async def run_op(fn: Any, kwargs: dict[str, Any]) -> Any:
    """Run an op (or bound op): ops of this flavour here; sync ops under the async
    flavour in a worker thread (the context is copied, so their calls nest where
    they belong)."""
    if native(fn):
        return await fn(**kwargs)
    return await async_run_blocking(functools.partial(fn, **kwargs))


async def run_op_call(fn: Any, kwargs: dict[str, Any]) -> tuple[Any, Any]:
    """``run_op`` returning ``(result, call)`` (the call None when untraced)."""
    if native(fn):
        result: tuple[Any, Any] = await fn.call(**kwargs)
        return result
    ran: tuple[Any, Any] = await async_run_blocking(functools.partial(fn.call, **kwargs))
    return ran


def check_runnable(scorers: list[Any] | None, model: Any) -> None:
    """Fail before anything runs if an op cannot run in this flavour."""
    native(predict_op(model))
    for scorer in scorers or ():
        native(score_op(scorer))
        summarize = getattr(scorer, "summarize", None)
        if not is_op(scorer) and is_op(summarize):
            native(summarize)


# ``AsyncEvaluation.predict_and_score`` is this function made an op in the class
# body (no wrapper between: it runs once per row).
async def predict_and_score(
    self: AsyncEvaluation, model: Any, example: dict[str, Any]
) -> dict[str, Any]:
    """Run the model on one row, then every scorer on its output."""
    run = _current_run.get()
    model_input = example
    preprocess = self._preprocess
    if preprocess is not None:
        model_input = preprocess(example)
        if not isinstance(model_input, dict):
            raise ArgumentMismatchError(
                f"preprocess_model_input must return a dict, got {type(model_input).__name__}"
            )
    predict = predict_op(model)
    args = model_arguments(predict, model_input, example)
    # The predict call's summary (token usage, rolled up from its children) is the
    # first child summary this call collects; reading it costs nothing, where
    # op.call() would build a Call object for every row.
    frame = current_frame()
    seen = len(frame.child_summaries or ()) if frame is not None else 0
    started = time.perf_counter()
    try:
        output, predict_call = await run_op_call(predict, args)
    except Exception as exc:
        if run is not None:
            run.failed("predict", exc)
        return {"output": None, "scores": {}, "model_latency": time.perf_counter() - started}
    latency = time.perf_counter() - started
    summaries = frame.child_summaries if frame is not None else None
    if run is not None and summaries is not None and len(summaries) > seen:
        usage = summaries[seen].get("usage")
        if usage:
            run.usages.append(usage)
    # As weave's apply_scorer: scorers see the model's inputs and the row.
    scorer_input = {**args, **example}
    scores: dict[str, Any] = {}
    plan = run.scorer_plan if run is not None else scorer_plan(self.scorers)
    unsent: list[tuple[str, Any, Any, Any]] = []
    for scorer, name, score in plan:
        score_args = scorer_arguments(scorer, scorer_input, output)
        try:
            result, score_call = await run_op_call(score, score_args)
        except Exception as exc:
            if run is not None:
                run.failed(name, exc)
            result, score_call = None, None
        scores[name] = result
        if predict_call is not None and score_call is not None:
            # As weave's evaluation (apply_scorer): each score is feedback on
            # the predict call.
            unsent.append((predict_call.ref.uri(), score_call, scorer, result))
    if run is not None:
        run.add_scores(unsent)
    else:
        for item in unsent:
            await send_score(item)
    return {"output": output, "scores": scores, "model_latency": latency}


async def run_all(evaluation: AsyncEvaluation, model: Any) -> tuple[list[dict[str, Any]], EvalRun]:
    """Run ``evaluation.predict_and_score`` on every row, ``trials`` times; the results
    in dataset order (trials one after the other) and the run's counters."""
    total = await evaluation.dataset.count() * evaluation.trials
    show_progress = evaluation.verbose and sys.stderr.isatty()
    run = EvalRun(total, show_progress, scorer_plan(evaluation.scorers))
    limit = evaluation.parallelism
    if limit is None:
        limit = _settings.parallelism()
    # Rows are read (a stored dataset: a page at a time) and run in batches, so
    # only one batch of rows and tasks is held however large the dataset is.
    batch_size = limit * BATCH_WAVES
    results: list[dict[str, Any]] = []
    batch: list[dict[str, Any]] = []
    token = _current_run.set(run)
    try:
        for _ in range(evaluation.trials):
            async for row in evaluation.dataset:
                batch.append(row)
                if len(batch) >= batch_size:
                    results.extend(await _run_rows(evaluation, model, batch, run, limit))
                    batch = []
                    await send_scores(run, limit)
        if batch:
            results.extend(await _run_rows(evaluation, model, batch, run, limit))
        await send_scores(run, limit)
    finally:
        _current_run.reset(token)
        run.close()
    return results, run


async def _run_rows(
    evaluation: AsyncEvaluation, model: Any, rows: list[dict[str, Any]], run: EvalRun, limit: int
) -> list[dict[str, Any]]:
    jobs = [functools.partial(_run_row, evaluation, model, row, run) for row in rows]
    return await async_gather_bounded(jobs, limit)


async def _run_row(
    evaluation: AsyncEvaluation, model: Any, row: dict[str, Any], run: EvalRun
) -> dict[str, Any]:
    failed: list[str] = []
    token = current_row.set(failed)
    result: dict[str, Any]
    try:
        result = await evaluation.predict_and_score(model, row)
    except ArgumentMismatchError:
        raise
    except Exception as exc:
        run.failed("predict_and_score", exc)
        result = {"output": None, "scores": {}}
    finally:
        current_row.reset(token)
    run.row_done(failed=bool(failed))
    if len(run.scores) >= SCORES_BATCH:
        # Scores go out while the other rows run (one row slot sends a batch).
        await send_scores(run, 1)
    return result
