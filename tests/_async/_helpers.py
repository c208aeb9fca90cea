"""Helpers shared by the hand-written async client tests (and, generated, the sync ones)."""

from __future__ import annotations

from typing import Any

from weave_client import AsyncWeaveClient, ObjectRef
from weave_client._models import ObjReadReq


async def stored_value(client: AsyncWeaveClient, ref: ObjectRef) -> Any:
    """The value exactly as the server stores it at ``ref`` (no client decoding)."""
    res = await client._api.obj_read(
        ObjReadReq(project_id=client.project_id, object_id=ref.name, digest=ref.digest)
    )
    return res.obj.val
