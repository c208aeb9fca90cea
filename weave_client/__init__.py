"""weave-client: an async-first client for W&B Weave traces, with a generated sync twin."""

from __future__ import annotations

from ._context import ContextThreadPoolExecutor
from ._errors import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
    ConflictError,
    InternalServerError,
    InvalidNameError,
    InvalidRefError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestTooLargeError,
    UnprocessableEntityError,
    UnsaveableValueError,
    WeaveError,
)

__version__ = "0.1.0"

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ClientClosedError",
    "ConflictError",
    "ContextThreadPoolExecutor",
    "InternalServerError",
    "InvalidNameError",
    "InvalidRefError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestTooLargeError",
    "UnprocessableEntityError",
    "UnsaveableValueError",
    "WeaveError",
    "__version__",
]
