"""The background sender's worker: takes batches off the queue and sends them.

Runs on the sender's event loop (``AsyncWorker``; the sync flavour: its own
thread). Between batches it replays the write-ahead log when one is due.
"""

from __future__ import annotations

import logging
import threading
import time

from .._batching import pack
from .._synchronization import async_run_blocking
from .._tracing import CallUpdate, OpSave, Record
from ._wal_replay import AsyncWalReplay

logger = logging.getLogger("weave_client")


class AsyncSenderWorker(AsyncWalReplay):
    """The worker loop of ``AsyncCallSender``: batches, their bookkeeping, the WAL."""

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
                self._journaled.clear()
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
        # the async client; the sync sender is its own thread already). Not ahead of
        # time while the previous batch is on the wire: on a small machine that thread
        # competes with the server and the caller's event loop for the cores (the
        # loop's worst stall with 10,000 calls in flight: about 4.3 ms against 5.1 ms),
        # and batches of 1,000 leave little to overlap.
        payloads, body = await async_run_blocking(self._encode, records)
        if body is not None:
            await self._send(records, payloads, body)
            return
        for part in pack([len(p) for p in payloads], max_bytes=self.max_batch_bytes):
            await self._send(records[part.start : part.stop], payloads[part.start : part.stop])
