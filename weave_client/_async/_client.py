"""The user-facing client: objects, refs, tables, calls and feedback.

Hand-written once, for the async flavour; ``scripts/unasync`` generates the sync twin.
Every server request goes through the client's one API client (pooling,
retries, auth); traced calls go through its one background sender, which every
read of calls flushes first, so a program always sees its own calls.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import functools
import json
import logging
import os
import weakref
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Callable,
    Collection,
    Iterable,
    Mapping,
    Sequence,
)
from types import TracebackType
from typing import Any, Self, TypeAlias

import pydantic

from .. import _settings
from .._cache import MISSING, DigestCache, is_digest
from .._context import (
    note_client,
    pop_client,
    push_client,
    register_client,
    unregister_client,
)
from .._digest import bytes_digest
from .._embedded import embedded_url, start_embedded
from .._errors import (
    APIResponseValidationError,
    APIStatusError,
    ClientClosedError,
    InvalidRefError,
    NotFoundError,
    RequestTooLargeError,
    UnsaveableValueError,
)
from .._flow import register_object_ops, runnable_feedback
from .._http import Secret
from .._models import (
    CallReadReq,
    CallSchema,
    CallsDeleteReq,
    CallsFilter,
    CallsQueryReq,
    CallUpdateReq,
    CostCreateRes,
    CostQueryOutput,
    Feedback,
    FeedbackCreateBatchReq,
    FeedbackCreateReq,
    FeedbackPurgeReq,
    FeedbackQueryReq,
    FileContentReadReq,
    FileCreateReq,
    ObjCreateReq,
    ObjDeleteReq,
    ObjectVersionFilter,
    ObjQueryReq,
    ObjReadReq,
    ObjSchemaForInsert,
    Query,
    RefsReadBatchReq,
    SortBy,
    TableAppendSpec,
    TableAppendSpecPayload,
    TableCreateReq,
    TableQueryReq,
    TableRowFilter,
    TableSchemaForInsert,
    TableUpdateReq,
    ThreadSchema,
    ThreadsQueryFilter,
    ThreadsQueryReq,
)
from .._refs import (
    CallRef,
    ObjectRef,
    OpRef,
    Ref,
    TableRef,
    is_ref_uri,
    parse_ref,
    validate_entity_project,
    validate_object_name,
)
from .._serialize import (
    EncodedValue,
    PendingFile,
    WeaveObject,
    decode,
    encode_for_save,
    files_to_fetch,
)
from .._synchronization import AsyncLock, async_gather_bounded, async_run_blocking
from .._tracing import add_redact_keys, client_attributes, encode_value
from .._versions import ObjectVersion
from .._wal import open_wal
from ..integrations import activate as activate_integrations
from ..integrations import resolve_autopatch
from . import _costs
from ._api_client import AsyncAPIClient
from ._call import Call
from ._dataset import Dataset
from ._live_calls import AsyncLiveCalls
from ._pagination import AsyncBatchIterator, AsyncPaginator
from ._project import ensure_project_exists as _ensure_wandb_project
from ._sender import AsyncCallSender, FlushResult
from ._streaming import AsyncStream
from ._table import Table

logger = logging.getLogger("weave_client")

HOSTED_REQUEST_BYTES_LIMIT = 31 * 1024 * 1024
"""The hosted service refuses bodies above 32 MiB; weave's client keeps 1 MiB spare."""

SortKey: TypeAlias = str | SortBy | Mapping[str, Any]
"""``"started_at"``, ``"-started_at"``, ``"summary.weave.latency_ms desc"``, a ``SortBy``
or its dict (``{"field": ..., "direction": "asc"|"desc"}``)."""
SortByLike: TypeAlias = SortKey | Sequence[SortKey]
"""One sort key or a list of them (the first sorts first)."""

_FILTER_FIELDS = frozenset(CallsFilter.model_fields)
# Feedback records per /feedback/batch/create request.
_FEEDBACK_BATCH = 500
_OBJECT_FILTER_FIELDS = frozenset(ObjectVersionFilter.model_fields)


