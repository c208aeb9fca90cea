"""Weave's own trace server (weave==0.51.59) over HTTP: the compat tier's reference.

Runs under ``.venv-compat/bin/python`` (see tests/compat/requirements.txt; ``./scripts/bootstrap``
creates it), never under the project's venv::

    .venv-compat/bin/python tests/compat/reference_server.py --port 0 [--host 127.0.0.1] [--db PATH]

With ``--port 0`` the OS picks a free port. Once the socket listens, the port is printed alone
on one stdout line, so a parent process can read it; ``GET /health`` answers from then on.

What it is: weave's route table (``weave.trace_server.reference.generate.generate_routes``) over
weave's ``SqliteTraceServer`` (a temp SQLite file unless ``--db`` names one), wrapped in weave's
``ExternalTraceServer`` with an id converter, as the hosted service wraps its ClickHouse server.
What we add, and why:

- ``/call/upsert_batch``: 0.51.59's adapter has no ``call_start_batch`` (the protocol stub would
  return None), so each item goes through the adapter's ``call_start``/``call_end``, which
  convert project ids and refs.
- ``/calls/stream_query`` and ``/table/query_stream``: the routes hand the interface's iterator
  of pydantic models straight to ``StreamingResponse``, which cannot send models; we encode
  each model as one JSON line. The first item is pulled before the response starts, so a bad
  request still gets an error status instead of a 200 with a broken body.
- ``/threads/stream_query``: 0.51.59's interface (and its SQLite server) answer
  ``threads_query_stream``, and its remote client posts to this route, but its route table
  has no entry for it; we serve it over the interface, JSON lines as the other streams.
- ``wb_user_id``: the hosted service fills it from the authenticated user, and weave's SQLite
  server insists on it for deletes, updates and feedback; we fill it with a fixed user id.
- Errors: 0.51.59 ships no exception handlers (every error would be a bare 500, which
  clients retry); weave's own errors map to the statuses and ``{"reason": message}`` bodies
  of the hosted service's error registry. See the README's "Compat tier" section.
- A failed SQLite write (a repeated call start) no longer leaves the database locked for
  every later write: the failed connection is released (still a 500, as weave answers).
- Bodies without a Content-Type are parsed as JSON: weave's own client sends them so.
- Auth: any or none; the key is never looked at.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import os
import socket
import sqlite3
import sys
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel
from weave.trace_server import errors as ts_errors
from weave.trace_server import sqlite_trace_server, trace_server_converter
from weave.trace_server import trace_server_interface as tsi
from weave.trace_server.external_to_internal_trace_server_adapter import (
    ExternalTraceServer,
    IdConverter,
)
from weave.trace_server.reference.generate import ServiceDependency, generate_routes
from weave.trace_server.sqlite_trace_server import SqliteTraceServer
from weave.trace_server.trace_service import ServerInfoRes

# The user every write is attributed to (the hosted service takes it from the API key).
REFERENCE_USER_ID = "reference-user"


class Base64IdConverter(IdConverter):
    """External "entity/project" <-> internal urlsafe base64 (internal refs forbid '/' and ':').

    Stateless and reversible, so any project id works without registration. Run and user ids
    are not part of any ref, so they pass through unchanged.
    """

    def ext_to_int_project_id(self, project_id: str) -> str:
        return base64.urlsafe_b64encode(project_id.encode()).decode()

    def int_to_ext_project_id(self, project_id: str) -> str | None:
        try:
            return base64.urlsafe_b64decode(project_id.encode()).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None

    def ext_to_int_run_id(self, run_id: str) -> str:
        return run_id

    def int_to_ext_run_id(self, run_id: str) -> str:
        return run_id

    def ext_to_int_user_id(self, user_id: str) -> str:
        return user_id

    def int_to_ext_user_id(self, user_id: str) -> str:
        return user_id


def _jsonl(models: Iterator[BaseModel]) -> Iterator[bytes]:
    """Encode models as JSON lines, pulling the first one now so errors surface as a status."""
    first = next(models, None)

    def lines() -> Iterator[bytes]:
        if first is None:
            return
        yield first.model_dump_json().encode() + b"\n"
        for model in models:
            yield model.model_dump_json().encode() + b"\n"

    return lines()


def _released(method: Callable[[Any], Any], req: Any) -> Any:
    """Call a write of weave's SQLite server; on a SQLite error, end its transaction.

    weave opens a connection per call, keeps the last one in a context variable and never
    rolls back: when a write fails (a repeated call start breaks the calls.id key), that
    connection stays inside its transaction and holds the database's write lock, so every
    later write, of every test, fails with "database is locked".
    """
    try:
        return method(req)
    except sqlite3.Error as exc:
        held = sqlite_trace_server._conn_cursor.get()
        if held is not None:
            held[0].rollback()
            held[0].close()
            sqlite_trace_server._conn_cursor.set(None)
        raise StorageError(f"weave's SQLite server failed: {type(exc).__name__}: {exc}") from exc


class ReleasingSqliteTraceServer(SqliteTraceServer):
    """weave's SQLite server whose failed writes do not leave the database locked."""

    def call_start(self, req: tsi.CallStartReq) -> tsi.CallStartRes:
        return _released(super().call_start, req)  # type: ignore[no-any-return]

    def call_end(self, req: tsi.CallEndReq) -> tsi.CallEndRes:
        return _released(super().call_end, req)  # type: ignore[no-any-return]

    def call_update(self, req: tsi.CallUpdateReq) -> tsi.CallUpdateRes:
        return _released(super().call_update, req)  # type: ignore[no-any-return]

    def calls_delete(self, req: tsi.CallsDeleteReq) -> tsi.CallsDeleteRes:
        return _released(super().calls_delete, req)  # type: ignore[no-any-return]

    def obj_create(self, req: tsi.ObjCreateReq) -> tsi.ObjCreateRes:
        return _released(super().obj_create, req)  # type: ignore[no-any-return]

    def obj_delete(self, req: tsi.ObjDeleteReq) -> tsi.ObjDeleteRes:
        return _released(super().obj_delete, req)  # type: ignore[no-any-return]

    def table_create(self, req: tsi.TableCreateReq) -> tsi.TableCreateRes:
        return _released(super().table_create, req)  # type: ignore[no-any-return]

    def table_update(self, req: tsi.TableUpdateReq) -> tsi.TableUpdateRes:
        return _released(super().table_update, req)  # type: ignore[no-any-return]

    def file_create(self, req: tsi.FileCreateReq) -> tsi.FileCreateRes:
        return _released(super().file_create, req)  # type: ignore[no-any-return]

    def feedback_create(self, req: tsi.FeedbackCreateReq) -> tsi.FeedbackCreateRes:
        return _released(super().feedback_create, req)  # type: ignore[no-any-return]

    def feedback_purge(self, req: tsi.FeedbackPurgeReq) -> tsi.FeedbackPurgeRes:
        return _released(super().feedback_purge, req)  # type: ignore[no-any-return]

    def feedback_replace(self, req: tsi.FeedbackReplaceReq) -> tsi.FeedbackReplaceRes:
        return _released(super().feedback_replace, req)  # type: ignore[no-any-return]


