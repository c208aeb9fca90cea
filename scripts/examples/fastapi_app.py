#!/usr/bin/env python3
"""A traced web service: one AsyncWeaveClient per process, made in the FastAPI lifespan.

Run it (it serves on a free port, sends itself a few requests, and prints what
was stored)::

    python scripts/examples/fastapi_app.py [--server-url URL] [--project NAME]

or serve it yourself: ``uvicorn scripts.examples.fastapi_app:app``.

The client made in the lifespan is the process-wide default, so every request
handler reports to it: ``async def`` endpoints (tasks that do not inherit the
lifespan's context), ``def`` endpoints (run in Starlette's worker threads) and
background tasks. Leaving the lifespan closes the client, which sends what is
still queued. No server named and no ``WANDB_API_KEY``: the embedded local
trace server (whose viewer shows the calls at its root URL).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

import httpx
import uvicorn
from fastapi import BackgroundTasks, FastAPI

import weave_client
from weave_client import async_op, create_async_client, get_current_call

ENTITY = os.environ.get("EXAMPLE_ENTITY", "example")
PROJECT = os.environ.get("EXAMPLE_PROJECT", "fastapi-app")


# --- traced functions --------------------------------------------------------


@async_op
async def retrieve(question: str) -> list[str]:
    """A child call: the documents an answer is built from."""
    await asyncio.sleep(0)
    return [f"doc about {question}"]


@async_op
async def answer(question: str) -> dict[str, Any]:
    """A root call per request; its id is returned so a client can look it up."""
    docs = await retrieve(question)
    call = get_current_call()
    assert call is not None
    call.summary["documents"] = len(docs)
    return {"answer": f"{question}? see {docs[0]}", "call_id": call.id}


@weave_client.op
def tokenize(text: str) -> list[str]:
    """A sync child call, in Starlette's worker thread."""
    return text.split()


@weave_client.op
def sync_answer(question: str) -> dict[str, Any]:
    """The root call of a ``def`` endpoint (a worker thread, not the event loop)."""
    words = tokenize(question)
    call = get_current_call()
    assert call is not None
    call.display_name = f"sync_answer ({len(words)} words)"
    return {"words": len(words), "call_id": call.id}


@async_op
async def audit(question: str) -> str:
    """Runs as a background task, after the response is sent."""
    return f"audited {question}"


# --- the app --------------------------------------------------------------------


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # One client for the process. Request tasks do not see this context; they
    # find the client as the process-wide default (the most recent open one).
    client = await create_async_client(ENTITY, PROJECT)
    app.state.weave = client
    try:
        yield
    finally:
        await client.aclose()  # sends what is still queued


app = FastAPI(lifespan=lifespan)


@app.get("/ask")
async def ask(q: str, background: BackgroundTasks) -> dict[str, Any]:
    background.add_task(audit, q)
    return await answer(q)


@app.get("/ask-sync")
def ask_sync(q: str) -> dict[str, Any]:
    return sync_answer(q)


# --- the self-demo --------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class BackgroundServer:
    """uvicorn serving ``app`` in a thread (lifespan included) until ``stop()``."""

    def __init__(self, application: FastAPI, port: int) -> None:
        config = uvicorn.Config(
            application, host="127.0.0.1", port=port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.url = f"http://127.0.0.1:{port}"
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)

    def start(self) -> None:
        self.thread.start()
        for _ in range(1500):
            if self.server.started:
                return
            if not self.thread.is_alive():
                raise RuntimeError("uvicorn exited during start-up")
            threading.Event().wait(0.02)
        raise RuntimeError("uvicorn did not start")

    def stop(self) -> None:
        self.server.should_exit = True  # runs the lifespan's shutdown: the client closes
        self.thread.join(timeout=60)


async def demo(requests: int) -> list[dict[str, Any]]:
    server = BackgroundServer(app, free_port())
    server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            replies = await asyncio.gather(
                *(http.get("/ask", params={"q": f"q{i}"}) for i in range(requests)),
                *(http.get("/ask-sync", params={"q": f"a b c {i}"}) for i in range(requests)),
            )
        for reply in replies:
            reply.raise_for_status()
        return [reply.json() for reply in replies]
    finally:
        server.stop()


def main() -> None:
    global ENTITY, PROJECT
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server-url", help="trace server (default: the embedded local one)")
    parser.add_argument("--project", default=PROJECT)
    parser.add_argument("--requests", type=int, default=5, help="requests per endpoint")
    args = parser.parse_args()
    if args.server_url:
        os.environ["WEAVE_TRACE_SERVER_URL"] = args.server_url
    PROJECT = args.project
    replies = asyncio.run(demo(args.requests))
    print(f"{len(replies)} requests answered")
    with weave_client.WeaveClient(ENTITY, PROJECT) as client:
        calls = client.calls()
        stored = {c.id for c in calls}
        returned = {r["call_id"] for r in replies}
        print(f"{len(calls)} calls stored in {client.project_id}")
        for name in ("answer", "retrieve", "audit", "sync_answer", "tokenize"):
            n = sum(1 for c in calls if c.op_name.split("/op/")[1].startswith(f"{name}:"))
            print(f"  {name}: {n}")
        print(f"every returned call id stored: {returned <= stored}")


if __name__ == "__main__":
    main()
