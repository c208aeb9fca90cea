"""What an evaluation saves: the objects it refers to, itself, and its per-row results.

``evaluate`` records its inputs when its call starts, so the dataset, the scorers,
the model and the evaluation are saved first (each once per client while
unchanged) and the calls refer to them by ref, as weave's do. The per-row results
(``AsyncEvaluationResults``) are saved as weave saves them, the rows as a table,
so the ``summarize`` call's input is a ref however many rows there are.
"""

from __future__ import annotations

import functools
import logging
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import PrivateAttr

from .._errors import UnsaveableValueError
from .._flow import Object, is_op, op_of
from .._refs import TableRef
from .._synchronization import async_gather_bounded
from .._tracing import sanitize_name
from ._dataset import AsyncDataset

if TYPE_CHECKING:
    from ._evaluation import AsyncEvaluation

__all__ = ["AsyncEvaluationResults", "save", "save_for", "save_results"]

logger = logging.getLogger("weave_client")


class AsyncEvaluationResults(Object):
    """The per-row results ``AsyncEvaluation.summarize`` reads (``output``, ``scores``, ``model_latency``).

    Saved as weave saves it: the rows as a table, the object referring to it, so
    the ``summarize`` call's input is a ref however many rows there are.
    """

    # Saved under weave's class name, whatever this flavour calls it.
    _weave_class_name: ClassVar[str] = "EvaluationResults"

    rows: Any

    _local_rows: list[dict[str, Any]] = PrivateAttr(default_factory=list)

    def model_post_init(self, context: Any) -> None:
        super().model_post_init(context)
        if isinstance(self.rows, list):
            self._local_rows = self.rows

    def _weave_table_rows(self, project_id: str) -> list[dict[str, Any]] | None:
        """Rows to store as a table before saving (I/O-free hook, as ``AsyncDataset``'s)."""
        return self._local_rows if isinstance(self.rows, list) else None

    def _weave_table_saved(self, table_ref: TableRef) -> None:
        self.rows = table_ref

    def results(self) -> list[dict[str, Any]]:
        """The rows, in dataset order (trials one after the other)."""
        return self._local_rows


async def save(client: Any, obj: Any, name: str) -> None:
    """Save ``obj`` under ``name`` unless this client already saved it unchanged."""
    if client._saved.ref_of(obj) is not None:
        return
    if isinstance(obj, AsyncDataset | AsyncEvaluationResults):
        await client._tables.store_rows_of(obj)
    await client.save(obj, sanitize_name(name))


async def save_for(client: Any, evaluation: AsyncEvaluation, model: Any) -> None:
    """Save what the evaluation refers to, then the evaluation (skipping unchanged ones)."""
    sender = client._sender
    # Ops get their refs at once (their saves are queued on the sender); objects
    # are saved side by side, then the evaluation that refers to them.
    dataset = evaluation.dataset
    saves = [functools.partial(save, client, dataset, dataset.name or "Dataset")]
    for scorer in evaluation.scorers or ():
        if is_op(scorer):
            op_of(scorer)._register(client, sender)
        else:
            saves.append(functools.partial(save, client, scorer, scorer.name or type(scorer).__name__))
    if is_op(evaluation.preprocess_model_input):
        op_of(evaluation.preprocess_model_input)._register(client, sender)
    if is_op(model):
        op_of(model)._register(client, sender)
    else:
        name = getattr(model, "name", None) or type(model).__name__
        saves.append(functools.partial(save, client, model, name))
    await async_gather_bounded(saves, len(saves))
    await save(client, evaluation, evaluation.name or "Evaluation")


async def save_results(client: Any, eval_table: AsyncEvaluationResults) -> None:
    """Save the per-row results (their rows as a table); results holding an output only
    the trace encoder can record are left unsaved (logged), the ``summarize`` call then
    carrying the rows inline instead of a ref."""
    try:
        await save(client, eval_table, "EvaluationResults")
    except UnsaveableValueError as exc:
        logger.info("weave_client: evaluation results not saved as a table: %s", exc)
