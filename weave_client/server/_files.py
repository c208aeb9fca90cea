"""Files of the local server: bytes stored once per project under their digest."""

from __future__ import annotations

from .._digest import bytes_digest
from ._common import NotFound
from ._db import Database

__all__ = ["FileStore"]


class FileStore:
    """Storage of file contents (``/file/create``, ``/file/content``)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def file_create(self, project_id: str, content: bytes) -> str:
        """``/file/create``: store bytes; returns their digest."""
        digest = bytes_digest(content)
        with self.db.write() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO files (project_id, digest, val) VALUES (?, ?, ?)",
                (project_id, digest, content),
            )
        return digest

    def file_content(self, project_id: str, digest: str) -> bytes:
        """``/file/content``: the stored bytes."""
        with self.db.read() as conn:
            row = conn.execute(
                "SELECT val FROM files WHERE project_id = ? AND digest = ?", (project_id, digest)
            ).fetchone()
        if row is None:
            raise NotFound(f"file {digest!r} not found in project {project_id!r}")
        return bytes(row[0])