class ReferenceTraceServer(ExternalTraceServer):
    """weave's adapter with the two 0.51.59 gaps filled and the user id injected."""

    def call_start_batch(self, req: tsi.CallCreateBatchReq) -> tsi.CallCreateBatchRes:
        res: list[Any] = []
        for i, item in enumerate(req.batch):
            # The item models differ only by `req`'s shape and `mode` is a free string, so an
            # item is accepted only when both agree.
            if item.mode == "start" and isinstance(item, tsi.CallBatchStartMode):
                res.append(self.call_start(item.req))
            elif item.mode == "end" and isinstance(item, tsi.CallBatchEndMode):
                res.append(self.call_end(item.req))
            else:
                raise ts_errors.InvalidRequest(
                    f"batch[{i}]: mode {item.mode!r} does not match its req "
                    "(expected mode 'start' with req.start or mode 'end' with req.end)"
                )
        return tsi.CallCreateBatchRes(res=res)

    def calls_query_stream(self, req: tsi.CallsQueryReq) -> Iterator[tsi.CallSchema]:
        return _jsonl(super().calls_query_stream(req))  # type: ignore[return-value]

    def table_query_stream(self, req: tsi.TableQueryReq) -> Iterator[tsi.TableRowSchema]:
        return _jsonl(super().table_query_stream(req))  # type: ignore[return-value]

    def call_start(self, req: tsi.CallStartReq) -> tsi.CallStartRes:
        req.start.wb_user_id = REFERENCE_USER_ID
        return super().call_start(req)

    def calls_delete(self, req: tsi.CallsDeleteReq) -> tsi.CallsDeleteRes:
        req.wb_user_id = REFERENCE_USER_ID
        return super().calls_delete(req)

    def call_update(self, req: tsi.CallUpdateReq) -> tsi.CallUpdateRes:
        req.wb_user_id = REFERENCE_USER_ID
        return super().call_update(req)

    def obj_create(self, req: tsi.ObjCreateReq) -> tsi.ObjCreateRes:
        req.obj.wb_user_id = REFERENCE_USER_ID
        return super().obj_create(req)

    def feedback_create(self, req: tsi.FeedbackCreateReq) -> tsi.FeedbackCreateRes:
        req.wb_user_id = REFERENCE_USER_ID
        return super().feedback_create(req)

    def feedback_replace(self, req: tsi.FeedbackReplaceReq) -> tsi.FeedbackReplaceRes:
        req.wb_user_id = REFERENCE_USER_ID
        return super().feedback_replace(req)


