"""Objects, tables, files and refs of the local server (weave's semantics, our SQL).

Digests are the hosted service's: an object version is named by
``str_digest(json.dumps(val))`` of the value as it arrived (key order kept), a
row likewise, a table by the hex sha256 of its row digests in order, a file by
``bytes_digest`` of its bytes. Identical content therefore lands on the same
digest and makes no new version.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import re
import sqlite3
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import orjson

from .._digest import bytes_digest, str_digest
from .._models import (
    ObjCreateReq,
    ObjDeleteReq,
    ObjQueryReq,
    ObjReadReq,
    ObjSchema,
    SortBy,
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
    ObjectDeleted,
    ParsedRef,
    dump_json,
    load_json,
    now_timestamp,
    parse_ref,
    quote_json_path,
)
from ._db import Database

__all__ = ["ObjectStore"]

# weave's object-name rule: word characters, '.', '_' and '-', at most 128 long.
_OBJECT_ID_RE = re.compile(r"[\w.\-]{1,128}")
_BASE_OBJECT_CLASS_NAMES = ("BaseObject", "Object")
_OBJ_SORT_FIELDS = ("object_id", "created_at")
_MAX_DELETE_DIGESTS = 100
_MAX_REFS = 1000

_OBJ_COLUMNS = (
    "project_id, object_id, created_at, deleted_at, digest, version_index, is_latest, kind, "
    "base_object_class, leaf_object_class, wb_user_id"
)


def _check_object_id(object_id: str, where: str) -> None:
    if not _OBJECT_ID_RE.fullmatch(object_id):
        bad = sorted(set(re.findall(r"[^\w.\-]", object_id)))
        why = (
            "is empty"
            if not object_id
            else "is longer than 128 characters"
            if len(object_id) > 128
            else f"contains invalid characters {bad}"
        )
        raise InvalidRequest(
            f"{where}: object name {object_id!r} {why}; use letters, digits, '_', '-' and '.'"
        )


def _object_classes(val: Any) -> tuple[str | None, str | None]:
    """(base_object_class, leaf_object_class) from ``_bases``/``_class_name``, as weave derives them."""
    if not isinstance(val, dict):
        return None, None
    bases = val.get("_bases")
    if (
        isinstance(bases, list)
        and len(bases) >= 2
        and bases[-1] == "BaseModel"
        and bases[-2] in _BASE_OBJECT_CLASS_NAMES
    ):
        leaf = val.get("_class_name")
        leaf = leaf if isinstance(leaf, str) else None
        base = bases[-3] if len(bases) > 2 and isinstance(bases[-3], str) else leaf
        return base, leaf
    return None, None


def _kind(val: Any) -> str:
    """``op`` for an Op value (``{"_type": ..., "weave_type": {"type": "Op"}}``), else ``object``."""
    if isinstance(val, dict) and "_type" in val:
        weave_type = val.get("weave_type")
        if isinstance(weave_type, dict) and weave_type.get("type") == "Op":
            return "op"
    return "object"


def _version_condition(version: str) -> tuple[str, list[Any]]:
    """SQL condition selecting a version given as a digest, ``latest`` or ``v{N}``."""
    if version == "latest":
        return "is_latest = 1", []
    if re.fullmatch(r"v\d+", version):
        return "version_index = ?", [int(version[1:])]
    return "digest = ?", [version]


def _non_negative(value: int | None, where: str) -> None:
    if value is not None and value < 0:
        raise InvalidRequest(f"{where}: must be >= 0, got {value}")


def _sort_direction(sort: SortBy) -> str:
    return "DESC" if sort.direction == "desc" else "ASC"


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


def _obj_dict(row: sqlite3.Row, val: Any) -> dict[str, Any]:
    return {
        "project_id": row["project_id"],
        "object_id": row["object_id"],
        "created_at": row["created_at"],
        "deleted_at": row["deleted_at"],
        "digest": row["digest"],
        "version_index": row["version_index"],
        "is_latest": row["is_latest"],
        "kind": row["kind"],
        "base_object_class": row["base_object_class"],
        "leaf_object_class": row["leaf_object_class"],
        "val": val,
        "wb_user_id": row["wb_user_id"],
        "size_bytes": row["size_bytes"] if "size_bytes" in row.keys() else None,
    }


class ObjectStore:
    """Storage of object versions, tables, files, and the ref resolver over them."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- objects --------------------------------------------------------------

    def obj_create(self, req: ObjCreateReq) -> str:
        """``/obj/create``: store a version (or find the identical one); returns its digest."""
        obj = req.obj
        _check_object_id(obj.object_id, "obj.object_id")
        val = obj.val
        base_class, leaf_class = _object_classes(val)
        if obj.builtin_object_class is not None:
            if not isinstance(val, dict):
                raise InvalidRequest(
                    "obj.builtin_object_class: cannot be given for a value that is not an object"
                )
            if leaf_class is None:
                raise InvalidRequest(
                    f"obj.builtin_object_class: {obj.builtin_object_class!r} is not a class this "
                    "server knows; send the value with its _class_name and _bases"
                )
            if leaf_class != obj.builtin_object_class:
                raise InvalidRequest(
                    f"obj.builtin_object_class: {obj.builtin_object_class!r} does not match the "
                    f"value's _class_name {leaf_class!r}"
                )
        # json.dumps with default settings over the value as received: the text
        # (and so the digest) weave's server computes.
        val_dump = json.dumps(val)
        digest = str_digest(val_dump)
        if "NaN" in val_dump or "Infinity" in val_dump:
            # Stored text must stay valid JSON for SQLite; the digest stays weave's.
            val_dump = dump_json(val)
        with self.db.write() as conn:
            exists = conn.execute(
                "SELECT 1 FROM objects WHERE project_id = ? AND object_id = ? AND digest = ? "
                "AND deleted_at IS NULL",
                (obj.project_id, obj.object_id, digest),
            ).fetchone()
            if exists:
                return digest
            (count,) = conn.execute(
                "SELECT COUNT(*) FROM objects WHERE project_id = ? AND object_id = ?",
                (obj.project_id, obj.object_id),
            ).fetchone()
            conn.execute(
                "UPDATE objects SET is_latest = 0 WHERE project_id = ? AND object_id = ?",
                (obj.project_id, obj.object_id),
            )
            # A deleted version created again comes back as the newest version.
            conn.execute(
                """INSERT INTO objects (
                    project_id, object_id, digest, kind, base_object_class, leaf_object_class,
                    val_dump, version_index, is_latest, created_at, deleted_at, wb_user_id
                ) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, NULL, ?)
                ON CONFLICT (project_id, object_id, digest) DO UPDATE SET
                    kind = excluded.kind,
                    base_object_class = excluded.base_object_class,
                    leaf_object_class = excluded.leaf_object_class,
                    val_dump = excluded.val_dump,
                    version_index = excluded.version_index,
                    is_latest = 1,
                    created_at = excluded.created_at,
                    deleted_at = NULL,
                    wb_user_id = excluded.wb_user_id""",
                (
                    obj.project_id,
                    obj.object_id,
                    digest,
                    _kind(val),
                    base_class,
                    leaf_class,
                    val_dump,
                    count,
                    now_timestamp(),
                    obj.wb_user_id,
                ),
            )
        return digest

    def _find_version(
        self,
        conn: sqlite3.Connection,
        project_id: str,
        object_id: str,
        version: str,
        *,
        metadata_only: bool = False,
    ) -> sqlite3.Row | None:
        cond, params = _version_condition(version)
        val_col = "'{}' AS val_dump" if metadata_only else "val_dump"
        if version == "latest":
            cond += " AND deleted_at IS NULL"
        return conn.execute(  # type: ignore[no-any-return]
            f"SELECT {_OBJ_COLUMNS}, {val_col} FROM objects "
            f"WHERE project_id = ? AND object_id = ? AND {cond}",
            [project_id, object_id, *params],
        ).fetchone()

    def obj_read(self, req: ObjReadReq) -> ObjSchema:
        """``/obj/read`` by digest, ``latest`` or ``v{N}``."""
        with self.db.read() as conn:
            row = self._find_version(
                conn,
                req.project_id,
                req.object_id,
                req.digest,
                metadata_only=bool(req.metadata_only),
            )
        if row is None:
            raise NotFound(
                f"object {req.object_id}:{req.digest} not found in project {req.project_id!r}"
            )
        if row["deleted_at"] is not None:
            # weave's message and the deleted_at the hosted service adds to the body.
            deleted_at = datetime.fromisoformat(row["deleted_at"])
            raise ObjectDeleted(
                f"{req.object_id}:v{row['version_index']} was deleted at {deleted_at}",
                deleted_at=deleted_at,
            )
        return ObjSchema.model_validate(_obj_dict(row, json.loads(row["val_dump"])))

    def objs_query(self, req: ObjQueryReq) -> list[ObjSchema]:
        """``/objs/query``: versions matching the filter, sorted, paged."""
        _non_negative(req.limit, "limit")
        _non_negative(req.offset, "offset")
        conds = ["project_id = ?", "deleted_at IS NULL"]
        params: list[Any] = [req.project_id]
        f = req.filter
        if f is not None:
            if f.is_op is not None:
                conds.append("kind = 'op'" if f.is_op else "kind != 'op'")
            if f.latest_only:
                conds.append("is_latest = 1")
            for column, values in (
                ("object_id", f.object_ids),
                ("base_object_class", f.base_object_classes),
                ("leaf_object_class", f.leaf_object_classes),
            ):
                if values is not None:
                    # One JSON parameter, however many values (SQLite caps bound variables).
                    conds.append(f"{column} IN (SELECT value FROM json_each(?))")
                    params.append(json.dumps(values))
        order: list[str] = []
        for i, sort in enumerate(req.sort_by or []):
            if sort.field not in _OBJ_SORT_FIELDS:
                raise InvalidRequest(
                    f"sort_by[{i}].field: cannot sort objects by {sort.field!r}; "
                    f"use one of {', '.join(_OBJ_SORT_FIELDS)}"
                )
            order.append(f"{sort.field} {_sort_direction(sort)}")
        # Versions made within one clock tick keep their creation order.
        order.extend(["created_at ASC", "object_id ASC", "version_index ASC"])
        val_col = "'{}' AS val_dump" if req.metadata_only else "val_dump"
        if req.include_storage_size:
            val_col += ", length(CAST(val_dump AS BLOB)) AS size_bytes"
        sql = (
            f"SELECT {_OBJ_COLUMNS}, {val_col} FROM objects WHERE {' AND '.join(conds)} "
            f"ORDER BY {', '.join(order)} LIMIT ? OFFSET ?"
        )
        params += [req.limit if req.limit is not None else -1, req.offset or 0]
        with self.db.read() as conn:
            rows = conn.execute(sql, params).fetchall()
        return [ObjSchema.model_validate(_obj_dict(r, json.loads(r["val_dump"]))) for r in rows]

    def obj_delete(self, req: ObjDeleteReq) -> int:
        """``/obj/delete``: soft-delete the given versions (all when none given); returns the count."""
        if req.digests is not None and len(req.digests) > _MAX_DELETE_DIGESTS:
            raise InvalidRequest(
                f"digests: {len(req.digests)} given; delete at most {_MAX_DELETE_DIGESTS} "
                "versions at a time"
            )
        with self.db.write() as conn:
            base = "SELECT digest FROM objects WHERE project_id = ? AND object_id = ? AND deleted_at IS NULL"
            found: set[str] = set()
            if req.digests:
                unknown: set[str] = set()
                for d in req.digests:
                    cond, params = _version_condition(d)
                    row = conn.execute(
                        f"{base} AND {cond}", [req.project_id, req.object_id, *params]
                    ).fetchone()
                    if row is None:
                        unknown.add(d)
                    else:
                        found.add(row["digest"])
                if unknown and found:
                    # weave's message, naming every unknown digest.
                    listed = ", ".join(repr(d) for d in sorted(unknown))
                    raise NotFound(
                        f"Delete request contains {len(req.digests)} digests, but found "
                        f"{len(found)} objects to delete. Diff digests: {{{listed}}}"
                    )
            else:
                found = {r["digest"] for r in conn.execute(base, (req.project_id, req.object_id))}
            if not found:
                raise NotFound(f"Object {req.object_id} ({req.digests}) not found when deleting.")
            marks = ", ".join("?" * len(found))
            conn.execute(
                f"UPDATE objects SET deleted_at = ?, is_latest = 0 "
                f"WHERE project_id = ? AND object_id = ? AND digest IN ({marks})",
                [now_timestamp(), req.project_id, req.object_id, *found],
            )
            # `latest` moves to the newest version still standing.
            conn.execute(
                """UPDATE objects SET is_latest = 1
                WHERE project_id = ? AND object_id = ? AND deleted_at IS NULL
                  AND version_index = (
                    SELECT MAX(version_index) FROM objects
                    WHERE project_id = ? AND object_id = ? AND deleted_at IS NULL)""",
                (req.project_id, req.object_id, req.project_id, req.object_id),
            )
        return len(found)

    # -- tables ---------------------------------------------------------------

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
        if not self._table_exists(conn, project_id, digest):
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
    def _table_exists(conn: sqlite3.Connection, project_id: str, digest: str) -> bool:
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
        _non_negative(req.limit, "limit")
        _non_negative(req.offset, "offset")
        conds = ["e.project_id = ?", "e.table_digest = ?"]
        params: list[Any] = [req.project_id, req.digest]
        row_filter = req.filter.row_digests if req.filter is not None else None
        if row_filter is not None:
            conds.append("e.row_digest IN (SELECT value FROM json_each(?))")
            params.append(json.dumps(row_filter))
        order: list[str] = []
        for i, sort in enumerate(req.sort_by or []):
            path = quote_json_path(sort.field, where=f"sort_by[{i}].field")
            order.append(f"json_extract(r.val, ?) {_sort_direction(sort)}")
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

    # -- files ----------------------------------------------------------------

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

    # -- refs -----------------------------------------------------------------

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
            row = self._find_version(conn, ref.project_id, ref.name, ref.version)
            if row is None:
                raise NotFound(f"{uri}: object {ref.name}:{ref.version} not found")
            cache[key] = None if row["deleted_at"] is not None else json.loads(row["val_dump"])
        return cache[key]

    def _table_row(
        self, conn: sqlite3.Connection, project_id: str, table: str, edge: str, arg: str
    ) -> Any:
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
            if not self._table_exists(conn, ref.project_id, ref.name):
                raise NotFound(f"{uri}: table {ref.name!r} not found")
            table, val = ref.name, None
        else:
            val = self._object_value(conn, ref, uri, cache)
        i = 0
        while True:
            if table is not None:
                if i >= len(extra):
                    # A whole table reads as the list of its row values.
                    return [
                        json.loads(r[0])
                        for r in conn.execute(
                            "SELECT r.val FROM table_entries e JOIN table_rows r "
                            "ON r.project_id = e.project_id AND r.digest = e.row_digest "
                            "WHERE e.project_id = ? AND e.table_digest = ? ORDER BY e.idx",
                            (home, table),
                        )
                    ]
                edge, arg = extra[i], extra[i + 1]
                if edge not in ("id", "index"):
                    raise InvalidRequest(
                        f"{uri}: a table is entered with /id/<row digest> or /index/<n>, "
                        f"not /{edge}/"
                    )
                val, table = self._table_row(conn, home, table, edge, arg), None
                i += 2
                continue
            if i >= len(extra):
                return val
            if isinstance(val, str) and val.startswith("weave:///"):
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
