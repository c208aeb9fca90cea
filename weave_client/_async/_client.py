"""The user-facing client: a facade over one module per area.

Hand-written once, for the async flavour; ``scripts/unasync`` generates the sync twin.
The client holds the settings, the lifecycle (ready, current, flush, close), one
session (``_session``: the API client, the digest cache, the project) and one
object per area, each in its own module: files (``_files``), objects
(``_objects``), tables (``_tables``), ref reading (``_refs_reader``), calls
(``_calls``) and feedback (``_feedback``). Traced calls go through its one
background sender, which every read of calls flushes first, so a program always
sees its own calls.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Collection, Iterable, Mapping
from types import TracebackType
from typing import Any, Self

from .. import _settings
from .._cache import DigestCache
from .._context import (
    note_client,
    pop_client,
    push_client,
    register_client,
    unregister_client,
)
from .._embedded import embedded_url
from .._flow import register_object_ops
from .._http import Secret
from .._models import (
    ObjectVersionFilter,
)
from .._refs import CallRef, ObjectRef, TableRef, validate_entity_project, validate_object_name
from .._saved import SavedObjects
from .._serialize import saved_class_name
from .._tracing import add_redact_keys, client_attributes
from .._versions import ObjectVersion
from .._wal import open_wal
from ..integrations import activate as activate_integrations
from ..integrations import resolve_autopatch
from ._api_client import AsyncAPIClient
from ._calls import AsyncCalls, AsyncCallsMethods, AsyncCallStream
from ._costs import AsyncCostsMethods
from ._feedback import AsyncFeedback, AsyncFeedbackMethods
from ._files import AsyncFiles
from ._objects import AsyncObjects
from ._refs_reader import AsyncRefsReader
from ._sender import AsyncCallSender, FlushResult
from ._session import AsyncSession
from ._table import AsyncTable
from ._tables import AsyncTables

__all__ = [
    "HOSTED_REQUEST_BYTES_LIMIT",
    "AsyncCallStream",
    "AsyncWeaveClient",
    "create_async_client",
]

logger = logging.getLogger("weave_client")

HOSTED_REQUEST_BYTES_LIMIT = 31 * 1024 * 1024
"""The hosted service refuses bodies above 32 MiB; weave's client keeps 1 MiB spare."""


