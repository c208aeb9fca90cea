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

from ._async._api_client import AsyncAPIClient
from ._async._call import Call as AsyncCall
from ._async._call import CallFeedback as AsyncCallFeedback
from ._async._client import AsyncCallStream, AsyncWeaveClient, create_async_client
from ._async._dataset import Dataset as AsyncDataset
from ._async._evaluation import Evaluation as AsyncEvaluation
from ._async._live_calls import AsyncLiveCalls
from ._async._live_calls import CallEvent as AsyncCallEvent
from ._async._op import AsyncOp, async_op
from ._async._pagination import AsyncBatchIterator, AsyncPaginator
from ._async._sender import FlushResult
from ._async._streaming import AsyncStream
from ._async._table import Table as AsyncTable
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
    RequestTooLargeError,
    UnprocessableEntityError,
    UnsaveableValueError,
    WeaveError,
)
from ._flow import ApplyScorerResult, Model, Object, Scorer
from ._models import ThreadSchema
from ._opbase import register_decorators
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

__version__ = "0.1.0"

# The shared layer wraps undecorated functions (a Model's predict, a plain scorer)
# with these; it imports neither flavour itself. No Model or Scorer subclass is
# defined inside the package, so none exists before this line runs.
register_decorators(coroutine=async_op, function=op)

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
