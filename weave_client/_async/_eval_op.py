"""``Evaluation.evaluate`` as an op: saved with the evaluation and traced as weave's,
with a bound form that first saves what the evaluation refers to (the call
records its inputs when it starts, so ``self`` and ``model`` must have refs by then).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._context import current_client
from .._eval_inputs import as_model, default_display_name
from ._eval_run import check_runnable
from ._eval_save import save_for
from ._op import AsyncOp

if TYPE_CHECKING:
    from ._evaluation import AsyncEvaluation

__all__ = ["evaluate_op"]


class _EvaluateOp(AsyncOp[..., Any]):
    """``AsyncEvaluation.evaluate``: an op, saved with the evaluation and traced as weave's,
    whose bound form first saves what the evaluation refers to (inputs are recorded
    when the call starts, so ``self`` and ``model`` must have refs by then)."""

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        if instance is None:
            return self
        return _BoundEvaluate(self, instance)


class _BoundEvaluate:
    """``evaluation.evaluate``: save, then run the traced op."""

    __slots__ = ("__self__", "op")

    def __init__(self, op: _EvaluateOp, evaluation: AsyncEvaluation) -> None:
        self.op = op
        self.__self__ = evaluation

    def __repr__(self) -> str:
        return f"<bound {self.op!r} of {self.__self__!r}>"

    async def __call__(self, model: Any) -> dict[str, Any]:
        evaluation = self.__self__
        model = as_model(model, "@async_op")
        check_runnable(evaluation.scorers, model)
        client = current_client()
        if client is not None:
            await save_for(client, evaluation, model)
        summary: dict[str, Any] = await self.op(evaluation, model)
        return summary


def evaluate_op(fn: Callable[..., Any]) -> _EvaluateOp:
    """Decorate ``AsyncEvaluation.evaluate`` (named as weave names it)."""
    return _EvaluateOp(fn, name="Evaluation.evaluate", call_display_name=default_display_name)
