"""The low-level HTTP client of the Weave trace server API.

One method per route, named and typed as weave's ``TraceServerInterface``
(``calls_query(CallsQueryReq(...)) -> CallsQueryRes``), all going through one
core, ``request()``, that owns auth, timeouts, retries, logging and error
mapping. This module holds that core (construction, sending with retries,
streams, WebSocket sessions, ``with_options``, closing); the route methods come
from one mixin per area (``_routes_calls``, ``_routes_objects``, ``_routes_tables``,
``_routes_feedback``). The I/O-free parts of the core live in
``weave_client._http`` and ``weave_client._retry``.
"""

from __future__ import annotations

import functools
import logging
import ssl
import urllib.parse
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from importlib import metadata
from types import TracebackType
from typing import Any, NoReturn, Self, TypeVar

import httpcore  # noqa: F401  (httpx imports it on the first client: at import time instead)
import httpx
import pydantic_core
from httpx_ws import aconnect_ws
from pydantic import BaseModel

from .. import _routes as routes
from .._errors import APIConnectionError, APIError, APITimeoutError, ClientClosedError
from .._http import (
    DEFAULT_TIMEOUT,
    BasicAuth,
    Secret,
    logger,
    make_status_error,
    parse_json_as,
    parse_jsonl,
    redact,
    to_timeout,
)
from .._models import ServerInfoRes
from .._retry import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_RETRY_DELAY,
    DEFAULT_RETRY_DELAY,
    RetryPolicy,
    is_transient,
    parse_retry_after,
)
from .._synchronization import async_sleep, current_async_time
from .._ws_session import AsyncLiveSession
from ._routes_calls import AsyncCallsRoutes
from ._routes_feedback import AsyncFeedbackRoutes
from ._routes_objects import AsyncObjectsRoutes
from ._routes_tables import AsyncTablesRoutes
from ._streaming import AsyncStream

__all__ = ["AsyncAPIClient"]

T = TypeVar("T")

Body = BaseModel | Mapping[str, Any] | bytes | None
Timeout = float | httpx.Timeout | None

try:
    _VERSION = metadata.version("weave-client")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    _VERSION = "0"
USER_AGENT = f"weave-client/{_VERSION} httpx/{httpx.__version__}"


def _encode(body: Body) -> bytes | None:
    """The JSON bytes of a request body.

    Models are dumped by alias (the query language's ``$expr``, ``$eq``, ...) as
    weave's own client sends them. ``None`` fields are kept, not excluded: a
    ``{"$literal": null}`` in a query is meaningful.
    """
    if body is None or isinstance(body, bytes):
        return body
    if isinstance(body, BaseModel):
        return body.model_dump_json(by_alias=True).encode("utf-8")
    return pydantic_core.to_json(body)


def _split_base_url(base_url: str) -> tuple[str, str | None]:
    """``base_url`` without credentials, and the password it carried (if any)."""
    if not isinstance(base_url, str) or not base_url:
        raise ValueError(f"base_url must be an http(s) URL string, got {base_url!r}")
    parts = urllib.parse.urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        # Never echo a URL that may hold credentials; name only what is wrong.
        raise ValueError(
            f"base_url must start with http:// or https:// and name a host, "
            f"got scheme {parts.scheme!r}"
        )
    password = urllib.parse.unquote(parts.password) if parts.password else None
    netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    if parts.port is not None:
        netloc = f"{netloc}:{parts.port}"
    clean = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
    return clean, password


# A live-traces message carries one call: as large as a request may be.
_MAX_WS_MESSAGE = 64 * 1024 * 1024
# Seconds between keepalive pings (and the time a pong may take): a dead server is noticed.
_WS_PING_INTERVAL = 20.0


class _Pool:
    """The httpx client shared by an API client and its ``with_options`` copies."""

    def __init__(self, http: httpx.AsyncClient, *, owned: bool) -> None:
        self.http = http
        self.owned = owned
        self.closed = False


