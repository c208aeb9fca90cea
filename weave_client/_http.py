"""I/O-free pieces of the HTTP layer, shared by ``AsyncAPIClient`` and ``SyncAPIClient``.

Nothing here sends or waits: the retry policy (re-exported from the shared
retry core :mod:`weave_client._retry`), turning an error response into the right exception
of :mod:`weave_client._errors`, the secret holder that keeps the API key out of
reprs, pickles and messages, and the auth hook httpx calls on every request.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
from collections.abc import Generator, Iterable, Mapping
from typing import Any, NoReturn, TypeVar, cast

import httpx
from pydantic import BaseModel, TypeAdapter, ValidationError

from ._errors import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    status_error_class,
)

# The retry policy lives in the shared retry core; re-exported for older imports.
from ._retry import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_RETRY_AFTER,
    DEFAULT_MAX_RETRY_DELAY,
    DEFAULT_RETRY_DELAY,
    RETRYABLE_STATUS_CODES,
    RetryPolicy,
    parse_retry_after,
    should_retry_status,
)

__all__ = [
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_MAX_RETRY_AFTER",
    "DEFAULT_MAX_RETRY_DELAY",
    "DEFAULT_RETRY_DELAY",
    "DEFAULT_TIMEOUT",
    "RETRYABLE_STATUS_CODES",
    "BasicAuth",
    "RetryPolicy",
    "Secret",
    "error_message",
    "logger",
    "make_status_error",
    "parse_json_as",
    "parse_jsonl",
    "parse_jsonl_line",
    "parse_retry_after",
    "redact",
    "should_retry_status",
    "to_timeout",
]

T = TypeVar("T")

logger = logging.getLogger("weave_client")

#: 60 s to read a response (large queries on the hosted service can be slow),
#: 10 s to connect, so an unreachable host fails fast.
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
# How much of an unparseable error body goes into an exception message.
_MAX_MESSAGE_CHARS = 2000


def to_timeout(timeout: float | httpx.Timeout | None) -> httpx.Timeout:
    """Normalise a timeout given as seconds (one limit for every phase) or an ``httpx.Timeout``."""
    if timeout is None:
        return DEFAULT_TIMEOUT
    if isinstance(timeout, httpx.Timeout):
        return timeout
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ValueError(
            f"timeout must be a positive number of seconds or an httpx.Timeout, got {timeout!r}"
        )
    return httpx.Timeout(float(timeout))


class Secret:
    """Holds an API key so that it never shows up by accident.

    Its repr and str are ``'***'``, and it refuses to be pickled, so neither a log
    line, a traceback's locals, nor a pickled object can carry the key.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        """The key itself: only for building the Authorization header."""
        return self._value

    def __repr__(self) -> str:
        return "'***'"

    __str__ = __repr__

    def __reduce__(self) -> NoReturn:
        raise TypeError("an API key cannot be pickled; pass it to the new client explicitly")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class BasicAuth(httpx.Auth):
    """HTTP Basic auth as the Weave trace service expects it: user ``api``, password = key.

    Unlike ``httpx.BasicAuth`` it keeps the key in a :class:`Secret`, so the
    object can be printed or inspected safely.
    """

    def __init__(self, key: Secret) -> None:
        self._key = key

    def header_value(self) -> str:
        token = base64.b64encode(f"api:{self._key.get()}".encode()).decode("ascii")
        return f"Basic {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self.header_value()
        yield request

    def secrets(self) -> list[str]:
        """The strings that must never leave the process in text: the key and its header."""
        value = self.header_value()
        return [self._key.get(), value, value.split(" ", 1)[1]]

    def __repr__(self) -> str:
        return "BasicAuth(user='api', password='***')"


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of each (non-empty) secret replaced by ``***``.

    A misbehaving server or proxy may echo the Authorization header back in its
    error body; that body goes into exception messages, so it is scrubbed first.
    """
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _describe_validation_errors(errors: list[Any]) -> str:
    """FastAPI's 422 ``detail`` list as one line per bad field: ``body.start.id: Field required``."""
    parts = []
    for err in errors:
        if isinstance(err, dict):
            loc = ".".join(str(p) for p in err.get("loc", ()))
            msg = err.get("msg", "")
            parts.append(f"{loc}: {msg}" if loc else str(msg))
        else:
            parts.append(str(err))
    return "; ".join(parts)


def error_message(body: bytes, reason: str) -> tuple[str, Any]:
    """The server's own words from an error body, and the decoded body.

    Reads both error shapes: the hosted service's ``{"reason": ...}`` and
    FastAPI's ``{"detail": ...}`` (a list of bad fields for a 422), as well as
    ``message``/``error``. A string wins over a list; then the body text, then
    the HTTP reason phrase.
    """
    text = body.decode("utf-8", errors="replace")
    try:
        decoded: Any = json.loads(text) if text.strip() else None
    except ValueError:
        decoded = None
    if isinstance(decoded, dict):
        keys = ("message", "error", "reason", "detail")
        for key in keys:
            value = decoded.get(key)
            if isinstance(value, str) and value:
                return value, decoded
        for key in keys:
            value = decoded.get(key)
            if isinstance(value, list) and value:
                return _describe_validation_errors(value), decoded
            if value:
                return json.dumps(value)[:_MAX_MESSAGE_CHARS], decoded
        return text[:_MAX_MESSAGE_CHARS], decoded
    if decoded is not None:
        return text[:_MAX_MESSAGE_CHARS], decoded
    if text.strip():
        return text.strip()[:_MAX_MESSAGE_CHARS], text
    return reason or "no message", None


