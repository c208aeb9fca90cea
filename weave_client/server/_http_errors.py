"""Error replies of the local server, in the hosted service's shape.

The hosted service answers every error it raises with ``{"reason": message}``
(its error registry; a deleted object adds ``deleted_at``), and leaves request
validation to FastAPI, whose 422 body lists the bad fields under ``detail``.
This server does the same; its 422 adds a one-line ``reason`` naming the bad
fields, and leaves out FastAPI's echo of the offending ``input`` (it may be
large or secret).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from ._common import InvalidRequest, NotFound, ObjectDeleted
from ._query_sql import QueryError

__all__ = ["error_response", "install_error_handlers", "send_error"]

logger = logging.getLogger("weave_client.server")

Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]


def error_body(reason: str, **extra: Any) -> dict[str, Any]:
    """``{"reason": reason, **extra}``: the hosted service's error body."""
    return {"reason": reason, **extra}


def error_response(status: int, reason: str, **extra: Any) -> JSONResponse:
    """A JSON error reply in the hosted service's shape."""
    return JSONResponse(status_code=status, content=error_body(reason, **extra))


async def send_error(
    send: Send, status: int, reason: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """Send an error reply from ASGI middleware (before any route runs)."""
    body = json.dumps(error_body(reason)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def validation_reason(errors: list[Any]) -> str:
    """FastAPI's validation errors as one line: ``invalid request: start.id: Field required``."""
    parts = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p != "body"]
        where = ".".join(loc) or "body"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(parts)


def validation_detail(errors: list[Any]) -> list[dict[str, Any]]:
    """FastAPI's ``detail`` list with only loc/msg/type ("input" may echo a secret)."""
    return [
        {
            "loc": list(e.get("loc", ())),
            "msg": str(e.get("msg", "")),
            "type": str(e.get("type", "")),
        }
        for e in errors
    ]


def install_error_handlers(app: FastAPI) -> None:
    """Map the server's exceptions to statuses and ``{"reason": ...}`` bodies."""

    @app.exception_handler(RequestValidationError)
    async def _on_request_validation(request: Request, exc: RequestValidationError) -> Response:
        errors = list(exc.errors())
        return JSONResponse(
            status_code=422,
            content={"reason": validation_reason(errors), "detail": validation_detail(errors)},
        )

    @app.exception_handler(json.JSONDecodeError)
    async def _on_bad_json(request: Request, exc: json.JSONDecodeError) -> Response:
        return error_response(400, f"request body is not valid JSON: {exc}")

    @app.exception_handler(InvalidRequest)
    @app.exception_handler(QueryError)
    async def _on_invalid(request: Request, exc: Exception) -> Response:
        return error_response(400, str(exc))

    @app.exception_handler(NotFound)
    async def _on_not_found(request: Request, exc: NotFound) -> Response:
        if isinstance(exc, ObjectDeleted):
            return error_response(404, str(exc), deleted_at=exc.deleted_at.isoformat())
        return error_response(404, str(exc))

    @app.exception_handler(sqlite3.OperationalError)
    async def _on_sqlite(request: Request, exc: sqlite3.OperationalError) -> Response:
        # A malformed JSON path or value the compilers let through surfaces
        # here; anything else is our fault and is logged as such.
        if "JSON" in str(exc):
            return error_response(400, f"invalid query: {exc}")
        logger.exception("database error on %s", request.url.path)
        return error_response(500, f"database error: {exc}")

    @app.exception_handler(Exception)
    async def _on_unexpected(request: Request, exc: Exception) -> Response:
        logger.exception("unexpected error on %s", request.url.path)
        return error_response(500, f"internal server error ({type(exc).__name__}: {exc})")
