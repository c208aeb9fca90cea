"""The connection every area of a client shares.

One ``AsyncSession`` per client: the API client (pooling, retries, auth), the
digest cache, the project, and getting ready before the first request (the
embedded server started off the event loop, the W&B project made). The areas
(files, objects, tables, refs, calls, feedback) hold the session, never the
client's internals.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .._cache import DigestCache
from .._embedded import start_embedded
from .._errors import ClientClosedError
from .._http import Secret
from .._synchronization import AsyncLock, async_run_blocking
from ._api_client import AsyncAPIClient
from ._project import ensure_project_exists as _ensure_wandb_project

if TYPE_CHECKING:
    from ._sender import AsyncCallSender

__all__ = ["AsyncSession"]

logger = logging.getLogger("weave_client")


class AsyncSession:
    """The API client, cache and project of one client, and its readiness.

    ``ready()`` before a request: fails on a closed client, starts the embedded
    server (once per process), makes sure the W&B project exists (once).
    ``before_calls_read()`` also sends the client's pending call records first
    (read-your-writes).
    """

    def __init__(
        self,
        api: AsyncAPIClient,
        cache: DigestCache,
        entity: str,
        project: str,
        *,
        start_embedded: bool,
        wandb_base_url: str | None,
        graphql_key: str | None,
        ensure_project: bool,
    ) -> None:
        self.api = api
        self.cache = cache
        self.entity = entity
        self.project = project
        self.closed = False
        # The client's background sender, once made (read-your-writes flushes it).
        self.sender: AsyncCallSender | None = None
        self._start_embedded = start_embedded
        self._wandb_base_url = wandb_base_url
        # Kept only for the W&B GraphQL project upsert; the API client hides its own copy.
        self._graphql_key = Secret(graphql_key) if graphql_key else None
        self._project_ready = not (ensure_project and wandb_base_url)
        self._project_lock = AsyncLock()

    @property
    def project_id(self) -> str:
        """``"entity/project"``, as the server's requests name the project."""
        return f"{self.entity}/{self.project}"

    async def ready(self) -> None:
        """Fail on a closed client; start the embedded server; make the W&B project."""
        if self.closed:
            raise ClientClosedError(
                f"AsyncWeaveClient for {self.project_id} is closed; create a new client"
            )
        if self._start_embedded:
            await self.start_server()
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

    async def start_server(self) -> None:
        """Start the embedded server (once per process), off the event loop."""
        if self._start_embedded:
            await async_run_blocking(start_embedded)
            self._start_embedded = False

    async def before_calls_read(self) -> None:
        """Read-your-writes: send this client's pending call records first."""
        await self.ready()
        if self.sender is None:
            return
        result = await self.sender.flush()
        if result.pending:
            logger.warning(
                "weave_client: %d call records still unsent when reading calls; "
                "the result may miss them",
                result.pending,
            )
