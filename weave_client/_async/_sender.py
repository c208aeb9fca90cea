"""The background sender: traced calls reach the server without the caller waiting.

The op wrapper only appends records to the sender's queue (``put``: synchronous,
non-blocking, thread-safe). A background worker (``AsyncWorker`` of
``_synchronization``) drains the queue into ``/call/upsert_batch`` requests
bounded by count and bytes, encodes them off the event loop, retries with
backoff, splits a batch the server rejects as too large (413), and truncates a
single oversized call with a visible marker and a warning. A call is never
dropped silently: what cannot be stored is logged with counts and call ids.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from .._errors import APIConnectionError, APIStatusError, RequestTooLargeError
from .._synchronization import (
    AsyncNotifier,
    AsyncWorker,
    async_run_blocking,
    async_sleep,
)
from .._tracing import (
    CallUpdate,
    FlushResult,
    OpSave,
    Record,
    encode_body,
    encode_record,
    freeze_long_lived,
    op_save,
    record_body,
    record_call_id,
)
from .._wal import decode_op_save, encode_op_save

if TYPE_CHECKING:
    from .._wal import WriteAheadLog

__all__ = ["AsyncCallSender", "FlushResult", "OpSave", "op_save"]

logger = logging.getLogger("weave_client")

# The hosted service caps one call's payload; weave's client warns above this.
MAX_ITEM_BYTES = int(3.5 * 1024 * 1024)
TRUNCATED_MARKER = "<weave_client: value truncated, {size} bytes over the {limit}-byte call limit>"


class AsyncCallSender:
    """Sends call records and op versions to the server in the background.

    Options (all keyword-only):

    - ``max_queue``: records held before back-pressure (default 200,000: a call
      is a start and an end record, so 100,000 calls, about 80 MB for small ones).
    - ``on_full``: ``"block"`` (default) makes a new traced call wait for room,
      ``"drop"`` runs it untraced and counts and logs it.
    - ``max_batch_size`` / ``max_batch_bytes``: bounds of one ``/call/upsert_batch``
      request (default 250 records, 10 MiB). Sending a batch costs the event loop
      time in proportion to its size (the HTTP write); 250 keeps the async
      flavour's worst loop stall near 3 ms with 10,000 calls in flight, where
      1,000 gave about 5 ms, at the same end-to-end throughput.
    - ``max_item_bytes``: one record above this is truncated with a visible marker
      and a warning (default 3.5 MiB, the hosted service's cap).
    - ``max_attempts`` / ``retry_delay`` / ``max_retry_delay``: retries of a batch
      the API client already gave up on (connection errors, 5xx), exponential
      backoff between them; after the last attempt the records are logged as failed.
    - ``block_timeout``: how long a call waits for room while the queue does not
      drain at all before it is queued over the bound with a warning (default
      10 s): a thread blocked here must not hang for good when the sender cannot
      run, e.g. because the event loop thread is itself waiting on this thread.
    - ``exit_timeout``: how long the sync flavour waits at interpreter exit for
      queued records to be sent (default 10 s); also how long ``aclose()``
      without a timeout waits while no record at all gets stored.
    - ``prepare``: called (and awaited, in the async flavour) by the worker once before
      its first send.
    - ``wal``: a ``WriteAheadLog``: every record is also written to disk before it
      is sent; over ``max_queue`` records go to disk only (no blocking, no drops);
      records the server did not take stay on disk and are replayed (every
      ``replay_interval`` seconds, and by the next client at start-up).
    - ``secret``: a value (the client's API key) replaced by ``REDACTED`` wherever
      it appears in a recorded call (keys shorter than 8 characters are not
      searched for: they could match the JSON around the values).

    Besides call records and op saves, the queue takes ``CallUpdate`` items (a
    display name set while the call ran), sent after the batch they arrive in,
    so after their call's start.
    """

    def __init__(
        self,
        api: Any,
        *,
        max_queue: int = 200_000,
        on_full: Literal["block", "drop"] = "block",
        max_batch_size: int = 250,
        max_batch_bytes: int = 10 * 1024 * 1024,
        max_item_bytes: int = MAX_ITEM_BYTES,
        max_attempts: int = 5,
        retry_delay: float = 0.5,
        max_retry_delay: float = 10.0,
        block_timeout: float = 10.0,
        exit_timeout: float = 10.0,
        wal: WriteAheadLog | None = None,
        replay_interval: float = 5.0,
        secret: str | None = None,
        prepare: Callable[[], Any] | None = None,
    ) -> None:
        if on_full not in ("block", "drop"):
            raise ValueError(f"on_full must be 'block' or 'drop', got {on_full!r}")
        for option, value in (
            ("max_queue", max_queue),
            ("max_batch_size", max_batch_size),
            ("max_batch_bytes", max_batch_bytes),
            ("max_item_bytes", max_item_bytes),
            ("max_attempts", max_attempts),
        ):
            if value < 1:
                raise ValueError(f"{option} must be at least 1, got {value!r}")
        self._api = api
        self.max_queue = max_queue
        self.on_full = on_full
        self.max_batch_size = max_batch_size
        self.max_batch_bytes = max_batch_bytes
        self.max_item_bytes = min(max_item_bytes, max_batch_bytes)
        self.max_attempts = max_attempts
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self.block_timeout = block_timeout
        self.exit_timeout = exit_timeout
        self._wal = wal
        # Run once by the worker before it sends anything (the client's: start the
        # embedded server if no one has yet).
        self._prepare = prepare
        self.replay_interval = replay_interval
        self._replay_after = 0.0
        self._replayed = 0
        self._spilled = 0
        self._batch_deferred = False
        # Queued records below this are stored or rejected for good (WAL bookkeeping).
        self._wal_safe_seq = 0

        self._secret = _secret_bytes(secret)
        self._no_loop_logged = False
        self._queue: deque[Record | OpSave | CallUpdate] = deque()
        self._lock = threading.Lock()
        # Room in the queue, waited on by callers in other threads (never the loop).
        self._room = threading.Condition(self._lock)
        self._put_count = 0
        self._done_count = 0
        self._stored = 0
        self._failed = 0
        self._dropped = 0
        self._wake_pending = False
        self._closing = False
        self._closed = False
        self._worker_thread: int | None = None
        # Op ref URIs already queued for saving, per op (read on the hot path).
        self.op_refs: dict[Any, str] = {}
        self._saved_ops: set[tuple[str, str, str]] = set()
        self._wakeup = AsyncNotifier()
        self._progress = AsyncNotifier()
        self._worker = AsyncWorker(self._run, "weave-call-sender", at_exit=self._flush_at_exit)
        freeze_long_lived()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(queued={len(self._queue)}, stored={self._stored},"
            f" failed={self._failed}, dropped={self._dropped})"
        )

    # --- the producer side (any thread, never waits on the network) -----------

    @property
    def pending(self) -> int:
        """Records queued and not yet stored or given up on."""
        return self._put_count - self._done_count

    @property
    def stored(self) -> int:
        """Records the server has accepted."""
        return self._stored

    @property
    def failed(self) -> int:
        """Records given up on (each was logged with its call id)."""
        return self._failed

    @property
    def dropped(self) -> int:
        """Calls left untraced by the ``"drop"`` policy."""
        return self._dropped

    @property
    def replayed(self) -> int:
        """Records sent from the write-ahead log (this process's or an earlier one's)."""
        return self._replayed

    @property
    def spilled(self) -> int:
        """Records that went to the write-ahead log only, the memory queue being full."""
        return self._spilled

    def has_room(self) -> bool:
        """True when a new call can be queued without waiting (the hot-path check)."""
        return len(self._queue) < self.max_queue

    def admit(self) -> bool:
        """Wait for room for a new call; False when the drop policy drops it.

        Blocks the calling thread under ``on_full="block"``, except on the
        sender's own thread (an event loop that must keep running to make room),
        where the call is queued over the bound instead. The async op wrapper
        runs this in a worker thread, so the loop keeps sending meanwhile.
        """
        if self._wal is not None:
            return True  # over the bound, put() writes the record to disk only
        if self.on_full == "drop":
            if self.has_room():
                return True
            with self._lock:
                self._dropped += 1
                dropped = self._dropped
            # Log the first drop and then every 1,000th: counted, never silent.
            if dropped == 1 or dropped % 1000 == 0:
                logger.warning(
                    "weave_client: call queue full (%d records); %d calls dropped so far"
                    " (on_full='drop')",
                    self.max_queue,
                    dropped,
                )
            return False
        if threading.get_ident() == self._worker_thread or self._worker.on_own_thread():
            return True
        with self._room:
            progress = self._done_count
            stalled = 0.0
            step = min(0.5, self.block_timeout)
            while not (self.has_room() or self._closed):
                if self._room.wait(timeout=step) or self._done_count != progress:
                    progress, stalled = self._done_count, 0.0
                    continue
                stalled += step
                if stalled >= self.block_timeout or not self._worker.running:
                    # Nothing drains the queue: the sender is gone (its event loop
                    # ended) or cannot run (the loop thread itself is blocked,
                    # waiting on this thread). Waiting on would hang for good.
                    logger.warning(
                        "weave_client: call queue full and not draining for %.1f s;"
                        " queuing over the bound of %d records",
                        stalled,
                        self.max_queue,
                    )
                    break
        return True

    def put(self, record: Record | OpSave | CallUpdate) -> None:
        """Queue a start/end record or an op save. Thread-safe; never blocks.

        The bound is applied by ``admit()`` before a call starts, so an end record
        (or an op save) is always accepted: a started call always gets its end.
        """
        if self._closed:
            logger.error(
                "weave_client: a traced call record arrived after the client was closed;"
                " not sent (call id %s)",
                _item_name(record),
            )
            with self._lock:
                self._failed += 1
            return
        if self._wal is not None:
            self._journal(record)
        else:
            with self._lock:
                self._queue.append(record)
                self._put_count += 1
        if not self._wake_pending:
            self._wake_pending = True
            self._start()
            self._wakeup.notify()

    def _journal(self, record: Record | OpSave | CallUpdate) -> None:
        """Write ``record`` to the WAL, then queue it (or, over the bound, only write it)."""
        assert self._wal is not None
        if isinstance(record, OpSave):
            line = encode_op_save(record)
        elif isinstance(record, CallUpdate):
            line = _encode_update(record)
        else:
            line = self._redact(encode_record(record))
            if len(line) > self.max_item_bytes:
                line = self._truncate(record, line, self.max_item_bytes)
        with self._lock:
            if isinstance(record, tuple) and len(self._queue) >= self.max_queue:
                self._wal.append(line, None)
                self._spilled += 1
                spilled = self._spilled
            else:
                self._wal.append(line, self._put_count)
                self._queue.append(record)
                self._put_count += 1
                return
        if spilled == 1 or spilled % 10_000 == 0:
            logger.warning(
                "weave_client: call queue full (%d records); %d records written to the"
                " write-ahead log only, to be sent from there",
                self.max_queue,
                spilled,
            )

    def resume(self) -> None:
        """Start sending what an earlier process left in the write-ahead log (if any)."""
        if self._wal is not None and self._wal.pending():
            self._wake_pending = True
            self._start()
            self._wakeup.notify()

    def queue_op_save(self, key: Any, save: OpSave) -> str:
        """Queue ``save`` once per sender and return the op's ref URI (cached under ``key``)."""
        entity, project = save.project_id.split("/", 1)
        uri = f"weave:///{entity}/{project}/op/{save.name}:{save.digest}"
        marker = (save.project_id, save.name, save.digest)
        if marker not in self._saved_ops:
            self._saved_ops.add(marker)
            self.put(save)
        self.op_refs[key] = uri
        return uri

    def bind(self) -> None:
        """Run the worker on the calling thread's event loop (if any) from now on.

        Called where the client is made current: calls from other threads and
        other event loops then wake the worker there.
        """
        self._worker.bind()

    def _start(self) -> None:
        if self._worker.running:
            return
        if not self._worker.start():
            # No event loop runs the worker: the client's loop has ended and this
            # thread runs none. The records wait in the queue for the next put or
            # flush on a loop (aclose() flushes); said once, never silently.
            self._wake_pending = False
            if not self._no_loop_logged:
                self._no_loop_logged = True
                logger.warning(
                    "weave_client: traced calls are queued but no event loop runs this"
                    " async client's sender (its loop has ended); they are sent at the"
                    " next flush() or aclose(), or when a traced call runs on a loop"
                )

    # --- flush and close --------------------------------------------------------

    async def flush(self, timeout: float | None = None) -> FlushResult:
        """Wait until every record queued before this call is stored (or given up on).

        With ``timeout`` it returns after at most that many seconds; the result
        says how many records are still pending.
        """
        target = self._put_count

        def settled() -> bool:
            return self._done_count >= target and not self._replay_due()

        if not settled():
            self._wake_pending = True
            self._start()
            self._wakeup.notify()
            await self._progress.wait_for(settled, timeout)
        return FlushResult(
            pending=max(0, target - self._done_count),
            failed=self._failed,
            dropped=self._dropped,
        )

    async def aclose(self, timeout: float | None = None) -> FlushResult:
        """Flush (bounded by ``timeout``), stop the worker, and log what was not sent.

        Without ``timeout`` it waits for as long as records keep getting stored,
        and gives up after ``exit_timeout`` seconds without any progress.
        """
        if self._closed:
            return FlushResult(pending=self.pending, failed=self._failed, dropped=self._dropped)
        if timeout is None:
            result = await self._flush_while_progressing()
        else:
            result = await self.flush(timeout)
        self._closing = True
        self._wakeup.notify()
        if not await self._worker.join(timeout=0 if result.pending else 5.0):
            self._worker.cancel()
        with self._room:
            self._closed = True
            self._room.notify_all()
        leftover = list(self._queue)
        self._queue.clear()
        if leftover:
            self._fail_or_keep(leftover, "the client closed before they were sent")
        if self._wal is not None:
            left = self._wal.close(self._wal_safe_seq)
            if left:
                logger.warning(
                    "weave_client: %d records left in the write-ahead log %s; the next client"
                    " on this project sends them",
                    left,
                    self._wal.directory,
                )
        return FlushResult(pending=self.pending, failed=self._failed, dropped=self._dropped)

    async def _flush_while_progressing(self) -> FlushResult:
        # A server that never answers must not hang close() (each attempt can wait
        # a full request timeout, times every retry); a slow one that keeps storing
        # records gets all the time it needs.
        while True:
            before = self._done_count
            result = await self.flush(self.exit_timeout)
            if result.pending == 0 or self._done_count == before:
                return result

    async def _flush_at_exit(self) -> None:
        """Interpreter exit (sync flavour): a bounded wait for what is still queued."""
        if self._closed or not self.pending:
            return
        result = await self.flush(self.exit_timeout)
        if result.pending:
            logger.error(
                "weave_client: exiting with %d call records not sent after waiting %.1f s",
                result.pending,
                self.exit_timeout,
            )

    # --- the worker ----------------------------------------------------------------

    async def _run(self) -> None:
        try:
            await self._run_batches()
        except BaseException:
            # The worker was stopped from outside (e.g. the async client's event
            # loop ended without aclose()): nothing will ever send what is still
            # queued, so it is reported, never lost silently.
            with self._room:
                leftover = list(self._queue)
                self._queue.clear()
            if leftover:
                self._fail_or_keep(leftover, "the sender was stopped before they were sent")
            raise

    async def _run_batches(self) -> None:
        self._worker_thread = threading.get_ident()
        if self._prepare is not None:
            prepare, self._prepare = self._prepare, None
            try:
                await prepare()
            except Exception:  # sending then fails and says so, record by record
                logger.exception("weave_client: preparing the call sender failed")
        while True:
            # Clear the flag *before* checking for work: a put() that still saw it
            # set skipped its notify, and only a check made after the reset is
            # sure to see that put's record (clearing it after the wait lost wake-ups).
            self._wake_pending = False
            await self._wakeup.wait_for(
                lambda: bool(self._queue) or self._closing or self._replay_due(),
                # With a WAL, look for segments to replay now and then.
                None if self._wal is None else self.replay_interval,
            )
            if not self._queue:
                if self._closing:
                    return
                if self._wal is not None:
                    # Idle: segments holding records only on disk can be replayed now.
                    self._wal.settle(self._done_count)
                if self._replay_due():
                    try:
                        await self._replay_one()
                    except Exception:  # a bug here must not stop tracing for good
                        logger.exception("weave_client: replaying the write-ahead log failed")
                        self._replay_after = time.monotonic() + self.replay_interval
                    finally:
                        self._progress.notify()
                continue
            taken: list[Record | OpSave | CallUpdate] = []
            with self._room:
                while self._queue and len(taken) < self.max_batch_size:
                    taken.append(self._queue.popleft())
                self._room.notify_all()
            done_before = self._done_count
            self._batch_deferred = False
            try:
                await self._process(taken)
            except Exception as exc:  # a bug here must not stop tracing for good
                logger.exception("weave_client: call sender failed on a batch")
                # Only this worker finishes records, so the difference is what
                # this batch already settled; the rest are failed, not lost.
                settled = self._done_count - done_before
                self._fail_or_keep(taken[settled:], repr(exc))
            except BaseException:
                # Stopped mid-batch (the client closed with a flush timeout): what
                # was taken and not yet stored is reported, not lost silently.
                settled = self._done_count - done_before
                self._fail_or_keep(taken[settled:], "the client closed before they were sent")
                raise
            finally:
                if self._wal is not None:
                    # Batches settle in queue order, so every record below _done_count
                    # is stored, rejected for good, or (a batch with deferred records)
                    # kept: its segments are then unlocked for replay, not deleted.
                    keep_from = done_before if self._batch_deferred else None
                    self._wal.settle(self._done_count, keep_from)
                    self._wal_safe_seq = self._done_count
                self._progress.notify()

    async def _process(self, taken: list[Record | OpSave | CallUpdate]) -> None:
        records: list[Record] = []
        updates: list[CallUpdate] = []
        for item in taken:
            if isinstance(item, OpSave):
                await self._save_op(item)
                self._finish(1)
            elif isinstance(item, CallUpdate):
                updates.append(item)
            else:
                records.append(item)
        if records:
            await self._send_records(records)
        # After the records: a call's start is stored before its update.
        for i, update in enumerate(updates):
            if not await self._update_call(update):
                # Unreachable server, with a WAL: the batch's segment (these updates
                # included) is kept for replay; the rest are not tried now.
                self._batch_deferred = True
                logger.warning(
                    "weave_client: %d call display names not stored yet (the server did not"
                    " answer); kept in the write-ahead log",
                    len(updates) - i,
                )
                self._finish(len(updates) - i)
                break
            self._finish(1)

    async def _send_records(self, records: list[Record]) -> None:
        # JSON encoding of a batch is CPU work: off the event loop (a thread for
        # the async client; the sync sender is its own thread already).
        payloads, body = await async_run_blocking(self._encode, records)
        if body is not None:
            await self._send(records, payloads, body)
            return
        start = 0
        size = 0
        for i, payload in enumerate(payloads):
            if i > start and size + len(payload) + 1 > self.max_batch_bytes:
                await self._send(records[start:i], payloads[start:i])
                start, size = i, 0
            size += len(payload) + 1
        await self._send(records[start:], payloads[start:])

    def _encode(self, records: list[Record]) -> tuple[list[bytes], bytes | None]:
        """The records' items, and the request body when they fit in one request
        (joined here, off the event loop, like the encoding)."""
        payloads = []
        size = 0
        for i, record in enumerate(records):
            if i % 32 == 31:
                # Give up the GIL now and then: this runs in a thread next to the
                # event loop, which would otherwise wait a whole switch interval
                # (5 ms) each time it needs to run.
                time.sleep(0)
            payload = self._redact(encode_record(record))
            if len(payload) > self.max_item_bytes:
                payload = self._truncate(record, payload, self.max_item_bytes)
            payloads.append(payload)
            size += len(payload) + 1
        if size > self.max_batch_bytes:
            return payloads, None
        return payloads, _batch_body(payloads)

    def _truncate(self, record: Record, payload: bytes, limit: int) -> bytes:
        """Replace the largest values of an oversized record with a visible marker."""
        call_id = record_call_id(record)
        logger.warning(
            "weave_client: call %s %s record is %d bytes, over the %d-byte limit;"
            " its largest values are replaced with a truncation marker",
            call_id,
            record[0],
            len(payload),
            limit,
        )
        mode = record[0]
        body = record_body(record)
        fields = ("inputs", "attributes") if mode == "start" else ("output", "summary")
        for field in fields:
            value = body.get(field)
            if isinstance(value, dict):
                smaller = dict(value)
                sizes = sorted(
                    ((len(json.dumps(v, default=repr)), k) for k, v in smaller.items()),
                    reverse=True,
                )
            else:
                smaller, sizes = {}, []
            for size, key in sizes:
                smaller[key] = TRUNCATED_MARKER.format(size=size, limit=limit)
                body[field] = smaller
                payload = encode_body(mode, body)
                if len(payload) <= limit:
                    return payload
            if field in body and body[field] is not None:
                size = len(json.dumps(body[field], default=repr))
                marker = TRUNCATED_MARKER.format(size=size, limit=limit)
                body[field] = {"_truncated": marker} if field != "output" else marker
                payload = encode_body(mode, body)
                if len(payload) <= limit:
                    return payload
        return payload

    async def _send(
        self, records: list[Record], payloads: list[bytes], body: bytes | None = None
    ) -> None:
        """Send one batch, retrying, splitting on 413, isolating rejected records."""
        attempt = 0
        while True:
            if body is None:
                body = _batch_body(payloads)
            try:
                await self._post(body)
            except RequestTooLargeError as exc:
                if len(records) > 1:
                    half = len(records) // 2
                    await self._send(records[:half], payloads[:half])
                    await self._send(records[half:], payloads[half:])
                    return
                # One record the server still finds too big: halve its size budget.
                limit = min(len(payloads[0]), self.max_item_bytes) // 2
                if limit < 1024:
                    self._fail(records, f"too large for the server even truncated ({exc})")
                    return
                payloads = [self._truncate(records[0], payloads[0], limit)]
                body = None
                continue
            except (APIConnectionError, APIStatusError) as exc:
                status = getattr(exc, "status_code", None)
                transient = status is None or status == 429 or status >= 500 or status == 408
                if not transient:
                    if len(records) > 1:
                        # Find the rejected record(s) and store the rest.
                        half = len(records) // 2
                        await self._send(records[:half], payloads[:half])
                        await self._send(records[half:], payloads[half:])
                    else:
                        self._fail(records, f"rejected by the server: {exc}")
                    return
                attempt += 1
                if attempt >= self.max_attempts or self._closing:
                    self._fail_or_keep(records, f"{exc} (after {attempt} attempts)")
                    return
                delay = min(self.max_retry_delay, self.retry_delay * 2 ** (attempt - 1))
                logger.warning(
                    "weave_client: sending %d call records failed (%s); retry %d/%d in %.1f s",
                    len(records),
                    exc,
                    attempt,
                    self.max_attempts - 1,
                    delay,
                )
                await async_sleep(delay)
                continue
            self._stored += len(records)
            self._finish(len(records))
            return

    async def _post(self, body: bytes) -> None:
        # Pre-encoded bytes: the records were encoded off the loop already, and
        # the reply is not parsed (that would cost the loop a millisecond a batch).
        await self._api.call_start_batch_encoded(body)

    def _redact(self, payload: bytes) -> bytes:
        """The record's JSON with the client's own API key replaced by ``REDACTED``."""
        secret = self._secret
        if secret is not None and secret.value in payload:
            return payload.replace(secret.value, b"REDACTED")
        return payload

    async def _update_call(self, update: CallUpdate) -> bool:
        """Store a display name set while the call ran (``/call/update``), retrying.

        False when the server could not be reached and a write-ahead log keeps the
        update for replay; otherwise True (stored, or logged and counted as failed).
        """
        from .._models import CallUpdateReq

        req = CallUpdateReq(
            project_id=update.project_id, call_id=update.call_id, display_name=update.display_name
        )
        for attempt in range(1, self.max_attempts + 1):
            try:
                await self._api.call_update(req)
            except (APIConnectionError, APIStatusError) as exc:
                status = getattr(exc, "status_code", None)
                permanent = status is not None and status < 500 and status not in (408, 429)
                if permanent or attempt >= self.max_attempts or self._closing:
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
                await async_sleep(min(self.max_retry_delay, self.retry_delay * 2 ** (attempt - 1)))
                continue
            return True
        return True

    async def _save_op(self, save: OpSave) -> None:
        """Store an op's source file, then the Op object that names it."""
        from .._models import FileCreateReq, ObjCreateReq, ObjSchemaForInsert

        for attempt in range(1, self.max_attempts + 1):
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
                status = getattr(exc, "status_code", None)
                if status is not None and status < 500 and status not in (408, 429):
                    attempt = self.max_attempts
                if attempt >= self.max_attempts or self._closing:
                    logger.error(
                        "weave_client: could not save op %s:%s (%s); its calls still reference it",
                        save.name,
                        save.digest,
                        exc,
                    )
                    return
                await async_sleep(min(self.max_retry_delay, self.retry_delay * 2 ** (attempt - 1)))
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

    # --- the write-ahead log ---------------------------------------------------------

    def _replay_due(self) -> bool:
        return (
            self._wal is not None
            and not self._closing
            and time.monotonic() >= self._replay_after
            and bool(self._wal.pending())
        )

    async def _replay_one(self) -> None:
        """Send one segment of the WAL that nobody holds; keep it if the server fails."""
        assert self._wal is not None
        claimed = await async_run_blocking(self._wal.claim)
        if claimed is None:  # all held by live clients
            self._replay_after = time.monotonic() + self.replay_interval
            return
        lines: list[bytes] = []
        updates: list[CallUpdate] = []
        for line in claimed.lines:
            try:
                value = json.loads(line)
            except ValueError:
                logger.warning("weave_client: skipping an unreadable record in %s", claimed.path)
                continue
            if isinstance(value, dict) and value.get("mode") == "op_save":
                await self._save_op(decode_op_save(value))
            elif isinstance(value, dict) and value.get("mode") == _UPDATE_MODE:
                updates.append(_decode_update(value))
            else:
                lines.append(line)
        start, size = 0, 0
        for i in range(len(lines) + 1):
            full = i < len(lines) and (
                i - start >= self.max_batch_size or size + len(lines[i]) > self.max_batch_bytes
            )
            if (i == len(lines) or full) and start < i:
                if not await self._replay_send(lines[start:i]):
                    self._wal.release(claimed)
                    self._replay_after = time.monotonic() + self.replay_interval
                    return
                start, size = i, 0
            if i < len(lines):
                size += len(lines[i]) + 1
        for update in updates:
            if not await self._update_call(update):
                # Sent again with its records next time (upserts are idempotent).
                self._wal.release(claimed)
                self._replay_after = time.monotonic() + self.replay_interval
                return
        self._wal.remove(claimed)
        logger.info(
            "weave_client: sent %d records from the write-ahead log (%s)",
            len(lines),
            claimed.path.name,
        )

    async def _replay_send(self, lines: list[bytes]) -> bool:
        """Send WAL lines; False when the server is unreachable (keep them for later)."""
        try:
            await self._post(b'{"batch":[' + b",".join(lines) + b"]}")
        except (APIConnectionError, APIStatusError) as exc:
            status = getattr(exc, "status_code", None)
            if status is None or status in (408, 429) or status >= 500:
                logger.warning(
                    "weave_client: the write-ahead log could not be sent (%s); retrying in %.1f s",
                    exc,
                    self.replay_interval,
                )
                return False
            if len(lines) > 1:
                half = len(lines) // 2
                first = await self._replay_send(lines[:half])
                return await self._replay_send(lines[half:]) and first
            logger.error(
                "weave_client: 1 call records not stored: rejected by the server: %s;"
                " call ids: %s (from the write-ahead log)",
                exc,
                _line_call_id(lines[0]),
            )
            with self._lock:
                self._failed += 1
            return True
        self._replayed += len(lines)
        return True

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

    # --- bookkeeping ---------------------------------------------------------------

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


def _batch_body(payloads: list[bytes]) -> bytes:
    """The ``/call/upsert_batch`` request body of encoded items."""
    return b'{"batch":[' + b",".join(payloads) + b"]}"


def _line_call_id(line: bytes) -> str:
    try:
        req = json.loads(line)["req"]
        return str((req.get("start") or req.get("end"))["id"])
    except (ValueError, KeyError, TypeError):
        return "(unreadable)"


_UPDATE_MODE = "call_update"


def _item_name(item: Record | OpSave | CallUpdate) -> str:
    """What a queued item is about, for log lines."""
    if isinstance(item, OpSave):
        return item.name
    if isinstance(item, CallUpdate):
        return item.call_id
    return record_call_id(item)


def _encode_update(update: CallUpdate) -> bytes:
    """A ``CallUpdate`` as one write-ahead log line."""
    return json.dumps(
        {
            "mode": _UPDATE_MODE,
            "project_id": update.project_id,
            "call_id": update.call_id,
            "display_name": update.display_name,
        },
        separators=(",", ":"),
    ).encode()


def _decode_update(value: dict[str, Any]) -> CallUpdate:
    return CallUpdate(
        project_id=str(value["project_id"]),
        call_id=str(value["call_id"]),
        display_name=value.get("display_name"),
    )


class _SecretBytes:
    """The API key as bytes, never shown in a repr and never pickled."""

    __slots__ = ("value",)

    def __init__(self, value: bytes) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "'***'"

    def __reduce__(self) -> Any:
        raise TypeError("an API key cannot be pickled")


def _secret_bytes(secret: str | None) -> _SecretBytes | None:
    """The secret as it appears inside a JSON string, or None when not searched for.

    A short or all-numeric value could match the JSON around the values (a
    number, a key) and break the record; such values are not searched for.
    """
    if not secret or len(secret) < 8 or all(c in "0123456789.eE+-" for c in secret):
        return None
    return _SecretBytes(json.dumps(secret)[1:-1].encode())
