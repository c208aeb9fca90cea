"""Replay of the write-ahead log: records an earlier send (or process) left on disk.

Segments nobody holds are claimed, their lines sent again in batches bounded
like the sender's (:func:`weave_client._batching.pack`), a refused batch
bisected to the bad line (:class:`weave_client._batching.Bisection`); a segment
is deleted once the server took (or refused for good) every line, and released
for a later try when the server did not answer.
"""

from __future__ import annotations

import json
import logging
import time

from .._batching import Bisection, Step, batch_body, pack, plan_failure
from .._call_payloads import UPDATE_MODE, decode_update, line_call_id
from .._errors import APIConnectionError, APIStatusError
from .._synchronization import async_run_blocking
from .._tracing import CallUpdate
from .._wal import decode_op_save
from ._sender_delivery import AsyncSenderDelivery

logger = logging.getLogger("weave_client")


class AsyncWalReplay(AsyncSenderDelivery):
    """The sender's replay of its write-ahead log (used when it has one)."""

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
            elif isinstance(value, dict) and value.get("mode") == UPDATE_MODE:
                updates.append(decode_update(value))
            else:
                lines.append(line)
        sizes = [len(line) for line in lines]
        for part in pack(sizes, max_bytes=self.max_batch_bytes, max_count=self.max_batch_size):
            if not await self._replay_send(lines[part.start : part.stop]):
                self._wal.release(claimed)
                self._replay_after = time.monotonic() + self.replay_interval
                return
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
        plan = Bisection(len(lines))
        reached = True
        while (part := plan.current) is not None:
            some = lines[part.start : part.stop]
            try:
                await self._post(batch_body(some))
            except (APIConnectionError, APIStatusError) as exc:
                step = plan_failure(exc, len(some))
                if step is Step.RETRY:
                    logger.warning(
                        "weave_client: the write-ahead log could not be sent (%s);"
                        " retrying in %.1f s",
                        exc,
                        self.replay_interval,
                    )
                    reached = False
                elif step is Step.SPLIT:
                    plan.split()
                    continue
                else:  # a lone line refused for good (too large or invalid)
                    logger.error(
                        "weave_client: 1 call records not stored: rejected by the server: %s;"
                        " call ids: %s (from the write-ahead log)",
                        exc,
                        line_call_id(some[0]),
                    )
                    with self._lock:
                        self._failed += 1
            else:
                self._replayed += len(some)
            plan.done()
        return reached
