"""Refs of the local server: ``/refs/read_batch`` over the object and table stores."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from .._refs import SCHEME
from ._common import InvalidRequest, NotFound, ParsedRef, parse_ref
from ._db import Database
from ._objects import ObjectStore
from ._tables import TableStore

__all__ = ["RefStore"]

_MAX_REFS = 1000


class RefStore:
    """Reads the values refs name, following nested refs along their paths."""

    def __init__(self, db: Database, objects: ObjectStore, tables: TableStore) -> None:
        self.db = db
        self.objects = objects
        self.tables = tables

    def refs_read_batch(self, refs: list[str]) -> list[Any]:
        """``/refs/read_batch``: the value of each ref, following nested refs along its path.

        As the hosted service: a deleted object reads as None, a missing key or
        index along the path as None, a ref into another project as None; a
        missing object is an error (404).
        """
        if len(refs) > _MAX_REFS:
            raise InvalidRequest(f"refs: {len(refs)} given; read at most {_MAX_REFS} at a time")
        parsed = [parse_ref(r, where=f"refs[{i}]") for i, r in enumerate(refs)]
        for i, p in enumerate(parsed):
            if p.kind == "call":
                raise InvalidRequest(
                    f"refs[{i}]: {refs[i]!r} is a call ref; read calls with /call/read"
                )
        cache: dict[tuple[str, str, str], Any] = {}
        with self.db.read() as conn:
            return [self._resolve(conn, p, refs[i], cache) for i, p in enumerate(parsed)]

    def _object_value(
        self,
        conn: sqlite3.Connection,
        ref: ParsedRef,
        uri: str,
        cache: dict[tuple[str, str, str], Any],
    ) -> Any:
        key = (ref.project_id, ref.name, ref.version)
        if key not in cache:
            row = self.objects.find_version(conn, ref.project_id, ref.name, ref.version)
            if row is None:
                raise NotFound(f"{uri}: object {ref.name}:{ref.version} not found")
            cache[key] = None if row["deleted_at"] is not None else json.loads(row["val_dump"])
        return cache[key]

    def _resolve(
        self,
        conn: sqlite3.Connection,
        ref: ParsedRef,
        uri: str,
        cache: dict[tuple[str, str, str], Any],
    ) -> Any:
        home = ref.project_id
        extra = list(ref.extra)
        table: str | None = None
        if ref.kind == "table":
            if not self.tables.exists(conn, ref.project_id, ref.name):
                raise NotFound(f"{uri}: table {ref.name!r} not found")
            table, val = ref.name, None
        else:
            val = self._object_value(conn, ref, uri, cache)
        i = 0
        while True:
            if table is not None:
                if i >= len(extra):
                    # A whole table reads as the list of its row values.
                    return self.tables.row_values(conn, home, table)
                edge, arg = extra[i], extra[i + 1]
                if edge not in ("id", "index"):
                    raise InvalidRequest(
                        f"{uri}: a table is entered with /id/<row digest> or /index/<n>, "
                        f"not /{edge}/"
                    )
                val, table = self.tables.row_at(conn, home, table, edge, arg), None
                i += 2
                continue
            if i >= len(extra):
                return val
            if isinstance(val, str) and val.startswith(SCHEME):
                # The path goes on through a nested ref: follow it.
                inner = parse_ref(val, where=uri)
                if inner.project_id != home:
                    return None  # refs never cross projects
                if inner.kind == "table":
                    table = inner.name
                    continue
                if inner.kind == "call":
                    return None
                val = self._object_value(conn, inner, val, cache)
                extra[i:i] = list(inner.extra)
                continue
            edge, arg = extra[i], extra[i + 1]
            i += 2
            if val is None:
                return None
            if edge in ("key", "attr"):
                val = val.get(arg) if isinstance(val, dict) else None
            elif edge == "index":
                n = int(arg)
                val = val[n] if isinstance(val, list) and -len(val) <= n < len(val) else None
            else:
                raise InvalidRequest(f"{uri}: /id/ must follow a table ref")
