"""Scores as feedback: each score of an evaluation recorded on the predict call it
scored, as weave's evaluation does (``apply_scorer``).

In an ``evaluate`` run the scores are held by the run and sent in batches (one
``/feedback/batch/create`` request each); a score outside a run is sent at once.
A score that cannot be recorded is logged and counted, never raised: it is in
the results and the summary either way.
"""

from __future__ import annotations

import logging
from typing import Any

from .._eval_state import EvalRun
from .._flow import is_op

__all__ = ["send_score", "send_scores"]

logger = logging.getLogger("weave_client")


async def send_scores(run: EvalRun, limit: int) -> None:
    """Record the scores of the rows run so far as feedback on their predict calls
    (batched; a record that cannot be stored is logged and counted, never raised)."""
    items = run.take_scores()
    if not items:
        return
    client = items[0][1]._client
    reqs = []
    failed = 0
    for predict_ref, score_call, scorer, result in items:
        try:
            ref = None if is_op(scorer) else client._saved.ref_of(scorer)
            reqs.append(
                client._feedback.score_request(
                    predict_ref, score_call, ref.uri() if ref is not None else None, result
                )
            )
        except Exception as exc:
            failed += 1
            logger.warning("weave_client: a score could not be recorded as feedback: %r", exc)
    failed += await client._feedback.add_many(reqs, limit)
    if failed:
        run.feedback_failed += failed
        logger.warning(
            "weave_client: %d of %d scores could not be recorded as feedback on their"
            " predict calls (the scores are in the results and the summary)",
            failed,
            len(items),
        )


async def send_score(item: tuple[str, Any, Any, Any]) -> None:
    """One score as feedback, outside an ``evaluate`` run; a failure is logged, not raised."""
    predict_ref, score_call, scorer, result = item
    client = score_call._client
    try:
        ref = None if is_op(scorer) else client._saved.ref_of(scorer)
        await client._feedback.add_score(
            predict_ref, score_call, ref.uri() if ref is not None else None, result
        )
    except Exception as exc:
        logger.warning("weave_client: a score could not be recorded as feedback: %r", exc)
