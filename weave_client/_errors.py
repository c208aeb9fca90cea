"""The one exception tree of weave-client (modelled on openai-python's).

::

    WeaveError
    ├── APIError
    │   ├── APIConnectionError
    │   │   └── APITimeoutError
    │   ├── APIResponseValidationError
    │   └── APIStatusError
    │       ├── BadRequestError            400
    │       ├── AuthenticationError        401
    │       ├── PermissionDeniedError      403
    │       ├── NotFoundError              404
    │       ├── ConflictError              409
    │       ├── RequestTooLargeError       413
    │       ├── UnprocessableEntityError   422
    │       ├── RateLimitError             429
    │       └── InternalServerError        5xx
    ├── ClientClosedError
    ├── CallNotFoundError (also a LookupError)
    ├── RefPathError (also a LookupError)
    ├── InvalidRefError (also a ValueError)
    ├── InvalidNameError (also a ValueError)
    ├── InvalidSettingError (also a ValueError)
    ├── NoCurrentCallError (also a RuntimeError)
    └── UnsaveableValueError (also a TypeError)

No message or repr in this module ever includes request headers, so an API key
cannot leak through an exception.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "CallNotFoundError",
    "ClientClosedError",
    "ConflictError",
    "InternalServerError",
    "InvalidNameError",
    "InvalidRefError",
    "InvalidSettingError",
    "NoCurrentCallError",
    "NoCurrentClientError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RefPathError",
    "RequestTooLargeError",
    "UnprocessableEntityError",
    "UnsaveableValueError",
    "WeaveError",
    "status_error_class",
]


class WeaveError(Exception):
    """Base class of every error raised by weave-client."""


class APIError(WeaveError):
    """A request to the trace server failed.

    ``route`` is the API path (``/calls/query``), never the full URL with credentials.
    """

    def __init__(self, message: str, *, route: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.route = route


class APIConnectionError(APIError):
    """The server could not be reached, or the connection broke mid-request."""

    def __init__(self, message: str = "Connection error.", *, route: str | None = None) -> None:
        super().__init__(message, route=route)


class APITimeoutError(APIConnectionError):
    """The request did not complete within its timeout."""

    def __init__(self, message: str = "Request timed out.", *, route: str | None = None) -> None:
        super().__init__(message, route=route)


class APIResponseValidationError(APIError):
    """The server answered with a body that does not match the expected wire model."""

    def __init__(self, message: str, *, route: str | None = None, body: Any = None) -> None:
        super().__init__(message, route=route)
        self.body = body


class APIStatusError(APIError):
    """The server answered with a 4xx or 5xx status.

    Attributes: ``status_code``, ``message`` (the server's own words, from its
    ``reason`` (the hosted service's shape), ``detail`` (FastAPI's) or
    ``message`` field, or the body text), ``route`` and ``body``.
    """

    status_code: int

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        route: str | None = None,
        body: Any = None,
        request_id: str | None = None,
    ) -> None:
        where = f" from {route}" if route else ""
        super().__init__(f"HTTP {status_code}{where}: {message}", route=route)
        self.message = message
        self.status_code = status_code
        self.body = body
        self.request_id = request_id


class BadRequestError(APIStatusError):
    """The server refused the request as malformed (HTTP 400); the message names the bad part."""

    status_code = 400


class AuthenticationError(APIStatusError):
    """The API key is missing or wrong (HTTP 401)."""

    status_code = 401


class PermissionDeniedError(APIStatusError):
    """The key is valid but may not touch this entity or project (HTTP 403)."""

    status_code = 403


class NotFoundError(APIStatusError):
    """The object, call, table or file does not exist (HTTP 404, or a ref that resolves to nothing)."""

    status_code = 404


class ConflictError(APIStatusError):
    """The write conflicts with what the server holds (HTTP 409)."""

    status_code = 409


class RequestTooLargeError(APIStatusError):
    """The request body is over the server's limit (HTTP 413); the client splits or chunks."""

    status_code = 413


class UnprocessableEntityError(APIStatusError):
    """The body does not match the route's wire model (HTTP 422); the message names the field."""

    status_code = 422


class RateLimitError(APIStatusError):
    """Too many requests (HTTP 429); retried after ``Retry-After`` before it is raised."""

    status_code = 429


class InternalServerError(APIStatusError):
    """Any 5xx answer."""


class ClientClosedError(WeaveError):
    """The client was used after ``close()``/``aclose()`` (or after its ``with`` block)."""


class CallNotFoundError(WeaveError, LookupError):
    """The server holds no call with this id in this project (``client.call(id)``, a call ref).

    Raised whether the server says so with ``{"call": null}`` (the local server,
    weave's reference server) or with a 404 (then chained from the ``NotFoundError``).
    Attributes: ``call_id``, ``project_id``.
    """

    def __init__(self, call_id: str, project_id: str) -> None:
        super().__init__(f"no call {call_id!r} in {project_id}")
        self.call_id = call_id
        self.project_id = project_id


class RefPathError(WeaveError, LookupError):
    """A ref's extra path (``.../key/x/index/0``) leads nowhere in the stored value.

    Raised by the client while walking a value it read, not for an HTTP answer;
    ``uri`` is the ref walked, ``path`` the edge that led nowhere (``/key/x``).
    """

    def __init__(self, message: str, *, uri: str, path: str) -> None:
        super().__init__(message)
        self.uri = uri
        self.path = path


class InvalidRefError(WeaveError, ValueError):
    """A ``weave:///`` URI (or a part of one) is malformed; the message says which part."""


class InvalidNameError(WeaveError, ValueError):
    """An entity, project, object or table name is not allowed; the message says why."""


class InvalidSettingError(WeaveError, ValueError):
    """A client setting (an argument or environment variable) has an unusable value.

    The message names the setting and its value (never an API key).
    """


class NoCurrentCallError(WeaveError, RuntimeError):
    """``require_current_call()`` was called outside a traced call (or in an untraced one)."""


class NoCurrentClientError(WeaveError, RuntimeError):
    """An operation needs the current client (``my_op.calls()``) and none is open."""


class UnsaveableValueError(WeaveError, TypeError):
    """A value given to ``save()`` cannot be encoded; the message names its path and type."""

    def __init__(self, message: str, *, path: str = "", type_name: str = "") -> None:
        super().__init__(message)
        self.path = path
        self.type_name = type_name


_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: RequestTooLargeError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}


def status_error_class(status_code: int) -> type[APIStatusError]:
    """The exception class for an HTTP error status."""
    if status_code >= 500:
        return InternalServerError
    return _STATUS_CLASSES.get(status_code, APIStatusError)
