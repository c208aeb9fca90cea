"""weave-client: an async-first client for W&B Weave traces, with a generated sync twin."""

from __future__ import annotations

from ._async._api_client import AsyncAPIClient
from ._async._op import AsyncOp, async_op
from ._async._sender import FlushResult
from ._async._streaming import AsyncStream
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
    InvalidSettingError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestTooLargeError,
    UnprocessableEntityError,
    UnsaveableValueError,
    WeaveError,
)
from ._sync._api_client import SyncAPIClient
from ._sync._op import Op, op
from ._sync._streaming import SyncStream
from ._tracing import attributes

__version__ = "0.1.0"

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncAPIClient",
    "AsyncOp",
    "AsyncStream",
    "AuthenticationError",
    "BadRequestError",
    "ClientClosedError",
    "ConflictError",
    "ContextThreadPoolExecutor",
    "FlushResult",
    "InternalServerError",
    "InvalidNameError",
    "InvalidRefError",
    "InvalidSettingError",
    "NotFoundError",
    "Op",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestTooLargeError",
    "SyncAPIClient",
    "SyncStream",
    "UnprocessableEntityError",
    "UnsaveableValueError",
    "WeaveError",
    "__version__",
    "async_op",
    "attributes",
    "op",
]