def make_status_error(
    status_code: int,
    body: bytes,
    *,
    route: str,
    reason: str = "",
    headers: Mapping[str, str] | None = None,
    secrets: Iterable[str] = (),
) -> APIStatusError:
    """The exception for an error response: the class for its status, the server's
    message (scrubbed of secrets), the route and the decoded body."""
    secrets = list(secrets)
    message, decoded = error_message(body, reason)
    message = redact(message, secrets)
    if secrets and decoded is not None:
        # The body is kept for callers who want the details; scrub it the same way.
        decoded = json.loads(redact(json.dumps(decoded), secrets))
    request_id = None
    if headers is not None:
        lowered = {k.lower(): v for k, v in headers.items()}
        request_id = lowered.get("x-request-id") or lowered.get("x-weave-request-id")
    cls = status_error_class(status_code)
    return cls(message, status_code=status_code, route=route, body=decoded, request_id=request_id)


# --- decoding responses ----------------------------------------------------

_MAX_ERRORS_SHOWN = 3


@functools.lru_cache(maxsize=256)
def _adapter(tp: Any) -> TypeAdapter[Any]:
    return TypeAdapter(tp)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or repr(tp)


def _describe(err: ValidationError) -> str:
    """The first few problems of a validation error, without echoing whole input values."""
    problems = []
    for e in err.errors(include_url=False, include_input=False)[:_MAX_ERRORS_SHOWN]:
        loc = ".".join(str(p) for p in e["loc"])
        problems.append(f"{loc}: {e['msg']}" if loc else e["msg"])
    more = err.error_count() - len(problems)
    if more > 0:
        problems.append(f"and {more} more")
    return "; ".join(problems)


def parse_json_as(
    cast_to: type[T], content: bytes, *, route: str, secrets: Iterable[str] = ()
) -> T:
    """Validate a JSON response body into ``cast_to`` (a pydantic model or any pydantic type).

    A body that is not JSON, or does not match, raises ``APIResponseValidationError``
    naming the route and the expected type.
    """
    try:
        if isinstance(cast_to, type) and issubclass(cast_to, BaseModel):
            return cast_to.model_validate_json(content)
        return cast(T, _adapter(cast(Any, cast_to)).validate_json(content))
    except ValidationError as err:
        body = redact(content[:_MAX_MESSAGE_CHARS].decode("utf-8", errors="replace"), secrets)
        raise APIResponseValidationError(
            f"The response from {route} is not a valid {_type_name(cast_to)}: {_describe(err)}",
            route=route,
            body=body,
        ) from None


def parse_jsonl_line(
    cast_to: type[T],
    line: bytes,
    *,
    route: str,
    index: int,
    terminated: bool = True,
    secrets: Iterable[str] = (),
) -> T:
    """One line of a JSONL response as ``cast_to``; ``index`` counts from 0.

    An unterminated last line that is not valid JSON means the connection ended
    mid-line: that raises ``APIConnectionError`` (the result is incomplete), never
    a silent end. A complete line that does not match raises
    ``APIResponseValidationError``.
    """
    try:
        if isinstance(cast_to, type) and issubclass(cast_to, BaseModel):
            return cast_to.model_validate_json(line)
        return cast(T, _adapter(cast(Any, cast_to)).validate_json(line))
    except ValidationError as err:
        if not terminated and any(e["type"] == "json_invalid" for e in err.errors()):
            raise APIConnectionError(
                f"The JSONL stream from {route} ended in the middle of line {index + 1}: "
                "the connection was cut and the result is incomplete",
                route=route,
            ) from None
        body = redact(line[:_MAX_MESSAGE_CHARS].decode("utf-8", errors="replace"), secrets)
        raise APIResponseValidationError(
            f"Line {index + 1} of the JSONL stream from {route} is not a valid "
            f"{_type_name(cast_to)}: {_describe(err)}",
            route=route,
            body=body,
        ) from None


def parse_jsonl(
    cast_to: type[T], content: bytes, *, route: str, secrets: Iterable[str] = ()
) -> list[T]:
    """A whole JSONL body as a list (blank lines skipped), checked like a stream."""
    lines = content.split(b"\n")
    last = len(lines) - 1
    items: list[T] = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        items.append(
            parse_jsonl_line(
                cast_to,
                line,
                route=route,
                index=len(items),
                terminated=i < last,
                secrets=secrets,
            )
        )
    return items
