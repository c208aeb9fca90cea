"""The viewer without a browser: the page and its assets are served, the project list
extension answers, and the page's source keeps to its rules (escaping, public API only)."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

import httpx
import pytest

from weave_client.server import BackgroundServer, start_background_server
from weave_client.server._viewer import STATIC_MEDIA_TYPES

from .seed import Seeded

STATIC_DIR = Path(str(resources.files("weave_client.server").joinpath("static")))
JS_FILES = sorted(STATIC_DIR.glob("*.js"))

# What the page may call: the client's routes plus the one local-server extension.
ALLOWED_ROUTES = {
    "/calls/query",
    "/calls/query_stats",
    "/call/read",
    "/objs/query",
    "/obj/read",
    "/table/query",
    "/table/query_stats",
    "/feedback/query",
    "/threads/stream_query",
    "/refs/read_batch",
    "/file/content",
    "/viewer/projects",
}


def _referenced_assets() -> set[str]:
    """Every static file the page loads: from index.html and every JS import, transitively."""
    html = (STATIC_DIR / "index.html").read_text()
    names = set(re.findall(r'(?:src|href)="/static/([^"]+)"', html))
    todo = [n for n in names if n.endswith(".js")]
    while todo:
        source = (STATIC_DIR / todo.pop()).read_text()
        for dep in re.findall(r'from "\./([^"]+)"', source):
            if dep not in names:
                names.add(dep)
                todo.append(dep)
    return names


def test_index_page_is_served_with_a_strict_policy(viewer_server: BackgroundServer) -> None:
    res = httpx.get(viewer_server.url + "/")
    assert res.status_code == 200
    assert res.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/static/app.js"></script>' in res.text
    csp = res.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert res.headers["x-content-type-options"] == "nosniff"


def test_every_referenced_asset_is_served_with_its_type(viewer_server: BackgroundServer) -> None:
    names = _referenced_assets()
    # The whole module graph is reachable from index.html (a typo'd import would show here).
    assert {p.name for p in JS_FILES} <= names
    assert {"app.js", "viewer.css", "favicon.svg"} <= names
    with httpx.Client(base_url=viewer_server.url) as http:
        for name in sorted(names):
            res = http.get(f"/static/{name}")
            assert res.status_code == 200, name
            suffix = "." + name.rsplit(".", 1)[1]
            assert res.headers["content-type"] == STATIC_MEDIA_TYPES[suffix], name
            assert res.content == (STATIC_DIR / name).read_bytes(), name
            # Revalidation by ETag answers 304 without a body.
            again = http.get(f"/static/{name}", headers={"If-None-Match": res.headers["etag"]})
            assert again.status_code == 304 and again.content == b"", name


@pytest.mark.parametrize("name", ["nope.js", "..%2F_app.py", "%2E%2E%2F_viewer.py", "index.htm"])
def test_unknown_assets_are_404(viewer_server: BackgroundServer, name: str) -> None:
    res = httpx.get(f"{viewer_server.url}/static/{name}")
    assert res.status_code == 404
    assert "import" not in res.text  # never Python source


def test_projects_extension_lists_projects_with_counts(
    viewer_server: BackgroundServer, seeded: Seeded
) -> None:
    res = httpx.get(viewer_server.url + "/viewer/projects")
    assert res.status_code == 200
    projects = {p["project_id"]: p for p in res.json()["projects"]}
    p = projects[seeded.project_id]
    # 1 old trace + a 3-call trace + an evaluation with 2 rows; 5 ops + config + dataset.
    assert (p["calls"], p["traces"], p["objects"]) == (7, 3, 7)
    assert p["last_activity"] and p["last_activity"].startswith("20")


def test_projects_extension_on_an_empty_server(tmp_path: Path) -> None:
    with start_background_server(tmp_path / "empty.db") as server:
        res = httpx.get(server.url + "/viewer/projects")
    assert res.status_code == 200
    assert res.json() == {"projects": []}


def test_viewer_requires_the_key_when_the_server_has_one(tmp_path: Path) -> None:
    with start_background_server(tmp_path / "auth.db", api_key="s3cret-key") as server:
        anon = httpx.get(server.url + "/")
        authed = httpx.get(server.url + "/", auth=("api", "s3cret-key"))
        projects = httpx.get(server.url + "/viewer/projects")
    assert anon.status_code == 401
    assert "s3cret-key" not in anon.text
    assert authed.status_code == 200 and "app.js" in authed.text
    assert projects.status_code == 401


@pytest.mark.parametrize("path", JS_FILES, ids=lambda p: p.name)
def test_page_source_never_parses_data_as_html(path: Path) -> None:
    source = path.read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in source, f"{path.name} uses {sink}"


def test_page_calls_only_the_public_api() -> None:
    used: set[str] = set()
    for path in JS_FILES:
        used |= set(re.findall(r'"(/(?:calls?|objs?|tables?|feedback|refs|files?|viewer)/[a-z_]+)"', path.read_text()))
    assert used, "found no API routes in the page source"
    assert used <= ALLOWED_ROUTES, sorted(used - ALLOWED_ROUTES)