class ReferenceService:
    """The TraceService protocol generate_routes expects: the interface plus info and health."""

    def __init__(self, trace_server_interface: tsi.TraceServerInterface) -> None:
        self.trace_server_interface = trace_server_interface

    def server_info(self) -> ServerInfoRes:
        return ServerInfoRes(min_required_weave_python_version="0.0.1")

    def read_root(self) -> dict[str, str]:
        return {"status": "ok"}


class StorageError(Exception):
    """A SQLite error of weave's server, re-raised without the frames that held its connection."""


# weave's error classes -> the status and body the hosted service answers with (its
# ErrorRegistry in weave/trace_server/errors.py of later releases; 0.51.59 has none, so every
# error was a bare 500). The first isinstance match wins, so subclasses go first.
_ERRORS: list[tuple[type[BaseException], int, str | None]] = [
    (ts_errors.NotFoundError, 404, None),
    (ts_errors.ObjectDeletedError, 404, None),
    (ts_errors.RequestTooLarge, 413, "Request too large"),
    (ts_errors.InsertTooLarge, 413, None),
    (ts_errors.InvalidRequest, 400, None),
    (ts_errors.InvalidFieldError, 403, None),
    (trace_server_converter.InvalidExternalRef, 400, None),
    # weave's SQLite server reports bad arguments as bare ValueErrors ("Limit must be a
    # positive integer"), as do its ref parsers: the hosted service answers those with 400.
    (ValueError, 400, None),
    (KeyError, 500, "Internal backend error"),
    (StorageError, 500, None),
    (Exception, 500, "Internal server error"),
]


async def _weave_error(request: Request, exc: Exception) -> JSONResponse:
    for error_type, status, fixed_reason in _ERRORS:
        if isinstance(exc, error_type):
            body: dict[str, Any] = {"reason": fixed_reason or str(exc)}
            if isinstance(exc, ts_errors.ObjectDeletedError):
                body["deleted_at"] = exc.deleted_at.isoformat()
            return JSONResponse(body, status_code=status)
    raise exc  # not reached: Exception matches everything


def create_app(db_path: str) -> FastAPI:
    """The reference app over a SQLite file at ``db_path`` (tables created if missing)."""
    sqlite_server = ReleasingSqliteTraceServer(db_path)
    sqlite_server.setup_tables()
    service = ReferenceService(ReferenceTraceServer(sqlite_server, Base64IdConverter()))
    # weave's own client posts JSON bodies without a Content-Type header (requests' data=);
    # the hosted service parses them as JSON, so strict Content-Type checking (FastAPI's
    # default since 0.12x) is off, as it must be for any server weave's client talks to.
    app = FastAPI(title="weave 0.51.59 reference trace server", strict_content_type=False)
    router = APIRouter(strict_content_type=False)
    app.include_router(
        generate_routes(router, ServiceDependency(service_factory=lambda _auth: service))
    )

    @app.post("/threads/stream_query")
    def threads_stream_query(req: tsi.ThreadsQueryReq) -> StreamingResponse:
        threads = service.trace_server_interface.threads_query_stream(req)
        return StreamingResponse(_jsonl(threads), media_type="application/jsonl")

    for error_type, _status, _reason in _ERRORS:
        app.add_exception_handler(error_type, _weave_error)
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--db", help="SQLite file (default: a fresh temp file)")
    args = parser.parse_args(argv)

    tmp_dir = None
    db_path = args.db
    if db_path is None:
        tmp_dir = tempfile.TemporaryDirectory(prefix="weave-reference-")
        db_path = os.path.join(tmp_dir.name, "trace.db")
    app = create_app(db_path)

    # Bind and listen before announcing the port: connections made after the announcement
    # queue in the backlog until uvicorn accepts them, so nobody races the startup.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(2048)
    sock.set_inheritable(True)
    print(sock.getsockname()[1], flush=True)

    config = uvicorn.Config(app, log_level="warning", access_log=False)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
        if tmp_dir is not None:
            tmp_dir.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
