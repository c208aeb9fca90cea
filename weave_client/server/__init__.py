"""The local trace server: the hosted Weave trace service's HTTP API over SQLite.

``create_app(db_path)`` builds the FastAPI app; ``start_background_server(db_path)``
serves it from a daemon thread on a real socket; ``embedded_server_url()`` is the
process-wide server a client uses when no other server is configured. From a
shell: ``python -m weave_client serve``.

Deliberate differences from weave 0.51.59's SQLite reference server (mostly
where the hosted service behaves better than the reference):

- end-before-start and repeated starts/ends are upserts (the reference fails
  on a repeated start and drops an end that arrives before its start);
- ``latest`` moves to the newest remaining version when the latest is deleted;
- a missing table (``/table/query``, ``/table/query_stream``,
  ``/table/query_stats``, ``/table/update``) and a missing call in
  ``/call/update`` are 404 (the reference answers empty, 500, or nothing);
- ``/refs/read_batch`` follows nested object and table refs along the whole
  path as the hosted service does, and also reads a bare table ref (the list of
  its rows) and ``/index/<n>`` into a table;
- ``/objs/query`` rejects a ``sort_by`` field it cannot sort by (400) instead
  of ignoring it; ``builtin_object_class`` is accepted only when it matches the
  value's ``_class_name`` (there is no builtin class registry here);
- reaction feedback gets no emoji aliases, and feedback payloads may be up to
  1 MiB (the hosted limit; the reference allows 1 KiB);
- NaN and infinities inside call values are stored as null.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
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

# Loaded when first used: a process that runs only one part of the server (the
# live watchers' process, ``_live_child``) does not import FastAPI and uvicorn.
__getattr__, __dir__ = lazy_exports(
    __name__,
    globals(),
    {
        "DEFAULT_MAX_BODY_BYTES": ("._app", "DEFAULT_MAX_BODY_BYTES"),
        "create_app": ("._app", "create_app"),
        "BackgroundServer": ("._background", "BackgroundServer"),
        "embedded_server_url": ("._background", "embedded_server_url"),
        "local_db_path": ("._background", "local_db_path"),
        "start_background_server": ("._background", "start_background_server"),
    },
)
