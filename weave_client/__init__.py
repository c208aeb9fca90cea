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
from ._refs import CallRef, ObjectRef, OpRef, Ref, TableRef, parse_ref
from ._serialize import WeaveObject
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
    "CallRef",
    "ClientClosedError",
    "ConflictError",
    "ContextThreadPoolExecutor",
    "FlushResult",
    "InternalServerError",
    "InvalidNameError",
    "InvalidRefError",
    "InvalidSettingError",
    "NotFoundError",
    "ObjectRef",
    "Op",
    "OpRef",
    "PermissionDeniedError",
    "RateLimitError",
    "Ref",
    "RequestTooLargeError",
    "SyncAPIClient",
    "SyncStream",
    "TableRef",
    "UnprocessableEntityError",
    "UnsaveableValueError",
    "WeaveError",
    "WeaveObject",
    "__version__",
    "async_op",
    "attributes",
    "op",
    "parse_ref",
]
