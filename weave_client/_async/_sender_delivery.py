"""Delivery of the background sender: one batch, op save or display name to the server.

The I/O half of the sender's retry and batching: what is transient, how long to
back off, how a refused batch is split and which record is given up come from
the shared cores (:mod:`weave_client._retry`, :mod:`weave_client._batching`);
this module only sends, waits and keeps the counts. ``AsyncCallSender`` (in
``_sender``) is built on it and sets every attribute declared here.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._batching import Bisection, Step, batch_body, batch_bytes, plan_failure, shrink_limit
from .._call_payloads import SecretBytes, redact_payload, truncate_record
from .._errors import APIConnectionError, APIStatusError
from .._retry import RetryPolicy, is_transient
from .._synchronization import (
    AsyncNotifier,
    AsyncWorker,
    async_sleep,
)
from .._tracing import CallUpdate, OpSave, Record, encode_record, record_call_id

if TYPE_CHECKING:
    from .._wal import WriteAheadLog

logger = logging.getLogger("weave_client")

# Seconds of encoding between two hand-overs of the GIL (see _encode_payloads).
_GIL_SLICE = 0.0005


class AsyncSenderDelivery:
    """Sends what the sender's worker took from its queue, retrying; keeps the counts."""

    # Options and state, all set by ``AsyncCallSender.__init__``.
    _api: Any
    max_queue: int
    max_batch_size: int
    max_batch_bytes: int
    max_item_bytes: int
    max_attempts: int
    retry_delay: float
    max_retry_delay: float
    replay_interval: float
    _wal: WriteAheadLog | None
    _secret: SecretBytes | None
    _prepare: Callable[[], Any] | None
    _queue: deque[Record | OpSave | CallUpdate]
    _journaled: dict[int, bytes]
    _lock: threading.Lock
    _room: threading.Condition
    _put_count: int
    _done_count: int
    _stored: int
    _failed: int
    _replayed: int
    _replay_after: float
    _batch_deferred: bool
    _wal_safe_seq: int
    _wake_pending: bool
    _closing: bool
    _worker_thread: int | None
    _wakeup: AsyncNotifier
    _progress: AsyncNotifier
    _worker: AsyncWorker

    def _retry_policy(self) -> RetryPolicy:
        """The sender's retries of what the API client already gave up on.

        Built from the current options (they may be changed after construction);
        no jitter: the waits are the exponential schedule itself, on top of the
        API client's jittered retries.
        """
        return RetryPolicy(
            max_retries=self.max_attempts - 1,
            delay=self.retry_delay,
            max_delay=self.max_retry_delay,
            jitter=False,
        )

    # --- encoding (runs off the event loop) --------------------------------------

    def _encode(self, records: list[Record]) -> tuple[list[bytes], bytes | None]:
        """The records' items, and the request body when they fit in one request
        (joined here, off the event loop, like the encoding)."""
        return self._with_body(self._encode_payloads(records))

    def _with_body(self, payloads: list[bytes]) -> tuple[list[bytes], bytes | None]:
        """The payloads, and the request body when they fit in one request."""
        if batch_bytes(map(len, payloads)) > self.max_batch_bytes:
            return payloads, None
        return payloads, batch_body(payloads)

    def _encode_payloads(self, records: list[Record]) -> list[bytes]:
        """Each record's item: its JSON, redacted, truncated when too large (the line
        the WAL has of it, when it was journaled)."""
        journaled = self._journaled
        payloads = []
        clock = time.perf_counter
        yield_at = clock() + _GIL_SLICE
        for record in records:
            if clock() >= yield_at:
                # Give up the GIL now and then: this runs in a thread next to the
                # event loop, which would otherwise wait a whole switch interval
                # (5 ms) each time it needs to run. By time, not by count: a sleep(0)
                # costs about 60 us here (the kernel's timer slack), once per 32
                # records it was half the encoding.
                time.sleep(0)
                yield_at = clock() + _GIL_SLICE
            if journaled:
                line = journaled.pop(id(record), None)
                if line is not None:
                    payloads.append(line)
                    continue
            payload = self._redact(encode_record(record))
            if len(payload) > self.max_item_bytes:
                payload = self._truncate(record, payload, self.max_item_bytes)
            payloads.append(payload)
        return payloads

    def _truncate(self, record: Record, payload: bytes, limit: int) -> bytes:
        """Replace the largest values of an oversized record with a visible marker."""
        return truncate_record(record, payload, limit)

    def _redact(self, payload: bytes) -> bytes:
        """The record's JSON with the client's own API key replaced by ``REDACTED``."""
        return redact_payload(payload, self._secret)

    # --- sending ----------------------------------------------------------------------

    async def _send(
        self, records: list[Record], payloads: list[bytes], body: bytes | None = None
    ) -> None:
        """Send one batch, retrying, splitting on 413, isolating rejected records."""
        payloads = list(payloads)  # a record truncated after a 413 is replaced here
        policy = self._retry_policy()
        plan = Bisection(len(records))
        attempt = 0
        while (part := plan.current) is not None:
            some = records[part.start : part.stop]
            if body is None:
                body = batch_body(payloads[part.start : part.stop])
            try:
                await self._post(body)
            except (APIConnectionError, APIStatusError) as exc:
                step = plan_failure(exc, len(some))
                if step is not Step.RETRY:
                    body = None  # another part, or the same records re-encoded
                if step is Step.SPLIT:
                    plan.split()
                    attempt = 0
                    continue
                if step is Step.SHRINK:
                    # One record the server still finds too big: halve its size budget.
                    limit = shrink_limit(len(payloads[part.start]), self.max_item_bytes)
                    if limit is None:
                        self._fail(some, f"too large for the server even truncated ({exc})")
                        plan.done()
                        attempt = 0
                        continue
                    payloads[part.start] = self._truncate(some[0], payloads[part.start], limit)
                    continue
                if step is Step.FAIL:
                    self._fail(some, f"rejected by the server: {exc}")
                    plan.done()
                    attempt = 0
                    continue
                delay = None if self._closing else policy.next_delay(attempt)
                attempt += 1
                if delay is None:
                    self._fail_or_keep(some, f"{exc} (after {attempt} attempts)")
                    body = None
                    plan.done()
                    attempt = 0
                    continue
                logger.warning(
                    "weave_client: sending %d call records failed (%s); retry %d/%d in %.1f s",
                    len(some),
                    exc,
                    attempt,
                    self.max_attempts - 1,
                    delay,
                )
                await async_sleep(delay)
                continue
            body = None
            self._stored += len(some)
            self._finish(len(some))
            plan.done()
            attempt = 0

    async def _post(self, body: bytes) -> None:
        # Pre-encoded bytes: the records were encoded off the loop already, and
        # the reply is not parsed (that would cost the loop a millisecond a batch).
        await self._api.call_start_batch_encoded(body)

    async def _update_call(self, update: CallUpdate) -> bool:
        """Store a display name set while the call ran (``/call/update``), retrying.

        False when the server could not be reached and a write-ahead log keeps the
        update for replay; otherwise True (stored, or logged and counted as failed).
        """
        from .._models import CallUpdateReq

        req = CallUpdateReq(
            project_id=update.project_id, call_id=update.call_id, display_name=update.display_name
        )
        policy = self._retry_policy()
        retry = 0
        while True:
            try:
                await self._api.call_update(req)
            except (APIConnectionError, APIStatusError) as exc:
                permanent = not is_transient(exc)
                delay = None if permanent or self._closing else policy.next_delay(retry)
                if delay is None:
                    if not permanent and self._wal is not None:
                        return False  # the caller says so and keeps it
                    logger.error(
                        "weave_client: could not store the display name of call %s (%s)",
                        update.call_id,
                        exc,
                    )
                    with self._lock:
                        self._failed += 1
                    return True
                retry += 1
                await async_sleep(delay)
                continue
            return True

    async def _save_op(self, save: OpSave) -> None:
        """Store an op's source file, then the Op object that names it."""
        from .._models import FileCreateReq, ObjCreateReq, ObjSchemaForInsert

        policy = self._retry_policy()
        retry = 0
        while True:
            try:
                await self._api.file_create(
                    FileCreateReq(project_id=save.project_id, name="obj.py", content=save.source)
                )
                res = await self._api.obj_create(
                    ObjCreateReq(
                        obj=ObjSchemaForInsert(
                            project_id=save.project_id, object_id=save.name, val=save.val
                        )
                    )
                )
            except (APIConnectionError, APIStatusError) as exc:
                transient = is_transient(exc) and not self._closing
                delay = policy.next_delay(retry) if transient else None
                if delay is None:
                    logger.error(
                        "weave_client: could not save op %s:%s (%s); its calls still reference it",
                        save.name,
                        save.digest,
                        exc,
                    )
                    return
                retry += 1
                await async_sleep(delay)
                continue
            if res.digest != save.digest:
                logger.warning(
                    "weave_client: server stored op %s as %s, not the locally computed %s;"
                    " calls reference the local digest",
                    save.name,
                    res.digest,
                    save.digest,
                )
            return

    # --- bookkeeping ---------------------------------------------------------------

    def _fail_or_keep(self, records: list[Any], reason: str) -> None:
        """Records that could not be sent: failed, or (with a WAL) kept on disk for later."""
        if self._wal is None:
            self._fail(records, reason)
            return
        self._batch_deferred = True
        calls = [r for r in records if isinstance(r, tuple)]
        logger.warning(
            "weave_client: %d call records not sent yet (%s); kept in the write-ahead log"
            " %s, to be sent when the server answers (or by the next client)",
            len(calls),
            reason,
            self._wal.directory,
        )
        self._replay_after = time.monotonic() + self.replay_interval
        self._finish(len(records))

    def _finish(self, n: int) -> None:
        with self._lock:
            self._done_count += n

    def _fail(self, records: list[Any], reason: str) -> None:
        calls = [r for r in records if isinstance(r, tuple)]
        ids = sorted({record_call_id(r) for r in calls})
        shown = ", ".join(ids[:20]) + (f" and {len(ids) - 20} more" if len(ids) > 20 else "")
        logger.error(
            "weave_client: %d call records not stored: %s; call ids: %s",
            len(calls),
            reason,
            shown,
        )
        with self._lock:
            self._failed += len(calls)
            self._done_count += len(records)
