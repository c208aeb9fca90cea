"""Feedback: add it to calls and refs, query it, purge it, and store scores as feedback."""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from .._errors import APIStatusError, NotFoundError
from .._flow import runnable_feedback
from .._models import (
    Feedback,
    FeedbackCreateBatchReq,
    FeedbackCreateReq,
    FeedbackPurgeReq,
    FeedbackQueryReq,
    Query,
    SortBy,
)
from .._query_args import eq, query_of, ref_uri
from .._refs import parse_ref
from .._saved import SavedObjects
from .._synchronization import async_gather_bounded
from .._tracing import encode_value
from ._session import AsyncSession

if TYPE_CHECKING:
    from .._refs import Ref
    from ._call import AsyncCall

__all__ = ["AsyncFeedback", "AsyncFeedbackMethods"]

logger = logging.getLogger("weave_client")

# Feedback records per /feedback/batch/create request.
_FEEDBACK_BATCH = 500


class AsyncFeedback:
    """Feedback of a client's session (``client.feedback*``, reactions, notes, scores)."""

    def __init__(self, session: AsyncSession, saved: SavedObjects) -> None:
        self._session = session
        self._saved = saved
        # Whether the server has /feedback/batch/create (None: not known yet).
        self._batches: bool | None = None

    async def add(
        self,
        target: Any,
        feedback_type: str,
        payload: Mapping[str, Any] | None,
        *,
        runnable_ref: str | None = None,
        call_ref: str | None = None,
    ) -> str:
        """Store one feedback record on ``target`` (a call, ref or URI); its id."""
        weave_ref = ref_uri(target)
        if payload is not None and not isinstance(payload, Mapping):
            raise TypeError(f"feedback payload must be a dict, got {type(payload).__name__}")
        await self._session.ready()
        project_id = parse_ref(weave_ref).project_id
        res = await self._session.api.feedback_create(
            FeedbackCreateReq(
                project_id=project_id,
                weave_ref=weave_ref,
                feedback_type=feedback_type,
                payload=dict(payload or {}),
                runnable_ref=runnable_ref,
                call_ref=call_ref,
            )
        )
        return res.id

    async def add_user_feedback(
        self, call: Any, type: str, payload: Mapping[str, Any] | None
    ) -> str:
        """``client.feedback``: feedback of a type of the user's own (not ``wandb.*``)."""
        if not isinstance(type, str) or not type:
            raise ValueError(f"feedback type must be a non-empty str, got {type!r}")
        if type.startswith("wandb."):
            raise ValueError(
                f"feedback type {type!r} is reserved (the 'wandb.' prefix); use "
                "call.feedback.add_reaction()/add_note() or a type of your own"
            )
        return await self.add(call, type, payload)

    def score_request(
        self, call_ref: str, score_call: AsyncCall, scorer_ref: str | None, output: Any
    ) -> FeedbackCreateReq:
        """A scorer's result as feedback on the call it scored, as weave's ``_send_score_call``
        records it: type ``wandb.runnable.<scorer>``, payload ``{"output": ...}``, the scorer
        (object or op) as ``runnable_ref`` and the score call as ``call_ref``."""
        feedback_type, runnable_ref = runnable_feedback(scorer_ref, score_call.op_name)
        return FeedbackCreateReq(
            project_id=score_call.project_id,
            weave_ref=call_ref,
            feedback_type=feedback_type,
            payload={"output": encode_value(output, self._saved.ref_of)},
            runnable_ref=runnable_ref,
            call_ref=score_call.ref.uri(),
        )

    async def add_score(
        self, call_ref: str, score_call: AsyncCall, scorer_ref: str | None, output: Any
    ) -> str:
        """Store one score as feedback (see ``score_request``); returns its id."""
        req = self.score_request(call_ref, score_call, scorer_ref, output)
        await self._session.ready()
        res = await self._session.api.feedback_create(req)
        return res.id

    async def add_many(self, reqs: list[FeedbackCreateReq], limit: int) -> int:
        """Store many feedback records; returns how many could not be stored (logged).

        Sent in batches where the server has ``/feedback/batch/create`` (ours and the
        hosted service), else one request per record, ``limit`` at a time.
        """
        if not reqs:
            return 0
        await self._session.ready()
        api = self._session.api
        singles: list[FeedbackCreateReq] = []
        failed = 0
        for start in range(0, len(reqs), _FEEDBACK_BATCH):
            chunk = reqs[start : start + _FEEDBACK_BATCH]
            if self._batches is False:
                singles.extend(chunk)
                continue
            try:
                await api.feedback_create_batch(FeedbackCreateBatchReq(batch=chunk))
                self._batches = True
            except NotFoundError:
                # No such route (an older server): one request per record from now on.
                self._batches = False
                singles.extend(chunk)
            except APIStatusError:
                # One bad record (or too large a batch) fails the whole batch: store the
                # records one by one, so only the bad ones are lost (and logged).
                self._batches = True
                singles.extend(chunk)
            except Exception as exc:
                failed += len(chunk)
                logger.warning(
                    "weave_client: %d feedback records could not be stored: %r", len(chunk), exc
                )

        async def create(req: FeedbackCreateReq) -> bool:
            try:
                await api.feedback_create(req)
                return True
            except Exception as exc:
                logger.warning(
                    "weave_client: feedback %s on %s could not be stored: %r",
                    req.feedback_type,
                    req.weave_ref,
                    exc,
                )
                return False

        jobs = [functools.partial(create, req) for req in singles]
        stored = await async_gather_bounded(jobs, limit) if jobs else []
        return failed + stored.count(False)

    async def query(
        self,
        query: Query | Mapping[str, Any] | None,
        weave_ref: Any,
        feedback_type: str | None,
        reaction: str | None,
        limit: int | None,
        offset: int | None,
    ) -> list[Feedback]:
        """``client.feedback_query``: the project's feedback, oldest first, narrowed."""
        await self._session.ready()
        conditions: list[dict[str, Any]] = []
        if query is not None:
            conditions.append(query_of(query).model_dump(by_alias=True)["$expr"])  # type: ignore[union-attr]
        if weave_ref is not None:
            conditions.append(eq("weave_ref", ref_uri(weave_ref)))
        if feedback_type is not None:
            conditions.append(eq("feedback_type", feedback_type))
        if reaction is not None:
            conditions.append(eq("feedback_type", "wandb.reaction.1"))
            conditions.append(eq("payload.emoji", reaction))
        expr: Query | None = None
        if conditions:
            expr = Query.model_validate(
                {"$expr": conditions[0] if len(conditions) == 1 else {"$and": conditions}}
            )
        res = await self._session.api.feedback_query(
            FeedbackQueryReq(
                project_id=self._session.project_id,
                query=expr,
                sort_by=[SortBy(field="created_at", direction="asc")],
                limit=limit,
                offset=offset,
            )
        )
        return [Feedback.model_validate(item) for item in res.result]

    async def purge(self, feedback_ids: str | Iterable[str]) -> None:
        """``client.feedback_purge``: delete feedback by id (one id or several)."""
        ids = [feedback_ids] if isinstance(feedback_ids, str) else list(feedback_ids)
        if not ids:
            return
        for fid in ids:
            if not isinstance(fid, str) or not fid:
                raise ValueError(f"feedback ids must be non-empty strs, got {fid!r}")
        await self._session.ready()
        # The server accepts purges by id only: one $eq, or an $or of them.
        eqs = [eq("id", fid) for fid in ids]
        expr = eqs[0] if len(eqs) == 1 else {"$or": eqs}
        await self._session.api.feedback_purge(
            FeedbackPurgeReq(
                project_id=self._session.project_id, query=Query.model_validate({"$expr": expr})
            )
        )


