"""Objects: save versions, read them (cached by digest), list and delete them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._cache import MISSING
from .._errors import NotFoundError
from .._models import (
    ObjCreateReq,
    ObjDeleteReq,
    ObjectVersionFilter,
    ObjQueryReq,
    ObjReadReq,
    ObjSchemaForInsert,
    SortBy,
)
from .._query_args import OBJECT_FILTER_FIELDS, merge_filter
from .._refs import ObjectRef, OpRef, is_ref_uri, parse_ref, validate_object_name
from .._saved import SavedObjects
from .._serialize import decode, encode_for_save, files_to_fetch
from .._versions import ObjectVersion
from ._files import AsyncFiles
from ._session import AsyncSession

__all__ = ["AsyncObjects"]


class AsyncObjects:
    """Object versions of a client's session: ``save``, ``read``, ``versions``, ``delete``.

    Values read back are decoded here (files fetched first); refs inside them stay
    refs, resolved on demand by ``AsyncRefResolver``.
    """

    def __init__(self, session: AsyncSession, files: AsyncFiles, saved: SavedObjects) -> None:
        self._session = session
        self._files = files
        self._saved = saved

    async def save(self, obj: Any, name: str) -> ObjectRef:
        """Store ``obj`` as a new version of ``name``; objects saved before (unchanged)
        and registered ops inside it are stored as refs."""
        session = self._session
        encoded = encode_for_save(obj, ref_of=self._saved.ref_of)
        await self._files.upload(encoded.files, session.project_id)
        res = await session.api.obj_create(
            ObjCreateReq(
                obj=ObjSchemaForInsert(
                    project_id=session.project_id, object_id=name, val=encoded.json
                )
            )
        )
        session.cache.put("obj", session.project_id, name, res.digest, encoded.json)
        ref = ObjectRef(session.entity, session.project, name, res.digest)
        self._saved.remember(obj, ref, encoded.digest)
        return ref

    async def create(self, name: str, val: Any) -> ObjectRef:
        """Store an already encoded value as a new version of ``name`` (a published table)."""
        session = self._session
        res = await session.api.obj_create(
            ObjCreateReq(obj=ObjSchemaForInsert(project_id=session.project_id, object_id=name, val=val))
        )
        return ObjectRef(session.entity, session.project, name, res.digest)

    async def read(self, project_id: str, name: str, version: str) -> tuple[Any, str]:
        """The stored value of ``name`` at ``version`` (a digest, ``latest`` or ``vN``)
        and its digest."""
        cache = self._session.cache
        cached = cache.get("obj", project_id, name, version)
        if cached is not MISSING:
            return cached, version
        try:
            res = await self._session.api.obj_read(
                ObjReadReq(project_id=project_id, object_id=name, digest=version)
            )
        except NotFoundError as e:
            # The hosted service's 404 for a deleted version carries its deleted_at.
            deleted_at = e.body.get("deleted_at") if isinstance(e.body, dict) else None
            what = f"was deleted at {deleted_at}" if deleted_at else "does not exist"
            raise NotFoundError(
                f"object {name!r} at version {version!r} in {project_id} {what}",
                status_code=e.status_code,
                route=e.route,
                body=e.body,
                request_id=e.request_id,
            ) from e
        digest = res.obj.digest
        cache.put("obj", project_id, name, digest, res.obj.val)
        return res.obj.val, digest

    async def decode_stored(self, value: Any, project_id: str) -> Any:
        """A stored value as a client value, the file content it refers to fetched first."""
        digests = files_to_fetch(value)
        if not digests:
            return decode(value)
        files = {d: await self._files.read(project_id, d) for d in sorted(digests)}
        return decode(value, files=files)

    async def versions(
        self,
        filter: ObjectVersionFilter | Mapping[str, Any] | None,
        limit: int | None,
        offset: int | None,
        include_values: bool,
        filter_fields: Mapping[str, Any],
        decode_value: Any,
    ) -> list[ObjectVersion]:
        """``client.objects``: saved versions, oldest first (``decode_value`` decodes values)."""
        session = self._session
        await session.ready()
        merged = merge_filter(filter, filter_fields, OBJECT_FILTER_FIELDS, "objects()")
        res = await session.api.objs_query(
            ObjQueryReq(
                project_id=session.project_id,
                filter=ObjectVersionFilter.model_validate(merged) if merged else None,
                limit=limit,
                offset=offset,
                sort_by=[SortBy(field="created_at", direction="asc")],
                metadata_only=not include_values,
            )
        )
        out = []
        for obj in res.objs:
            ref_cls = OpRef if obj.kind == "op" else ObjectRef
            out.append(
                ObjectVersion(
                    name=obj.object_id,
                    digest=obj.digest,
                    version_index=obj.version_index,
                    is_latest=bool(obj.is_latest),
                    class_name=obj.leaf_object_class
                    or obj.base_object_class
                    or ("Op" if obj.kind == "op" else _class_name_of(obj.val)),
                    created_at=obj.created_at,
                    ref=ref_cls(session.entity, session.project, obj.object_id, obj.digest),
                    value=await decode_value(obj.val, session.project_id)
                    if include_values
                    else None,
                )
            )
        return out

    async def delete(self, obj: ObjectRef | ObjectVersion | str) -> int:
        """``client.delete_object``: one version, or every version of a name."""
        session = self._session
        if isinstance(obj, ObjectVersion):
            obj = obj.ref
        if isinstance(obj, str) and is_ref_uri(obj):
            obj = parse_ref(obj)  # type: ignore[assignment]
        await session.ready()
        if isinstance(obj, ObjectRef):
            if obj.extra:
                raise ValueError(f"cannot delete part of an object: {obj.uri()}")
            req = ObjDeleteReq(project_id=obj.project_id, object_id=obj.name, digests=[obj.digest])
        elif isinstance(obj, str):
            validate_object_name(obj)
            req = ObjDeleteReq(project_id=session.project_id, object_id=obj)
        else:
            raise TypeError(
                f"delete_object() takes an ObjectRef, an ObjectVersion, a URI or an object name, "
                f"got {type(obj).__name__}"
            )
        digests = req.digests
        if digests is None:
            # Deleting every version: learn their digests to drop them from the cache.
            listed = await session.api.objs_query(
                ObjQueryReq(
                    project_id=req.project_id,
                    filter=ObjectVersionFilter(object_ids=[req.object_id]),
                    metadata_only=True,
                )
            )
            digests = [o.digest for o in listed.objs]
        try:
            res = await session.api.obj_delete(req)
        finally:
            for digest in digests:
                session.cache.discard("obj", req.project_id, req.object_id, digest)
        return res.num_deleted


def _class_name_of(val: Any) -> str | None:
    """The saved class of a stored value (``_class_name`` of a record), if it has one.

    The server fills ``base_object_class`` only for weave's own Object classes, so
    for other records the class comes from the value (fetched with ``include_values``).
    """
    if isinstance(val, dict):
        name = val.get("_class_name")
        return name if isinstance(name, str) else None
    return None
