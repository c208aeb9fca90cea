"""The trace viewer: a static page served by the local server at ``/``.

The page (``static/``: plain HTML, CSS and JavaScript modules, no build step,
nothing fetched from the network) reads everything through the same HTTP API
the client uses (``/calls/query``, ``/obj/read``, ...). The one addition is
``GET /viewer/projects``: the trace API has no way to list projects, so this
local-server extension lists the projects found in the server's database.

Mount it with ``app.include_router(viewer_router)``; it reads the database from
``app.state.db`` (a :class:`~weave_client.server._db.Database`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ._db import Database

__all__ = ["STATIC_MEDIA_TYPES", "viewer_router"]

# Media types by suffix; a JavaScript module must be served as JavaScript or the
# browser refuses to run it. Files of other types are not served.
STATIC_MEDIA_TYPES: dict[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}

# Defence in depth on top of the page's own escaping: even if a value did end
# up parsed as HTML, no inline script, foreign script or foreign connection runs.
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_SECURITY_HEADERS = {
    "Content-Security-Policy": _CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@dataclass(frozen=True)
class _Asset:
    body: bytes
    media_type: str
    etag: str


@cache
def _assets() -> dict[str, _Asset]:
    """Every servable file of ``static/`` by name, read once from the installed package."""
    root = resources.files("weave_client.server").joinpath("static")
    assets: dict[str, _Asset] = {}
    for entry in root.iterdir():
        suffix = "." + entry.name.rpartition(".")[2] if "." in entry.name else ""
        media_type = STATIC_MEDIA_TYPES.get(suffix)
        if media_type is None or not entry.is_file():
            continue
        body = entry.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        assets[entry.name] = _Asset(body, media_type, etag)
    return assets


def _serve(request: Request, name: str) -> Response:
    # Only names found in the package directory are served, so no path from the
    # URL ever reaches the file system.
    asset = _assets().get(name)
    if asset is None:
        return Response(
            content=json.dumps({"reason": f"no viewer asset named {name!r}"}).encode(),
            status_code=404,
            media_type="application/json",
        )
    # no-cache: the browser revalidates (cheap, by ETag), so an upgraded
    # package never runs with a stale module.
    headers = {"ETag": asset.etag, "Cache-Control": "no-cache", **_SECURITY_HEADERS}
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    return Response(content=asset.body, media_type=asset.media_type, headers=headers)


viewer_router = APIRouter(include_in_schema=False)


@viewer_router.get("/")
def viewer_index(request: Request) -> Response:
    """The viewer's page."""
    return _serve(request, "index.html")


@viewer_router.get("/static/{name}")
def viewer_static(request: Request, name: str) -> Response:
    """A file of the viewer (module, stylesheet, icon)."""
    return _serve(request, name)


_PROJECTS_SQL = """
SELECT project_id,
       SUM(calls) AS calls,
       SUM(traces) AS traces,
       SUM(objects) AS objects,
       MAX(last_activity) AS last_activity
FROM (
    SELECT project_id, COUNT(*) AS calls, SUM(parent_id IS NULL) AS traces, 0 AS objects,
           MAX(started_at) AS last_activity
    FROM calls WHERE deleted_at IS NULL GROUP BY project_id
    UNION ALL
    SELECT project_id, 0, 0, COUNT(*), MAX(created_at)
    FROM objects WHERE deleted_at IS NULL GROUP BY project_id
)
GROUP BY project_id
ORDER BY last_activity DESC, project_id
"""


@viewer_router.get("/viewer/projects")
def viewer_projects(request: Request) -> dict[str, list[dict[str, Any]]]:
    """Local-server extension: the projects this server holds, most recently active first.

    Each has ``project_id`` (``entity/project``), ``calls``, ``traces`` (root
    calls), ``objects`` (object versions) and ``last_activity`` (newest call
    start or object version, ISO 8601 UTC).
    """
    db: Database = request.app.state.db
    with db.read() as conn:
        rows = conn.execute(_PROJECTS_SQL).fetchall()
    return {
        "projects": [
            {
                "project_id": row["project_id"],
                "calls": int(row["calls"] or 0),
                "traces": int(row["traces"] or 0),
                "objects": int(row["objects"] or 0),
                "last_activity": row["last_activity"],
            }
            for row in rows
        ]
    }
