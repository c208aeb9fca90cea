"""Feedback of the local server: create, query, purge (by id, as weave allows), replace.

Queries are compiled by ``_feedback_query`` (the ``$expr`` language over feedback fields).
"""

from __future__ import annotations

import json
import re
import sqlite3
import uuid
from typing import Any

import emoji

from .._models import (
    FeedbackCreateReq,
    FeedbackPurgeReq,
    FeedbackQueryReq,
    FeedbackReplaceReq,
)
from ._common import InvalidRequest, dump_json, now_timestamp, parse_ref, purge_ids
from ._db import Database
from ._feedback_query import compile_feedback_query, row_to_feedback

__all__ = ["FeedbackStore"]

# The hosted service caps a feedback payload at 1 MiB of JSON.
_MAX_PAYLOAD = 1 << 20
# Without accounts, every record belongs to one local user.
LOCAL_USER = "local"




_SKIN_TONE = re.compile(r"_(light|medium-light|medium|medium-dark|dark)_skin_tone")


def _detone(text: str) -> str:
    """``text`` with the skin tones of its emojis removed, as weave's server removes them."""
    out = []
    for token in emoji.analyze(text, non_emoji=True):
        if isinstance(token.value, str):
            out.append(token.value)
        else:
            out.append(emoji.emojize(_SKIN_TONE.sub("", emoji.demojize(token.value.emoji))))
    return "".join(out)


def _augment_reaction(payload: dict[str, Any]) -> dict[str, Any]:
    """A reaction's payload with weave's ``alias``, ``detoned`` and ``detoned_alias`` added.

    ``🎱`` gets ``alias`` ``:pool_8_ball:``; a toned ``👍🏽`` is ``detoned`` to ``👍``
    (``:thumbs_up:``). Anything but exactly one emoji is refused (400).
    """
    em = payload.get("emoji")
    if not isinstance(em, str) or not em:
        raise InvalidRequest("payload.emoji: a reaction needs one emoji string")
    if emoji.emoji_count(em) != 1:
        raise InvalidRequest(
            f"Value of emoji key in payload must be exactly one emoji (payload.emoji: {em!r})"
        )
    detoned = _detone(em)
    return {
        **payload,
        "alias": emoji.demojize(em),
        "detoned": detoned,
        "detoned_alias": emoji.demojize(detoned),
    }


def _validate(req: FeedbackCreateReq) -> tuple[dict[str, Any], str]:
    """Check a create request as weave does; returns the payload to store and its JSON text."""
    parse_ref(req.weave_ref, where="weave_ref")
    if not req.feedback_type:
        raise InvalidRequest("feedback_type: must not be empty")
    payload = req.payload
    if req.feedback_type == "wandb.reaction.1":
        payload = _augment_reaction(payload)
    elif req.feedback_type == "wandb.note.1":
        note = req.payload.get("note")
        if not isinstance(note, str) or not 1 <= len(note) <= 1024:
            raise InvalidRequest("payload.note: a note needs a string of 1 to 1024 characters")
    for name in ("annotation_ref", "runnable_ref", "call_ref", "trigger_ref"):
        value = getattr(req, name)
        if value is not None:
            parse_ref(value, where=name)
    text = dump_json(payload)
    if len(text) > _MAX_PAYLOAD:
        raise InvalidRequest(
            f"payload: {len(text)} bytes of JSON is more than the {_MAX_PAYLOAD} allowed"
        )
    return payload, text


class FeedbackStore:
    """Storage of feedback records."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    def _insert(
        conn: sqlite3.Connection, req: FeedbackCreateReq, payload: dict[str, Any], text: str
    ) -> dict[str, Any]:
        record = {
            "id": str(uuid.uuid4()),
            "created_at": now_timestamp(),
            "wb_user_id": req.wb_user_id or LOCAL_USER,
        }
        conn.execute(
            """INSERT INTO feedback (
                id, project_id, weave_ref, wb_user_id, creator, created_at, feedback_type,
                payload_dump, annotation_ref, runnable_ref, call_ref, trigger_ref
            ) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (
                record["id"],
                req.project_id,
                req.weave_ref,
                record["wb_user_id"],
                req.creator,
                record["created_at"],
                req.feedback_type,
                text,
                req.annotation_ref,
                req.runnable_ref,
                req.call_ref,
                req.trigger_ref,
            ),
        )
        # As weave's server: a reaction's reply carries the augmented payload;
        # any other reply an empty one ("keep what you sent").
        reply = payload if req.feedback_type == "wandb.reaction.1" else {}
        return {**record, "payload": reply}

    def create(self, req: FeedbackCreateReq) -> dict[str, Any]:
        """``/feedback/create``: returns id, created_at, wb_user_id and payload."""
        payload, text = _validate(req)
        with self.db.write() as conn:
            return self._insert(conn, req, payload, text)

    def create_batch(self, reqs: list[FeedbackCreateReq]) -> list[dict[str, Any]]:
        """``/feedback/batch/create``: every item checked first, then all stored in one
        transaction (all or none); the replies in order."""
        payloads = []
        for i, req in enumerate(reqs):
            try:
                payloads.append(_validate(req))
            except InvalidRequest as exc:
                raise InvalidRequest(f"batch[{i}].{exc}") from None
        with self.db.write() as conn:
            return [
                self._insert(conn, req, payload, text)
                for req, (payload, text) in zip(reqs, payloads, strict=True)
            ]

    def replace(self, req: FeedbackReplaceReq) -> dict[str, Any]:
        """``/feedback/replace``: delete ``feedback_id`` and create the new record, atomically."""
        payload, text = _validate(req)
        with self.db.write() as conn:
            conn.execute(
                "DELETE FROM feedback WHERE project_id = ? AND id = ?",
                (req.project_id, req.feedback_id),
            )
            return self._insert(conn, req, payload, text)

    def purge(self, req: FeedbackPurgeReq) -> int:
        """``/feedback/purge``: delete the records whose ids the query names; returns the count."""
        ids = purge_ids(req.query, "feedback")
        if not ids:
            return 0
        with self.db.write() as conn:
            return conn.execute(
                # One JSON parameter, however many ids (SQLite caps bound variables).
                "DELETE FROM feedback WHERE project_id = ? "
                "AND id IN (SELECT value FROM json_each(?))",
                [req.project_id, json.dumps(ids)],
            ).rowcount

    def query(self, req: FeedbackQueryReq) -> list[dict[str, Any]]:
        """``/feedback/query``: records (or just ``fields``) matching the query, sorted, paged."""
        sql, params = compile_feedback_query(req)
        with self.db.read() as conn:
            return [row_to_feedback(row) for row in conn.execute(sql, params)]
