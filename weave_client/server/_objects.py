"""Objects and ops of the local server (weave's semantics, our SQL).

Digests are the hosted service's: an object version is named by
``str_digest(json.dumps(val))`` of the value as it arrived (key order kept), so
identical content lands on the same digest and makes no new version. Tables,
files and refs have their own stores (_tables.py, _files.py, _refs.py).
"""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import datetime
from typing import Any

from .._digest import str_digest
from .._models import (
    ObjCreateReq,
    ObjDeleteReq,
    ObjQueryReq,
    ObjReadReq,
    ObjSchema,
)
from ._common import (
    InvalidRequest,
    NotFound,
    ObjectDeleted,
    check_object_name,
    dump_json,
    non_negative,
    now_timestamp,
    sort_direction,
)
from ._db import Database

__all__ = ["ObjectStore"]

_BASE_OBJECT_CLASS_NAMES = ("BaseObject", "Object")
_OBJ_SORT_FIELDS = ("object_id", "created_at")
_MAX_DELETE_DIGESTS = 100

_OBJ_COLUMNS = (
    "project_id, object_id, created_at, deleted_at, digest, version_index, is_latest, kind, "
    "base_object_class, leaf_object_class, wb_user_id"
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
    """Storage of object and op versions (``/obj/*``, ``/objs/query``)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def obj_create(self, req: ObjCreateReq) -> str:
        """``/obj/create``: store a version (or find the identical one); returns its digest."""
        obj = req.obj
        check_object_name(obj.object_id, where="obj.object_id")
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

    def find_version(
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
            row = self.find_version(
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
        non_negative(req.limit, "limit")
        non_negative(req.offset, "offset")
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
            order.append(f"{sort.field} {sort_direction(sort)}")
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
