"""Weave's own client (weave==0.51.59) as a side of ``scripts/bench``.

Runs under ``.venv-compat/bin/python`` (started by ``scripts/bench``; not meant to be run
by hand, though it can be)::

    .venv-compat/bin/python scripts/benchmarks/bench_weave.py FIGURE --side weave \\
        --server-url URL --entity E --project P --n N

How weave is pointed at our server without contacting W&B: ``weave.init`` always talks to
W&B (it reads the W&B login through ``wandb``, looks up the username over GraphQL and, with
``ensure_project_exists``, upserts the project there), so it cannot run offline. We do what
``weave.init`` does after that part: a ``RemoteHTTPTraceServer`` on our URL (batching on, as
``weave.init`` sets it) with a dummy key, a ``WeaveClient(..., ensure_project_exists=False)``
made the global client, and ``@weave.op`` on the functions. weave's Sentry error reporting
is switched off so nothing leaves the machine. Everything on the traced path (the op
wrapper, call creation, the batch processor, HTTP) is weave's code, unchanged.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _bench_figures


class WeaveAdapter(_bench_figures.Adapter):
    name = "weave"

    def __init__(self) -> None:
        self.client: Any = None

    def _open(self, server_url: str, entity: str, project: str) -> None:
        import weave  # noqa: F401  (weave.op is used below)
        from weave.trace import trace_sentry
        from weave.trace.weave_client import WeaveClient
        from weave.trace.weave_init import InitializedClient
        from weave.trace_server_bindings.remote_http_trace_server import RemoteHTTPTraceServer

        trace_sentry.global_trace_sentry._disabled = True
        server = RemoteHTTPTraceServer(
            server_url, should_batch=True, auth=("api", "bench-dummy-key")
        )
        self.client = WeaveClient(entity, project, server, ensure_project_exists=False)
        InitializedClient(self.client)  # makes it weave's global client, as weave.init does

    async def aopen(self, server_url: str, entity: str, project: str) -> None:
        self._open(server_url, entity, project)

    async def aflush(self) -> None:
        # weave's flush blocks the calling thread; a careful async program runs it in a
        # worker thread so its event loop keeps going, and so do we (fair to loop_lag).
        await asyncio.to_thread(self.client.flush)

    async def aclose(self) -> None:
        self.close()

    def open(self, server_url: str, entity: str, project: str) -> None:
        self._open(server_url, entity, project)

    def flush(self) -> None:
        self.client.flush()

    def close(self) -> None:
        self.client.finish(use_progress_bar=False)

    def async_op(self, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        import weave

        traced: Callable[..., Awaitable[Any]] = weave.op(fn)
        return traced

    def op(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        import weave

        traced: Callable[..., Any] = weave.op(fn)
        return traced


if __name__ == "__main__":
    # No per-call links on stdout (stdout carries the result line). scripts/bench runs this
    # in a temp directory, where weave's batch processor writes any calls it drops.
    os.environ.setdefault("WEAVE_PRINT_CALL_LINK", "false")
    sys.exit(_bench_figures.worker_main(sys.argv[1:], {"weave": WeaveAdapter}))
