"""``Evaluation``: run a model over a dataset with scorers, traced as weave traces it.

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
"""

from __future__ import annotations

import contextvars
import datetime
import functools
import logging
import random
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from pydantic import Field, PrivateAttr, field_validator

from .. import _settings
from .._context import current_client
from .._errors import UnsaveableValueError
from .._eval_summary import auto_summarize, format_summary, sum_usage, transpose
from .._flow import (
    ArgumentMismatchError,
    Object,
    Scorer,
    as_op,
    infer_method,
    is_async_function,
    is_dataset,
    is_op,
    model_arguments,
    op_function,
    op_of,
    score_op,
    scorer_arguments,
    scorer_name,
)
from .._refs import TableRef
from .._serialize import WeaveObject
from .._synchronization import async_callable_kind, async_gather_bounded, async_run_blocking
from .._tracing import current_frame, sanitize_name
from ._dataset import Dataset, store_table_rows
from ._op import AsyncOp, async_op

__all__ = ["Evaluation", "EvaluationResults", "Scorer"]

logger = logging.getLogger("weave_client")

_ADJECTIVES = ("brave", "bright", "calm", "clever", "eager", "gentle", "happy", "keen", "lively", "quick")
_NOUNS = ("otter", "falcon", "maple", "comet", "harbor", "meadow", "quartz", "river", "summit", "willow")


def _default_display_name(inputs: dict[str, Any]) -> str:
    """``eval-2025-01-31-brave-otter`` (weave's default), or ``evaluation_name`` if set."""
    evaluation = inputs.get("self")
    name = getattr(evaluation, "evaluation_name", None)
    if isinstance(name, str) and name:
        return name
    date = datetime.datetime.now().strftime("%Y-%m-%d")
    return f"eval-{date}-{random.choice(_ADJECTIVES)}-{random.choice(_NOUNS)}"


class EvaluationResults(Object):
    """The per-row results ``Evaluation.summarize`` reads (``output``, ``scores``, ``model_latency``).

    Saved as weave saves it: the rows as a table, the object referring to it, so
    the ``summarize`` call's input is a ref however many rows there are.
    """

    rows: Any

    _local_rows: list[dict[str, Any]] = PrivateAttr(default_factory=list)

    def model_post_init(self, context: Any) -> None:
        super().model_post_init(context)
        if isinstance(self.rows, list):
            self._local_rows = self.rows

    def _weave_table_rows(self, project_id: str) -> list[dict[str, Any]] | None:
        """Rows to store as a table before saving (I/O-free hook, as ``Dataset``'s)."""
        return self._local_rows if isinstance(self.rows, list) else None

    def _weave_table_saved(self, table_ref: TableRef) -> None:
        self.rows = table_ref

    def results(self) -> list[dict[str, Any]]:
        """The rows, in dataset order (trials one after the other)."""
        return self._local_rows