class AsyncAPIClient(AsyncCallsRoutes, AsyncObjectsRoutes, AsyncTablesRoutes, AsyncFeedbackRoutes):
    """HTTP client of the Weave trace server API: one method per route.

    Use it as a context manager (or close it) to release its connection pool.

    - ``api_key``: sent as HTTP Basic auth (user ``api``), as the hosted service
      expects; it never appears in a repr, a log line, an exception or a pickle.
    - ``timeout``: seconds (or an ``httpx.Timeout``) per attempt; per call via
      ``request(..., timeout=)`` or :meth:`with_options`.
    - ``max_retries``: retries after connection errors, timeouts, 408, 429 and
      5xx, with exponential backoff and full jitter (``retry_delay`` doubling up
      to ``max_retry_delay``), honouring ``Retry-After``. Other 4xx never retry.
    - ``verify``: False (logged as a warning), a CA bundle path, or an SSL context.
    - ``http_client``: bring your own httpx client (proxies, transports); it is
      then yours to close.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        headers: Mapping[str, str] | None = None,
        verify: bool | str | ssl.SSLContext = True,
        http_client: httpx.AsyncClient | None = None,
        retry_delay: float = DEFAULT_RETRY_DELAY,
        max_retry_delay: float = DEFAULT_MAX_RETRY_DELAY,
    ) -> None:
        self._base_url, url_password = _split_base_url(base_url)
        key = api_key or url_password
        self._auth = BasicAuth(Secret(key)) if key else None
        self._timeout = to_timeout(timeout)
        self._retry = RetryPolicy(
            max_retries=max_retries, delay=retry_delay, max_delay=max_retry_delay
        )
        self._headers = {
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
            **(headers or {}),
        }
        if verify is False:
            logger.warning(
                "TLS certificate verification is disabled for %s; "
                "anyone on the network path can read or alter this traffic",
                self._base_url,
            )
        if http_client is None:
            if isinstance(verify, str):
                # A CA bundle path; httpx 0.28 wants it as an SSL context.
                try:
                    verify = ssl.create_default_context(cafile=verify)
                except (OSError, ssl.SSLError) as exc:
                    raise ValueError(
                        f"verify={verify!r} is not a readable CA bundle: {exc}"
                    ) from exc
            if verify is True and self._base_url.startswith("http://"):
                # Plain HTTP (e.g. the local server) never negotiates TLS (redirects are
                # not followed), so the CA store is not loaded: tens of ms, often on an
                # event loop. The context verifies as strictly as the default, with no CA.
                verify = _plain_http_context()
            http = httpx.AsyncClient(
                verify=verify,
                timeout=self._timeout,
                limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
                follow_redirects=False,
            )
            self._pool = _Pool(http, owned=True)
        else:
            self._pool = _Pool(http_client, owned=False)

    # --- identity ----------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The server's URL (credentials, if the URL carried any, are removed)."""
        return self._base_url

    @property
    def max_retries(self) -> int:
        """Retries after a retryable failure (0: one attempt only)."""
        return self._retry.max_retries

    @property
    def timeout(self) -> httpx.Timeout:
        """The timeout of each attempt."""
        return self._timeout

    @property
    def is_closed(self) -> bool:
        """True once the connection pool was closed; requests then raise ``ClientClosedError``."""
        return self._pool.closed

    def __repr__(self) -> str:
        key = "'***'" if self._auth is not None else "None"
        return (
            f"{type(self).__name__}(base_url={self._base_url!r}, api_key={key}, "
            f"max_retries={self._retry.max_retries}, timeout={self._timeout.read!r}"
            f"{', closed' if self._pool.closed else ''})"
        )

    def __reduce__(self) -> NoReturn:
        # A pickle would carry the key (and a live connection pool cannot travel anyway).
        raise TypeError(
            f"{type(self).__name__} cannot be pickled: it holds credentials and a "
            "connection pool; create a new client in the other process"
        )

    def with_options(
        self, *, timeout: float | httpx.Timeout | None = None, max_retries: int | None = None
    ) -> Self:
        """A copy with another default timeout and/or retry count, sharing this
        client's connection pool (closing either closes both)."""
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        if timeout is not None:
            clone._timeout = to_timeout(timeout)
        if max_retries is not None:
            clone._retry = replace(self._retry, max_retries=max_retries)
        return clone

    # --- lifecycle ---------------------------------------------------------

    async def __aenter__(self) -> Self:
        self._check_open("")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool (unless it was passed in). Safe to call twice."""
        if self._pool.closed:
            return
        self._pool.closed = True
        if self._pool.owned:
            await self._pool.http.aclose()

    def _check_open(self, route: str) -> None:
        if self._pool.closed:
            what = f" (calling {route})" if route else ""
            raise ClientClosedError(
                f"This {type(self).__name__} for {self._base_url} is closed{what}; "
                "create a new client"
            )

    # --- the core ----------------------------------------------------------

    def _secrets(self) -> list[str]:
        return self._auth.secrets() if self._auth is not None else []

    async def _send(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        files: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        timeout: Timeout = None,
        max_retries: int | None = None,
        stream: bool = False,
        accept: str | None = None,
    ) -> httpx.Response:
        """Send one request with retries; return the successful response.

        With ``stream=False`` the body is read inside the retry loop, so a
        connection cut mid-body is retried like any other connection error.
        """
        policy = (
            self._retry if max_retries is None else replace(self._retry, max_retries=max_retries)
        )
        attempt_timeout = self._timeout if timeout is None else to_timeout(timeout)
        headers = dict(self._headers)
        if content is not None:
            headers["Content-Type"] = "application/json"
        if accept is not None:
            headers["Accept"] = accept
        url = self._base_url + path
        attempts = policy.max_retries + 1
        retry = 0
        while True:
            self._check_open(path)
            attempt = retry + 1
            retry_after: float | None = None
            error: APIError
            cause: BaseException | None = None
            request = self._pool.http.build_request(
                method,
                url,
                content=content,
                files=files,
                data=data,
                headers=headers,
                timeout=attempt_timeout,
            )
            started = current_async_time()
            try:
                response = await self._pool.http.send(request, auth=self._auth, stream=stream)
            except httpx.TimeoutException as exc:
                elapsed = current_async_time() - started
                error = APITimeoutError(
                    f"{method} {path} timed out after {elapsed:.2f} s "
                    f"({type(exc).__name__}, attempt {attempt} of {attempts})",
                    route=path,
                )
                cause = exc
            except httpx.TransportError as exc:
                error = APIConnectionError(
                    f"{method} {path} failed to reach {self._base_url}: "
                    f"{type(exc).__name__}: {redact(str(exc), self._secrets()) or 'no details'} "
                    f"(attempt {attempt} of {attempts})",
                    route=path,
                )
                cause = exc
            else:
                elapsed = current_async_time() - started
                if logger.isEnabledFor(logging.DEBUG):
                    logger.debug(
                        "%s %s -> %d in %.1f ms (attempt %d of %d)",
                        method,
                        path,
                        response.status_code,
                        elapsed * 1000,
                        attempt,
                        attempts,
                    )
                if not stream:
                    _release_request(response)
                if response.is_success:
                    return response
                if stream:
                    await response.aread()
                    await response.aclose()
                error = make_status_error(
                    response.status_code,
                    response.content,
                    route=path,
                    reason=response.reason_phrase,
                    headers=response.headers,
                    secrets=self._secrets(),
                )
                retry_after = parse_retry_after(response.headers)
            if not is_transient(error):  # connection errors and timeouts always are
                raise error
            delay = policy.next_delay(retry, retry_after)
            if delay is None:
                raise error from cause
            logger.info(
                "Retrying %s %s in %.2f s after %s (retry %d of %d)",
                method,
                path,
                delay,
                _short(error, cause),
                retry + 1,
                policy.max_retries,
            )
            await async_sleep(delay)
            retry += 1

    async def request(
        self,
        method: str,
        path: str,
        *,
        cast_to: type[T],
        body: Body = None,
        timeout: Timeout = None,
        max_retries: int | None = None,
    ) -> T:
        """Send ``body`` (a model, a dict, or pre-encoded JSON bytes) to ``path`` and
        validate the JSON reply into ``cast_to``.

        Raises an ``APIStatusError`` subclass for an error status (after retries
        for 408/429/5xx), ``APIConnectionError``/``APITimeoutError`` when the
        server cannot be reached in time, ``APIResponseValidationError`` when the
        reply does not match ``cast_to``, ``ClientClosedError`` once the client is closed.
        """
        response = await self._send(
            method, path, content=_encode(body), timeout=timeout, max_retries=max_retries
        )
        return parse_json_as(cast_to, response.content, route=path, secrets=self._secrets())

    def stream(
        self,
        method: str,
        path: str,
        *,
        item_type: type[T],
        body: Body = None,
        timeout: Timeout = None,
        max_retries: int | None = None,
    ) -> AsyncStream[T]:
        """A lazily opened stream of ``item_type`` items over a JSONL reply.

        Opening the stream is retried like any request; a stream cut once items
        have arrived raises ``APIConnectionError`` instead of being restarted.
        """
        opener = functools.partial(
            self._send,
            method,
            path,
            content=_encode(body),
            timeout=timeout,
            max_retries=max_retries,
            stream=True,
            accept="application/jsonl",
        )
        return AsyncStream(opener, item_type, route=path, secrets=self._secrets())

    def websocket(self, path: str) -> AbstractAsyncContextManager[AsyncLiveSession]:
        """A WebSocket session to ``path`` over this client's pool, with its auth and headers.

        Raises ``httpx_ws.WebSocketUpgradeError`` (its ``response`` has the
        status) when the server refuses the upgrade.
        """
        self._check_open(path)
        headers = {k: v for k, v in self._headers.items() if k != "Accept"}
        return aconnect_ws(
            self._base_url + path,
            self._pool.http,
            auth=self._auth,
            headers=headers,
            max_message_size_bytes=_MAX_WS_MESSAGE,
            keepalive_ping_interval_seconds=_WS_PING_INTERVAL,
            keepalive_ping_timeout_seconds=_WS_PING_INTERVAL,
            session_class=AsyncLiveSession,
        )

    # --- what the route mixins use --------------------------------------------

    async def _post(self, path: str, req: BaseModel, cast_to: type[T]) -> T:
        return await self.request("POST", path, body=req, cast_to=cast_to)

    async def _post_jsonl(self, path: str, req: BaseModel, item_type: type[T]) -> list[T]:
        """The whole JSONL reply as a list, read inside the retry loop."""
        response = await self._send("POST", path, content=_encode(req), accept="application/jsonl")
        return parse_jsonl(item_type, response.content, route=path, secrets=self._secrets())

    async def _post_raw(self, path: str, body: Body, *, accept: str | None = None) -> bytes:
        """The reply's bytes, not parsed."""
        response = await self._send("POST", path, content=_encode(body), accept=accept)
        return response.content

    async def _post_form(
        self, path: str, data: Mapping[str, Any], files: Mapping[str, Any], cast_to: type[T]
    ) -> T:
        """A multipart form (``data`` fields and ``files``); the JSON reply as ``cast_to``."""
        response = await self._send("POST", path, data=data, files=files)
        return parse_json_as(cast_to, response.content, route=path, secrets=self._secrets())

    def _post_stream(self, path: str, req: BaseModel, item_type: type[T]) -> AsyncStream[T]:
        return self.stream("POST", path, body=req, item_type=item_type)

    # --- service -----------------------------------------------------------

    async def server_info(self) -> ServerInfoRes:
        """``GET /server_info``: the server's version requirements."""
        return await self.request("GET", routes.SERVER_INFO, cast_to=ServerInfoRes)

    async def health(self) -> dict[str, Any]:
        """``GET /health``: a small JSON object when the server is up."""
        return await self.request("GET", routes.HEALTH, cast_to=dict[str, Any])


def _short(error: APIError, cause: BaseException | None) -> str:
    """A one-line reason for a retry log line: ``HTTP 503`` or ``ReadTimeout``."""
    status = getattr(error, "status_code", None)
    if status is not None:
        return f"HTTP {status}"
    return type(cause).__name__ if cause is not None else type(error).__name__


def _release_request(response: httpx.Response) -> None:
    """Break the cycle between a read response and its stream.

    httpx leaves a read response in a reference cycle (its stream points back at
    it), and the cycle holds the request with its whole body. Such cycles outlive
    their request until a full garbage collection, rare while a program allocates
    steadily: 100,000 traced calls queued for sending kept ~85 MB of sent batch
    bodies alive during their flush. The content is already read, so the stream
    is no longer needed.
    """
    response.stream = httpx.ByteStream(b"")


@functools.cache
def _plain_http_context() -> ssl.SSLContext:
    """An SSL context for clients of plain-HTTP URLs: verification on, no CA loaded."""
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