class AsyncWeaveClient(AsyncCallsMethods, AsyncFeedbackMethods, AsyncCostsMethods):
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
        key = _settings.resolve_api_key(api_key)
        url = _settings.resolve_server_url(server_url)
        # No server configured: the embedded local server's address now; the server
        # itself starts in _ready() (create_async_client, ``async with``, the first
        # request), off the event loop.
        start_embedded = url is None
        if url is None:
            url = embedded_url()
        self._api = AsyncAPIClient(url, api_key=key, **_api_options(timeout, max_retries))
        # The API client's URL: credentials a URL carried are used but never shown.
        self.server_url = self._api.base_url
        self._hosted = _settings.is_hosted(self.server_url)
        # A W&B trace service has W&B (GraphQL, projects) and a web UI behind it.
        wandb_base_url = _settings.wandb_base_url() if self._hosted else None
        self._app_url = _settings.wandb_app_url() if self._hosted else None
        self._cache = DigestCache(cache_dir=cache_dir)
        self._session = session = AsyncSession(
            self._api,
            self._cache,
            entity,
            project,
            start_embedded=start_embedded,
            wandb_base_url=wandb_base_url,
            graphql_key=key,
            ensure_project=ensure_project_exists,
        )
        self._sender = session.sender = AsyncCallSender(
            self._api,
            wal=open_wal(wal, cache_dir, self.server_url, session.project_id),
            secret=key,
            # Traced calls can reach the sender before any request does.
            prepare=session.start_server if start_embedded else None,
        )
        # Kept to redact it from op sources; never shown (see __repr__).
        self._secret_text = Secret(key) if key and len(key) >= 8 else None
        if extra_keys:
            add_redact_keys(extra_keys)
        # The areas, each over the session (see the module docstring).
        self._saved = SavedObjects(lambda: session.project_id, self._sender.op_refs)
        self._files = AsyncFiles(session)
        self._objects = AsyncObjects(session, self._files, self._saved)
        self._tables = AsyncTables(
            session, self._files, self._objects, self._saved, max_request_bytes
        )
        self._calls = AsyncCalls(self, session)
        self._refs = AsyncRefsReader(session, self._objects, self._tables, self._calls, self)
        self._feedback = AsyncFeedback(session, self._saved)
        # Tokens of push_client(): one from the create function, one per `with` entry.
        self._tokens: list[Any] = []
        # Read by every traced call (is this client still the one to report to?):
        # a plain attribute, kept equal to the session's flag.
        self._closed = False
        # The sender runs on this event loop (if any) until the client is entered.
        self._sender.bind()
        if not self._disabled:
            # A default for ops while referenced, until entered (then held) or closed.
            note_client(self)
            # LLM SDK calls (openai, anthropic) traced from now on; see weave_client.integrations.
            activate_integrations(integrations)

    def __repr__(self) -> str:
        state = ", closed" if self.is_closed else ""
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
    def entity(self) -> str:
        """The W&B entity (user or team) of the project."""
        return self._session.entity

    @property
    def project(self) -> str:
        """The project's name (as W&B stores it, once the client is ready)."""
        return self._session.project

    @property
    def project_id(self) -> str:
        """``"entity/project"``, as the server's requests name the project."""
        return self._session.project_id

    @property
    def is_hosted(self) -> bool:
        """True when talking to the hosted Weave service (refs then have ``ui_url``)."""
        return self._hosted

    @property
    def is_closed(self) -> bool:
        """True once the client was closed (explicitly, or on leaving its ``with`` block)."""
        return self._session.closed

    # --- lifecycle ----------------------------------------------------------

    async def _ready(self) -> None:
        """Fail on a closed client; start the embedded server; make the W&B project."""
        await self._session.ready()

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
        if self._session.closed:
            return
        self._session.closed = self._closed = True
        # The previous open client becomes the default again.
        unregister_client(self)
        try:
            await self._sender.aclose()
        finally:
            await self._api.aclose()
            while self._tokens:
                pop_client(self._tokens.pop())

    # --- files --------------------------------------------------------------

    async def save_file(self, content: bytes, name: str = "file") -> str:
        """Store ``content`` as a file (``/file/create``); return its digest.

        The digest is the server's, checked against the one computed locally
        (identical content, same digest); read it back with :meth:`read_file`.
        """
        return await self._files.save_file(content, name)

    async def read_file(self, digest: str) -> bytes:
        """The content of the file ``digest`` (from :meth:`save_file`), cached by digest.

        Raises ``NotFoundError`` when this project holds no such file.
        """
        return await self._files.read_file(digest)

    # --- objects and refs ------------------------------------------------------

    async def save(self, obj: Any, name: str | None = None) -> ObjectRef:
        """Save ``obj`` as a new version of the object ``name``; return its ref.

        Without ``name``, as weave's ``publish``: the object's own ``name`` (a
        ``AsyncDataset``'s), else its class name. Identical content gives the same
        digest (no new version). Objects this client saved before and that are
        nested inside ``obj`` (unchanged) are stored as refs to them. Raises
        ``TypeError`` (``UnsaveableValueError``) naming the path of a value that
        cannot be saved, ``InvalidNameError`` for a bad name.
        """
        if name is None:
            own = getattr(obj, "name", None)
            name = own if isinstance(own, str) and own else saved_class_name(type(obj))
        validate_object_name(name)
        await self._ready()
        # Objects that keep rows as a table (a Dataset) have them stored first; the
        # saved object then refers to the table, as weave saves it.
        await self._tables.store_rows_of(obj)
        # Its ops (a Model's predict) are stored with it as op refs, as weave does.
        register_object_ops(obj, self)
        return await self._objects.save(obj, name)

    async def get(self, ref: ObjectRef | TableRef | CallRef | str) -> Any:
        """The value a ref points at.

        Accepts a ref or a ``weave:///`` URI string, with extra paths such as
        ``/attr/x/key/y/index/0``. Objects come back as attribute-access values,
        a table ref as a ``AsyncTable``, a call ref as a ``AsyncCall``. Raises
        ``ValueError`` (``InvalidRefError``) for a malformed URI,
        ``NotFoundError`` when the server has nothing there (``CallNotFoundError``
        for a call ref) and ``RefPathError`` when an extra path leads nowhere in
        the value read.
        """
        return await self._refs.get(ref)

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
        return await self._objects.versions(
            filter, limit, offset, include_values, filter_fields, self._refs.decode
        )

    async def delete_object(self, obj: ObjectRef | ObjectVersion | str) -> int:
        """Delete one version (a ref, its URI, or an ``ObjectVersion`` from ``objects()``)
        or every version (a plain name).

        Returns how many versions were deleted; ``NotFoundError`` if none matched.
        """
        return await self._objects.delete(obj)

    # --- tables -------------------------------------------------------------

    async def table(self, name: str, rows: Iterable[Mapping[str, Any]] | None = None) -> AsyncTable:
        """Create a table from dict ``rows`` and publish it as ``name``; or, without
        rows, get the latest published version of ``name``.

        Uploads above the server's request limit go up in chunks (created, then
        appended to), so any number of rows works.
        """
        return await self._tables.table(name, rows)

    @property
    def _max_request_bytes(self) -> int:
        # The request limit table uploads keep to (halved after a 413).
        return self._tables.max_request_bytes



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


def _api_options(timeout: float | None, max_retries: int | None) -> dict[str, Any]:
    """The API client options given (None keeps its defaults)."""
    options: dict[str, Any] = {}
    if timeout is not None:
        options["timeout"] = timeout
    if max_retries is not None:
        options["max_retries"] = max_retries
    return options
