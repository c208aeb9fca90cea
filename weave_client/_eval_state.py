"""The state of one ``evaluate`` run, I/O-free and shared by both flavours.

``EvalRun`` holds what the rows of a run share (tasks or threads): counters, the
failures by step, token usages, the scores waiting to be sent as feedback, and
the progress bar. ``current_row`` collects what failed in the row being run (each
row runs in its own context copy).
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from typing import Any

from ._eval_summary import sum_usage

__all__ = ["BATCH_WAVES", "SCORES_BATCH", "EvalRun", "current_row"]

logger = logging.getLogger("weave_client")

# Rows per batch, in multiples of the parallelism: enough that the pause at the end
# of a batch (waiting for its slowest row) costs about 1%.
BATCH_WAVES = 100

# Scores held before a row sends them as feedback (one /feedback/batch/create request).
SCORES_BATCH = 500

# What failed in the row being run (each row runs in its own context copy).
current_row: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "weave_client_evaluation_row", default=None
)


class EvalRun:
    """Counters of one ``evaluate`` run, shared by its rows (tasks or threads)."""

    def __init__(
        self, total: int, show_progress: bool, scorer_plan: list[tuple[Any, str, Any]]
    ) -> None:
        self.total = total
        self.scorer_plan = scorer_plan
        self.done = 0
        self.failed_rows = 0
        self.failures: dict[str, int] = {}
        self.usages: list[Any] = []
        # Scores to record as feedback on their predict calls (sent after each batch):
        # (predict call ref, score call, scorer object, score).
        self.scores: list[tuple[str, Any, Any, Any]] = []
        self.feedback_failed = 0
        self._lock = threading.Lock()
        self._warned: set[str] = set()
        self._progress: Any = None
        self._task: Any = None
        if show_progress:
            self._start_progress()

    def _start_progress(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._progress = Progress(
            TextColumn("Evaluating"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[failed]} failed"),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._task = self._progress.add_task("rows", total=self.total, failed=0, rate="")
        self._started = time.perf_counter()
        self._progress.start()

    def failed(self, what: str, exc: BaseException) -> None:
        """Count a failed predict or scorer (recorded on its own call); warn once each."""
        row = current_row.get()
        if row is not None:
            row.append(what)
        with self._lock:
            self.failures[what] = self.failures.get(what, 0) + 1
            first = what not in self._warned
            self._warned.add(what)
        if first:
            logger.warning(
                "weave_client: %s raised %s: %s (recorded on its call; further failures "
                "are counted in the summary under 'failures')",
                what,
                type(exc).__name__,
                exc,
            )

    def row_done(self, failed: bool) -> None:
        with self._lock:
            self.done += 1
            if failed:
                self.failed_rows += 1
            done, failed_rows = self.done, self.failed_rows
        if self._progress is not None:
            elapsed = max(time.perf_counter() - self._started, 1e-9)
            self._progress.update(
                self._task, completed=done, failed=failed_rows, rate=f"{done / elapsed:.1f} rows/s"
            )

    def add_scores(self, scores: list[tuple[str, Any, Any, Any]]) -> None:
        """Hold a row's scores until the next batch is sent as feedback."""
        with self._lock:
            self.scores.extend(scores)

    def take_scores(self) -> list[tuple[str, Any, Any, Any]]:
        """The scores held so far (the run holds none after)."""
        with self._lock:
            items, self.scores = self.scores, []
        return items

    def totals(self) -> dict[str, Any]:
        """What the run adds to the summary: ``usage`` (token counts) and ``failures``,
        each only when there is any."""
        out: dict[str, Any] = {}
        usage = sum_usage(self.usages)
        if usage:
            out["usage"] = usage
        if self.failures:
            out["failures"] = {"rows": self.failed_rows, **self.failures}
        return out

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
