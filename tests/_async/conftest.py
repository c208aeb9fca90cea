"""Fixtures shared by the hand-written async client tests (and, generated, the sync ones).

Every fixture opens a client on a fresh project (``entity``/``project`` from
``tests/conftest.py``) and closes it, flushing what the test traced, at the end.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from weave_client import AsyncWeaveClient


@pytest.fixture
async def client(server_url: str, entity: str, project: str) -> AsyncIterator[AsyncWeaveClient]:
    """A client on each real server (ours, then weave's reference in the compat tier)."""
    async with AsyncWeaveClient(entity, project, server_url=server_url) as c:
        yield c


@pytest.fixture
async def local_client(
    local_server_url: str, entity: str, project: str
) -> AsyncIterator[AsyncWeaveClient]:
    """A client on our local server only."""
    async with AsyncWeaveClient(entity, project, server_url=local_server_url) as c:
        yield c
