"""The FastAPI application of the local trace server, assembled from one router per area.

Layers (see docs/architecture.md, "Server"): the middlewares (_middleware.py)
wrap the routers (_routers/), each router calls its store (_calls.py,
_objects.py, _tables.py, ...), the stores share one SQLite database (_db.py).
Errors become replies in _http_errors.py.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from ._calls import CallStore
from ._costs import CostStore
from ._db import Database
from ._feedback import FeedbackStore
from ._files import FileStore
from ._http_errors import install_error_handlers
from ._live import DEFAULT_KEEP_EVENTS, DEFAULT_WATCH_QUEUE, Broadcaster
from ._live_sql import install
from ._middleware import DEFAULT_MAX_BODY_BYTES, install_middleware
from ._objects import ObjectStore
from ._refs import RefStore
from ._routers import calls as calls_routes
from ._routers import costs as cost_routes
from ._routers import feedback as feedback_routes
from ._routers import files as file_routes
from ._routers import live as live_routes
from ._routers import meta as meta_routes
from ._routers import objects as object_routes
from ._routers import refs as ref_routes
from ._routers import tables as table_routes
from ._routers import threads as thread_routes
from ._routers._reply import document_bodies
from ._tables import TableStore
from ._threads import ThreadStore
from ._viewer import viewer_router

__all__ = ["DEFAULT_MAX_BODY_BYTES", "create_app"]


def create_app(
    db_path: str | Path,
    *,
    api_key: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    watch_queue_size: int = DEFAULT_WATCH_QUEUE,
    keep_events: int = DEFAULT_KEEP_EVENTS,
    watch_process: bool = False,
) -> FastAPI:
    """The local trace server as an ASGI app over the SQLite file ``db_path``.

    With ``api_key``, every route requires HTTP Basic auth with that password.
    Bodies over ``max_body_bytes`` get 413. A ``/calls/watch`` client with more
    than ``watch_queue_size`` events waiting is closed as too slow; the newest
    ``keep_events`` call events are kept for its replays. ``watch_process=True``
    hands the watchers off to a child process of lower CPU priority, so that
    sending them the calls takes only what ingestion leaves (``python -m
    weave_client serve`` does; see ``_live_process``). The database (and that
    process) are closed on ``app.state.close()`` (``BackgroundServer.stop()`` does it).
    """
    db = Database(db_path)
    try:
        objects = ObjectStore(db)
        tables = TableStore(db)
        refs = RefStore(db, objects, tables)
        calls = CallStore(db, read_refs=refs.refs_read_batch)
        install(db)
        broadcaster = Broadcaster(
            db, queue_size=watch_queue_size, keep_events=keep_events, process=watch_process
        )
    except BaseException:  # a bad option: the database (and its checkpointer) is not left open
        db.close()
        raise
    calls.changes = broadcaster

    app = FastAPI(title="weave-client local trace server", docs_url=None, redoc_url=None)
    app.state.db = db

    def close() -> None:
        broadcaster.close()
        db.close()

    app.state.close = close
    app.state.broadcaster = broadcaster

    install_error_handlers(app)
    for router in (
        meta_routes.router(),
        calls_routes.router(calls),
        live_routes.router(broadcaster),
        thread_routes.router(ThreadStore(db)),
        object_routes.router(objects),
        table_routes.router(tables),
        ref_routes.router(refs),
        file_routes.router(FileStore(db)),
        feedback_routes.router(FeedbackStore(db)),
        cost_routes.router(CostStore(db)),
        # The trace viewer at / (static page over this same API; see _viewer.py).
        viewer_router,
    ):
        app.include_router(router)
    document_bodies(app, list(table_routes.BODY_MODELS))
    install_middleware(app, api_key=api_key, max_body_bytes=max_body_bytes)
    return app