class AsyncCallStream:
    """Calls streamed from ``/calls/stream_query``, one JSONL line at a time.

    Iterate it with ``async for``; memory holds one call however many
    arrive. The request is sent on the first item, after the client's pending
    call records are flushed. Close it early (or use it in a ``with`` block) to
    release the connection.
    """

    def __init__(self, client: AsyncWeaveClient, req: CallsQueryReq) -> None:
        self._client = client
        self._req = req
        self._calls: AsyncGenerator[Call, None] | None = None
        self._closed = False
        self._stream: AsyncStream[CallSchema] | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(project_id={self._req.project_id!r})"

    async def _iterate(self) -> AsyncGenerator[Call, None]:
        await self._client._before_calls_read()
        self._stream = stream = self._client._api.calls_query_stream(self._req)
        async with stream:
            async for schema in stream:
                yield Call._from_schema(self._client, schema)

    def __aiter__(self) -> AsyncIterator[Call]:
        return self

    async def __anext__(self) -> Call:
        if self._closed:
            raise StopAsyncIteration
        if self._calls is None:
            self._calls = self._iterate()
        return await anext(self._calls)

    async def aclose(self) -> None:
        """Stop reading and release the connection."""
        self._closed = True
        if self._calls is not None:
            await self._calls.aclose()  # leaves the stream's `with` block
        if self._stream is not None:
            await self._stream.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class AsyncWeaveClient:
    """The Weave client: save and get objects, build tables, query calls, add feedback.

    Arguments: ``entity``, ``project``, ``server_url=None``, ``api_key=None``,
    ``ensure_project_exists=True``. The server is ``server_url``, else
    ``WEAVE_TRACE_SERVER_URL``, else the hosted service when ``WANDB_API_KEY`` is
    set, else an embedded local server. Use it as a context manager; leaving the
    block flushes pending calls and closes the connection pool. Traced ops
    report to the client made current in their context (entered, or made by
    ``create_async_client``), else to the most recently created or entered
    client that is still open, from any thread or event loop.

    Keyword-only options: ``timeout`` and ``max_retries`` (per request),
    ``cache_dir`` (a directory that persists digest-addressed reads),
    ``max_request_bytes`` (the server's body limit; bigger table uploads are
    chunked), ``wal`` (write traced calls to an on-disk log under the cache dir
    before sending, so they survive outages and crashes; default
    ``WEAVE_CLIENT_WAL``, off), ``autopatch`` (trace the openai and anthropic
    SDKs' calls: True, False or integration names; default ``WEAVE_AUTOPATCH``, on).

    Tracing options (each also an environment variable): ``disabled``
    (``WEAVE_DISABLED``: the client records no calls and is never current, ops
    run untraced; reads work), ``capture_code`` (``WEAVE_CAPTURE_CODE``, default
    True: False saves ops with a placeholder instead of their source),
    ``print_call_link`` (``WEAVE_PRINT_CALL_LINK``, default False: print one
    line per root call with its URL), ``redact_keys`` (``WEAVE_REDACT_KEYS``,
    comma-separated: more argument/dict keys whose values are recorded as
    ``REDACTED``, process-wide), ``attributes`` (a dict added to every call's
    attributes; ``weave_client.attributes()`` scopes override it). The client's
    own API key is replaced by ``REDACTED`` wherever it appears in a recorded call.
    """

    def __init__(
        self,
        entity: str,
        project: str,
        server_url: str | None = None,
        api_key: str | None = None,
        ensure_project_exists: bool = True,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        max_request_bytes: int = HOSTED_REQUEST_BYTES_LIMIT,
        wal: bool | None = None,
        autopatch: bool | Collection[str] | None = None,
        disabled: bool | None = None,
        capture_code: bool | None = None,
        print_call_link: bool | None = None,
        redact_keys: Iterable[str] | None = None,
        attributes: Mapping[str, Any] | None = None,
    ) -> None:
        validate_entity_project(entity, project)
        # Settings first: a bad value fails before anything starts.
        integrations = resolve_autopatch(autopatch)
        self._disabled = _settings.disabled(disabled)
        self._capture_code = _settings.capture_code(capture_code)
        self._print_call_link = _settings.print_call_link(print_call_link)
        extra_keys = _settings.redact_keys(redact_keys)
        self._attributes = client_attributes(attributes)
        if max_request_bytes < 1024:
            raise ValueError(f"max_request_bytes must be at least 1024, got {max_request_bytes!r}")
        self.entity = entity
        self.project = project
        key = _settings.resolve_api_key(api_key)
        url = _settings.resolve_server_url(server_url)
        # No server configured: the embedded local server's address now; the server
        # itself starts in _ready() (create_async_client, ``async with``, the first
        # request), off the event loop.
        self._start_embedded = url is None
        if url is None:
            url = embedded_url()
        self._api = AsyncAPIClient(url, api_key=key, **_api_options(timeout, max_retries))
        # The API client's URL: credentials a URL carried are used but never shown.
        self.server_url = self._api.base_url
        self._hosted = _settings.is_hosted(self.server_url)
        # A W&B trace service has W&B (GraphQL, projects) and a web UI behind it.
        self._wandb_base_url = _settings.wandb_base_url() if self._hosted else None
        self._app_url = _settings.wandb_app_url() if self._hosted else None
        # Kept only for the W&B GraphQL project upsert; the API client hides its own copy.
        self._graphql_key = Secret(key) if key else None
        self._cache = DigestCache(cache_dir=cache_dir)
        # id(obj) -> (weakref to obj, its ref): objects saved by this client, so that
        # saving them nested inside another object stores a ref (see _ref_of).
        self._saved: dict[int, tuple[weakref.ref[Any], ObjectRef, str]] = {}
        self._sender = AsyncCallSender(
            self._api,
            wal=open_wal(wal, cache_dir, self.server_url, self.project_id),
            secret=key,
            # Traced calls can reach the sender before any request does.
            prepare=self._start_server if self._start_embedded else None,
        )
        # Kept to redact it from op sources; never shown (see __repr__).
        self._secret_text = Secret(key) if key and len(key) >= 8 else None
        if extra_keys:
            add_redact_keys(extra_keys)
        self._max_request_bytes = max_request_bytes
        # Whether the server has /feedback/batch/create (None: not known yet).
        self._feedback_batches: bool | None = None
        self._ensure_project = bool(ensure_project_exists and self._wandb_base_url)
        self._project_ready = not self._ensure_project
        self._project_lock = AsyncLock()
        self._closed = False
        # Tokens of push_client(): one from the create function, one per `with` entry.
        self._tokens: list[Any] = []
        # The sender runs on this event loop (if any) until the client is entered.
        self._sender.bind()
        if not self._disabled:
            # A default for ops while referenced, until entered (then held) or closed.
            note_client(self)
            # LLM SDK calls (openai, anthropic) traced from now on; see weave_client.integrations.
            activate_integrations(integrations)

    def __repr__(self) -> str:
        state = ", closed" if self._closed else ""
        return (
            f"{type(self).__name__}(entity={self.entity!r}, project={self.project!r}, "
            f"server_url={self.server_url!r}{state})"
        )

    def __reduce__(self) -> Any:
        raise TypeError(
            f"{type(self).__name__} cannot be pickled (it holds credentials and a connection "
            "pool); create a client in the other process"
        )

    @property
    def project_id(self) -> str:
        """``"entity/project"``, as the server's requests name the project."""
        return f"{self.entity}/{self.project}"

    @property
    def is_hosted(self) -> bool:
        """True when talking to the hosted Weave service (refs then have ``ui_url``)."""
        return self._hosted

    @property
    def is_closed(self) -> bool:
        """True once the client was closed (explicitly, or on leaving its ``with`` block)."""
        return self._closed

    # --- lifecycle ----------------------------------------------------------

    async def _ready(self) -> None:
        """Fail on a closed client; make sure the W&B project exists (once)."""
        if self._closed:
            raise ClientClosedError(
                f"{type(self).__name__} for {self.project_id} is closed; create a new client"
            )
        if self._start_embedded:
            await self._start_server()
        if self._project_ready:
            return
        async with self._project_lock:
            if self._project_ready:
                return
            assert self._wandb_base_url is not None
            name = await _ensure_wandb_project(
                self.entity,
                self.project,
                wandb_base_url=self._wandb_base_url,
                api_key=self._graphql_key.get() if self._graphql_key else None,
            )
            if name != self.project:
                # As weave: W&B may store the project under a normalized name; use it.
                logger.info(
                    "weave_client: W&B project %s/%s is named %r", self.entity, self.project, name
                )
                self.project = name
            self._project_ready = True

    async def _start_server(self) -> None:
        """Start the embedded server (once per process), off the event loop."""
        if self._start_embedded:
            await async_run_blocking(start_embedded)
            self._start_embedded = False

    def _make_current(self) -> None:
        if self._disabled:
            return  # a disabled client records nothing: ops run untraced
        # Current in this context, and the process-wide default for contexts
        # that have none (other threads, event loops, a server's request tasks).
        self._tokens.append(push_client(self))
        register_client(self)
        # The sender runs on this event loop (if any); ops elsewhere wake it here.
        self._sender.bind()
        # Calls an earlier process left in the write-ahead log go out at start-up.
        self._sender.resume()

    def _redact_text(self, text: str) -> str:
        """``text`` with this client's API key replaced by ``REDACTED``."""
        if self._secret_text is None:
            return text
        secret = self._secret_text.get()
        return text.replace(secret, "REDACTED") if secret in text else text

    async def __aenter__(self) -> Self:
        try:
            await self._ready()
        except BaseException:
            await self.aclose()
            raise
        self._make_current()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._tokens:
            pop_client(self._tokens.pop())
        await self.aclose()

    async def flush(self, timeout: float | None = None) -> FlushResult:
        """Wait until every traced call recorded so far is stored on the server.

        With ``timeout``, return after at most that many seconds; the result's
        ``pending`` says how many records were still unsent.
        """
        return await self._sender.flush(timeout)

    async def aclose(self) -> None:
        """Flush pending calls, stop the sender, close the connection pool. Idempotent."""
        if self._closed:
            return
        self._closed = True
        # The previous open client becomes the default again.
        unregister_client(self)
        try:
            await self._sender.aclose()
        finally:
            await self._api.aclose()
            while self._tokens:
                pop_client(self._tokens.pop())

    async def _before_calls_read(self) -> None:
        """Read-your-writes: send this client's pending call records first."""
        await self._ready()
        result = await self._sender.flush()
        if result.pending:
            logger.warning(
                "weave_client: %d call records still unsent when reading calls; "
                "the result may miss them",
                result.pending,
            )

    # --- encoding -----------------------------------------------------------

    def _decode(self, value: Any, project_id: str | None = None) -> Any:
        """A stored value as a client value: custom objects with attribute access, refs
        as ``Ref`` objects (pass them to ``get()``: nested refs resolve on demand)."""
        return decode(value)

    async def _decode_stored(self, value: Any, project_id: str) -> Any:
        """As ``_decode``, first fetching the file content the value refers to (bytes)."""
        digests = files_to_fetch(value)
        if not digests:
            return decode(value)
        files = {d: await self._read_file(project_id, d) for d in sorted(digests)}
        return decode(value, files=files)

    def _ref_of(self, value: object) -> Ref | None:
        """The ref of an object this client saved, if it is unchanged since; for an op
        this client has registered, the ref of that op version (as weave stores ops
        held by objects, e.g. an Evaluation's scorers)."""
        try:
            op_uri = self._sender.op_refs.get(value)
        except TypeError:  # unhashable values (dicts, pydantic models) are not ops
            op_uri = None
        if op_uri is not None:
            return _parse_op_ref(op_uri)
        entry = self._saved.get(id(value))
        if entry is None or entry[0]() is not value:
            return None
        ref = entry[1]
        if ref.project_id != self.project_id:
            return None  # as weave: no refs across projects; store the value itself
        # A saved object mutated since must not be stored as its old version. Compared
        # with the local digest at save time: a server that rewrites refs inside values
        # (project ids, as the hosted service does) digests them differently.
        try:
            digest = encode_for_save(value, ref_of=self._ref_of).digest
        except UnsaveableValueError:
            return None
        return ref if digest == entry[2] else None

    def _remember(self, obj: Any, ref: ObjectRef, digest: str | None = None) -> None:
        """Remember ``obj`` as saved under ``ref``; ``digest``: its local encoding's digest."""
        key = id(obj)
        saved = self._saved
        try:
            handle = weakref.ref(obj, lambda _: saved.pop(key, None))
        except TypeError:
            return  # ints, strs, dicts: not weak-referenceable, always stored inline
        saved[key] = (handle, ref, digest if digest is not None else ref.digest)

    async def _upload_files(self, files: Mapping[str, PendingFile], project_id: str) -> None:
        """Upload the file content encoded values refer to (bytes), skipping known ones."""
        for digest, pending in files.items():
            if self._cache.get("file", project_id, "", digest) is not MISSING:
                continue
            res = await self._api.file_create(
                FileCreateReq(project_id=project_id, name=pending.name, content=pending.content)
            )
            if res.digest != digest:
                logger.warning(
                    "weave_client: server digest %s differs from the local %s for file %s",
                    res.digest,
                    digest,
                    pending.name,
                )
            self._cache.put(
                "file", project_id, "", digest, base64.b64encode(pending.content).decode("ascii")
            )

    async def _read_file(self, project_id: str, digest: str) -> bytes:
        cached = self._cache.get("file", project_id, "", digest)
        if cached is not MISSING:
            return base64.b64decode(cached)
        res = await self._api.file_content_read(
            FileContentReadReq(project_id=project_id, digest=digest)
        )
        self._cache.put(
            "file", project_id, "", digest, base64.b64encode(res.content).decode("ascii")
        )
        return res.content

    async def save_file(self, content: bytes, name: str = "file") -> str:
        """Store ``content`` as a file (``/file/create``); return its digest.

        The digest is the server's, checked against the one computed locally
        (identical content, same digest); read it back with :meth:`read_file`.
        """
        if not isinstance(content, (bytes, bytearray, memoryview)):
            raise TypeError(
                f"save_file(content=...) takes bytes, got {type(content).__name__}"
                + (" (encode text first, e.g. text.encode())" if isinstance(content, str) else "")
            )
        if not isinstance(name, str):
            raise TypeError(f"save_file(name=...) takes a str, got {type(name).__name__}")
        if not name:
            raise ValueError("save_file(name=...) must not be empty")
        data = bytes(content)
        digest = bytes_digest(data)
        await self._ready()
        res = await self._api.file_create(
            FileCreateReq(project_id=self.project_id, name=name, content=data)
        )
        if res.digest != digest:
            # Returning it would hand out a digest that names other content than ours.
            raise APIResponseValidationError(
                f"the server stored file {name!r} under digest {res.digest!r}, "
                f"but its content digests to {digest!r}",
                route="/file/create",
            )
        self._cache.put("file", self.project_id, "", digest, base64.b64encode(data).decode("ascii"))
        return digest

    async def read_file(self, digest: str) -> bytes:
        """The content of the file ``digest`` (from :meth:`save_file`), cached by digest.

        Raises ``NotFoundError`` when this project holds no such file.
        """
        if not isinstance(digest, str):
            raise TypeError(f"read_file(digest=...) takes a str, got {type(digest).__name__}")
        if not is_digest(digest):
            raise ValueError(
                f"read_file(digest=...) takes a file digest as save_file() returns, got {digest!r}"
            )
        await self._ready()
        try:
            return await self._read_file(self.project_id, digest)
        except NotFoundError as e:
            raise NotFoundError(
                f"no file with digest {digest!r} in {self.project_id}",
                status_code=e.status_code,
                route=e.route,
                body=e.body,
            ) from e

    # --- objects ------------------------------------------------------------

    async def save(self, obj: Any, name: str | None = None) -> ObjectRef:
        """Save ``obj`` as a new version of the object ``name``; return its ref.

        Without ``name``, as weave's ``publish``: the object's own ``name`` (a
        ``Dataset``'s), else its class name. Identical content gives the same
        digest (no new version). Objects this client saved before and that are
        nested inside ``obj`` (unchanged) are stored as refs to them. Raises
        ``TypeError`` (``UnsaveableValueError``) naming the path of a value that
        cannot be saved, ``InvalidNameError`` for a bad name.
        """
        if name is None:
            own = getattr(obj, "name", None)
            name = own if isinstance(own, str) and own else type(obj).__name__
        validate_object_name(name)
        await self._ready()
        table_rows = getattr(obj, "_weave_table_rows", None)
        if callable(table_rows):
            # Objects that keep rows as a table (a Dataset) have them stored first;
            # the saved object then refers to the table, as weave saves it.
            rows = table_rows(self.project_id)
            if rows is not None:
                obj._weave_table_saved(await self._create_table(await self._encode_rows(rows)))
        # Its ops (a Model's predict) are stored with it as op refs, as weave does.
        register_object_ops(obj, self)
        encoded = encode_for_save(obj, ref_of=self._ref_of)
        await self._upload_files(encoded.files, self.project_id)
        res = await self._api.obj_create(
            ObjCreateReq(
                obj=ObjSchemaForInsert(project_id=self.project_id, object_id=name, val=encoded.json)
            )
        )
        self._cache.put("obj", self.project_id, name, res.digest, encoded.json)
        ref = ObjectRef(self.entity, self.project, name, res.digest)
        self._remember(obj, ref, encoded.digest)
        return ref

    async def _read_object(self, project_id: str, name: str, version: str) -> tuple[Any, str]:
        """The stored value of ``name`` at ``version`` (a digest, ``latest`` or ``vN``)."""
        cached = self._cache.get("obj", project_id, name, version)
        if cached is not MISSING:
            return cached, version
        try:
            res = await self._api.obj_read(
                ObjReadReq(project_id=project_id, object_id=name, digest=version)
            )
        except NotFoundError as e:
            # The hosted service's 404 for a deleted version carries its deleted_at.
            deleted_at = e.body.get("deleted_at") if isinstance(e.body, dict) else None
            what = f"was deleted at {deleted_at}" if deleted_at else "does not exist"
            raise NotFoundError(
                f"object {name!r} at version {version!r} in {project_id} {what}",
                status_code=e.status_code,
                route=e.route,
                body=e.body,
            ) from e
        digest = res.obj.digest
        self._cache.put("obj", project_id, name, digest, res.obj.val)
        return res.obj.val, digest

    async def get(self, ref: ObjectRef | TableRef | CallRef | str) -> Any:
        """The value a ref points at.

        Accepts a ref or a ``weave:///`` URI string, with extra paths such as
        ``/attr/x/key/y/index/0``. Objects come back as attribute-access values,
        a table ref as a ``Table``, a call ref as a ``Call``. Raises
        ``ValueError`` (``InvalidRefError``) for a malformed URI and
        ``NotFoundError`` when nothing is stored there.
        """
        if isinstance(ref, str):
            ref = parse_ref(ref)
        if not isinstance(ref, Ref):
            raise TypeError(
                f"get() takes an ObjectRef, TableRef, CallRef or weave:/// URI, "
                f"got {type(ref).__name__}"
            )
        await self._ready()
        if isinstance(ref, CallRef):
            if ref.extra:
                return await self._read_ref_path(ref.uri(), ref.project_id)
            call = await self._call(ref.id, ref.project_id)
            return call
        if isinstance(ref, TableRef):
            if ref.extra:
                return await self._read_table_path(ref)
            return Table(self, ref)
        assert isinstance(ref, ObjectRef)
        val, digest = await self._read_object(ref.project_id, ref.name, ref.digest)
        if ref.extra:
            # Let the server walk the path: it crosses into tables and nested refs.
            resolved = dataclasses.replace(ref, digest=digest)
            return await self._read_ref_path(resolved.uri(), ref.project_id)
        value = await self._decode_object(val, ref.project_id)
        if isinstance(value, WeaveObject) and value._class_name == "Dataset":
            # A saved Dataset comes back as one, its rows read lazily.
            return Dataset.from_stored(value, self, dataclasses.replace(ref, digest=digest))
        return value

    async def _decode_object(self, val: Any, project_id: str) -> Any:
        # A value that is itself a table ref (a published table) comes back as a Table.
        if is_ref_uri(val):
            target = parse_ref(val)
            if isinstance(target, TableRef) and not target.extra:
                return Table(self, target)
        return await self._decode_stored(val, project_id)

    async def _read_table_path(self, ref: TableRef) -> Any:
        """A row of a table (``/id/{row_digest}`` or ``/index/{i}``), then the rest of the path.

        Resolved here rather than by ``/refs/read_batch``: weave's own server does
        not read table refs there.
        """
        edge, value, rest = ref.extra[0], ref.extra[1], ref.extra[2:]
        table = Table(self, ref.without_extra())
        if edge == "id":
            res = await self._api.table_query(
                TableQueryReq(
                    project_id=ref.project_id,
                    digest=ref.digest,
                    filter=TableRowFilter(row_digests=[value]),
                    limit=1,
                )
            )
            if not res.rows:
                raise NotFoundError(
                    f"no row {value} in table {ref.without_extra().uri()}",
                    status_code=404,
                    route="/table/query",
                )
            val = res.rows[0].val
        elif edge == "index":
            try:
                val = (await table._row_at(int(value))).val
            except IndexError as e:
                raise NotFoundError(str(e), status_code=404, route="/table/query") from None
        else:
            raise InvalidRefError(
                f"a table ref continues with /id/{{row_digest}} or /index/{{i}}, "
                f"not /{edge}/: {ref.uri()}"
            )
        return await self._walk(val, rest, ref)

    async def _walk(self, val: Any, path: tuple[str, ...], ref: Ref) -> Any:
        """Follow ``key``/``attr``/``index`` edges through a stored value, crossing refs."""
        for i in range(0, len(path), 2):
            if is_ref_uri(val):
                target = parse_ref(val)
                return await self.get(target._with_extra(*path[i:]))
            edge, value = path[i], path[i + 1]
            try:
                if edge == "index":
                    val = val[int(value)]
                elif edge in ("key", "attr") and isinstance(val, dict):
                    val = val[value]
                else:
                    raise TypeError(f"cannot follow /{edge}/ into a {type(val).__name__}")
            except (KeyError, IndexError, TypeError, ValueError) as e:
                raise NotFoundError(
                    f"nothing at /{edge}/{value} in {ref.uri()}: {e}",
                    status_code=404,
                    route="/table/query",
                ) from None
        return await self._decode_object(val, ref.project_id)

    async def _read_ref_path(self, uri: str, project_id: str) -> Any:
        cached = self._cache.get("ref", project_id, uri, _digest_of(uri))
        if cached is not MISSING:
            return await self._decode_object(cached, project_id)
        try:
            res = await self._api.refs_read_batch(RefsReadBatchReq(refs=[uri]))
        except NotFoundError as e:
            raise NotFoundError(
                f"nothing stored at {uri}", status_code=e.status_code, route=e.route, body=e.body
            ) from e
        if not res.vals:
            raise NotFoundError(
                f"nothing stored at {uri}", status_code=404, route="/refs/read_batch"
            )
        val = res.vals[0]
        self._cache.put("ref", project_id, uri, _digest_of(uri), val)
        return await self._decode_object(val, project_id)

    async def objects(
        self,
        filter: ObjectVersionFilter | Mapping[str, Any] | None = None,
        limit: int | None = None,
        offset: int | None = None,
        *,
        include_values: bool = False,
        **filter_fields: Any,
    ) -> list[ObjectVersion]:
        """List saved object versions, oldest first.

        ``filter`` (or keywords): ``object_ids``, ``base_object_classes``,
        ``leaf_object_classes``, ``is_op``, ``latest_only``. Values are fetched
        only with ``include_values=True``.
        """
        await self._ready()
        merged = _merge_filter(filter, filter_fields, _OBJECT_FILTER_FIELDS, "objects()")
        res = await self._api.objs_query(
            ObjQueryReq(
                project_id=self.project_id,
                filter=ObjectVersionFilter.model_validate(merged) if merged else None,
                limit=limit,
                offset=offset,
                sort_by=[SortBy(field="created_at", direction="asc")],
                metadata_only=not include_values,
            )
        )
        out = []
        for obj in res.objs:
            ref_cls = OpRef if obj.kind == "op" else ObjectRef
            out.append(
                ObjectVersion(
                    name=obj.object_id,
                    digest=obj.digest,
                    version_index=obj.version_index,
                    is_latest=bool(obj.is_latest),
                    class_name=obj.leaf_object_class
                    or obj.base_object_class
                    or ("Op" if obj.kind == "op" else _class_name_of(obj.val)),
                    created_at=obj.created_at,
                    ref=ref_cls(self.entity, self.project, obj.object_id, obj.digest),
                    value=await self._decode_object(obj.val, self.project_id)
                    if include_values
                    else None,
                )
            )
        return out

    async def delete_object(self, obj: ObjectRef | ObjectVersion | str) -> int:
        """Delete one version (a ref, its URI, or an ``ObjectVersion`` from ``objects()``)
        or every version (a plain name).

        Returns how many versions were deleted; ``NotFoundError`` if none matched.
        """
        if isinstance(obj, ObjectVersion):
            obj = obj.ref
        if isinstance(obj, str) and is_ref_uri(obj):
            obj = parse_ref(obj)  # type: ignore[assignment]
        await self._ready()
        if isinstance(obj, ObjectRef):
            if obj.extra:
                raise ValueError(f"cannot delete part of an object: {obj.uri()}")
            req = ObjDeleteReq(project_id=obj.project_id, object_id=obj.name, digests=[obj.digest])
        elif isinstance(obj, str):
            validate_object_name(obj)
            req = ObjDeleteReq(project_id=self.project_id, object_id=obj)
        else:
            raise TypeError(
                f"delete_object() takes an ObjectRef, an ObjectVersion, a URI or an object name, "
                f"got {type(obj).__name__}"
            )
        digests = req.digests
        if digests is None:
            # Deleting every version: learn their digests to drop them from the cache.
            listed = await self._api.objs_query(
                ObjQueryReq(
                    project_id=req.project_id,
                    filter=ObjectVersionFilter(object_ids=[req.object_id]),
                    metadata_only=True,
                )
            )
            digests = [o.digest for o in listed.objs]
        try:
            res = await self._api.obj_delete(req)
        finally:
            for digest in digests:
                self._cache.discard("obj", req.project_id, req.object_id, digest)
        return res.num_deleted

    # --- tables -------------------------------------------------------------

    async def table(self, name: str, rows: Iterable[Mapping[str, Any]] | None = None) -> Table:
        """Create a table from dict ``rows`` and publish it as ``name``; or, without
        rows, get the latest published version of ``name``.

        Uploads above the server's request limit go up in chunks (created, then
        appended to), so any number of rows works.
        """
        validate_object_name(name, what="table name")
        await self._ready()
        if rows is None:
            return await self._read_table(name, "latest", self.project_id)
        if isinstance(rows, (str, bytes, Mapping)):
            raise TypeError(f"table rows must be an iterable of dicts, got {type(rows).__name__}")
        encoded = await self._encode_rows(rows)
        table_ref = await self._create_table(encoded)
        ref = await self._publish_table(name, table_ref)
        return Table(self, table_ref, name=name, ref=ref)

    async def _encode_rows(self, rows: Iterable[Mapping[str, Any]]) -> list[Any]:
        """Encode dict rows as ``save()`` encodes values; upload the files they refer to."""
        out: list[Any] = []
        files: dict[str, PendingFile] = {}
        for i, row in enumerate(rows):
            encoded = _encode_row(row, i, self._ref_of)
            out.append(encoded.json)
            files.update(encoded.files)
        await self._upload_files(files, self.project_id)
        return out

    async def _read_table(self, name: str, version: str, project_id: str) -> Table:
        val, digest = await self._read_object(project_id, name, version)
        target = parse_ref(val) if is_ref_uri(val) else None
        if not isinstance(target, TableRef):
            raise TypeError(
                f"object {name!r} in {project_id} is not a table (its value is a "
                f"{type(val).__name__}); use get() for it"
            )
        entity, project = project_id.split("/", 1)
        return Table(self, target, name=name, ref=ObjectRef(entity, project, name, digest))

    async def _publish_table(self, name: str, table_ref: TableRef) -> ObjectRef:
        # As weave publishes a Table: an object whose value is the table's ref URI.
        res = await self._api.obj_create(
            ObjCreateReq(
                obj=ObjSchemaForInsert(
                    project_id=self.project_id, object_id=name, val=table_ref.uri()
                )
            )
        )
        return ObjectRef(self.entity, self.project, name, res.digest)

    def _chunks(self, rows: list[Any], overhead: int = 0) -> list[list[Any]]:
        """Split rows into runs whose JSON stays under the request limit."""
        sizes = _row_sizes(rows)
        chunks = []
        pos = 0
        while pos < len(rows):
            end = self._chunk_end(sizes, pos, overhead)
            chunks.append(rows[pos:end])
            pos = end
        return chunks

    def _chunk_end(self, sizes: list[int], start: int, overhead: int) -> int:
        """Where the run of rows from ``start`` must stop to fit in one request.

        ``overhead`` is added per row (an appended row travels wrapped as
        ``{"append":{"row":...}}``). At least one row is always taken.
        """
        # Room for the envelope ({"table": {"project_id": ..., "rows": [...]}}).
        budget = self._max_request_bytes - 1024
        end, total = start, 0
        while end < len(sizes) and (end == start or total + sizes[end] + overhead <= budget):
            total += sizes[end] + overhead
            end += 1
        return end

    async def _upload_rows(self, rows: list[Any], base_digest: str | None = None) -> str:
        """Store rows as a new table (or appended to ``base_digest``); return its digest.

        Rows go up in requests under ``max_request_bytes``: created, then appended
        to. A 413 from a server with a lower limit halves the request size for the
        rest of this client's life, so any number of rows gets through.
        """
        sizes = _row_sizes(rows)
        digest = base_digest
        pos = 0
        while digest is None or pos < len(rows):
            overhead = 0 if digest is None else _APPEND_WRAPPER_BYTES
            end = self._chunk_end(sizes, pos, overhead)
            chunk = rows[pos:end]
            try:
                if digest is None:
                    res = await self._api.table_create(
                        TableCreateReq(
                            table=TableSchemaForInsert(project_id=self.project_id, rows=chunk)
                        )
                    )
                    digest = res.digest
                else:
                    digest = (await self._api.table_update(self._append_req(digest, chunk))).digest
            except RequestTooLargeError as e:
                if len(chunk) < 2:
                    raise RequestTooLargeError(
                        f"table row {pos} ({sizes[pos]} bytes of JSON) is larger than the "
                        f"server accepts in one request: {e.message}",
                        status_code=e.status_code,
                        route=e.route,
                        body=e.body,
                    ) from e
                refused = sum(sizes[pos:end]) + overhead * len(chunk)
                logger.info(
                    "weave_client: the server refused %d bytes of table rows (413); "
                    "sending smaller requests",
                    refused,
                )
                self._max_request_bytes = max(2048, min(self._max_request_bytes, refused) // 2)
                continue
            pos = end
        return digest

    def _append_req(self, base_digest: str, rows: list[Any]) -> TableUpdateReq:
        # model_construct: the rows are already encoded, and validating 100,000
        # append specs would cost more than sending them.
        return TableUpdateReq.model_construct(
            project_id=self.project_id,
            base_digest=base_digest,
            updates=[
                TableAppendSpec.model_construct(
                    append=TableAppendSpecPayload.model_construct(row=r)
                )
                for r in rows
            ],
        )

    async def _create_table(self, rows: list[Any]) -> TableRef:
        return TableRef(self.entity, self.project, await self._upload_rows(rows))

    async def _table_append(
        self, table_ref: TableRef, rows: Sequence[Mapping[str, Any]]
    ) -> TableRef:
        await self._ready()
        encoded = await self._encode_rows(rows)
        digest = await self._upload_rows(encoded, table_ref.digest)
        return TableRef(table_ref.entity, table_ref.project, digest)

    # --- calls --------------------------------------------------------------

    def _calls_request(
        self,
        filter: CallsFilter | Mapping[str, Any] | None,
        filter_fields: Mapping[str, Any],
        *,
        limit: int | None = None,
        offset: int | None = None,
        sort_by: SortByLike | None = None,
        query: Query | Mapping[str, Any] | None = None,
        columns: Sequence[str] | None = None,
        include_costs: bool = False,
        include_feedback: bool = False,
    ) -> CallsQueryReq:
        if limit is not None and (not isinstance(limit, int) or limit < 0):
            raise ValueError(f"limit must be a non-negative int, got {limit!r}")
        if offset is not None and (not isinstance(offset, int) or offset < 0):
            raise ValueError(f"offset must be a non-negative int, got {offset!r}")
        merged = _merge_filter(filter, filter_fields, _FILTER_FIELDS, "calls()")
        if merged.get("op_names") is not None:
            merged["op_names"] = self._op_name_patterns(merged["op_names"])
        for key in ("input_refs", "output_refs"):
            if merged.get(key) is not None:
                merged[key] = [r.uri() if isinstance(r, Ref) else r for r in _as_list(merged[key])]
        try:
            calls_filter = CallsFilter.model_validate(merged) if merged else None
        except pydantic.ValidationError as e:
            raise ValueError(f"invalid calls filter {merged!r}: {e}") from None
        return CallsQueryReq(
            project_id=self.project_id,
            filter=calls_filter,
            limit=limit,
            offset=offset,
            sort_by=_sort_by(sort_by),
            query=_query(query),
            columns=list(columns) if columns is not None else None,
            include_costs=include_costs,
            include_feedback=include_feedback,
        )

    def _op_name_patterns(self, names: Any) -> list[str]:
        """Op names as the server matches them: refs as given, plain names both ways.

        A traced op's calls carry its ref (``weave:///e/p/op/name:digest``), matched
        by the wildcard ``name:*``; calls logged with a bare op name match it exactly.
        """
        out: list[str] = []
        for name in _as_list(names):
            if isinstance(name, OpRef):
                out.append(name.uri())
            elif isinstance(name, str) and is_ref_uri(name):
                out.append(name)
            elif isinstance(name, str) and name:
                out.append(name)
                out.append(f"weave:///{self.entity}/{self.project}/op/{name}:*")
            else:
                raise ValueError(f"op_names entries must be op names or refs, got {name!r}")
        return out

    async def calls(
        self,
        filter: CallsFilter | Mapping[str, Any] | None = None,
        limit: int | None = None,
        offset: int | None = None,
        sort_by: SortByLike | None = None,
        query: Query | Mapping[str, Any] | None = None,
        columns: Sequence[str] | None = None,
        *,
        include_costs: bool = False,
        include_feedback: bool = False,
        **filter_fields: Any,
    ) -> list[Call]:
        """Query this project's calls; returns a list of ``Call``.

        - ``filter``: a ``CallsFilter``, a dict, or its fields as keywords
          (``op_names=["predict"]``, ``trace_roots_only=True``, ``parent_ids=[...]``);
          op names may be plain names or op refs.
        - ``sort_by``: ``"started_at"``, ``"-started_at"``, ``"summary.weave.latency_ms desc"``,
          ``SortBy``/dicts, or a list of them.
        - ``query``: a ``Query`` or its dict (``{"$expr": {...}}``, or the expression).
        - ``columns``: fetch only these fields.

        Pending traced calls are sent first, so the result includes them.
        """
        req = self._calls_request(
            filter,
            filter_fields,
            limit=limit,
            offset=offset,
            sort_by=sort_by,
            query=query,
            columns=columns,
            include_costs=include_costs,
            include_feedback=include_feedback,
        )
        await self._before_calls_read()
        res = await self._api.calls_query(req)
        return [Call._from_schema(self, c) for c in res.calls]

    def calls_stream(
        self,
        filter: CallsFilter | Mapping[str, Any] | None = None,
        limit: int | None = None,
        offset: int | None = None,
        sort_by: SortByLike | None = None,
        query: Query | Mapping[str, Any] | None = None,
        columns: Sequence[str] | None = None,
        **filter_fields: Any,
    ) -> AsyncCallStream:
        """Stream calls from ``/calls/stream_query`` with flat memory (arguments as ``calls()``)."""
        req = self._calls_request(
            filter,
            filter_fields,
            limit=limit,
            offset=offset,
            sort_by=sort_by,
            query=query,
            columns=columns,
        )
        return AsyncCallStream(self, req)

    def calls_pages(
        self,
        page_size: int = 100,
        filter: CallsFilter | Mapping[str, Any] | None = None,
        limit: int | None = None,
        offset: int = 0,
        sort_by: SortByLike | None = None,
        query: Query | Mapping[str, Any] | None = None,
        columns: Sequence[str] | None = None,
        **filter_fields: Any,
    ) -> AsyncPaginator[Call]:
        """Calls a page at a time: iterate pages (lists with ``.has_next``) or call
        ``next_page()``. Without ``sort_by`` pages are in start order."""
        base = self._calls_request(
            filter,
            filter_fields,
            sort_by=sort_by
            if sort_by is not None
            else [SortBy(field="started_at", direction="asc"), SortBy(field="id", direction="asc")],
            query=query,
            columns=columns,
        )

        async def fetch(page_offset: int, page_limit: int) -> list[Call]:
            await self._before_calls_read()
            res = await self._api.calls_query(
                base.model_copy(update={"offset": page_offset, "limit": page_limit})
            )
            return [Call._from_schema(self, c) for c in res.calls]

        return AsyncPaginator(fetch, page_size=page_size, limit=limit, offset=offset)

    def calls_batches(
        self,
        batch_size: int = 100,
        filter: CallsFilter | Mapping[str, Any] | None = None,
        limit: int | None = None,
        offset: int | None = None,
        sort_by: SortByLike | None = None,
        query: Query | Mapping[str, Any] | None = None,
        columns: Sequence[str] | None = None,
        **filter_fields: Any,
    ) -> AsyncBatchIterator[Call]:
        """Calls in lists of ``batch_size`` (the last may be shorter), streamed."""
        stream = self.calls_stream(filter, limit, offset, sort_by, query, columns, **filter_fields)
        return AsyncBatchIterator(lambda: stream, batch_size=batch_size)

    def calls_live(
        self,
        filter: CallsFilter | Mapping[str, Any] | None = None,
        since: int | None = None,
        *,
        poll_interval: float = 1.0,
        **filter_fields: Any,
    ) -> AsyncLiveCalls:
        """Call events as they happen: an endless iterator of ``CallEvent`` (kind, seq, call).

        - ``filter``: as ``calls()`` (op names, trace ids, ``trace_roots_only``,
          thread ids, ...); ``input_refs``/``output_refs`` are not supported.
        - ``since``: the ``seq`` of the last event you handled, to get every later
          one (0: all stored calls first); None: events from entering its ``with``
          block (or, without one, from the first ``next``).

        On the local server events come over ``/calls/watch``; a dropped
        connection is retried with backoff and resumes after the last event
        delivered. On a server without that route it polls
        ``/calls/stream_query`` every ``poll_interval`` seconds (starts and ends,
        ``seq`` None). Close it (or ``break``) to disconnect.
        """
        if since is not None and (not isinstance(since, int) or since < 0):
            raise ValueError(f"since must be a non-negative int or None, got {since!r}")
        if not poll_interval > 0:
            raise ValueError(f"poll_interval must be a positive number, got {poll_interval!r}")
        req = self._calls_request(filter, filter_fields)
        if req.filter is not None and (req.filter.input_refs or req.filter.output_refs):
            raise ValueError("calls_live(): input_refs and output_refs filters are not supported")
        return AsyncLiveCalls(self, req.filter, since, poll_interval)

    async def threads(
        self,
        thread_ids: Sequence[str] | None = None,
        *,
        after: datetime.datetime | None = None,
        before: datetime.datetime | None = None,
        limit: int | None = None,
        offset: int | None = None,
        sort_by: SortByLike | None = None,
    ) -> list[ThreadSchema]:
        """This project's conversation threads (``weave_client.thread`` blocks), with
        figures over their turns: ``turn_count``, ``start_time``, ``last_updated``,
        ``first_turn_id``, ``last_turn_id``, ``p50_turn_duration_ms``, ``p99_turn_duration_ms``.

        Newest activity first unless ``sort_by`` names one of those fields.
        ``after``/``before`` keep the turns started in that window. A thread's
        calls: ``calls(thread_ids=[tid])``; its turns are those with ``turn_id == id``.
        """
        if limit is not None and (not isinstance(limit, int) or limit < 0):
            raise ValueError(f"limit must be a non-negative int, got {limit!r}")
        if offset is not None and (not isinstance(offset, int) or offset < 0):
            raise ValueError(f"offset must be a non-negative int, got {offset!r}")
        if isinstance(thread_ids, str):
            raise TypeError(f"thread_ids must be a list of ids, got the str {thread_ids!r}")
        thread_filter = None
        if thread_ids is not None or after is not None or before is not None:
            thread_filter = ThreadsQueryFilter(
                thread_ids=list(thread_ids) if thread_ids is not None else None,
                after_datetime=after,
                before_datetime=before,
            )
        req = ThreadsQueryReq(
            project_id=self.project_id,
            filter=thread_filter,
            limit=limit,
            offset=offset,
            sort_by=_sort_by(sort_by, _check_thread_sort_field),
        )
        await self._before_calls_read()
        return await self._api.threads_query(req)

    async def _call(self, call_id: str, project_id: str) -> Call:
        await self._before_calls_read()
        res = await self._api.call_read(CallReadReq(project_id=project_id, id=call_id))
        if res.call is None:
            raise NotFoundError(
                f"no call {call_id!r} in {project_id}", status_code=404, route="/call/read"
            )
        return Call._from_schema(self, res.call)

    async def call(self, call_id: str) -> Call:
        """Read one call by id; ``NotFoundError`` if there is none."""
        if not isinstance(call_id, str) or not call_id:
            raise ValueError(f"call id must be a non-empty str, got {call_id!r}")
        return await self._call(call_id, self.project_id)

    async def delete_call(self, call: Call | str | Iterable[Call | str]) -> None:
        """Delete a call (a ``Call`` or an id), or a list of them, with all descendants."""
        items: list[Call | str] = [call] if isinstance(call, (Call, str)) else list(call)
        ids = []
        for item in items:
            if isinstance(item, Call):
                ids.append(item.id)
            elif isinstance(item, str) and item:
                ids.append(item)
            else:
                raise TypeError(f"delete_call() takes Calls or call ids, got {item!r}")
        if not ids:
            return
        await self._before_calls_read()
        await self._api.calls_delete(CallsDeleteReq(project_id=self.project_id, call_ids=ids))

    async def _set_call_display_name(self, call_id: str, name: str | None) -> str | None:
        """Store a call's display name (None removes it); returns the name as stored."""
        if name is not None and len(name) > MAX_DISPLAY_NAME_LENGTH:
            logger.warning(
                "weave_client: display name of call %s is %d characters; truncated to %d",
                call_id,
                len(name),
                MAX_DISPLAY_NAME_LENGTH,
            )
            name = name[: MAX_DISPLAY_NAME_LENGTH - 3] + "..."
        await self._before_calls_read()
        # As weave's client: the server stores "no display name" as "".
        await self._api.call_update(
            CallUpdateReq(project_id=self.project_id, call_id=call_id, display_name=name or "")
        )
        return name

    # --- feedback -----------------------------------------------------------

    async def _add_feedback(
        self,
        target: Any,
        feedback_type: str,
        payload: Mapping[str, Any] | None,
        *,
        runnable_ref: str | None = None,
        call_ref: str | None = None,
    ) -> str:
        weave_ref = _ref_uri(target)
        if payload is not None and not isinstance(payload, Mapping):
            raise TypeError(f"feedback payload must be a dict, got {type(payload).__name__}")
        await self._ready()
        project_id = parse_ref(weave_ref).project_id
        res = await self._api.feedback_create(
            FeedbackCreateReq(
                project_id=project_id,
                weave_ref=weave_ref,
                feedback_type=feedback_type,
                payload=dict(payload or {}),
                runnable_ref=runnable_ref,
                call_ref=call_ref,
            )
        )
        return res.id

    def _score_feedback(
        self, call_ref: str, score_call: Call, scorer_ref: str | None, output: Any
    ) -> FeedbackCreateReq:
        """A scorer's result as feedback on the call it scored, as weave's ``_send_score_call``
        records it: type ``wandb.runnable.<scorer>``, payload ``{"output": ...}``, the scorer
        (object or op) as ``runnable_ref`` and the score call as ``call_ref``."""
        feedback_type, runnable_ref = runnable_feedback(scorer_ref, score_call.op_name)
        return FeedbackCreateReq(
            project_id=score_call.project_id,
            weave_ref=call_ref,
            feedback_type=feedback_type,
            payload={"output": encode_value(output, self._ref_of)},
            runnable_ref=runnable_ref,
            call_ref=score_call.ref.uri(),
        )

    async def _add_score_feedback(
        self, call_ref: str, score_call: Call, scorer_ref: str | None, output: Any
    ) -> str:
        """Store one score as feedback (see ``_score_feedback``); returns its id."""
        req = self._score_feedback(call_ref, score_call, scorer_ref, output)
        await self._ready()
        res = await self._api.feedback_create(req)
        return res.id

    async def _add_feedback_many(self, reqs: list[FeedbackCreateReq], limit: int) -> int:
        """Store many feedback records; returns how many could not be stored (logged).

        Sent in batches where the server has ``/feedback/batch/create`` (ours and the
        hosted service), else one request per record, ``limit`` at a time.
        """
        if not reqs:
            return 0
        await self._ready()
        singles: list[FeedbackCreateReq] = []
        failed = 0
        for start in range(0, len(reqs), _FEEDBACK_BATCH):
            chunk = reqs[start : start + _FEEDBACK_BATCH]
            if self._feedback_batches is False:
                singles.extend(chunk)
                continue
            try:
                await self._api.feedback_create_batch(FeedbackCreateBatchReq(batch=chunk))
                self._feedback_batches = True
            except NotFoundError:
                # No such route (an older server): one request per record from now on.
                self._feedback_batches = False
                singles.extend(chunk)
            except APIStatusError:
                # One bad record (or too large a batch) fails the whole batch: store the
                # records one by one, so only the bad ones are lost (and logged).
                self._feedback_batches = True
                singles.extend(chunk)
            except Exception as exc:
                failed += len(chunk)
                logger.warning(
                    "weave_client: %d feedback records could not be stored: %r", len(chunk), exc
                )

        async def create(req: FeedbackCreateReq) -> bool:
            try:
                await self._api.feedback_create(req)
                return True
            except Exception as exc:
                logger.warning(
                    "weave_client: feedback %s on %s could not be stored: %r",
                    req.feedback_type,
                    req.weave_ref,
                    exc,
                )
                return False

        jobs = [functools.partial(create, req) for req in singles]
        stored = await async_gather_bounded(jobs, limit) if jobs else []
        return failed + stored.count(False)

    async def feedback(
        self,
        call: Call | Ref | str,
        type: str,
        payload: Mapping[str, Any] | None = None,
    ) -> str:
        """Attach feedback of ``type`` with a JSON ``payload`` to a call (or any ref).

        Returns the feedback id. Types starting with ``wandb.`` are reserved: use
        ``call.feedback.add_reaction()``/``add_note()`` for those.
        """
        if not isinstance(type, str) or not type:
            raise ValueError(f"feedback type must be a non-empty str, got {type!r}")
        if type.startswith("wandb."):
            raise ValueError(
                f"feedback type {type!r} is reserved (the 'wandb.' prefix); use "
                "call.feedback.add_reaction()/add_note() or a type of your own"
            )
        return await self._add_feedback(call, type, payload)

    async def feedback_query(
        self,
        query: Query | Mapping[str, Any] | None = None,
        *,
        weave_ref: Call | Ref | str | None = None,
        feedback_type: str | None = None,
        reaction: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[Feedback]:
        """Feedback in this project, oldest first, narrowed by a ``$expr`` query and/or
        the target (``weave_ref``: a call, ref or URI), ``feedback_type`` and ``reaction``."""
        await self._ready()
        conditions: list[dict[str, Any]] = []
        if query is not None:
            conditions.append(_query(query).model_dump(by_alias=True)["$expr"])  # type: ignore[union-attr]
        if weave_ref is not None:
            conditions.append(_eq("weave_ref", _ref_uri(weave_ref)))
        if feedback_type is not None:
            conditions.append(_eq("feedback_type", feedback_type))
        if reaction is not None:
            conditions.append(_eq("feedback_type", "wandb.reaction.1"))
            conditions.append(_eq("payload.emoji", reaction))
        expr: Query | None = None
        if conditions:
            expr = Query.model_validate(
                {"$expr": conditions[0] if len(conditions) == 1 else {"$and": conditions}}
            )
        res = await self._api.feedback_query(
            FeedbackQueryReq(
                project_id=self.project_id,
                query=expr,
                sort_by=[SortBy(field="created_at", direction="asc")],
                limit=limit,
                offset=offset,
            )
        )
        return [Feedback.model_validate(item) for item in res.result]

    async def feedback_purge(self, feedback_ids: str | Iterable[str]) -> None:
        """Delete feedback by id (one id or several)."""
        ids = [feedback_ids] if isinstance(feedback_ids, str) else list(feedback_ids)
        if not ids:
            return
        for fid in ids:
            if not isinstance(fid, str) or not fid:
                raise ValueError(f"feedback ids must be non-empty strs, got {fid!r}")
        await self._ready()
        # The server accepts purges by id only: one $eq, or an $or of them.
        eqs = [_eq("id", fid) for fid in ids]
        expr = eqs[0] if len(eqs) == 1 else {"$or": eqs}
        await self._api.feedback_purge(
            FeedbackPurgeReq(
                project_id=self.project_id, query=Query.model_validate({"$expr": expr})
            )
        )

    # --- costs ----------------------------------------------------------------

    async def add_cost(
        self,
        llm_id: str,
        prompt_token_cost: float,
        completion_token_cost: float,
        effective_date: datetime.datetime | None = None,
        prompt_token_cost_unit: str = "USD",
        completion_token_cost_unit: str = "USD",
        provider_id: str | None = None,
    ) -> CostCreateRes:
        """Set a model's token prices (USD per token) for this project, as weave's ``add_cost``.

        Calls that started from ``effective_date`` (default: now) on are priced with
        it when read with ``include_costs=True``, ahead of the server's defaults.
        Returns the ``CostCreateRes`` (``ids``: ``(llm_id, cost id)`` pairs).
        """
        return await _costs.add_cost(
            self, llm_id, prompt_token_cost, completion_token_cost, effective_date,
            prompt_token_cost_unit, completion_token_cost_unit, provider_id,
        )

    async def costs(
        self,
        llm_ids: str | Iterable[str] | None = None,
        *,
        query: Query | Mapping[str, Any] | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[CostQueryOutput]:
        """This project's token prices: all, those of ``llm_ids``, and/or matching ``query``."""
        return await _costs.query_costs(self, llm_ids, query, limit, offset)

    async def purge_costs(self, ids: str | Iterable[str]) -> None:
        """Delete this project's token prices by cost id (one or several)."""
        await _costs.purge_costs(self, ids)


async def create_async_client(
    entity: str,
    project: str,
    server_url: str | None = None,
    api_key: str | None = None,
    ensure_project_exists: bool = True,
    **options: Any,
) -> AsyncWeaveClient:
    """Create a client, make sure its project exists (hosted service), and make it current.

    It is current in this context and the process-wide default (other threads,
    event loops and a web server's request handlers find it) until closed. Use
    the client as a context manager, so pending calls are flushed and the
    connection pool closed at the end, or close it yourself. Arguments and
    keyword ``options`` as ``AsyncWeaveClient``.
    """
    client = AsyncWeaveClient(
        entity, project, server_url, api_key, ensure_project_exists, **options
    )
    try:
        await client._ready()
    except BaseException:
        await client.aclose()
        raise
    client._make_current()
    return client


# --- helpers (I/O-free) ------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _parse_op_ref(uri: str) -> Ref:
    # Asked for on every encode of an object holding ops (an op's ref never changes).
    return parse_ref(uri)


def _digest_of(uri: str) -> str:
    """The content digest of a ref URI's base (``latest``/``vN`` are not digests)."""
    ref = parse_ref(uri)
    if isinstance(ref, (ObjectRef, TableRef)):
        return ref.digest
    return "latest"  # call refs are mutable: never cached


def _encode_row(row: Any, index: int, ref_of: Any) -> EncodedValue:
    if not isinstance(row, Mapping):
        raise UnsaveableValueError(
            f"cannot save rows[{index}]: a table row must be a dict, got {type(row).__name__}",
            path=f"rows[{index}]",
            type_name=type(row).__name__,
        )
    try:
        return encode_for_save(row, ref_of=ref_of)
    except UnsaveableValueError as e:
        # Say which row: the encoder's path starts at the row itself.
        raise UnsaveableValueError(
            f"table row {index}: {e}",
            path=f"rows[{index}]{e.path.removeprefix('obj')}",
            type_name=e.type_name,
        ) from None


MAX_DISPLAY_NAME_LENGTH = 1024
"""Longer display names are cut (with "...") as weave's client cuts them."""

_APPEND_WRAPPER_BYTES = len('{"append":{"row":}},')


def _row_sizes(rows: list[Any]) -> list[int]:
    """Each row's size in a request body (its JSON and a separator)."""
    dumps = json.dumps
    return [len(dumps(row).encode("utf-8")) + 2 for row in rows]


def _class_name_of(val: Any) -> str | None:
    """The saved class of a stored value (``_class_name`` of a record), if it has one.

    The server fills ``base_object_class`` only for weave's own Object classes, so
    for other records the class comes from the value (fetched with ``include_values``).
    """
    if isinstance(val, dict):
        name = val.get("_class_name")
        return name if isinstance(name, str) else None
    return None


def _api_options(timeout: float | None, max_retries: int | None) -> dict[str, Any]:
    """The API client options given (None keeps its defaults)."""
    options: dict[str, Any] = {}
    if timeout is not None:
        options["timeout"] = timeout
    if max_retries is not None:
        options["max_retries"] = max_retries
    return options


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, (str, bytes, Ref)):
        return [value]
    return list(value)


def _merge_filter(
    filter: Any, fields: Mapping[str, Any], allowed: frozenset[str], where: str
) -> dict[str, Any]:
    if filter is None:
        merged: dict[str, Any] = {}
    elif isinstance(filter, pydantic.BaseModel):
        merged = filter.model_dump(exclude_none=True)
    elif isinstance(filter, Mapping):
        merged = dict(filter)
    else:
        raise TypeError(
            f"{where} filter must be a dict or a filter model, got {type(filter).__name__}"
        )
    for key, value in fields.items():
        if key in merged:
            raise TypeError(f"{where} got filter field {key!r} twice (in filter= and as a keyword)")
        merged[key] = value
    unknown = sorted(set(merged) - allowed)
    if unknown:
        raise TypeError(
            f"{where} got unknown filter field(s) {', '.join(map(repr, unknown))} "
            f"(known: {', '.join(sorted(allowed))})"
        )
    return {k: v for k, v in merged.items() if v is not None}


# Roots a calls sort field can start with: the call's own fields (nested paths
# under inputs/output/attributes/summary) and feedback.[type].payload.<path>.
_SORT_ROOTS = frozenset(CallSchema.model_fields) | {"feedback"}


def _check_sort_field(entry: SortBy) -> SortBy:
    """Refuse a sort field no server knows before sending it (a typo, a misspelt direction)."""
    field = entry.field
    root = field.split(".", 1)[0]
    if root not in _SORT_ROOTS or (root != "feedback" and any(c.isspace() for c in field)):
        raise ValueError(
            f"invalid sort_by field {field!r}: expected a call field"
            f" ({', '.join(sorted(_SORT_ROOTS - {'feedback'}))}), a dotted path under inputs,"
            " output, attributes or summary, or feedback.[<type>].payload.<path>;"
            " directions are 'asc' or 'desc'"
        )
    return entry


def _sort_by(
    sort_by: SortByLike | None, check: Callable[[SortBy], SortBy] | None = None
) -> list[SortBy] | None:
    if sort_by is None:
        return None
    items = [sort_by] if isinstance(sort_by, (str, SortBy, Mapping)) else list(sort_by)
    out = []
    for item in items:
        if isinstance(item, SortBy):
            out.append(item)
        elif isinstance(item, Mapping):
            try:
                out.append(SortBy.model_validate(dict(item)))
            except pydantic.ValidationError as e:
                raise ValueError(f"invalid sort_by entry {dict(item)!r}: {e}") from None
        elif isinstance(item, str) and item.strip():
            text = item.strip()
            direction = "asc"
            if text.startswith("-"):
                text, direction = text[1:], "desc"
            else:
                field, _, word = text.rpartition(" ")
                if field and word.lower() in ("asc", "desc"):
                    text, direction = field.strip(), word.lower()
            out.append(SortBy(field=text, direction=direction))
        else:
            raise ValueError(
                f"invalid sort_by entry {item!r} (use 'field', '-field', 'field desc' or SortBy)"
            )
    return [(check or _check_sort_field)(entry) for entry in out]


_THREAD_SORT_FIELDS = (
    "thread_id",
    "turn_count",
    "start_time",
    "last_updated",
    "p50_turn_duration_ms",
    "p99_turn_duration_ms",
)


def _check_thread_sort_field(entry: SortBy) -> SortBy:
    if entry.field not in _THREAD_SORT_FIELDS:
        raise ValueError(
            f"invalid threads() sort_by field {entry.field!r}: expected one of "
            f"{', '.join(_THREAD_SORT_FIELDS)}"
        )
    return entry


def _query(query: Query | Mapping[str, Any] | None) -> Query | None:
    if query is None or isinstance(query, Query):
        return query
    if not isinstance(query, Mapping):
        raise TypeError(f"query must be a Query or a dict, got {type(query).__name__}")
    body = dict(query) if "$expr" in query else {"$expr": dict(query)}
    try:
        return Query.model_validate(body)
    except pydantic.ValidationError as e:
        raise ValueError(f"invalid query {body!r}: {e}") from None


def _eq(field: str, value: Any) -> dict[str, Any]:
    return {"$eq": [{"$getField": field}, {"$literal": value}]}


def _ref_uri(target: Any) -> str:
    """The ``weave:///`` URI of a call, ref or URI string."""
    if isinstance(target, Call):
        return target.ref.uri()
    if isinstance(target, Ref):
        return target.uri()
    if isinstance(target, str):
        return parse_ref(target).uri()
    raise TypeError(f"expected a Call, a Ref or a weave:/// URI, got {type(target).__name__}")
