"""weave-client: an async-first client for W&B Weave traces, with a generated sync twin.

Async::

    async with await create_async_client("my-entity", "my-project") as client:
        ref = await client.save({"data": "value"}, "my-object")
        calls = await client.calls(limit=10)

Sync: the same names without ``async``/``Async`` (``create_client``, ``WeaveClient``,
``op``), no ``await``. ``@async_op``/``@op`` trace functions to the current client;
errors all derive from ``WeaveError``. With no server URL and no ``WANDB_API_KEY``
the client starts the embedded local trace server (see ``weave_client.server``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports

if TYPE_CHECKING:
    from ._async._api_client import AsyncAPIClient
    from ._async._call import AsyncCall, AsyncCallFeedback
    from ._async._client import AsyncCallStream, AsyncWeaveClient, create_async_client
    from ._async._dataset import AsyncDataset
    from ._async._evaluation import AsyncEvaluation
    from ._async._live_calls import AsyncCallEvent, AsyncLiveCalls
    from ._async._op import AsyncOp, async_op
    from ._async._pagination import AsyncBatchIterator, AsyncPaginator
    from ._async._sender import FlushResult
    from ._async._streaming import AsyncStream
    from ._async._table import AsyncTable
    from ._context import ContextThreadPoolExecutor, Thread
    from ._conversation import ThreadContext, thread
    from ._current_call import CurrentCall, get_current_call, require_current_call
    from ._errors import (
        APIConnectionError,
        APIError,
        APIResponseValidationError,
        APIStatusError,
        APITimeoutError,
        AuthenticationError,
        BadRequestError,
        CallNotFoundError,
        ClientClosedError,
        ConflictError,
        InternalServerError,
        InvalidNameError,
        InvalidRefError,
        InvalidSettingError,
        NoCurrentCallError,
        NoCurrentClientError,
        NotFoundError,
        PermissionDeniedError,
        RateLimitError,
        RefPathError,
        RequestTooLargeError,
        UnprocessableEntityError,
        UnsaveableValueError,
        WeaveError,
    )
    from ._flow import ApplyScorerResult, Model, Object, Scorer
    from ._models import ThreadSchema
    from ._refs import CallRef, ObjectRef, OpRef, Ref, TableRef, parse_ref
    from ._serialize import WeaveObject
    from ._sync._api_client import SyncAPIClient
    from ._sync._call import Call, CallFeedback
    from ._sync._client import SyncCallStream, WeaveClient, create_client
    from ._sync._dataset import Dataset
    from ._sync._evaluation import Evaluation
    from ._sync._live_calls import CallEvent, SyncLiveCalls
    from ._sync._op import Op, op
    from ._sync._pagination import SyncBatchIterator, SyncPaginator
    from ._sync._streaming import SyncStream
    from ._sync._table import Table
    from ._tracing import attributes
    from ._versions import ObjectVersion

# The public names load their modules when first used (``weave_client.AsyncWeaveClient``,
# ``from weave_client import op``): ``import weave_client`` alone stays cheap, and the
# HTTP client, the wire models and the local server load only for what a program uses.
_EXPORTS: dict[str, tuple[str, str]] = {
    "AsyncAPIClient": ("._async._api_client", "AsyncAPIClient"),
    "AsyncCall": ("._async._call", "AsyncCall"),
    "AsyncCallFeedback": ("._async._call", "AsyncCallFeedback"),
    "AsyncCallStream": ("._async._client", "AsyncCallStream"),
    "AsyncWeaveClient": ("._async._client", "AsyncWeaveClient"),
    "create_async_client": ("._async._client", "create_async_client"),
    "AsyncDataset": ("._async._dataset", "AsyncDataset"),
    "AsyncEvaluation": ("._async._evaluation", "AsyncEvaluation"),
    "AsyncLiveCalls": ("._async._live_calls", "AsyncLiveCalls"),
    "AsyncCallEvent": ("._async._live_calls", "AsyncCallEvent"),
    "AsyncOp": ("._async._op", "AsyncOp"),
    "async_op": ("._async._op", "async_op"),
    "AsyncBatchIterator": ("._async._pagination", "AsyncBatchIterator"),
    "AsyncPaginator": ("._async._pagination", "AsyncPaginator"),
    "FlushResult": ("._async._sender", "FlushResult"),
    "AsyncStream": ("._async._streaming", "AsyncStream"),
    "AsyncTable": ("._async._table", "AsyncTable"),
    "ContextThreadPoolExecutor": ("._context", "ContextThreadPoolExecutor"),
    "Thread": ("._context", "Thread"),
    "ThreadContext": ("._conversation", "ThreadContext"),
    "thread": ("._conversation", "thread"),
    "CurrentCall": ("._current_call", "CurrentCall"),
    "get_current_call": ("._current_call", "get_current_call"),
    "require_current_call": ("._current_call", "require_current_call"),
    "APIConnectionError": ("._errors", "APIConnectionError"),
    "APIError": ("._errors", "APIError"),
    "APIResponseValidationError": ("._errors", "APIResponseValidationError"),
    "APIStatusError": ("._errors", "APIStatusError"),
    "APITimeoutError": ("._errors", "APITimeoutError"),
    "AuthenticationError": ("._errors", "AuthenticationError"),
    "BadRequestError": ("._errors", "BadRequestError"),
    "CallNotFoundError": ("._errors", "CallNotFoundError"),
    "ClientClosedError": ("._errors", "ClientClosedError"),
    "ConflictError": ("._errors", "ConflictError"),
    "InternalServerError": ("._errors", "InternalServerError"),
    "InvalidNameError": ("._errors", "InvalidNameError"),
    "InvalidRefError": ("._errors", "InvalidRefError"),
    "InvalidSettingError": ("._errors", "InvalidSettingError"),
    "NoCurrentCallError": ("._errors", "NoCurrentCallError"),
    "NoCurrentClientError": ("._errors", "NoCurrentClientError"),
    "NotFoundError": ("._errors", "NotFoundError"),
    "PermissionDeniedError": ("._errors", "PermissionDeniedError"),
    "RateLimitError": ("._errors", "RateLimitError"),
    "RefPathError": ("._errors", "RefPathError"),
    "RequestTooLargeError": ("._errors", "RequestTooLargeError"),
    "UnprocessableEntityError": ("._errors", "UnprocessableEntityError"),
    "UnsaveableValueError": ("._errors", "UnsaveableValueError"),
    "WeaveError": ("._errors", "WeaveError"),
    "ApplyScorerResult": ("._flow", "ApplyScorerResult"),
    "Model": ("._flow", "Model"),
    "Object": ("._flow", "Object"),
    "Scorer": ("._flow", "Scorer"),
    "ThreadSchema": ("._models", "ThreadSchema"),
    "CallRef": ("._refs", "CallRef"),
    "ObjectRef": ("._refs", "ObjectRef"),
    "OpRef": ("._refs", "OpRef"),
    "Ref": ("._refs", "Ref"),
    "TableRef": ("._refs", "TableRef"),
    "parse_ref": ("._refs", "parse_ref"),
    "WeaveObject": ("._serialize", "WeaveObject"),
    "SyncAPIClient": ("._sync._api_client", "SyncAPIClient"),
    "Call": ("._sync._call", "Call"),
    "CallFeedback": ("._sync._call", "CallFeedback"),
    "SyncCallStream": ("._sync._client", "SyncCallStream"),
    "WeaveClient": ("._sync._client", "WeaveClient"),
    "create_client": ("._sync._client", "create_client"),
    "Dataset": ("._sync._dataset", "Dataset"),
    "Evaluation": ("._sync._evaluation", "Evaluation"),
    "CallEvent": ("._sync._live_calls", "CallEvent"),
    "SyncLiveCalls": ("._sync._live_calls", "SyncLiveCalls"),
    "Op": ("._sync._op", "Op"),
    "op": ("._sync._op", "op"),
    "SyncBatchIterator": ("._sync._pagination", "SyncBatchIterator"),
    "SyncPaginator": ("._sync._pagination", "SyncPaginator"),
    "SyncStream": ("._sync._streaming", "SyncStream"),
    "Table": ("._sync._table", "Table"),
    "attributes": ("._tracing", "attributes"),
    "ObjectVersion": ("._versions", "ObjectVersion"),
}

__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)

__version__ = "0.1.0"

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "ApplyScorerResult",
    "AsyncAPIClient",
    "AsyncBatchIterator",
    "AsyncCall",
    "AsyncCallEvent",
    "AsyncCallFeedback",
    "AsyncCallStream",
    "AsyncDataset",
    "AsyncEvaluation",
    "AsyncLiveCalls",
    "AsyncOp",
    "AsyncPaginator",
    "AsyncStream",
    "AsyncTable",
    "AsyncWeaveClient",
    "AuthenticationError",
    "BadRequestError",
    "Call",
    "CallEvent",
    "CallFeedback",
    "CallNotFoundError",
    "CallRef",
    "ClientClosedError",
    "ConflictError",
    "ContextThreadPoolExecutor",
    "CurrentCall",
    "Dataset",
    "Evaluation",
    "FlushResult",
    "InternalServerError",
    "InvalidNameError",
    "InvalidRefError",
    "InvalidSettingError",
    "Model",
    "NoCurrentCallError",
    "NoCurrentClientError",
    "NotFoundError",
    "Object",
    "ObjectRef",
    "ObjectVersion",
    "Op",
    "OpRef",
    "PermissionDeniedError",
    "RateLimitError",
    "Ref",
    "RefPathError",
    "RequestTooLargeError",
    "Scorer",
    "SyncAPIClient",
    "SyncBatchIterator",
    "SyncCallStream",
    "SyncLiveCalls",
    "SyncPaginator",
    "SyncStream",
    "Table",
    "TableRef",
    "Thread",
    "ThreadContext",
    "ThreadSchema",
    "UnprocessableEntityError",
    "UnsaveableValueError",
    "WeaveClient",
    "WeaveError",
    "WeaveObject",
    "__version__",
    "async_op",
    "attributes",
    "create_async_client",
    "create_client",
    "get_current_call",
    "op",
    "parse_ref",
    "require_current_call",
    "thread",
]
