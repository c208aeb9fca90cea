"""What the routers share: JSON replies, bodies read by hand, their OpenAPI entries."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio.to_thread
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError

from .._http_errors import error_response

__all__ = ["JSONL", "document_bodies", "json_body", "json_reply", "run_json_route"]

JSONL = "application/jsonl"


def json_reply(data: str | bytes, status: int = 200) -> Response:
    """A reply whose JSON text is already encoded."""
    return Response(content=data, status_code=status, media_type="application/json")


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """The ``openapi_extra`` of a route that reads its body itself: ``model`` as its schema."""
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"content": {"application/json": {"schema": schema}}, "required": True}}


def document_bodies(app: FastAPI, models: list[type[BaseModel]]) -> None:
    """Add ``models`` (and the models they use) to the app's OpenAPI components.

    FastAPI only lists the models of declared parameters; the routes using
    ``json_body`` declare none, and the schema must still describe their bodies
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


async def run_json_route(handler: Callable[[bytes], bytes], body: bytes) -> Response:
    """Run a body-to-reply handler off the event loop (parsing and the write are CPU
    and disk work); a body failing the wire model is the client's error (422)."""
    try:
        reply = await anyio.to_thread.run_sync(handler, body)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None
    except UnicodeDecodeError as exc:
        # Not UTF-8 (the JSON parser's fallback decodes first): a bad body, not our fault.
        return error_response(400, f"request body is not valid JSON: {exc}")
    return json_reply(reply)
