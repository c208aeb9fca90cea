"""Datasets through the client: rows stored as a table, read back lazily.

Round trips run against both servers (``server_url``); the 10,000-row one
against ours (the reference server is slow at that size and adds nothing).
"""

from __future__ import annotations

import pytest

from weave_client import TableRef, async_op
from weave_client._async._client import AsyncWeaveClient
from weave_client._async._dataset import AsyncDataset as Dataset

from ._helpers import stored_value


@pytest.fixture
def client(local_client: AsyncWeaveClient) -> AsyncWeaveClient:
    """These tests run on our local server only."""
    return local_client


async def test_saved_as_weave_saves_a_dataset(server_url: str, entity: str, project: str) -> None:
    # Rows unique to this test: weave's SQLite server keys tables by digest alone, so
    # the same table saved in another project first would not be found in this one.
    rows = [{"q": "a", "n": 1, "project": project}, {"q": "b", "n": 2, "project": project}]
    async with AsyncWeaveClient(entity, project, server_url=server_url) as client:
        dataset = Dataset(name="tiny", description="two rows", rows=rows)
        ref = await client.save(dataset, "tiny")
        stored = await stored_value(client, ref)
        again = await client.save(Dataset(name="tiny", description="two rows", rows=rows), "tiny")
        loaded = await Dataset.get(client, ref)
        assert await loaded.count() == 2
        assert [row async for row in loaded] == rows
        assert await loaded[1] == rows[1]
        assert client._saved.ref_of(loaded) == ref
        assert (await client.save(loaded, "tiny")).digest == ref.digest

    assert isinstance(stored, dict)
    assert stored["_type"] == stored["_class_name"] == "Dataset"
    assert stored["_bases"] == ["Object", "BaseModel"]
    assert stored["name"] == "tiny" and stored["description"] == "two rows"
    assert stored["rows"].startswith(f"weave:///{entity}/{project}/table/")
    # Saving what was read back stores nothing new: it is remembered under its ref.
    assert isinstance(loaded, Dataset) and loaded.name == "tiny"
    # Same content, same table, same object version.
    assert again.digest == ref.digest
    # The saved dataset now refers to its table; its rows stay readable locally.
    assert isinstance(dataset.rows, TableRef)
    assert await dataset.count() == 2


async def test_round_trip_of_10000_rows_streams_lazily(client: AsyncWeaveClient) -> None:
    rows = [{"id": i, "text": f"row {i}", "even": i % 2 == 0} for i in range(10_000)]
    ref = await client.save(Dataset(name="big", rows=rows), "big")

    loaded = await client.get(ref.uri())
    assert isinstance(loaded, Dataset)
    assert loaded.name == "big"
    assert loaded._local_rows is None  # nothing fetched yet: rows come from the table
    assert await loaded.count() == 10_000
    assert await loaded[1234] == rows[1234]
    assert await loaded[-1] == rows[-1]
    with pytest.raises(IndexError):
        await loaded[10_000]
    seen = 0
    async for row in loaded:
        assert row == rows[seen]
        seen += 1
    assert seen == 10_000


async def test_rows_may_hold_refs_to_saved_objects(client: AsyncWeaveClient) -> None:
    config = {"temperature": 0.5}
    config_ref = await client.save(config, "config")
    ref = await client.save(
        Dataset(rows=[{"q": "a", "config": config_ref}, {"q": "b", "config": config_ref}]),
        "with-refs",
    )
    loaded = await Dataset.get(client, ref)
    first = await loaded[0]
    assert first["config"] == config_ref
    assert await client.get(first["config"]) == config


async def test_from_calls(client: AsyncWeaveClient) -> None:
    @async_op
    async def double(x: int) -> int:
        return 2 * x

    for x in range(3):
        await double(x)
    calls = await client.calls()
    dataset = Dataset.from_calls(calls, name="doubles")
    rows = await dataset.to_list()
    assert sorted(r["inputs"]["x"] for r in rows) == [0, 1, 2]
    assert sorted(r["output"] for r in rows) == [0, 2, 4]
    ref = await client.save(dataset, "doubles")
    assert await (await Dataset.get(client, ref)).count() == 3


async def test_add_rows_makes_a_new_version(client: AsyncWeaveClient) -> None:
    ref = await client.save(Dataset(name="grow", rows=[{"i": 0}, {"i": 1}]), "grow")
    loaded = await client.get(ref)
    grown = await loaded.add_rows([{"i": 2}, {"i": 3}])
    assert await grown.count() == 4
    latest = await client.get(f"weave:///{client.project_id}/object/grow:latest")
    assert [row["i"] async for row in latest] == [0, 1, 2, 3]
    assert await (await client.get(ref)).count() == 2  # the old version is unchanged
    with pytest.raises(TypeError, match="needs a saved dataset"):
        await Dataset(rows=[{"i": 0}]).add_rows([{"i": 1}])


def test_invalid_rows_are_refused_with_the_position() -> None:
    with pytest.raises(ValueError, match="at least one row"):
        Dataset(rows=[])
    with pytest.raises(TypeError, match=r"rows\[1\] is a str"):
        Dataset(rows=[{"a": 1}, "b"])
    with pytest.raises(ValueError, match=r"rows\[0\] is \{\}"):
        Dataset(rows=[{}])
    with pytest.raises(TypeError, match="list of dicts, got dict"):
        Dataset(rows={"a": 1})


async def test_local_rows_iterate_count_and_index() -> None:
    dataset = Dataset(rows=({"i": i} for i in range(5)))
    assert await dataset.count() == 5
    assert [r["i"] async for r in dataset] == [0, 1, 2, 3, 4]
    assert await dataset[-1] == {"i": 4}
    with pytest.raises(IndexError, match="out of range"):
        await dataset[5]
