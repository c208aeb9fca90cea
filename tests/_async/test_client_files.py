"""Files through the client (``save_file``/``read_file``), against each real server.

Round trips, digests equal to the client's own ``bytes_digest``, content
addressing, the digest cache (counted at the HTTP layer) and argument errors.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from weave_client import AsyncWeaveClient, NotFoundError
from weave_client._digest import bytes_digest


async def test_round_trip(client: AsyncWeaveClient) -> None:
    content = b"\x00\x01binary\xff\n" + client.project.encode()
    digest = await client.save_file(content, "blob.bin")
    client._cache.clear()  # read from the server, not from what save_file remembered
    assert await client.read_file(digest) == content


async def test_digest_equals_bytes_digest(client: AsyncWeaveClient) -> None:
    for content in (b"", b"hello", bytes(range(256)) * 40):
        assert await client.save_file(content) == bytes_digest(content)


async def test_identical_content_same_digest_whatever_the_name(client: AsyncWeaveClient) -> None:
    first = await client.save_file(b"same content", "a.txt")
    second = await client.save_file(b"same content", "b.txt")
    other = await client.save_file(b"other content", "a.txt")
    assert first == second
    assert other != first


async def test_bytearray_and_memoryview_are_accepted(client: AsyncWeaveClient) -> None:
    digest = await client.save_file(bytearray(b"mutable"))
    assert await client.save_file(memoryview(b"mutable")) == digest
    assert await client.read_file(digest) == b"mutable"


async def test_missing_digest_raises_not_found(client: AsyncWeaveClient) -> None:
    missing = bytes_digest(b"never uploaded " + client.project.encode())
    with pytest.raises(NotFoundError, match=missing):
        await client.read_file(missing)


async def test_bad_arguments_name_the_type_or_value(client: AsyncWeaveClient) -> None:
    bad_content: Any = "text"
    with pytest.raises(TypeError, match=r"bytes, got str.*encode"):
        await client.save_file(bad_content)
    bad_content = [1, 2]
    with pytest.raises(TypeError, match="bytes, got list"):
        await client.save_file(bad_content)
    bad_name: Any = 3
    with pytest.raises(TypeError, match=r"name=.*got int"):
        await client.save_file(b"x", bad_name)
    with pytest.raises(ValueError, match="empty"):
        await client.save_file(b"x", "")
    bad_digest: Any = b"abc"
    with pytest.raises(TypeError, match=r"digest=.*got bytes"):
        await client.read_file(bad_digest)
    with pytest.raises(ValueError, match="'latest'"):
        await client.read_file("latest")


async def test_second_read_is_served_from_the_cache(client: AsyncWeaveClient) -> None:
    content = b"cache me " + client.project.encode()
    digest = await client.save_file(content, "c.txt")
    client._cache.clear()
    # Count the requests that really leave the client, at its HTTP pool.
    sent: list[str] = []

    async def count(request: httpx.Request) -> None:
        sent.append(request.url.path)

    http = client._api._pool.http
    http.event_hooks = {"request": [count], "response": []}
    hits = client._cache.hits
    assert await client.read_file(digest) == content
    assert sent == ["/file/content"]
    assert await client.read_file(digest) == content
    assert sent == ["/file/content"]  # no second request
    assert client._cache.hits == hits + 1
