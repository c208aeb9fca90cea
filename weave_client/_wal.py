"""The on-disk write-ahead log of traced calls (opt-in: ``wal=True`` or ``WEAVE_CLIENT_WAL=1``).

With it on, every record the sender accepts (call starts and ends, op versions)
is appended to a segment file before it is sent, so calls survive the server
being down for long and the process being killed. A segment is deleted once
everything in it is stored; otherwise it stays, and the sender (this process
later, or the next client on the same server and project at start-up) replays
it. Replays may repeat records the server already has: the hosted service and
our local server store a call once per id (weave 0.51.59's SQLite reference
server does not; see the README's "Reliability" section).

Layout: ``<cache dir>/wal/<hash of server URL>/<entity>/<project>/seg-*.jsonl``,
one JSON value per line: a wire record (``{"mode": "start"|"end", "req": ...}``,
as sent to ``/call/upsert_batch``) or ``{"mode": "op_save", ...}``. A process
holds an exclusive ``flock`` on the segments it is still writing or sending, so
another process never replays them twice at once; the OS drops the lock when
the process dies, however it dies. A torn last line (killed mid-write) is
skipped. Nothing here knows the API key: records are the call data only.

File I/O only, no network: shared by both flavours.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._errors import InvalidSettingError
from ._tracing import OpSave

__all__ = [
    "WAL_ENV",
    "WriteAheadLog",
    "decode_op_save",
    "encode_op_save",
    "open_wal",
    "wal_enabled",
]

logger = logging.getLogger("weave_client")

WAL_ENV = "WEAVE_CLIENT_WAL"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def wal_enabled(explicit: bool | None) -> bool:
    """``explicit`` if given, else ``WEAVE_CLIENT_WAL`` (``1``/``true``/``yes``/``on``)."""
    if explicit is not None:
        return bool(explicit)
    raw = os.environ.get(WAL_ENV, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise InvalidSettingError(f"{WAL_ENV}={raw!r} is not a boolean (use 1/0, true/false)")


def encode_op_save(save: OpSave) -> bytes:
    """One WAL line for an op version save."""
    return json.dumps(
        {
            "mode": "op_save",
            "project_id": save.project_id,
            "name": save.name,
            "source": base64.b64encode(save.source).decode("ascii"),
            "val": save.val,
            "digest": save.digest,
        },
        separators=(",", ":"),
    ).encode("utf-8")


def decode_op_save(value: dict[str, Any]) -> OpSave:
    return OpSave(
        project_id=value["project_id"],
        name=value["name"],
        source=base64.b64decode(value["source"]),
        val=value["val"],
        digest=value["digest"],
    )


@dataclass
class _Segment:
    path: Path
    fd: int
    lines: int = 0
    end_seq: int = 0  # one past the last queued record in it (queued records settle in order)
    keep: bool = False  # holds records that are not (known to be) stored: replay it
    open_for_writing: bool = True


@dataclass
class Claimed:
    """A segment taken for replay: its lines, and the lock until released or removed."""

    path: Path
    fd: int
    lines: list[bytes] = field(default_factory=list)


class WriteAheadLog:
    """Segments of one server + project under a directory (see the module docstring)."""

    def __init__(self, directory: Path, *, segment_records: int = 1000) -> None:
        self.directory = Path(directory)
        self.segment_records = segment_records
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise InvalidSettingError(
                f"cannot create the write-ahead log directory {self.directory}: {exc}"
            ) from exc
        self._lock = threading.Lock()
        self._segments: list[_Segment] = []  # ours, oldest first
        self._counter = 0

    @classmethod
    def for_project(
        cls, cache_dir: Path, server_url: str, project_id: str, **options: Any
    ) -> WriteAheadLog:
        server = hashlib.sha256(server_url.rstrip("/").encode("utf-8")).hexdigest()[:16]
        entity, project = project_id.split("/", 1)
        return cls(Path(cache_dir) / "wal" / server / entity / project, **options)

    def __repr__(self) -> str:
        return f"WriteAheadLog({str(self.directory)!r})"

    # --- writing (the sender's put, under its lock) --------------------------------------------

    def append(self, line: bytes, seq: int | None) -> None:
        """Append one record; ``seq`` is its place in the memory queue, None if only on disk."""
        with self._lock:
            segment = self._current()
            os.write(segment.fd, line + b"\n")
            segment.lines += 1
            if seq is None:
                segment.keep = True
            else:
                segment.end_seq = seq + 1
            if segment.lines >= self.segment_records:
                segment.open_for_writing = False

    def _current(self) -> _Segment:
        if self._segments and self._segments[-1].open_for_writing:
            return self._segments[-1]
        self._counter += 1
        name = f"seg-{time.time_ns():020d}-{os.getpid()}-{self._counter:06d}.jsonl"
        final = self.directory / name
        temp = self.directory / (name + ".new")
        # Locked before it gets its final name, so no replayer can take it meanwhile.
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.rename(temp, final)
        segment = _Segment(final, fd)
        self._segments.append(segment)
        return segment

    def settle(self, done_seq: int, keep_from: int | None = None) -> None:
        """Queued records below ``done_seq`` are settled (stored or given up on).

        Segments wholly settled are deleted, unless they hold records only on disk
        or deferred ones (``keep_from``: the first queued record that was deferred):
        those are unlocked and kept for replay.
        """
        with self._lock:
            kept = []
            for segment in self._segments:
                if keep_from is not None and segment.end_seq > keep_from and segment.lines:
                    segment.keep = True
                if segment.open_for_writing and segment.keep and segment.end_seq <= done_seq:
                    # It holds records only on disk and nothing queued is in flight:
                    # start a new segment so this one can be replayed now.
                    segment.open_for_writing = False
                if segment.open_for_writing or segment.end_seq > done_seq:
                    kept.append(segment)
                    continue
                self._finish(segment)
            self._segments = kept

    def close(self, done_seq: int) -> int:
        """Stop writing: settle what is settled, unlock the rest for replay; lines left."""
        with self._lock:
            for segment in self._segments:
                segment.open_for_writing = False
        self.settle(done_seq)
        with self._lock:
            left = 0
            for segment in self._segments:
                segment.keep = True
                left += segment.lines
                self._finish(segment)
            self._segments = []
        return left

    def _finish(self, segment: _Segment) -> None:
        if not segment.keep:
            segment.path.unlink(missing_ok=True)
        os.close(segment.fd)  # releases the lock

    # --- replay --------------------------------------------------------------------------------

    def pending(self) -> list[Path]:
        """Segment files on disk that this process is not writing or sending."""
        with self._lock:
            ours = {s.path for s in self._segments}
        try:
            return sorted(p for p in self.directory.glob("seg-*.jsonl") if p not in ours)
        except OSError:
            return []

    def claim(self) -> Claimed | None:
        """Lock and read the oldest segment nobody else holds; None if there is none."""
        for path in self.pending():
            try:
                fd = os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                continue  # replayed and removed by another process meanwhile
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            if not path.exists():  # removed between our open and our lock
                os.close(fd)
                continue
            with os.fdopen(os.dup(fd), "rb") as f:
                data = f.read()
            lines = data.split(b"\n")
            if lines and lines[-1]:
                logger.warning(
                    "weave_client: skipping a torn last record in %s (the writer was killed"
                    " mid-write)",
                    path,
                )
            return Claimed(path, fd, [line for line in lines[:-1] if line.strip()])
        return None

    def remove(self, claimed: Claimed) -> None:
        """Everything in a claimed segment is stored: delete it."""
        claimed.path.unlink(missing_ok=True)
        os.close(claimed.fd)

    def release(self, claimed: Claimed) -> None:
        """Give a claimed segment back (the server did not answer): keep it for later."""
        os.close(claimed.fd)


def open_wal(
    enabled: bool | None,
    cache_dir: str | os.PathLike[str] | None,
    server_url: str,
    project_id: str,
) -> WriteAheadLog | None:
    """The client's WAL, or None when it is off (``enabled``, else ``WEAVE_CLIENT_WAL``).

    It lives under ``cache_dir`` if given, else the user cache dir (``WEAVE_CLIENT_CACHE_DIR``).
    """
    if not wal_enabled(enabled):
        return None
    from . import _settings

    root = Path(cache_dir) if cache_dir is not None else _settings.cache_dir()
    return WriteAheadLog.for_project(root, server_url, project_id)
