"""Fixtures of the viewer tests: one local server per module, seeded over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from weave_client.server import BackgroundServer, start_background_server

from .seed import Seeded, seed_project

VIEWER_ENTITY = "viewer-team"


@pytest.fixture(scope="module")
def viewer_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    """A local trace server on 127.0.0.1 (free port) over a fresh SQLite file, its
    watchers handed off to the live process as under ``serve`` (the browser takes
    permessage-deflate there; ``calls --follow`` does not)."""
    db_path: Path = tmp_path_factory.mktemp("viewer") / "trace.db"
    server = start_background_server(db_path, port=0, watch_process=True)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def seeded(viewer_server: BackgroundServer) -> Seeded:
    """The viewer test project, written through the public API."""
    return seed_project(viewer_server.url, f"{VIEWER_ENTITY}/demo")