class _Run:
    """Counters of one ``evaluate`` run, shared by its rows (tasks or threads)."""

    def __init__(
        self, total: int, show_progress: bool, scorer_plan: list[tuple[Any, str, Any]]
    ) -> None:
        self.total = total
        self.scorer_plan = scorer_plan
        self.done = 0
        self.failed_rows = 0
        self.failures: dict[str, int] = {}
        self.usages: list[Any] = []
        # Scores to record as feedback on their predict calls (sent after each batch):
        # (predict call ref, score call, scorer object, score).
        self.scores: list[tuple[str, Any, Any, Any]] = []
        self.feedback_failed = 0
        self._lock = threading.Lock()
        self._warned: set[str] = set()
        self._progress: Any = None
        self._task: Any = None
        if show_progress:
            self._start_progress()

    def _start_progress(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._progress = Progress(
            TextColumn("Evaluating"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[failed]} failed"),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._task = self._progress.add_task("rows", total=self.total, failed=0, rate="")
        self._started = time.perf_counter()
        self._progress.start()

    def failed(self, what: str, exc: BaseException) -> None:
        """Count a failed predict or scorer (recorded on its own call); warn once each."""
        row = _current_row.get()
        if row is not None:
            row.append(what)
        with self._lock:
            self.failures[what] = self.failures.get(what, 0) + 1
            first = what not in self._warned
            self._warned.add(what)
        if first:
            logger.warning(
                "weave_client: %s raised %s: %s (recorded on its call; further failures "
                "are counted in the summary under 'failures')",
                what,
                type(exc).__name__,
                exc,
            )

    def row_done(self, failed: bool) -> None:
        with self._lock:
            self.done += 1
            if failed:
                self.failed_rows += 1
            done, failed_rows = self.done, self.failed_rows
        if self._progress is not None:
            elapsed = max(time.perf_counter() - self._started, 1e-9)
            self._progress.update(
                self._task, completed=done, failed=failed_rows, rate=f"{done / elapsed:.1f} rows/s"
            )

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


# Rows per batch, in multiples of the parallelism: enough that the pause at the end
# of a batch (waiting for its slowest row) costs about 1%.
_BATCH_WAVES = 100

# Scores held before a row sends them as feedback (one /feedback/batch/create request).
_SCORES_BATCH = 500

# The run an evaluate() is in (tasks and worker threads inherit it), so the
# traced predict_and_score keeps weave's signature (self, model, example).
_current_run: contextvars.ContextVar[_Run | None] = contextvars.ContextVar(
    "weave_client_evaluation_run", default=None
)
# What failed in the row being run (each row runs in its own context copy).
_current_row: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "weave_client_evaluation_row", default=None
)


def _native(fn: Any) -> bool:
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


async def _run_op(fn: Any, kwargs: dict[str, Any]) -> Any:
    """Run an op (or bound op): ops of this flavour here; sync ops under the async
    flavour in a worker thread (the context is copied, so their calls nest where
    they belong)."""
    if _native(fn):
        return await fn(**kwargs)
    return await async_run_blocking(functools.partial(fn, **kwargs))


async def _run_op_call(fn: Any, kwargs: dict[str, Any]) -> tuple[Any, Any]:
    """``_run_op`` returning ``(result, call)`` (the call None when untraced)."""
    if _native(fn):
        result: tuple[Any, Any] = await fn.call(**kwargs)
        return result
    ran: tuple[Any, Any] = await async_run_blocking(functools.partial(fn.call, **kwargs))
    return ran


class _EvaluateOp(AsyncOp[..., Any]):
    """``Evaluation.evaluate``: an op, saved with the evaluation and traced as weave's,
    whose bound form first saves what the evaluation refers to (inputs are recorded
    when the call starts, so ``self`` and ``model`` must have refs by then)."""

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        return _BoundEvaluate(self, instance)


class _BoundEvaluate:
    """``evaluation.evaluate``: save, then run the traced op."""

    __slots__ = ("__self__", "op")

    def __init__(self, op: _EvaluateOp, evaluation: Evaluation) -> None:
        self.op = op
        self.__self__ = evaluation

    def __repr__(self) -> str:
        return f"<bound {self.op!r} of {self.__self__!r}>"

    async def __call__(self, model: Any) -> dict[str, Any]:
        evaluation = self.__self__
        model = _as_model(model)
        evaluation._check_runnable(model)
        client = current_client()
        if client is not None:
            await evaluation._save_for(client, model)
        summary: dict[str, Any] = await self.op(evaluation, model)
        return summary


def _evaluate_op(fn: Callable[..., Any]) -> _EvaluateOp:
    return _EvaluateOp(fn, call_display_name=_default_display_name)


class Evaluation(Object):
    """An evaluation: a dataset, scorers, and ``evaluation.evaluate(model)`` to run them.

    - ``dataset``: a ``Dataset`` or a list of dict rows.
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

    dataset: Dataset
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
        if isinstance(value, Dataset):
            return value
        if isinstance(value, list):
            return Dataset(rows=value)
        if is_dataset(value):
            # The other flavour's Dataset: same fields, rows kept as given.
            local = getattr(value, "_local_rows", None)
            return Dataset(
                name=value.name,
                description=value.description,
                rows=local if local is not None else value.__dict__["rows"],
            )
        if isinstance(value, WeaveObject) and value._class_name == "Dataset":
            fields = value._asdict()
            return Dataset(
                name=fields.get("name"), description=fields.get("description"), rows=fields["rows"]
            )
        raise TypeError(
            f"Evaluation dataset must be a Dataset or a list of dict rows, got {type(value).__name__}"
        )

    @field_validator("scorers", mode="before")
    @classmethod
    def _check_scorers(cls, value: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, list | tuple):
            raise TypeError(f"Evaluation scorers must be a list, got {type(value).__name__}")
        out = []
        for i, scorer in enumerate(value):
            if isinstance(scorer, type):
                raise TypeError(
                    f"scorers[{i}] is the class {scorer.__name__}; pass an instance: {scorer.__name__}()"
                )
            if isinstance(scorer, Object):
                score_op(scorer)  # raises naming the scorer if it has no score op
                out.append(scorer)
            else:
                out.append(as_op(scorer, what=f"scorers[{i}]"))
        names = [scorer_name(s) for s in out]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"Evaluation scorers have duplicate names: {duplicates}")
        return out

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

    @async_op(name="Evaluation.predict_and_score")
    async def predict_and_score(self, model: Any, example: dict[str, Any]) -> dict[str, Any]:
        """Run the model on one row, then every scorer on its output."""
        run = _current_run.get()
        model_input = example
        if self._preprocess is not None:
            model_input = self._preprocess(example)
            if not isinstance(model_input, dict):
                raise ArgumentMismatchError(
                    f"preprocess_model_input must return a dict, got {type(model_input).__name__}"
                )
        predict = _predict_op(model)
        args = model_arguments(predict, model_input, example)
        # The predict call's summary (token usage, rolled up from its children) is the
        # first child summary this call collects; reading it costs nothing, where
        # op.call() would build a Call object for every row.
        frame = current_frame()
        seen = len(frame.child_summaries or ()) if frame is not None else 0
        started = time.perf_counter()
        try:
            output, predict_call = await _run_op_call(predict, args)
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
        plan = run.scorer_plan if run is not None else self._scorer_plan()
        unsent: list[tuple[str, Any, Any, Any]] = []
        for scorer, name, score in plan:
            score_args = scorer_arguments(scorer, scorer_input, output)
            try:
                result, score_call = await _run_op_call(score, score_args)
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
            with run._lock:
                run.scores.extend(unsent)
        else:
            for item in unsent:
                await _send_score(item)
        return {"output": output, "scores": scores, "model_latency": latency}

    @async_op(name="Evaluation.summarize")
    async def summarize(self, eval_table: EvaluationResults) -> dict[str, Any]:
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
                        summary[name] = await _run_op(summarize, {"score_rows": scores})
                    else:
                        summary[name] = auto_summarize(scores)
            else:
                column_summary = auto_summarize(values)
                if column_summary:
                    summary[column] = column_summary
        return summary

    @_evaluate_op
    async def evaluate(self, model: Any) -> dict[str, Any]:
        """Run ``model`` (a ``Model`` or an op) over the dataset with every scorer.

        With a current client the dataset, scorers, model and this evaluation are
        saved first (so the calls refer to them by ref, as weave's do) and every
        step is traced; without one it runs untraced. Returns the summary dict.
        A row whose model or scorer raises is counted under ``failures``; a row
        that does not fit the model's or a scorer's arguments stops the run with
        a ``TypeError`` saying which names are missing.
        """
        total = await self.dataset.count() * self.trials
        show_progress = self.verbose and sys.stderr.isatty()
        run = _Run(total, show_progress, self._scorer_plan())
        limit = self._parallelism()
        # Rows are read (a stored dataset: a page at a time) and run in batches, so
        # only one batch of rows and tasks is held however large the dataset is.
        batch_size = limit * _BATCH_WAVES
        results: list[dict[str, Any]] = []
        batch: list[dict[str, Any]] = []
        token = _current_run.set(run)
        try:
            for _ in range(self.trials):
                async for row in self.dataset:
                    batch.append(row)
                    if len(batch) >= batch_size:
                        results.extend(await self._run_rows(model, batch, run, limit))
                        batch = []
                        await _send_scores(run, limit)
            if batch:
                results.extend(await self._run_rows(model, batch, run, limit))
            await _send_scores(run, limit)
        finally:
            _current_run.reset(token)
            run.close()
        eval_table = EvaluationResults(rows=results)
        client = current_client()
        if client is not None:
            try:
                await _save(client, eval_table, "EvaluationResults")
            except UnsaveableValueError as exc:
                # An output only the trace encoder can record (its repr): the
                # summarize call then carries the rows inline instead of a ref.
                logger.info("weave_client: evaluation results not saved as a table: %s", exc)
        summary: dict[str, Any] = await self.summarize(eval_table)
        usage = sum_usage(run.usages)
        if usage:
            summary["usage"] = usage
        if run.failures:
            summary["failures"] = {"rows": run.failed_rows, **run.failures}
        if self.verbose:
            print(format_summary(summary, f"Evaluation summary ({self.name or 'Evaluation'})"))
        return summary

    async def _run_rows(
        self, model: Any, rows: list[dict[str, Any]], run: _Run, limit: int
    ) -> list[dict[str, Any]]:
        jobs = [functools.partial(self._run_row, model, row, run) for row in rows]
        return await async_gather_bounded(jobs, limit)

    async def _run_row(self, model: Any, row: dict[str, Any], run: _Run) -> dict[str, Any]:
        failed: list[str] = []
        token = _current_row.set(failed)
        result: dict[str, Any]
        try:
            result = await self.predict_and_score(model, row)
        except ArgumentMismatchError:
            raise
        except Exception as exc:
            run.failed("predict_and_score", exc)
            result = {"output": None, "scores": {}}
        finally:
            _current_row.reset(token)
        run.row_done(failed=bool(failed))
        if len(run.scores) >= _SCORES_BATCH:
            # Scores go out while the other rows run (one row slot sends a batch).
            await _send_scores(run, 1)
        return result

    def _parallelism(self) -> int:
        return self.parallelism if self.parallelism is not None else _settings.parallelism()

    def _scorer_plan(self) -> list[tuple[Any, str, Any]]:
        """``(scorer, result key, score op)`` of each scorer (worked out once per run)."""
        return [(s, scorer_name(s), score_op(s)) for s in self.scorers or ()]

    def _check_runnable(self, model: Any) -> None:
        """Fail before anything runs if an op cannot run in this flavour."""
        _native(_predict_op(model))
        for scorer in self.scorers or ():
            _native(score_op(scorer))
            summarize = getattr(scorer, "summarize", None)
            if not is_op(scorer) and is_op(summarize):
                _native(summarize)

    async def _save_for(self, client: Any, model: Any) -> None:
        """Save what the evaluation refers to, then the evaluation (skipping unchanged ones)."""
        sender = client._sender
        # Ops get their refs at once (their saves are queued on the sender); objects
        # are saved side by side, then the evaluation that refers to them.
        saves = [functools.partial(_save, client, self.dataset, self.dataset.name or "Dataset")]
        for scorer in self.scorers or ():
            if is_op(scorer):
                op_of(scorer)._register(client, sender)
            else:
                saves.append(
                    functools.partial(_save, client, scorer, scorer.name or type(scorer).__name__)
                )
        if is_op(self.preprocess_model_input):
            op_of(self.preprocess_model_input)._register(client, sender)
        if is_op(model):
            op_of(model)._register(client, sender)
        else:
            name = getattr(model, "name", None) or type(model).__name__
            saves.append(functools.partial(_save, client, model, name))
        await async_gather_bounded(saves, len(saves))
        await _save(client, self, self.name or "Evaluation")


def _as_model(model: Any) -> Any:
    if is_op(model):
        return model
    if isinstance(model, Object) or hasattr(model, "predict"):
        infer_method(model)  # raises naming what is missing
        return model
    if callable(model) and not isinstance(model, type):
        return as_op(model, what="model")
    raise TypeError(
        f"evaluate() takes a Model or an op (a function decorated with @async_op), got {model!r}"
    )


async def _send_scores(run: _Run, limit: int) -> None:
    """Record the scores of the rows run so far as feedback on their predict calls
    (batched; a record that cannot be stored is logged and counted, never raised)."""
    with run._lock:
        items, run.scores = run.scores, []
    if not items:
        return
    client = items[0][1]._client
    reqs = []
    failed = 0
    for predict_ref, score_call, scorer, result in items:
        try:
            ref = None if is_op(scorer) else client._ref_of(scorer)
            reqs.append(
                client._score_feedback(
                    predict_ref, score_call, ref.uri() if ref is not None else None, result
                )
            )
        except Exception as exc:
            failed += 1
            logger.warning("weave_client: a score could not be recorded as feedback: %r", exc)
    failed += await client._add_feedback_many(reqs, limit)
    if failed:
        run.feedback_failed += failed
        logger.warning(
            "weave_client: %d of %d scores could not be recorded as feedback on their"
            " predict calls (the scores are in the results and the summary)",
            failed,
            len(items),
        )


async def _send_score(item: tuple[str, Any, Any, Any]) -> None:
    """One score as feedback, outside an ``evaluate`` run; a failure is logged, not raised."""
    predict_ref, score_call, scorer, result = item
    client = score_call._client
    try:
        ref = None if is_op(scorer) else client._ref_of(scorer)
        await client._add_score_feedback(
            predict_ref, score_call, ref.uri() if ref is not None else None, result
        )
    except Exception as exc:
        logger.warning("weave_client: a score could not be recorded as feedback: %r", exc)


def _predict_op(model: Any) -> Any:
    return model if is_op(model) else infer_method(model)


async def _save(client: Any, obj: Any, name: str) -> None:
    """Save ``obj`` under ``name`` unless this client already saved it unchanged."""
    if client._ref_of(obj) is not None:
        return
    if isinstance(obj, Dataset | EvaluationResults):
        await store_table_rows(client, obj)
    await client.save(obj, sanitize_name(name))