class AsyncFeedbackMethods:
    """The client's feedback methods (``AsyncWeaveClient`` derives from this)."""

    _feedback: AsyncFeedback

    async def feedback(
        self,
        call: AsyncCall | Ref | str,
        type: str,
        payload: Mapping[str, Any] | None = None,
    ) -> str:
        """Attach feedback of ``type`` with a JSON ``payload`` to a call (or any ref).

        Returns the feedback id. Types starting with ``wandb.`` are reserved: use
        ``call.feedback.add_reaction()``/``add_note()`` for those.
        """
        return await self._feedback.add_user_feedback(call, type, payload)

    async def feedback_query(
        self,
        query: Query | Mapping[str, Any] | None = None,
        *,
        weave_ref: AsyncCall | Ref | str | None = None,
        feedback_type: str | None = None,
        reaction: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[Feedback]:
        """Feedback in this project, oldest first, narrowed by a ``$expr`` query and/or
        the target (``weave_ref``: a call, ref or URI), ``feedback_type`` and ``reaction``."""
        return await self._feedback.query(query, weave_ref, feedback_type, reaction, limit, offset)

    async def feedback_purge(self, feedback_ids: str | Iterable[str]) -> None:
        """Delete feedback by id (one id or several)."""
        await self._feedback.purge(feedback_ids)
