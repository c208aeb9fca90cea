"""ASGI middlewares of the local server: Basic auth, the body limit, JSON bodies sent untyped."""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI

from ._http_errors import send_error

__all__ = ["DEFAULT_MAX_BODY_BYTES", "install_middleware"]

# The hosted service accepts requests up to 32 MiB.
DEFAULT_MAX_BODY_BYTES = 32 * 1024 * 1024

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def install_middleware(app: FastAPI, *, api_key: str | None, max_body_bytes: int) -> None:
    """Wrap ``app`` in the middlewares; with ``api_key``, every request needs Basic auth.

    Raises ``ValueError`` for an empty ``api_key`` (None means no auth).
    """
    # Middleware wraps from the inside out: auth is checked before the body is read.
    app.add_middleware(_DefaultJSONBody)
    app.add_middleware(_BodyLimit, max_bytes=max_body_bytes)
    if api_key is not None:
        if not api_key:
            raise ValueError("api_key: must not be empty (pass None for no auth)")
        app.add_middleware(_BasicAuth, api_key=api_key)


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
