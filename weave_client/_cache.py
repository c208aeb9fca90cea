"""A cache for content-addressed reads (objects, tables, files), shared by both flavours.

A digest names its content forever, so a read by digest can be answered from
memory (an LRU bounded by entries and bytes) or from an optional directory on
disk. Aliases that move (``latest``, ``v3``) are never cached: only keys whose
version part looks like a real digest are accepted.

Values are stored as JSON text, so every hit returns a fresh copy: a caller
mutating what it got back cannot corrupt what the next caller sees.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
import threading
from collections import OrderedDict
from typing import Any, Final

__all__ = ["MISSING", "DigestCache", "is_digest"]

logger = logging.getLogger(__name__)


class _Missing:
    """The sentinel for a cache miss (``None`` is a value worth caching)."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final = _Missing()

# Object/file digests are urlsafe base64 of a sha256 (43 chars, "-"/"_" rewritten
# to "X"/"Y"); table digests are 64 hex chars. Both match this; "latest" and
# "v12" never do.
_DIGEST_RE = re.compile(r"^[A-Za-z0-9]{32,128}$")


def is_digest(version: str) -> bool:
    """True when ``version`` is a content digest (not ``latest`` or a ``vN`` alias)."""
    return bool(_DIGEST_RE.match(version)) and not re.fullmatch(r"v\d+", version)


class DigestCache:
    """A thread-safe LRU of JSON values keyed by ``(kind, project_id, name, digest)``.

    ``max_entries``/``max_bytes`` bound the in-memory part; ``cache_dir`` (optional)
    adds a persistent layer of one JSON file per key, written atomically.
    """

    def __init__(
        self,
        *,
        max_entries: int = 4096,
        max_bytes: int = 64 * 1024 * 1024,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if max_entries < 0 or max_bytes < 0:
            raise ValueError(
                f"cache bounds must be >= 0, got max_entries={max_entries!r}, max_bytes={max_bytes!r}"
            )
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._dir = os.fspath(cache_dir) if cache_dir is not None else None
        self._entries: OrderedDict[tuple[str, ...], str] = OrderedDict()
        self._bytes = 0
        # A plain thread lock: every critical section is short and never awaits,
        # so it is safe (and needed) under both the event loop and sync threads.
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __repr__(self) -> str:
        return (
            f"DigestCache(entries={len(self._entries)}, bytes={self._bytes}, "
            f"cache_dir={self._dir!r})"
        )

    @property
    def cache_dir(self) -> str | None:
        """The persistent directory, or None for memory only."""
        return self._dir

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def _key(kind: str, project_id: str, name: str, digest: str) -> tuple[str, ...] | None:
        if not is_digest(digest):
            return None
        return (kind, project_id, name, digest)

    def get(self, kind: str, project_id: str, name: str, digest: str) -> Any:
        """The cached value (a fresh copy), or ``MISSING``."""
        key = self._key(kind, project_id, name, digest)
        if key is None:
            return MISSING
        with self._lock:
            text = self._entries.get(key)
            if text is not None:
                self._entries.move_to_end(key)
        if text is None and self._dir is not None:
            text = self._read_file(key)
            if text is not None:
                self._remember(key, text)
        with self._lock:
            if text is None:
                self.misses += 1
                return MISSING
            self.hits += 1
        return json.loads(text)

    def put(self, kind: str, project_id: str, name: str, digest: str, value: Any) -> None:
        """Remember ``value`` (JSON-able) under a digest; aliases are ignored."""
        key = self._key(kind, project_id, name, digest)
        if key is None:
            return
        try:
            text = json.dumps(value, sort_keys=True, allow_nan=True)
        except (TypeError, ValueError):
            # Not JSON-able (should not happen for wire values): skip caching, never fail a read.
            logger.debug("not caching %s %s:%s: value is not JSON", kind, name, digest)
            return
        self._remember(key, text)
        if self._dir is not None:
            self._write_file(key, text)

    def discard(self, kind: str, project_id: str, name: str, digest: str) -> None:
        """Forget one entry, in memory and on disk (the client deleted it on the server)."""
        key = self._key(kind, project_id, name, digest)
        if key is None:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= len(old)
        if self._dir is not None:
            try:
                os.remove(self._path(key))
            except FileNotFoundError:
                pass
            except OSError as e:
                logger.warning("cache dir %s: could not remove an entry (%s)", self._dir, e)

    def clear(self) -> None:
        """Forget the in-memory entries (the directory is left alone)."""
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def _remember(self, key: tuple[str, ...], text: str) -> None:
        size = len(text)
        if size > self._max_bytes or self._max_entries == 0:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= len(old)
            self._entries[key] = text
            self._bytes += size
            while len(self._entries) > self._max_entries or self._bytes > self._max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self._bytes -= len(evicted)

    def _path(self, key: tuple[str, ...]) -> str:
        assert self._dir is not None
        # Hash the key: names may hold characters that are not safe in file names.
        h = hashlib.sha256("\x00".join(key).encode("utf-8")).hexdigest()
        return os.path.join(self._dir, key[0], h[:2], h + ".json")

    def _read_file(self, key: tuple[str, ...]) -> str | None:
        try:
            with open(self._path(key), encoding="utf-8") as f:
                return f.read()
        except FileNotFoundError:
            return None
        except OSError as e:
            logger.warning("cache dir %s unreadable (%s); reading from the server", self._dir, e)
            return None

    def _write_file(self, key: tuple[str, ...], text: str) -> None:
        path = self._path(key)
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            # Write then rename, so a concurrent reader never sees half a file.
            fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, path)
        except OSError as e:
            logger.warning("cache dir %s unwritable (%s); caching in memory only", self._dir, e)
