"""Tables of the local server: versions of row lists, their edits and queries.

A row is named by ``str_digest(json.dumps(row))``, a table by the hex sha256 of
its row digests in order; identical content lands on the same digest. Bodies of
``/table/create`` and ``/table/update`` (up to 100,000 rows) are parsed with
orjson and checked by hand, falling back to the wire models to name a bad field.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

import orjson

from .._digest import str_digest
from .._models import (
    TableAppendSpec,
    TableCreateReq,
    TableInsertSpec,
    TablePopSpec,
    TableQueryReq,
    TableUpdateReq,
)
from ._common import (
    InvalidRequest,
    NotFound,
    dump_json,
    load_json,
    non_negative,
    quote_json_path,
    sort_direction,
)
from ._db import Database

__all__ = ["TableStore"]


def _table_digest(row_digests: Sequence[str]) -> str:
    hasher = hashlib.sha256()
    for d in row_digests:
        hasher.update(d.encode())
    return hasher.hexdigest()


# One table edit: ("append", 0, row), ("pop", index, None) or ("insert", index, row).
TableOp = tuple[str, int, dict[str, Any] | None]

# json.dumps's text (a row digest is over it) that raises on NaN/Infinity instead of
# writing them: the common row is encoded once, with no scan of its text for them.
_ROW_ENCODER = json.JSONEncoder(allow_nan=False)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while a large table body is parsed, digested and stored.

    A 25,000-row body is ~100,000 new containers, and the encoder allocates more
    per row: the collections they trigger would scan them all again and again
    (~40% of the request's time). Parsed JSON holds no cycles, so reference
    counting frees it all the same; the GC stays off if someone else turned it off.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _encode_rows(project_id: str, rows: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """``(project_id, row digest, stored text)`` of each row."""
    encode = _ROW_ENCODER.encode
    out: list[tuple[str, str, str]] = []
    append = out.append
    for row in rows:
        try:
            text = encode(row)
        except ValueError:
            # NaN/Infinity: digested as json.dumps writes them (as weave does), stored as null.
            append((project_id, str_digest(json.dumps(row)), dump_json(row)))
        else:
            append((project_id, str_digest(text), text))
    return out


def _model_ops(req: TableUpdateReq) -> list[TableOp]:
    ops: list[TableOp] = []
    for update in req.updates:
        if isinstance(update, TableAppendSpec):
            ops.append(("append", 0, update.append.row))
        elif isinstance(update, TablePopSpec):
            ops.append(("pop", update.pop.index, None))
        elif isinstance(update, TableInsertSpec):
            ops.append(("insert", update.insert.index, update.insert.row))
    return ops


def _parse_create_fast(body: Any) -> tuple[str, list[dict[str, Any]]] | None:
    """(project_id, rows) of a ``/table/create`` body, or None if it needs the wire model."""
    if type(body) is not dict:
        return None
    table = body.get("table")
    if type(table) is not dict:
        return None
    project_id = table.get("project_id")
    rows = table.get("rows")
    if type(project_id) is not str or type(rows) is not list:
        return None
    for row in rows:
        if type(row) is not dict:
            return None
    return project_id, rows


def _parse_update_fast(body: Any) -> tuple[str, str, list[TableOp]] | None:
    """(project_id, base_digest, ops) of a ``/table/update`` body, or None if it needs
    the wire model (which then accepts it or names the bad field).

    Keys are tried in the wire model's order (append, pop, insert); other keys are
    ignored, as the model ignores them.
    """
    if type(body) is not dict:
        return None
    project_id = body.get("project_id")
    base_digest = body.get("base_digest")
    updates = body.get("updates")
    if type(project_id) is not str or type(base_digest) is not str or type(updates) is not list:
        return None
    ops: list[TableOp] = []
    for update in updates:
        if type(update) is not dict:
            return None
        if "append" in update:
            payload = update["append"]
            if type(payload) is not dict or type(row := payload.get("row")) is not dict:
                return None
            ops.append(("append", 0, row))
        elif "pop" in update:
            payload = update["pop"]
            if type(payload) is not dict or type(index := payload.get("index")) is not int:
                return None
            ops.append(("pop", index, None))
        elif "insert" in update:
            payload = update["insert"]
            if (
                type(payload) is not dict
                or type(index := payload.get("index")) is not int
                or type(row := payload.get("row")) is not dict
            ):
                return None
            ops.append(("insert", index, row))
        else:
            return None
    return project_id, base_digest, ops


class TableStore:
    """Storage of table versions (rows shared between versions) and their queries."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    def _store_table(
        conn: sqlite3.Connection,
        project_id: str,
        row_digests: list[str],
        new_rows: list[tuple[str, str, str]],
        base: tuple[str, int] | None = None,
    ) -> str:
        """Store a table version; ``base`` = (digest, n): its first n rows are that table's."""
        digest = _table_digest(row_digests)
        if new_rows:
            conn.executemany(
                "INSERT OR IGNORE INTO table_rows (project_id, digest, val) VALUES (?, ?, ?)",
                new_rows,
            )
        cur = conn.execute(
            "INSERT OR IGNORE INTO tables (project_id, digest, row_count) VALUES (?, ?, ?)",
            (project_id, digest, len(row_digests)),
        )
        if cur.rowcount:  # a new table version: record its row order
            shared = 0
            if base is not None and base[1] > 0:
                # The rows an update left in place are copied inside SQLite, not
                # sent through Python again (an append re-lists the whole table).
                shared = base[1]
                conn.execute(
                    "INSERT INTO table_entries (project_id, table_digest, idx, row_digest) "
                    "SELECT project_id, ?, idx, row_digest FROM table_entries "
                    "WHERE project_id = ? AND table_digest = ? AND idx < ?",
                    (digest, project_id, base[0], shared),
                )
            conn.executemany(
                "INSERT INTO table_entries (project_id, table_digest, idx, row_digest) "
                "VALUES (?, ?, ?, ?)",
                ((project_id, digest, i, row_digests[i]) for i in range(shared, len(row_digests))),
            )
        return digest

    def table_create(self, req: TableCreateReq) -> tuple[str, list[str]]:
        """``/table/create``: returns (table digest, row digests)."""
        return self._table_create(req.table.project_id, req.table.rows)

    def _table_create(self, project_id: str, rows: list[dict[str, Any]]) -> tuple[str, list[str]]:
        encoded = _encode_rows(project_id, rows)
        row_digests = [r[1] for r in encoded]
        with self.db.write() as conn:
            digest = self._store_table(conn, project_id, row_digests, encoded)
        return digest, row_digests

    def table_create_json(self, body: bytes) -> bytes:
        """Apply a ``/table/create`` body; returns the JSON reply.

        Raises ``json.JSONDecodeError`` for a body that is not JSON and pydantic's
        ``ValidationError`` for one the wire model rejects.
        """
        with _gc_paused():
            parsed = load_json(body)
            fast = _parse_create_fast(parsed)
            if fast is None:
                req = TableCreateReq.model_validate(parsed)
                fast = req.table.project_id, req.table.rows
            digest, row_digests = self._table_create(*fast)
        return orjson.dumps({"digest": digest, "row_digests": row_digests})

    def _table_row_digests(
        self, conn: sqlite3.Connection, project_id: str, digest: str
    ) -> list[str]:
        if not self.exists(conn, project_id, digest):
            raise NotFound(f"table {digest!r} not found in project {project_id!r}")
        return [
            r[0]
            for r in conn.execute(
                "SELECT row_digest FROM table_entries WHERE project_id = ? AND table_digest = ? "
                "ORDER BY idx",
                (project_id, digest),
            )
        ]

    @staticmethod
    def exists(conn: sqlite3.Connection, project_id: str, digest: str) -> bool:
        return (
            conn.execute(
                "SELECT 1 FROM tables WHERE project_id = ? AND digest = ?", (project_id, digest)
            ).fetchone()
            is not None
        )

    def table_update(self, req: TableUpdateReq) -> tuple[str, list[str]]:
        """``/table/update``: apply append/pop/insert in order; returns (new digest, updated rows)."""
        return self._table_update(req.project_id, req.base_digest, _model_ops(req))

    def table_update_json(self, body: bytes) -> bytes:
        """Apply a ``/table/update`` body; returns the JSON reply.

        Raises ``json.JSONDecodeError`` for a body that is not JSON and pydantic's
        ``ValidationError`` for one the wire model rejects.
        """
        with _gc_paused():
            parsed = load_json(body)
            fast = _parse_update_fast(parsed)
            if fast is None:
                req = TableUpdateReq.model_validate(parsed)
                fast = req.project_id, req.base_digest, _model_ops(req)
            digest, updated = self._table_update(*fast)
        return orjson.dumps({"digest": digest, "updated_row_digests": updated})

    def _table_update(
        self, project_id: str, base_digest: str, ops: list[TableOp]
    ) -> tuple[str, list[str]]:
        # Rows are encoded and digested before the write lock is taken.
        encoded = iter(_encode_rows(project_id, [op[2] for op in ops if op[2] is not None]))
        with self.db.write() as conn:
            digests = self._table_row_digests(conn, project_id, base_digest)
            shared = len(digests)  # rows before the first pop/insert stay where they are
            new_rows: list[tuple[str, str, str]] = []
            updated: list[str] = []
            for i, (kind, index, _) in enumerate(ops):
                if kind == "append":
                    row = next(encoded)
                    new_rows.append(row)
                    digests.append(row[1])
                    updated.append(row[1])
                elif kind == "pop":
                    if not 0 <= index < len(digests):
                        raise InvalidRequest(
                            f"updates[{i}].pop.index: {index} is out of range for a table "
                            f"of {len(digests)} rows"
                        )
                    updated.append(digests.pop(index))
                    shared = min(shared, index)
                else:
                    if not 0 <= index <= len(digests):
                        raise InvalidRequest(
                            f"updates[{i}].insert.index: {index} is out of range for a table "
                            f"of {len(digests)} rows"
                        )
                    row = next(encoded)
                    new_rows.append(row)
                    digests.insert(index, row[1])
                    updated.append(row[1])
                    shared = min(shared, index)
            digest = self._store_table(
                conn, project_id, digests, new_rows, base=(base_digest, shared)
            )
        return digest, updated

    def _table_select(self, req: TableQueryReq) -> tuple[str, list[Any]]:
        non_negative(req.limit, "limit")
        non_negative(req.offset, "offset")
        conds = ["e.project_id = ?", "e.table_digest = ?"]
        params: list[Any] = [req.project_id, req.digest]
        row_filter = req.filter.row_digests if req.filter is not None else None
        if row_filter is not None:
            conds.append("e.row_digest IN (SELECT value FROM json_each(?))")
            params.append(json.dumps(row_filter))
        order: list[str] = []
        for i, sort in enumerate(req.sort_by or []):
            path = quote_json_path(sort.field, where=f"sort_by[{i}].field")
            order.append(f"json_extract(r.val, ?) {sort_direction(sort)}")
            params.append(path)
        order.append("e.idx ASC")
        offset = req.offset or 0
        if not order[:-1] and row_filter is None and offset:
            # Plain paging: the positions are 0..n-1, so the offset is an index seek.
            conds.append("e.idx >= ?")
            params.append(offset)
            offset = 0
        sql = (
            "SELECT e.idx, e.row_digest, r.val FROM table_entries e "
            "JOIN table_rows r ON r.project_id = e.project_id AND r.digest = e.row_digest "
            f"WHERE {' AND '.join(conds)} ORDER BY {', '.join(order)} LIMIT ? OFFSET ?"
        )
        params += [req.limit if req.limit is not None else -1, offset]
        return sql, params

    @staticmethod
    def _row_line(row: sqlite3.Row) -> str:
        # Row values are stored as JSON text; splice them in instead of re-encoding.
        return (
            f'{{"digest": {json.dumps(row["row_digest"])}, "val": {row["val"]}, '
            f'"original_index": {int(row["idx"])}}}'
        )

    def table_query_json(self, req: TableQueryReq) -> str:
        """``/table/query``: the JSON reply ``{"rows": [...]}``."""
        sql, params = self._table_select(req)
        # An unknown digest has no rows: 200 with none, as the hosted service answers.
        with self.db.read() as conn:
            rows = conn.execute(sql, params).fetchall()
        return '{"rows": [' + ", ".join(self._row_line(r) for r in rows) + "]}"

    def table_query_stream(self, req: TableQueryReq, *, chunk: int = 500) -> Iterator[bytes]:
        """``/table/query_stream``: JSONL rows from the cursor (checks happen before the first byte)."""
        sql, params = self._table_select(req)
        conn = self.db.acquire()
        try:
            cursor = conn.execute(sql, params)  # an unknown digest streams no rows
        except BaseException:
            self.db.release(conn)
            raise

        def lines() -> Iterator[bytes]:
            try:
                while rows := cursor.fetchmany(chunk):
                    yield "".join(self._row_line(r) + "\n" for r in rows).encode()
            finally:
                cursor.close()
                self.db.release(conn)

        return lines()

    def table_query_stats(self, project_id: str, digest: str) -> int:
        """``/table/query_stats``: the number of rows."""
        with self.db.read() as conn:
            row = conn.execute(
                "SELECT row_count FROM tables WHERE project_id = ? AND digest = ?",
                (project_id, digest),
            ).fetchone()
        if row is None:
            raise NotFound(f"table {digest!r} not found in project {project_id!r}")
        return int(row[0])

    def row_values(self, conn: sqlite3.Connection, project_id: str, digest: str) -> list[Any]:
        """Every row value of a table, in order (an unknown digest has none)."""
        return [
            json.loads(r[0])
            for r in conn.execute(
                "SELECT r.val FROM table_entries e JOIN table_rows r "
                "ON r.project_id = e.project_id AND r.digest = e.row_digest "
                "WHERE e.project_id = ? AND e.table_digest = ? ORDER BY e.idx",
                (project_id, digest),
            )
        ]

    @staticmethod
    def row_at(conn: sqlite3.Connection, project_id: str, table: str, edge: str, arg: str) -> Any:
        """The value of one row, by ``id`` (row digest) or ``index`` (position); None if none."""
        if edge == "id":
            row = conn.execute(
                "SELECT r.val FROM table_entries e JOIN table_rows r "
                "ON r.project_id = e.project_id AND r.digest = e.row_digest "
                "WHERE e.project_id = ? AND e.table_digest = ? AND e.row_digest = ? LIMIT 1",
                (project_id, table, arg),
            ).fetchone()
        else:  # index: the row at that position
            row = conn.execute(
                "SELECT r.val FROM table_entries e JOIN table_rows r "
                "ON r.project_id = e.project_id AND r.digest = e.row_digest "
                "WHERE e.project_id = ? AND e.table_digest = ? AND e.idx = ?",
                (project_id, table, int(arg)),
            ).fetchone()
        return None if row is None else json.loads(row[0])
