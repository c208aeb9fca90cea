"""Objects and refs through the client, against each real server (``server_url``).

save/get round trips of every supported kind of value, digests computed by the
client equal to the server's, versions, nested saved objects as refs, extra
paths, errors, deletion and the digest cache.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import math
from pathlib import Path
from typing import Any

import pydantic
import pytest

from weave_client import (
    AsyncWeaveClient,
    ClientClosedError,
    InvalidNameError,
    InvalidRefError,
    NotFoundError,
    ObjectRef,
    TableRef,
    UnsaveableValueError,
)
from weave_client._digest import json_digest
from weave_client._models import ObjDeleteReq
from weave_client._serialize import encode_for_save
from weave_client._synchronization import async_gather_bounded


class Color(enum.Enum):
    RED = "red"


class Point(pydantic.BaseModel):
    x: int
    y: int


@dataclasses.dataclass
class Config:
    name: str
    layers: list[int]


class Plain:
    def __init__(self) -> None:
        self.a = 1
        self.b = "two"


REF_FREE_VALUES: list[Any] = [
    None,
    True,
    42,
    3.5,
    "text",
    [1, "a", None],
    {"b": 2, "a": [1, 2, {"z": None, "y": 1.5}], "ü": "ñ"},
    (1, 2),
    Point(x=1, y=2),
    Config("cfg", [1, 2]),
    Plain(),
    Color.RED,
    datetime.datetime(2024, 5, 6, 7, 8, 9, tzinfo=datetime.UTC),
]


@pytest.mark.parametrize("value", REF_FREE_VALUES, ids=lambda v: type(v).__name__)
async def test_client_digest_equals_the_server_digest(
    client: AsyncWeaveClient, value: Any
) -> None:
    ref = await client.save(value, "value")
    assert isinstance(ref, ObjectRef)
    assert ref.digest == json_digest(encode_for_save(value).json)
    assert ref.digest == encode_for_save(value).digest


async def test_ref_shape_and_uri(client: AsyncWeaveClient, entity: str, project: str) -> None:
    ref = await client.save({"data": "value"}, "my-object")
    assert (ref.entity, ref.project, ref.name) == (entity, project, "my-object")
    assert ref.uri() == f"weave:///{entity}/{project}/object/my-object:{ref.digest}"
    # Not the hosted service: no UI to link to.
    assert not client.is_hosted


async def test_round_trips(client: AsyncWeaveClient) -> None:
    value = {"data": "value", "n": [1, 2.5, None, True], "nested": {"k": "v"}}
    ref = await client.save(value, "plain")
    assert await client.get(ref) == value
    assert await client.get(ref.uri()) == value

    point = await client.get(await client.save(Point(x=3, y=4), "point"))
    assert (point.x, point.y) == (3, 4)
    assert point._class_name == "Point"
    assert point == Point(x=3, y=4)

    cfg = await client.get(await client.save(Config("c", [1, 2]), "config"))
    assert (cfg.name, cfg.layers) == ("c", [1, 2])

    plain = await client.get(await client.save(Plain(), "plain-object"))
    assert (plain.a, plain.b) == (1, "two")

    when = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    assert await client.get(await client.save({"when": when}, "dt")) == {"when": when}

    blob = bytes(range(256)) * 4
    assert await client.get(await client.save({"blob": blob}, "bytes")) == {"blob": blob}

    assert await client.get(await client.save((1, 2), "tuple")) == [1, 2]


async def test_nan_and_infinity_are_stored_as_null(client: AsyncWeaveClient) -> None:
    ref = await client.save({"nan": math.nan, "inf": math.inf, "ok": 1.0}, "floats")
    assert await client.get(ref) == {"nan": None, "inf": None, "ok": 1.0}


async def test_same_content_same_digest_new_content_new_version(
    client: AsyncWeaveClient,
) -> None:
    first = await client.save({"v": 1}, "thing")
    again = await client.save({"v": 1}, "thing")
    second = await client.save({"v": 2}, "thing")
    assert first == again
    assert second.digest != first.digest
    versions = await client.objects(object_ids=["thing"])
    assert [(v.digest, v.version_index, v.is_latest) for v in versions] == [
        (first.digest, 0, False),
        (second.digest, 1, True),
    ]
    assert versions[0].ref == first
    assert versions[0].value is None  # values only on request
    assert isinstance(versions[0].created_at, datetime.datetime)
    with_values = await client.objects({"object_ids": ["thing"]}, include_values=True)
    assert [v.value for v in with_values] == [{"v": 1}, {"v": 2}]
    latest = await client.objects(object_ids=["thing"], latest_only=True)
    assert [v.digest for v in latest] == [second.digest]
    assert await client.get(f"weave:///{first.entity}/{first.project}/object/thing:latest") == {
        "v": 2
    }


async def test_objects_lists_classes_and_pages(client: AsyncWeaveClient) -> None:
    await client.save(Point(x=1, y=1), "p1")
    await client.save({"a": 1}, "d1")
    await client.save({"a": 2}, "d2")
    everything = await client.objects()
    assert [v.name for v in everything] == ["p1", "d1", "d2"]
    # The class of a record comes with its value (the server indexes weave's own classes only).
    classes = [v.class_name for v in await client.objects(include_values=True)]
    assert classes == ["Point", None, None]
    assert [v.name for v in await client.objects(limit=2, offset=1)] == ["d1", "d2"]
    with pytest.raises(TypeError, match="unknown filter field"):
        await client.objects(colour="red")


async def test_nested_saved_objects_become_refs(client: AsyncWeaveClient) -> None:
    inner = Config("inner", [1])
    inner_ref = await client.save(inner, "inner")
    outer_ref = await client.save({"model": inner, "label": "x"}, "outer")
    outer = await client.get(outer_ref)
    assert outer["label"] == "x"
    assert outer["model"] == inner_ref  # stored as a ref, resolved on demand
    resolved = await client.get(outer["model"])
    assert (resolved.name, resolved.layers) == ("inner", [1])
    # Mutated after saving: stored as its new value, never as the stale version.
    inner.layers.append(2)
    changed = await client.get(await client.save({"model": inner}, "outer2"))
    assert changed["model"].layers == [1, 2]


async def test_get_with_extra_paths(client: AsyncWeaveClient) -> None:
    ref = await client.save(
        {"a": {"b": [10, {"c": "deep"}]}, "cfg": Config("n", [7, 8])}, "pathy"
    )
    assert await client.get(ref.with_key("a").with_key("b").with_index(1).with_key("c")) == "deep"
    assert await client.get(ref.uri() + "/key/a/key/b/index/0") == 10
    assert await client.get(ref.uri() + "/key/cfg/attr/layers/index/1") == 8


async def test_missing_object_is_not_found(
    client: AsyncWeaveClient, entity: str, project: str
) -> None:
    with pytest.raises(NotFoundError, match="nope"):
        await client.get(f"weave:///{entity}/{project}/object/nope:latest")
    saved = await client.save({"a": 1}, "exists")
    with pytest.raises(NotFoundError):
        await client.get(ObjectRef(entity, project, "exists", "A" * 43))
    assert await client.get(saved) == {"a": 1}


@pytest.mark.parametrize(
    ("uri", "what"),
    [
        ("http://example.com/x", "not a weave ref"),
        ("weave:///e/p/object/name", "missing digest"),
        ("weave:///e/p/widget/x:1", "unknown kind"),
        ("weave:///e/p/object/name:d/key", "odd number"),
        ("weave:///e/p/object/name:d/index/x", "not an integer"),
    ],
)
async def test_malformed_uris_are_value_errors(
    client: AsyncWeaveClient, uri: str, what: str
) -> None:
    with pytest.raises(ValueError, match=what) as info:
        await client.get(uri)
    assert isinstance(info.value, InvalidRefError)


async def test_unsaveable_values_name_their_path(client: AsyncWeaveClient) -> None:
    class Holder:
        def __init__(self) -> None:
            self.b = object.__new__(type("Opaque", (), {"__slots__": ()}))

    with pytest.raises(TypeError) as info:
        await client.save({"a": [0, 1, 2, Holder()]}, "bad")
    assert isinstance(info.value, UnsaveableValueError)
    assert '["a"][3].b' in str(info.value)
    assert "Opaque" in str(info.value)

    cycle: dict[str, Any] = {}
    cycle["self"] = cycle
    with pytest.raises(UnsaveableValueError, match="cycle"):
        await client.save(cycle, "cyclic")

    with pytest.raises(TypeError):
        await client.save({1: "int key", "ok": 2, None: 3}, "bad-keys")
    assert await client.objects() == []


async def test_invalid_object_names(client: AsyncWeaveClient) -> None:
    with pytest.raises(InvalidNameError, match="' '"):
        await client.save({"a": 1}, "has space")
    with pytest.raises(InvalidNameError, match="empty"):
        await client.save({"a": 1}, "")


async def test_delete_one_version_or_all(client: AsyncWeaveClient) -> None:
    v1 = await client.save({"v": 1}, "doomed")
    v2 = await client.save({"v": 2}, "doomed")
    assert await client.delete_object(v1) == 1
    with pytest.raises(NotFoundError, match=r"'doomed' at version '\w+' in .* was deleted at 2"):
        await client.get(v1)
    assert await client.get(v2) == {"v": 2}
    await client.save({"v": 3}, "doomed")
    assert await client.delete_object("doomed") == 2
    assert await client.objects(object_ids=["doomed"]) == []
    with pytest.raises(NotFoundError):
        await client.get(v2)


async def test_reads_by_digest_are_cached_latest_is_not(client: AsyncWeaveClient) -> None:
    ref = await client.save({"v": 1}, "cached")
    client._cache.clear()
    hits = client._cache.hits
    assert await client.get(ref) == {"v": 1}  # from the server
    assert await client.get(ref) == {"v": 1}  # from memory
    assert client._cache.hits == hits + 1
    latest = ref.uri().replace(ref.digest, "latest")
    assert await client.get(latest) == {"v": 1}
    await client.save({"v": 2}, "cached")
    assert await client.get(latest) == {"v": 2}
    # A caller mutating what it got cannot change what the next caller gets.
    got = await client.get(ref)
    got["v"] = 99
    assert await client.get(ref) == {"v": 1}


async def test_cache_dir_survives_the_client(
    server_url: str, entity: str, project: str, tmp_path: Path
) -> None:
    async with AsyncWeaveClient(
        entity, project, server_url=server_url, cache_dir=tmp_path
    ) as first:
        ref = await first.save({"persist": True}, "on-disk")
        # Deleted behind the client's back (its own deletes also drop the cache entry).
        await first._api.obj_delete(
            ObjDeleteReq(project_id=ref.project_id, object_id=ref.name, digests=[ref.digest])
        )
    async with AsyncWeaveClient(
        entity, project, server_url=server_url, cache_dir=tmp_path
    ) as second:
        # Deleted on the server, but its digest names that content forever.
        assert await second.get(ref) == {"persist": True}
        assert second._cache.hits == 1


async def test_get_of_table_and_call_refs(client: AsyncWeaveClient) -> None:
    rows = [{"a": 1, "p": client.project}]  # unique: see test_client_tables.make_rows
    table = await client.table("t", rows)
    fetched = await client.get(table.table_ref.uri())
    assert isinstance(table.table_ref, TableRef)
    assert [row async for row in fetched] == rows
    published = await client.get(table.ref)
    assert await published.count() == 1


async def test_concurrent_saves_and_gets(client: AsyncWeaveClient) -> None:
    # Many requests in flight through one client (tasks, or threads for the sync twin).
    def save_job(i: int) -> Any:
        return lambda: client.save({"i": i, "p": client.project}, f"item-{i}")

    refs = await async_gather_bounded([save_job(i) for i in range(40)], limit=10)
    assert len({r.digest for r in refs}) == 40

    def get_job(ref: ObjectRef) -> Any:
        return lambda: client.get(ref)

    values = await async_gather_bounded([get_job(r) for r in refs], limit=10)
    assert values == [{"i": i, "p": client.project} for i in range(40)]


async def test_a_closed_client_says_so(server_url: str, entity: str, project: str) -> None:
    client = AsyncWeaveClient(entity, project, server_url=server_url)
    ref = await client.save({"a": 1}, "before-close")
    await client.aclose()
    await client.aclose()  # idempotent
    with pytest.raises(ClientClosedError, match="closed"):
        await client.get(ref)
    with pytest.raises(ClientClosedError):
        await client.calls()
    assert "closed" in repr(client)


async def test_save_without_a_name_uses_the_objects_name_then_its_class(
    client: AsyncWeaveClient,
) -> None:
    # As weave's publish(obj): the object's own `name`, else its class name.
    @dataclasses.dataclass
    class Config:
        name: str
        depth: int

    @dataclasses.dataclass
    class Unnamed:
        depth: int

    named = await client.save(Config(name="tuned", depth=3))
    assert named.name == "tuned"
    assert (await client.get(named)).depth == 3
    by_class = await client.save(Unnamed(depth=4))
    assert by_class.name == "Unnamed"
    assert (await client.save({"a": 1})).name == "dict"
    with pytest.raises(InvalidNameError):
        await client.save(Config(name="bad/name", depth=1))
