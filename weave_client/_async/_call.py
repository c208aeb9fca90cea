"""``AsyncCall``: one traced call as the server stores it, with its feedback accessor.

A ``AsyncCall`` is a snapshot of the server's record (``CallSchema``) bound to the
client that read it, so its methods (children, display name, feedback) go
through that client's connection and project.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .._context import using_client
from .._flow import ApplyScorerResult
from .._models import CallSchema, Feedback
from .._refs import CallRef
from .._serialize import decode

if TYPE_CHECKING:
    from ._client import AsyncWeaveClient

__all__ = ["AsyncCall", "AsyncCallFeedback"]


class AsyncCallFeedback:
    """Feedback on one call (or any ref): ``call.feedback.add_reaction("👍")`` and friends."""

    def __init__(self, client: AsyncWeaveClient, weave_ref: str) -> None:
        self._client = client
        self.weave_ref = weave_ref

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.weave_ref!r})"

    async def add(self, feedback_type: str, payload: Mapping[str, Any] | None = None) -> str:
        """Add feedback of a custom type; returns its id (``wandb.`` types are reserved)."""
        return await self._client.feedback(self.weave_ref, feedback_type, payload)

    async def add_reaction(self, emoji: str) -> str:
        """Add an emoji reaction (``"👍"``); returns the feedback id."""
        return await self._client._feedback.add(
            self.weave_ref, "wandb.reaction.1", {"emoji": emoji}
        )

    async def add_note(self, note: str) -> str:
        """Add a free-text note; returns the feedback id."""
        return await self._client._feedback.add(self.weave_ref, "wandb.note.1", {"note": note})

    async def query(
        self,
        *,
        feedback_type: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[Feedback]:
        """The feedback attached to this call, oldest first."""
        return await self._client.feedback_query(
            weave_ref=self.weave_ref, feedback_type=feedback_type, limit=limit, offset=offset
        )

    async def purge(self, feedback_id: str) -> None:
        """Delete one piece of feedback by its id."""
        await self._client.feedback_purge(feedback_id)


class AsyncCall:
    """A traced call read from the server.

    Fields mirror the wire ``CallSchema``: ``id``, ``trace_id``, ``parent_id``,
    ``thread_id`` and ``turn_id`` (set inside ``weave_client.thread`` blocks),
    ``op_name`` (the op's ref URI for traced ops), ``display_name``, ``inputs``,
    ``output``, ``exception``, ``summary``, ``attributes``, ``started_at``,
    ``ended_at``. ``inputs`` and ``output`` are decoded: nested objects come back
    as attribute-access values, refs as ``Ref`` objects to pass to
    ``client.get()``.

    Build one with ``AsyncCall._from_schema(client, schema)`` (a ``CallSchema`` or a
    dict of its fields); the op tracer does so for ``op.call()`` results.
    """

    id: str
    project_id: str
    trace_id: str
    parent_id: str | None
    thread_id: str | None
    turn_id: str | None
    op_name: str
    display_name: str | None
    inputs: dict[str, Any]
    output: Any
    exception: str | None
    summary: dict[str, Any]
    attributes: dict[str, Any]
    started_at: datetime.datetime | None
    ended_at: datetime.datetime | None
    deleted_at: datetime.datetime | None

    def __init__(
        self,
        client: AsyncWeaveClient,
        *,
        id: str,
        project_id: str,
        trace_id: str,
        op_name: str,
        parent_id: str | None = None,
        display_name: str | None = None,
        inputs: dict[str, Any] | None = None,
        output: Any = None,
        exception: str | None = None,
        summary: Mapping[str, Any] | None = None,
        attributes: Mapping[str, Any] | None = None,
        started_at: datetime.datetime | None = None,
        ended_at: datetime.datetime | None = None,
        deleted_at: datetime.datetime | None = None,
        thread_id: str | None = None,
        turn_id: str | None = None,
    ) -> None:
        self._client = client
        self.id = id
        self.project_id = project_id
        self.trace_id = trace_id
        self.parent_id = parent_id
        self.op_name = op_name
        self.display_name = display_name
        self.inputs = inputs if inputs is not None else {}
        self.output = output
        self.exception = exception
        self.summary = dict(summary) if summary else {}
        self.attributes = dict(attributes) if attributes else {}
        self.started_at = started_at
        self.ended_at = ended_at
        self.deleted_at = deleted_at
        self.thread_id = thread_id
        self.turn_id = turn_id
        self._feedback: AsyncCallFeedback | None = None

    @classmethod
    def _from_schema(cls, client: AsyncWeaveClient, schema: CallSchema | Mapping[str, Any]) -> AsyncCall:
        """A ``AsyncCall`` from the server's record (a ``CallSchema`` or a dict of its fields).

        ``inputs`` and ``output`` are decoded with the client's decoder (refs and
        weave-encoded objects become client values).
        """
        if not isinstance(schema, CallSchema):
            schema = CallSchema.model_validate(dict(schema))
        return cls(
            client,
            id=schema.id,
            project_id=schema.project_id,
            trace_id=schema.trace_id,
            op_name=schema.op_name,
            parent_id=schema.parent_id,
            # The server stores a removed display name as "".
            display_name=schema.display_name or None,
            inputs=decode(schema.inputs),
            output=decode(schema.output),
            exception=schema.exception,
            summary=dict(schema.summary) if schema.summary else None,
            attributes=dict(schema.attributes) if schema.attributes else None,
            started_at=schema.started_at,
            ended_at=schema.ended_at,
            deleted_at=schema.deleted_at,
            thread_id=schema.thread_id,
            turn_id=schema.turn_id,
        )

    def __repr__(self) -> str:
        name = self.display_name or self.op_name
        return f"{type(self).__name__}(id={self.id!r}, op={name!r}, trace_id={self.trace_id!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AsyncCall):
            return NotImplemented
        return (self.project_id, self.id) == (other.project_id, other.id)

    def __hash__(self) -> int:
        return hash((self.project_id, self.id))

    @property
    def entity(self) -> str:
        """The entity part of ``project_id``."""
        return self.project_id.split("/", 1)[0]

    @property
    def project(self) -> str:
        """The project part of ``project_id``."""
        return self.project_id.split("/", 1)[1]

    @property
    def op_short_name(self) -> str:
        """The op's plain name (``predict``), whether ``op_name`` is a ref or a name."""
        from .._refs import OpRef, is_ref_uri, parse_ref

        if is_ref_uri(self.op_name):
            try:
                ref = parse_ref(self.op_name)
            except ValueError:
                return self.op_name
            if isinstance(ref, OpRef):
                return ref.name
        return self.op_name

    @property
    def ref(self) -> CallRef:
        """``weave:///entity/project/call/{id}``."""
        return CallRef(self.entity, self.project, self.id)

    @property
    def ui_url(self) -> str | None:
        """This call's page in the W&B UI; None when the server is not the hosted service."""
        app_url = self._client._app_url
        return self.ref.ui_url_for(app_url) if app_url else None

    @property
    def feedback(self) -> AsyncCallFeedback:
        """Add, list and purge feedback on this call."""
        if self._feedback is None:
            self._feedback = AsyncCallFeedback(self._client, self.ref.uri())
        return self._feedback

    @property
    def latency_ms(self) -> float | None:
        """``summary.weave.latency_ms`` as the server derived it, if the call ended."""
        weave = self.summary.get("weave")
        value = weave.get("latency_ms") if isinstance(weave, Mapping) else None
        return float(value) if isinstance(value, (int, float)) else None

    @property
    def status(self) -> str | None:
        """``summary.weave.status``: ``success``, ``error``, ``running`` (server-derived)."""
        weave = self.summary.get("weave")
        value = weave.get("status") if isinstance(weave, Mapping) else None
        return str(value) if value is not None else None

    async def children(self) -> list[AsyncCall]:
        """The calls made directly inside this one, in start order."""
        return await self._client.calls(
            parent_ids=[self.id], sort_by=[{"field": "started_at", "direction": "asc"}]
        )

    async def set_display_name(self, name: str | None) -> None:
        """Rename the call in the UI (None removes the display name)."""
        if name is not None and not isinstance(name, str):
            raise TypeError(f"display name must be a str or None, got {type(name).__name__}")
        if name == "":
            raise ValueError("display name is empty (pass None to remove it)")
        self.display_name = await self._client._calls.set_display_name(self.id, name)

    async def apply_scorer(
        self, scorer: Any, additional_scorer_kwargs: Mapping[str, Any] | None = None
    ) -> ApplyScorerResult:
        """Score this call's output with ``scorer`` and record the score as feedback.

        As weave's ``Call.apply_scorer``: the scorer (an op, a plain function, or a
        ``Scorer``) gets this call's inputs (without ``self``) plus
        ``additional_scorer_kwargs`` by name, and its ``output``; its call is traced
        by this call's client. The score is stored on this call as
        ``wandb.runnable.<scorer name>`` feedback referring to the scorer
        (``runnable_ref``) and the score call (``call_ref``). Returns
        ``ApplyScorerResult(result, score_call)``.
        """
        from .._flow import Object, as_op, is_op, score_op, scorer_arguments, scorer_name
        from .._refs import ObjectRef
        from .._tracing import sanitize_name

        if not is_op(scorer) and not (isinstance(scorer, Object) or hasattr(scorer, "score")):
            scorer = as_op(scorer, what="scorer")
        if additional_scorer_kwargs is not None and not isinstance(
            additional_scorer_kwargs, Mapping
        ):
            raise TypeError(
                "additional_scorer_kwargs must be a dict, got "
                f"{type(additional_scorer_kwargs).__name__}"
            )
        client = self._client
        example = {k: v for k, v in self.inputs.items() if k != "self"}
        example.update(additional_scorer_kwargs or {})
        output = self.output
        if isinstance(output, ObjectRef):
            output = await client.get(output)
        scorer_ref: str | None = None
        if not is_op(scorer):
            # A Scorer object is the runnable weave names (saved, as weave saves
            # the object inputs of a call).
            ref = client._saved.ref_of(scorer)
            if ref is None:
                ref = await client.save(scorer, sanitize_name(scorer_name(scorer)))
            scorer_ref = ref.uri()
        score = score_op(scorer)
        args = scorer_arguments(scorer, example, output)
        with using_client(client):
            result, score_call = await _call_op(score, args)
        if score_call is not None:
            await client._feedback.add_score(self.ref.uri(), score_call, scorer_ref, result)
        return ApplyScorerResult(result, score_call)

    async def delete(self) -> None:
        """Delete this call and its descendants."""
        await self._client.delete_call(self)

    def to_dict(self) -> dict[str, Any]:
        """The call's fields as a plain dict (values as decoded)."""
        return {
            "id": self.id,
            "project_id": self.project_id,
            "trace_id": self.trace_id,
            "parent_id": self.parent_id,
            "op_name": self.op_name,
            "display_name": self.display_name,
            "inputs": self.inputs,
            "output": self.output,
            "exception": self.exception,
            "summary": self.summary,
            "attributes": self.attributes,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "deleted_at": self.deleted_at,
            "thread_id": self.thread_id,
            "turn_id": self.turn_id,
        }


async def _call_op(fn: Any, kwargs: dict[str, Any]) -> tuple[Any, AsyncCall | None]:
    """``fn.call(**kwargs)``: an op of this flavour directly; a sync op under the async
    flavour in a worker thread (context copied, so its call nests where it belongs)."""
    from .._flow import is_async_function, op_function, op_of
    from .._synchronization import async_callable_kind, async_run_blocking

    if async_callable_kind(op_function(fn)) == "function":
        result: tuple[Any, AsyncCall | None] = await fn.call(**kwargs)
        return result
    if is_async_function(op_function(fn)):
        raise TypeError(
            f"scorer {op_of(fn).name} is an async function: apply it to the calls of an"
            " AsyncWeaveClient (weave_client.AsyncCall)"
        )
    ran: tuple[Any, AsyncCall | None] = await async_run_blocking(functools.partial(fn.call, **kwargs))
    return ran
