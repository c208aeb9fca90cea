"""The FastAPI application of the local trace server: routes, auth and limits (errors: _http_errors)."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Annotated, Any

import anyio.to_thread
from fastapi import FastAPI, Form, Request, UploadFile, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ValidationError

from .._models import (
    CallEndReq,
    CallEndRes,
    CallReadReq,
    CallReadRes,
    CallsDeleteReq,
    CallsDeleteRes,
    CallsQueryReq,
    CallsQueryRes,
    CallsQueryStatsReq,
    CallsQueryStatsRes,
    CallStartReq,
    CallStartRes,
    CallUpdateReq,
    CallUpdateRes,
    CostCreateReq,
    CostCreateRes,
    CostPurgeReq,
    CostPurgeRes,
    CostQueryReq,
    CostQueryRes,
    FeedbackCreateBatchReq,
    FeedbackCreateBatchRes,
    FeedbackCreateReq,
    FeedbackCreateRes,
    FeedbackPurgeReq,
    FeedbackPurgeRes,
    FeedbackQueryReq,
    FeedbackQueryRes,
    FeedbackReplaceReq,
    FeedbackReplaceRes,
    FileContentReadReq,
    FileCreateRes,
    ObjCreateReq,
    ObjCreateRes,
    ObjDeleteReq,
    ObjDeleteRes,
    ObjQueryReq,
    ObjQueryRes,
    ObjReadReq,
    ObjReadRes,
    RefsReadBatchReq,
    RefsReadBatchRes,
    ServerInfoRes,
    TableCreateReq,
    TableCreateRes,
    TableQueryReq,
    TableQueryStatsReq,
    TableQueryStatsRes,
    TableUpdateReq,
    TableUpdateRes,
    ThreadsQueryReq,
)
from ._calls import CallStore
from ._costs import CostStore
from ._db import Database
from ._feedback import FeedbackStore
from ._http_errors import error_response, install_error_handlers, send_error
from ._live import DEFAULT_WATCH_QUEUE, Broadcaster, install, watch_route
from ._objects import ObjectStore
from ._threads import ThreadStore
from ._viewer import viewer_router

__all__ = ["DEFAULT_MAX_BODY_BYTES", "create_app"]

# The hosted service accepts requests up to 32 MiB.
DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024
# What weave's reference server reports; weave's own client checks it.
MIN_REQUIRED_WEAVE_PYTHON_VERSION = "0.0.1"
JSONL = "application/jsonl"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class _BasicAuth:
    """Every request must carry HTTP Basic auth whose password is the server's key (401 otherwise).

    The username is not checked (weave's client sends ``api``). The key is
    compared in constant time and never logged or echoed.
    """

    def __init__(self, app: ASGIApp, api_key: str) -> None:
        self.app = app
        self._key = api_key.encode()

    def _authorized(self, scope: Scope) -> bool:
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                scheme, _, token = value.partition(b" ")
                if scheme.lower() != b"basic":
                    return False
                try:
                    decoded = base64.b64decode(token.strip(), validate=True)
                except (binascii.Error, ValueError):
                    return False
                _, sep, password = decoded.partition(b":")
                return bool(sep) and hmac.compare_digest(password, self._key)
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and not self._authorized(scope):
            # Refuse the handshake with the same 401 (ASGI's WebSocket denial response).
            await send_error(
                _as_websocket_denial(send),
                401,
                "authentication required: HTTP Basic auth with the server's API key as password",
                [(b"www-authenticate", b'Basic realm="weave-client"')],
            )
            return
        if scope["type"] == "http" and not self._authorized(scope):
            await send_error(
                send,
                401,
                "authentication required: HTTP Basic auth with the server's API key as password",
                [(b"www-authenticate", b'Basic realm="weave-client"')],
            )
            return
        await self.app(scope, receive, send)


def _as_websocket_denial(send: Send) -> Send:
    """``send`` for HTTP response messages, renamed to the WebSocket denial response's."""

    async def deny(message: Message) -> None:
        await send({**message, "type": "websocket." + message["type"]})

    return deny


class _DefaultJSONBody:
    """Read a POST body sent without Content-Type as JSON, as the hosted service does.

    weave's own client posts JSON without the header (``requests`` with ``data=``);
    FastAPI would refuse such bodies with 422, so weave could not save objects here.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("method") == "POST":
            headers = scope.get("headers", [])
            if not any(name == b"content-type" for name, _ in headers):
                scope = {**scope, "headers": [*headers, (b"content-type", b"application/json")]}
        await self.app(scope, receive, send)


class _BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413, by Content-Length or while streaming."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = f"request body is larger than this server's limit of {self.max_bytes} bytes"
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await send_error(send, 400, f"invalid Content-Length header {value!r}")
                    return
                if declared > self.max_bytes:
                    await send_error(send, 413, too_large)
                    return
        # No (or a lying) Content-Length: read the whole body here, counting.
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, _replay([message]), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await send_error(send, 413, too_large)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        await self.app(
            scope,
            _replay([{"type": "http.request", "body": body, "more_body": False}], receive),
            send,
        )


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    pending = list(messages)

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        if then is not None:
            return await then()
        return {"type": "http.disconnect"}

    return receive


def _json(data: str | bytes, status: int = 200) -> Response:
    return Response(content=data, status_code=status, media_type="application/json")


def _json_body(model: type[BaseModel]) -> dict[str, Any]:
    """The ``openapi_extra`` of a route that reads its body itself: ``model`` as its schema."""
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"content": {"application/json": {"schema": schema}}, "required": True}}


def _document_bodies(app: FastAPI, models: list[type[BaseModel]]) -> None:
    """Add ``models`` (and the models they use) to the app's OpenAPI components.

    FastAPI only lists the models of declared parameters; the routes using
    ``_json_body`` declare none, and the schema must still describe their bodies
    (clients and the fuzz test read it). The names are pydantic's, as FastAPI's.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in models:
                js = model.model_json_schema(ref_template="#/components/schemas/{model}")
                for name, sub in js.pop("$defs", {}).items():
                    components.setdefault(name, sub)
                components.setdefault(model.__name__, js)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


async def _run_json_route(handler: Callable[[bytes], bytes], body: bytes) -> Response:
    """Run a body-to-reply handler off the event loop (parsing and the write are CPU
    and disk work); a body failing the wire model is the client's error (422)."""
    try:
        reply = await anyio.to_thread.run_sync(handler, body)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None
    except UnicodeDecodeError as exc:
        # Not UTF-8 (the JSON parser's fallback decodes first): a bad body, not our fault.
        return error_response(400, f"request body is not valid JSON: {exc}")
    return _json(reply)


def create_app(
    db_path: str | Path,
    *,
    api_key: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    watch_queue_size: int = DEFAULT_WATCH_QUEUE,
) -> FastAPI:
    """The local trace server as an ASGI app over the SQLite file ``db_path``.

    With ``api_key``, every route requires HTTP Basic auth with that password.
    Bodies over ``max_body_bytes`` get 413. A ``/calls/watch`` client with more
    than ``watch_queue_size`` events waiting is closed as too slow. The database is closed on
    ``app.state.close()`` (``BackgroundServer.stop()`` does it).
    """
    db = Database(db_path)
    objects = ObjectStore(db)
    calls = CallStore(db, read_refs=objects.refs_read_batch)
    install(db)
    broadcaster = Broadcaster(db, queue_size=watch_queue_size)
    calls.changes = broadcaster
    feedback = FeedbackStore(db)
    costs = CostStore(db)
    threads = ThreadStore(db)

    app = FastAPI(title="weave-client local trace server", docs_url=None, redoc_url=None)
    app.state.db = db
    app.state.close = db.close
    app.state.broadcaster = broadcaster

    install_error_handlers(app)

    # -- service ------------------------------------------------------------------

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/server_info")
    def server_info() -> ServerInfoRes:
        return ServerInfoRes(min_required_weave_python_version=MIN_REQUIRED_WEAVE_PYTHON_VERSION)

    # -- calls --------------------------------------------------------------------

    @app.post("/call/upsert_batch")
    async def call_upsert_batch(request: Request) -> Response:
        return await _run_json_route(calls.upsert_batch_json, await request.body())

    @app.post("/call/start")
    def call_start(req: CallStartReq) -> CallStartRes:
        return calls.start(req)

    @app.post("/call/end")
    def call_end(req: CallEndReq) -> CallEndRes:
        calls.end(req)
        return CallEndRes()

    @app.post("/call/read")
    def call_read(req: CallReadReq) -> Response:
        return _json(CallReadRes(call=calls.read(req)).model_dump_json())

    @app.post("/call/update")
    def call_update(req: CallUpdateReq) -> CallUpdateRes:
        calls.update(req)
        return CallUpdateRes()

    @app.post("/calls/delete")
    def calls_delete(req: CallsDeleteReq) -> CallsDeleteRes:
        calls.delete(req)
        return CallsDeleteRes()

    @app.post("/calls/query")
    def calls_query(req: CallsQueryReq) -> Response:
        return _json(CallsQueryRes(calls=calls.query(req)).model_dump_json())

    @app.post("/calls/stream_query")
    def calls_stream_query(req: CallsQueryReq) -> StreamingResponse:
        return StreamingResponse(calls.stream_lines(req), media_type=JSONL)

    @app.websocket("/calls/watch")
    async def calls_watch(websocket: WebSocket) -> None:
        await watch_route(websocket, broadcaster)

    @app.post("/calls/query_stats")
    def calls_query_stats(req: CallsQueryStatsReq) -> CallsQueryStatsRes:
        return calls.query_stats(req)

    # -- threads (conversation threads; see _threads.py) ----------------------------

    @app.post("/threads/stream_query")
    def threads_stream_query(req: ThreadsQueryReq) -> StreamingResponse:
        return StreamingResponse(threads.stream_lines(req), media_type=JSONL)

    # -- objects ------------------------------------------------------------------

    @app.post("/obj/create")
    def obj_create(req: ObjCreateReq) -> ObjCreateRes:
        return ObjCreateRes(digest=objects.obj_create(req))

    @app.post("/obj/read")
    def obj_read(req: ObjReadReq) -> Response:
        return _json(ObjReadRes(obj=objects.obj_read(req)).model_dump_json())

    @app.post("/objs/query")
    def objs_query(req: ObjQueryReq) -> Response:
        return _json(ObjQueryRes(objs=objects.objs_query(req)).model_dump_json())

    @app.post("/obj/delete")
    def obj_delete(req: ObjDeleteReq) -> ObjDeleteRes:
        return ObjDeleteRes(num_deleted=objects.obj_delete(req))

    # -- tables -------------------------------------------------------------------

    # Tables of 100,000 rows arrive here: the bodies are parsed with orjson and
    # checked by hand (see ObjectStore.table_update_json), as /call/upsert_batch's;
    # the OpenAPI still documents the wire models (see _document_bodies).
    @app.post(
        "/table/create",
        response_model=TableCreateRes,
        openapi_extra=_json_body(TableCreateReq),
    )
    async def table_create(request: Request) -> Response:
        return await _run_json_route(objects.table_create_json, await request.body())

    @app.post(
        "/table/update",
        response_model=TableUpdateRes,
        openapi_extra=_json_body(TableUpdateReq),
    )
    async def table_update(request: Request) -> Response:
        return await _run_json_route(objects.table_update_json, await request.body())

    @app.post("/table/query")
    def table_query(req: TableQueryReq) -> Response:
        return _json(objects.table_query_json(req))

    @app.post("/table/query_stream")
    def table_query_stream(req: TableQueryReq) -> StreamingResponse:
        return StreamingResponse(objects.table_query_stream(req), media_type=JSONL)

    @app.post("/table/query_stats")
    def table_query_stats(req: TableQueryStatsReq) -> TableQueryStatsRes:
        return TableQueryStatsRes(count=objects.table_query_stats(req.project_id, req.digest))

    # -- refs and files -------------------------------------------------------------

    @app.post("/refs/read_batch")
    def refs_read_batch(req: RefsReadBatchReq) -> Response:
        vals = objects.refs_read_batch(req.refs)
        return _json(RefsReadBatchRes(vals=vals).model_dump_json())

    @app.post("/file/create")
    @app.post("/files/create", include_in_schema=False)
    async def file_create(project_id: Annotated[str, Form()], file: UploadFile) -> FileCreateRes:
        content = await file.read()
        digest = await anyio.to_thread.run_sync(objects.file_create, project_id, content)
        return FileCreateRes(digest=digest)

    @app.post("/file/content")
    @app.post("/files/content", include_in_schema=False)
    def file_content(req: FileContentReadReq) -> Response:
        return Response(
            content=objects.file_content(req.project_id, req.digest),
            media_type="application/octet-stream",
        )

    # -- feedback -----------------------------------------------------------------

    @app.post("/feedback/create")
    def feedback_create(req: FeedbackCreateReq) -> FeedbackCreateRes:
        return FeedbackCreateRes.model_validate(feedback.create(req))

    @app.post("/feedback/batch/create")
    def feedback_batch_create(req: FeedbackCreateBatchReq) -> FeedbackCreateBatchRes:
        return FeedbackCreateBatchRes.model_validate({"res": feedback.create_batch(req.batch)})

    @app.post("/feedback/query")
    def feedback_query(req: FeedbackQueryReq) -> Response:
        return _json(FeedbackQueryRes(result=feedback.query(req)).model_dump_json())

    @app.post("/feedback/purge")
    def feedback_purge(req: FeedbackPurgeReq) -> FeedbackPurgeRes:
        feedback.purge(req)
        return FeedbackPurgeRes()

    @app.post("/feedback/replace")
    def feedback_replace(req: FeedbackReplaceReq) -> FeedbackReplaceRes:
        return FeedbackReplaceRes.model_validate(feedback.replace(req))

    # -- costs (project token prices; the built-in table is the default level) -------

    @app.post("/cost/create")
    def cost_create(req: CostCreateReq) -> CostCreateRes:
        return CostCreateRes(ids=costs.create(req))

    @app.post("/cost/query")
    def cost_query(req: CostQueryReq) -> Response:
        return _json(
            CostQueryRes.model_validate({"results": costs.query(req)}).model_dump_json(
                exclude_unset=True
            )
        )

    @app.post("/cost/purge")
    def cost_purge(req: CostPurgeReq) -> CostPurgeRes:
        costs.purge(req)
        return CostPurgeRes()

    # The trace viewer at / (static page over this same API; see _viewer.py).
    app.include_router(viewer_router)

    _document_bodies(app, [TableCreateReq, TableUpdateReq])

    # Middleware wraps from the inside out: auth is checked before the body is read.
    app.add_middleware(_DefaultJSONBody)
    app.add_middleware(_BodyLimit, max_bytes=max_body_bytes)
    if api_key is not None:
        if not api_key:
            raise ValueError("api_key: must not be empty (pass None for no auth)")
        app.add_middleware(_BasicAuth, api_key=api_key)
    return app
