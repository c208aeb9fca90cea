"""The background sender: traced calls reach the server without the caller waiting.

The op wrapper only appends records to the sender's queue (``put``: synchronous,
non-blocking, thread-safe). A background worker (``AsyncWorker`` of
``_synchronization``) drains the queue into ``/call/upsert_batch`` requests
bounded by count and bytes, encodes them off the event loop, retries with
backoff, splits a batch the server rejects as too large (413), and truncates a
single oversized call with a visible marker and a warning. A call is never
dropped silently: what cannot be stored is logged with counts and call ids.

This module is the producer side, flush and close; the worker loop is in
``_sender_worker``, the replay of the write-ahead log in ``_wal_replay``, the
sending of one batch (and the counts) in ``_sender_delivery``, the encoding
helpers in ``weave_client._call_payloads``, and what to retry, how to back off
and how to split in the shared cores ``weave_client._retry`` and ``_batching``.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from .._call_payloads import (
    MAX_ITEM_BYTES,
    TRUNCATED_MARKER,
    encode_update,
    item_name,
    secret_bytes,
)
from .._synchronization import AsyncNotifier, AsyncWorker
from .._tracing import (
    CallUpdate,
    FlushResult,
    OpSave,
    Record,
    encode_record,
    freeze_long_lived,
    op_save,
)
from .._wal import encode_op_save
from ._sender_worker import AsyncSenderWorker

if TYPE_CHECKING:
    from .._wal import WriteAheadLog

__all__ = [
    "MAX_ITEM_BYTES",
    "TRUNCATED_MARKER",
    "AsyncCallSender",
    "FlushResult",
    "OpSave",
    "op_save",
]

logger = logging.getLogger("weave_client")


class AsyncCallSender(AsyncSenderWorker):
    """Sends call records and op versions to the server in the background.

    Options (all keyword-only):

    - ``max_queue``: records held before back-pressure (default 200,000: a call
      is a start and an end record, so 100,000 calls, about 80 MB for small ones).
    - ``on_full``: ``"block"`` (default) makes a new traced call wait for room,
      ``"drop"`` runs it untraced and counts and logs it.
    - ``max_batch_size`` / ``max_batch_bytes``: bounds of one ``/call/upsert_batch``
      request (default 1,000 records, 10 MiB). Each request has a fixed cost on both
      ends (HTTP, a commit); with batches of 1,000, 20,000 calls are stored in about
      0.86 s instead of 1.25 s at 250, and the async flavour's worst loop stall with
      10,000 calls in flight is no worse (medians 4.9 and 5.6 ms over six runs each,
      ``scripts/bench --figures calls_flush,loop_lag``): the records are encoded on
      a worker thread, so a batch's size costs the loop only its HTTP write.
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
        max_batch_size: int = 1000,
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
        for option, delay in (("retry_delay", retry_delay), ("max_retry_delay", max_retry_delay)):
            if not delay >= 0:
                raise ValueError(f"{option} must be a number of seconds >= 0, got {delay!r}")
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

        self._secret = secret_bytes(secret)
        self._no_loop_logged = False
        self._queue: deque[Record | OpSave | CallUpdate] = deque()
        # With a WAL: the line each queued record was journaled as, by id(record), so
        # the sender sends it instead of encoding the record a second time.
        self._journaled: dict[int, bytes] = {}
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
                item_name(record),
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
            line = encode_update(record)
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
                if isinstance(record, tuple):
                    self._journaled[id(record)] = line
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
        self._journaled.clear()
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
