"""The local trace server: the hosted Weave trace service's HTTP API over SQLite.

``create_app(db_path)`` builds the FastAPI app; ``start_background_server(db_path)``
serves it from a daemon thread on a real socket; ``embedded_server_url()`` is the
process-wide server a client uses when no other server is configured. From a
shell: ``python -m weave_client serve``.
"""

from __future__ import annotations

from ._app import DEFAULT_MAX_BODY_BYTES, create_app
from ._background import (
    BackgroundServer,
    embedded_server_url,
    local_db_path,
    start_background_server,
)

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "BackgroundServer",
    "create_app",
    "embedded_server_url",
    "local_db_path",
    "start_background_server",
]
