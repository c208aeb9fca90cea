"""Tables through the client, against each real server (``server_url``).

Create and publish, read back the latest version, iterate, count, index, row
refs, append (a new version), and chunked uploads above the request limit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from weave_client import (
    AsyncWeaveClient,
    NotFoundError,
    RequestTooLargeError,
    TableRef,
    UnsaveableValueError,
)
from weave_client._digest import row_digest, table_digest
from weave_client._serialize import encode_for_save
from weave_client.server import start_background_server


def make_rows(project: str, n: int = 25) -> list[dict[str, Any]]:
    # Unique per test: weave's reference server keeps one copy of a table (and of
    # a row) per digest across all projects, so equal content would collide.
    return [{"q": f"question {i}", "a": i, "tags": ["x"] * (i % 3), "p": project} for i in range(n)]


async def test_create_then_read_the_latest_version(client: AsyncWeaveClient) -> None:
    ROWS = make_rows(client.project)
    table = await client.table("qa", ROWS)
    assert table.name == "qa"
    assert table.ref is not None and table.ref.name == "qa"
    assert isinstance(table.table_ref, TableRef)
    # The table digest is computed from the rows exactly as the server computes it.
    expected = table_digest([row_digest(encode_for_save(r).json) for r in ROWS])
    assert table.digest == expected
    assert await table.row_digests() == [row_digest(encode_for_save(r).json) for r in ROWS]

    again = await client.table("qa")
    assert again.digest == table.digest
    assert again.ref == table.ref
    assert await again.count() == len(ROWS)
    assert [row async for row in again] == ROWS
    assert await again.rows(offset=20) == ROWS[20:]
    assert await again.rows(offset=3, limit=2) == ROWS[3:5]


async def test_index_and_row_refs(client: AsyncWeaveClient) -> None:
    ROWS = make_rows(client.project)
    table = await client.table("indexed", ROWS)
    assert await table[0] == ROWS[0]
    assert await table[7] == ROWS[7]
    assert await table[-1] == ROWS[-1]
    with pytest.raises(IndexError, match="out of range"):
        await table[len(ROWS)]
    with pytest.raises(IndexError):
        await table[-len(ROWS) - 1]
    ref = await table.row_ref(3)
    assert ref.uri() == f"{table.table_ref.uri()}/id/{row_digest(encode_for_save(ROWS[3]).json)}"
    assert await client.get(ref) == ROWS[3]
    assert await client.get(ref.with_key("q")) == "question 3"


async def test_append_makes_a_new_version(client: AsyncWeaveClient) -> None:
    ROWS = make_rows(client.project)
    table = await client.table("growing", ROWS[:2])
    old_digest, old_ref = table.digest, table.ref
    result = await table.append({"q": "new", "a": -1, "tags": [], "p": client.project})
    assert result is table
    assert table.digest != old_digest
    assert table.ref != old_ref
    assert await table.count() == 3
    assert await table[-1] == {"q": "new", "a": -1, "tags": [], "p": client.project}
    latest = await client.table("growing")
    assert latest.digest == table.digest
    versions = await client.objects(object_ids=["growing"])
    assert [v.is_latest for v in versions] == [False, True]
    # The old version is untouched.
    assert old_ref is not None
    old = await client.get(old_ref)
    assert await old.count() == 2


async def test_empty_table(local_server_url: str, entity: str, project: str) -> None:
    # Our server only: every empty table has the same digest, and weave's reference
    # server keeps one table per digest across projects (see make_rows).
    async with AsyncWeaveClient(entity, project, server_url=local_server_url) as client:
        empty = await client.table("empty", [])
        assert await empty.count() == 0
        assert [row async for row in empty] == []
        assert await client.table("empty", []) is not empty
        assert (await client.table("empty")).digest == empty.digest


async def test_missing_table_and_not_a_table(client: AsyncWeaveClient) -> None:
    with pytest.raises(NotFoundError):
        await client.table("never-made")
    await client.save({"not": "a table"}, "plain")
    with pytest.raises(TypeError, match="not a table"):
        await client.table("plain")


async def test_unknown_table_digest_is_not_found_but_an_empty_table_is_empty(
    local_client: AsyncWeaveClient,
) -> None:
    # The server answers an unknown digest's rows with none (as the hosted service);
    # the client still tells a missing table from an empty one.
    missing = await local_client.get(TableRef(local_client.entity, local_client.project, "0" * 16))
    with pytest.raises(NotFoundError, match=r"no table weave:///.*/table/0{16}"):
        [row async for row in missing]
    with pytest.raises(NotFoundError):
        await missing.rows()
    with pytest.raises(NotFoundError):
        await missing[0]
    with pytest.raises(NotFoundError):
        await missing.count()
    empty = await local_client.table("nothing", [])
    assert [row async for row in empty] == [] and await empty.rows() == []
    with pytest.raises(IndexError):
        await empty[0]


async def test_rows_must_be_dicts_of_saveable_values(client: AsyncWeaveClient) -> None:
    with pytest.raises(TypeError, match=r"rows\[1\]"):
        await client.table("bad", [{"a": 1}, [1, 2]])  # type: ignore[list-item]
    with pytest.raises(UnsaveableValueError, match=r"row 1") as info:
        await client.table("bad", [{"a": 1}, {"a": object()}])
    assert info.value.path == 'rows[1]["a"]'
    with pytest.raises(TypeError, match="iterable of dicts"):
        await client.table("bad", {"a": 1})  # type: ignore[arg-type]


async def test_upload_above_the_client_limit_is_chunked(
    server_url: str, entity: str, project: str
) -> None:
    n = 10_000
    rows = [{"i": i, "s": project} for i in range(n)]
    async with AsyncWeaveClient(
        entity, project, server_url=server_url, max_request_bytes=64 * 1024
    ) as client:
        assert len(client._tables.chunks(rows)) > 3  # create, then several appends
        table = await client.table("chunked", rows)
        assert table.digest == table_digest([row_digest(r) for r in rows])
        assert await table.count() == n
        assert [row async for row in await client.table("chunked")] == rows
        # Appending many rows to an existing table is chunked the same way.
        more = [{"i": -i, "s": project} for i in range(1, 2001)]
        table = await client._tables.read("chunked", "latest", client.project_id)
        new_ref = await client._tables.append(table.table_ref, more)
        assert new_ref.digest == table_digest([row_digest(r) for r in rows + more])


async def test_100k_rows_through_a_server_with_a_small_body_limit(
    entity: str, project: str, tmp_path: Path
) -> None:
    # The server refuses bodies over 1 MiB with 413; the client learns that
    # limit from the refusals and sends the 100,000 rows in smaller requests.
    server = start_background_server(tmp_path / "small.db", max_body_bytes=1024 * 1024)
    try:
        n = 100_000
        async with AsyncWeaveClient(entity, project, server_url=server.url) as client:
            table = await client.table("big", ({"i": i} for i in range(n)))
            assert client._max_request_bytes <= 1024 * 1024
            assert await table.count() == n
            expected = 0
            async for row in await client.table("big"):
                assert row == {"i": expected}
                expected += 1
            assert expected == n
            assert await table[n - 1] == {"i": n - 1}
            with pytest.raises(RequestTooLargeError, match="table row 0"):
                await client.table("huge-row", [{"blob": "x" * (1100 * 1024)}])
    finally:
        server.stop()


async def test_pages_and_counts_of_a_table_version_are_cached(client: AsyncWeaveClient) -> None:
    rows = make_rows(client.project, 30)
    table = await client.table("cached", rows)
    client._cache.clear()
    assert [row async for row in table] == rows
    assert await table.count() == 30
    hits = client._cache.hits
    assert [row async for row in table] == rows  # served from the cache
    assert await table.count() == 30
    assert client._cache.hits == hits + 2
