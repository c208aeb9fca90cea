"""Server tier: objects, tables, refs and files of the local server, over plain httpx.

Expected digests are computed here from the algorithm's definition (sha256,
urlsafe base64, ``-``->``X``, ``_``->``Y``, no padding; tables: hex sha256 of
the row digests), not with the project's own digest module.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from weave_client.server import BackgroundServer


def weave_digest(data: bytes) -> str:
    b64 = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode()
    return b64.replace("-", "X").replace("_", "Y").rstrip("=")


def value_digest(val: Any) -> str:
    return weave_digest(json.dumps(val).encode())


@pytest.fixture
def http(local_server: BackgroundServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=local_server.url, timeout=30) as client:
        yield client


def create(http: httpx.Client, project_id: str, object_id: str, val: Any) -> str:
    r = http.post(
        "/obj/create", json={"obj": {"project_id": project_id, "object_id": object_id, "val": val}}
    )
    assert r.status_code == 200, r.text
    return str(r.json()["digest"])


def read(http: httpx.Client, project_id: str, object_id: str, digest: str) -> httpx.Response:
    return http.post(
        "/obj/read", json={"project_id": project_id, "object_id": object_id, "digest": digest}
    )


def objs(http: httpx.Client, project_id: str, **body: Any) -> list[dict[str, Any]]:
    r = http.post("/objs/query", json={"project_id": project_id, **body})
    assert r.status_code == 200, r.text
    return list(r.json()["objs"])


# -- objects --------------------------------------------------------------------------------


def test_versions_dedupe_and_digest(http: httpx.Client, project_id: str) -> None:
    v0 = {"a": 1, "b": [1, 2, {"c": None}]}
    d0 = create(http, project_id, "thing", v0)
    assert d0 == value_digest(v0)
    assert create(http, project_id, "thing", v0) == d0  # identical content: same digest...
    assert len(objs(http, project_id)) == 1  # ...and no new version
    d1 = create(http, project_id, "thing", {"a": 2})
    assert d1 != d0
    # Key order is part of the text weave hashes, as on weave's server.
    assert create(http, project_id, "other", {"b": 1, "a": 2}) == value_digest({"b": 1, "a": 2})

    versions = objs(http, project_id, filter={"object_ids": ["thing"]})
    assert [(o["digest"], o["version_index"], o["is_latest"]) for o in versions] == [
        (d0, 0, 0),
        (d1, 1, 1),
    ]


def test_read_by_digest_latest_and_version(http: httpx.Client, project_id: str) -> None:
    d0 = create(http, project_id, "m", {"v": 0})
    d1 = create(http, project_id, "m", {"v": 1})
    for ref, expected in ((d0, 0), (d1, 1), ("latest", 1), ("v0", 0), ("v1", 1)):
        r = read(http, project_id, "m", ref)
        assert r.status_code == 200, r.text
        obj = r.json()["obj"]
        assert obj["val"] == {"v": expected}
        assert obj["version_index"] == expected
        assert obj["project_id"] == project_id and obj["object_id"] == "m"
    r = http.post(
        "/obj/read",
        json={
            "project_id": project_id,
            "object_id": "m",
            "digest": "latest",
            "metadata_only": True,
        },
    )
    assert r.json()["obj"]["val"] == {} and r.json()["obj"]["digest"] == d1


@pytest.mark.parametrize("digest", ["nope", "v7", "latest"])
def test_read_missing_is_404(http: httpx.Client, project_id: str, digest: str) -> None:
    r = read(http, project_id, "absent", digest)
    assert r.status_code == 404
    assert "absent" in r.json()["reason"]


def test_object_classes_and_ops(http: httpx.Client, project_id: str) -> None:
    model = {
        "_type": "MyModel",
        "_class_name": "MyModel",
        "_bases": ["Model", "Object", "BaseModel"],
        "x": 1,
    }
    dataset = {
        "_type": "Dataset",
        "_class_name": "Dataset",
        "_bases": ["Object", "BaseModel"],
        "rows": [],
    }
    op = {"_type": "CustomWeaveType", "weave_type": {"type": "Op"}, "files": {"obj.py": "abc"}}
    create(http, project_id, "model", model)
    create(http, project_id, "data", dataset)
    create(http, project_id, "fn", op)
    create(http, project_id, "plain", [1, 2])
    by_id = {o["object_id"]: o for o in objs(http, project_id)}
    assert (by_id["model"]["base_object_class"], by_id["model"]["leaf_object_class"]) == (
        "Model",
        "MyModel",
    )
    assert (by_id["data"]["base_object_class"], by_id["data"]["leaf_object_class"]) == (
        "Dataset",
        "Dataset",
    )
    assert by_id["plain"]["base_object_class"] is None
    assert by_id["fn"]["kind"] == "op" and by_id["model"]["kind"] == "object"
    assert [o["object_id"] for o in objs(http, project_id, filter={"is_op": True})] == ["fn"]
    assert sorted(o["object_id"] for o in objs(http, project_id, filter={"is_op": False})) == [
        "data",
        "model",
        "plain",
    ]
    assert [
        o["object_id"] for o in objs(http, project_id, filter={"base_object_classes": ["Model"]})
    ] == ["model"]
    assert [
        o["object_id"] for o in objs(http, project_id, filter={"leaf_object_classes": ["Dataset"]})
    ] == ["data"]


def test_objs_query_latest_sort_paging_metadata(http: httpx.Client, project_id: str) -> None:
    for name in ("b", "a", "c"):
        create(http, project_id, name, {"n": name, "v": 0})
    create(http, project_id, "a", {"n": "a", "v": 1})
    latest = objs(
        http,
        project_id,
        filter={"latest_only": True},
        sort_by=[{"field": "object_id", "direction": "desc"}],
    )
    assert [(o["object_id"], o["val"]["v"]) for o in latest] == [("c", 0), ("b", 0), ("a", 1)]
    page = objs(
        http,
        project_id,
        sort_by=[{"field": "object_id", "direction": "asc"}],
        limit=2,
        offset=1,
        metadata_only=True,
    )
    assert [o["object_id"] for o in page] == ["a", "b"]
    assert all(o["val"] == {} for o in page)
    sized = objs(http, project_id, filter={"object_ids": ["b"]}, include_storage_size=True)
    assert [o["size_bytes"] for o in sized] == [len(json.dumps({"n": "b", "v": 0}))]
    assert objs(http, project_id, filter={"object_ids": ["b"]})[0]["size_bytes"] is None
    r = http.post(
        "/objs/query",
        json={"project_id": project_id, "sort_by": [{"field": "val", "direction": "asc"}]},
    )
    assert r.status_code == 400
    assert "sort_by[0].field" in r.json()["reason"]
    r = http.post("/objs/query", json={"project_id": project_id, "limit": -1})
    assert r.status_code == 400 and "limit" in r.json()["reason"]


def test_delete_one_version_moves_latest(http: httpx.Client, project_id: str) -> None:
    d0 = create(http, project_id, "d", {"v": 0})
    d1 = create(http, project_id, "d", {"v": 1})
    r = http.post("/obj/delete", json={"project_id": project_id, "object_id": "d", "digests": [d1]})
    assert r.status_code == 200 and r.json() == {"num_deleted": 1}
    assert read(http, project_id, "d", "latest").json()["obj"]["digest"] == d0
    gone = read(http, project_id, "d", d1)
    assert gone.status_code == 404 and "deleted" in gone.json()["reason"]
    assert [o["digest"] for o in objs(http, project_id)] == [d0]
    # Creating the deleted content again brings it back as the newest version.
    assert create(http, project_id, "d", {"v": 1}) == d1
    back = read(http, project_id, "d", "latest").json()["obj"]
    assert back["digest"] == d1 and back["version_index"] == 2


def test_delete_all_versions_and_missing(http: httpx.Client, project_id: str) -> None:
    create(http, project_id, "all", {"v": 0})
    create(http, project_id, "all", {"v": 1})
    r = http.post("/obj/delete", json={"project_id": project_id, "object_id": "all"})
    assert r.json() == {"num_deleted": 2}
    assert objs(http, project_id) == []
    assert read(http, project_id, "all", "latest").status_code == 404
    r = http.post("/obj/delete", json={"project_id": project_id, "object_id": "all"})
    assert r.status_code == 404
    r = http.post(
        "/obj/delete", json={"project_id": project_id, "object_id": "x", "digests": ["v9"]}
    )
    assert r.status_code == 404 and "v9" in r.json()["reason"]


@pytest.mark.parametrize("object_id", ["has space", "", "slash/name", "x" * 129])
def test_invalid_object_names_are_400(http: httpx.Client, project_id: str, object_id: str) -> None:
    r = http.post(
        "/obj/create", json={"obj": {"project_id": project_id, "object_id": object_id, "val": 1}}
    )
    assert r.status_code == 400
    assert "obj.object_id" in r.json()["reason"]


def test_builtin_object_class_must_match(http: httpx.Client, project_id: str) -> None:
    val = {"_type": "Leaderboard", "_class_name": "Leaderboard", "_bases": ["Object", "BaseModel"]}
    ok = http.post(
        "/obj/create",
        json={
            "obj": {
                "project_id": project_id,
                "object_id": "lb",
                "val": val,
                "builtin_object_class": "Leaderboard",
            }
        },
    )
    assert ok.status_code == 200
    bad = http.post(
        "/obj/create",
        json={
            "obj": {
                "project_id": project_id,
                "object_id": "lb",
                "val": val,
                "builtin_object_class": "Other",
            }
        },
    )
    assert bad.status_code == 400 and "builtin_object_class" in bad.json()["reason"]


# -- tables ---------------------------------------------------------------------------------


def table_create(http: httpx.Client, project_id: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    r = http.post("/table/create", json={"table": {"project_id": project_id, "rows": rows}})
    assert r.status_code == 200, r.text
    return dict(r.json())


def table_rows(
    http: httpx.Client, project_id: str, digest: str, **body: Any
) -> list[dict[str, Any]]:
    r = http.post("/table/query", json={"project_id": project_id, "digest": digest, **body})
    assert r.status_code == 200, r.text
    return list(r.json()["rows"])


def test_table_create_digests_and_query(http: httpx.Client, project_id: str) -> None:
    rows = [{"q": "a", "n": 3}, {"q": "b", "n": 1}, {"q": "c", "n": 2}]
    t = table_create(http, project_id, rows)
    row_digests = [value_digest(r) for r in rows]
    assert t["row_digests"] == row_digests
    assert t["digest"] == hashlib.sha256("".join(row_digests).encode()).hexdigest()
    assert table_create(http, project_id, rows)["digest"] == t["digest"]

    got = table_rows(http, project_id, t["digest"])
    assert [r["val"] for r in got] == rows
    assert [r["digest"] for r in got] == row_digests
    assert [r["original_index"] for r in got] == [0, 1, 2]
    assert [
        r["val"]["q"] for r in table_rows(http, project_id, t["digest"], limit=1, offset=1)
    ] == ["b"]
    assert [r["val"]["q"] for r in table_rows(http, project_id, t["digest"], offset=2)] == ["c"]
    by_n = table_rows(http, project_id, t["digest"], sort_by=[{"field": "n", "direction": "desc"}])
    assert [(r["val"]["n"], r["original_index"]) for r in by_n] == [(3, 0), (2, 2), (1, 1)]
    picked = table_rows(
        http, project_id, t["digest"], filter={"row_digests": [row_digests[2], row_digests[0]]}
    )
    assert [r["val"]["q"] for r in picked] == ["a", "c"]
    stats = http.post("/table/query_stats", json={"project_id": project_id, "digest": t["digest"]})
    assert stats.json() == {"count": 3}


def test_table_update_append_pop_insert(http: httpx.Client, project_id: str) -> None:
    base = table_create(http, project_id, [{"i": 0}, {"i": 1}, {"i": 2}])
    r = http.post(
        "/table/update",
        json={
            "project_id": project_id,
            "base_digest": base["digest"],
            "updates": [
                {"append": {"row": {"i": 3}}},
                {"pop": {"index": 0}},
                {"insert": {"index": 1, "row": {"i": 9}}},
            ],
        },
    )
    assert r.status_code == 200, r.text
    new = r.json()
    assert new["digest"] != base["digest"]
    assert new["updated_row_digests"] == [
        value_digest({"i": 3}),
        value_digest({"i": 0}),
        value_digest({"i": 9}),
    ]
    assert [row["val"]["i"] for row in table_rows(http, project_id, new["digest"])] == [1, 9, 2, 3]
    # The base version is unchanged, and the same content from scratch has the same digest.
    assert [row["val"]["i"] for row in table_rows(http, project_id, base["digest"])] == [0, 1, 2]
    assert (
        table_create(http, project_id, [{"i": 1}, {"i": 9}, {"i": 2}, {"i": 3}])["digest"]
        == new["digest"]
    )


def test_table_update_errors(http: httpx.Client, project_id: str) -> None:
    base = table_create(http, project_id, [{"i": 0}])
    r = http.post(
        "/table/update",
        json={
            "project_id": project_id,
            "base_digest": base["digest"],
            "updates": [{"pop": {"index": 5}}],
        },
    )
    assert r.status_code == 400 and "updates[0].pop.index" in r.json()["reason"]
    r = http.post(
        "/table/update",
        json={
            "project_id": project_id,
            "base_digest": base["digest"],
            "updates": [{"shuffle": {}}],
        },
    )
    assert r.status_code == 422 and "updates.0" in r.json()["reason"]
    r = http.post(
        "/table/update", json={"project_id": project_id, "base_digest": "nope", "updates": []}
    )
    assert r.status_code == 404


def test_table_query_stream_and_missing(http: httpx.Client, project_id: str) -> None:
    rows = [{"i": i, "s": "x" * (i % 7)} for i in range(1200)]
    t = table_create(http, project_id, rows)
    with http.stream(
        "POST", "/table/query_stream", json={"project_id": project_id, "digest": t["digest"]}
    ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/jsonl")
        got = [json.loads(line) for line in r.iter_lines() if line]
    assert [g["val"] for g in got] == rows
    assert [g["digest"] for g in got] == t["row_digests"]
    # An unknown digest has no rows (200), as the hosted service answers; its stats are
    # a 404 here (the hosted service fails with a 500).
    missing = {"project_id": project_id, "digest": "missing"}
    r = http.post("/table/query", json=missing)
    assert r.status_code == 200 and r.json() == {"rows": []}
    r = http.post("/table/query_stream", json=missing)
    assert r.status_code == 200 and r.content == b""
    r = http.post("/table/query_stats", json=missing)
    assert r.status_code == 404 and "missing" in r.json()["reason"]


# -- refs -----------------------------------------------------------------------------------


def refs(http: httpx.Client, *uris: str) -> httpx.Response:
    return http.post("/refs/read_batch", json={"refs": list(uris)})


def test_refs_object_op_and_paths(http: httpx.Client, project_id: str) -> None:
    val = {"a": {"b": [10, 20, {"c": "deep"}]}, "name": "x"}
    d = create(http, project_id, "obj", val)
    op_d = create(
        http, project_id, "fn", {"_type": "CustomWeaveType", "weave_type": {"type": "Op"}}
    )
    base = f"weave:///{project_id}/object/obj:{d}"
    r = refs(
        http,
        base,
        f"weave:///{project_id}/op/fn:{op_d}",
        f"{base}/key/a/key/b/index/1",
        f"{base}/attr/a/attr/b/index/2/key/c",
        f"{base}/key/missing",
        f"{base}/key/a/key/b/index/99",
    )
    assert r.status_code == 200, r.text
    assert r.json()["vals"] == [
        val,
        {"_type": "CustomWeaveType", "weave_type": {"type": "Op"}},
        20,
        "deep",
        None,
        None,
    ]


def test_refs_follow_nested_refs_and_table_rows(http: httpx.Client, project_id: str) -> None:
    rows = [{"q": "first"}, {"q": "second"}]
    t = table_create(http, project_id, rows)
    table_ref = f"weave:///{project_id}/table/{t['digest']}"
    inner = create(http, project_id, "inner", {"deep": {"k": "v"}})
    dataset = {
        "_type": "Dataset",
        "_class_name": "Dataset",
        "_bases": ["Object", "BaseModel"],
        "rows": table_ref,
        "child": f"weave:///{project_id}/object/inner:{inner}",
        "child_path": f"weave:///{project_id}/object/inner:{inner}/key/deep",
    }
    d = create(http, project_id, "ds", dataset)
    base = f"weave:///{project_id}/object/ds:{d}"
    r = refs(
        http,
        f"{base}/attr/rows/id/{t['row_digests'][1]}",
        f"{base}/attr/rows/id/{t['row_digests'][0]}/key/q",
        f"{base}/attr/child/key/deep/key/k",
        f"{base}/attr/child_path/key/k",
        f"{table_ref}/index/1",
        table_ref,
        f"{base}/attr/rows",  # the path ends on a ref: it is returned, not resolved
    )
    assert r.status_code == 200, r.text
    assert r.json()["vals"] == [rows[1], "first", "v", "v", rows[1], rows, table_ref]


def test_refs_deleted_missing_and_malformed(http: httpx.Client, project_id: str) -> None:
    d = create(http, project_id, "gone", {"x": 1})
    http.post("/obj/delete", json={"project_id": project_id, "object_id": "gone"})
    assert refs(http, f"weave:///{project_id}/object/gone:{d}").json()["vals"] == [None]
    r = refs(http, f"weave:///{project_id}/object/never:abc")
    assert r.status_code == 404 and "never" in r.json()["reason"]
    for bad, needle in (
        ("http://example.com", "refs[0]"),
        (f"weave:///{project_id}/object/nodigest", "name:digest"),
        (f"weave:///{project_id}/widget/x:y", "widget"),
        (f"weave:///{project_id}/object/x:y/key", "pairs"),
        (f"weave:///{project_id}/object/x:y/index/one", "index"),
    ):
        r = refs(http, bad)
        assert r.status_code == 400, bad
        assert needle in r.json()["reason"], (bad, r.json())
    r = http.post("/refs/read_batch", json={"refs": ["x"] * 1001})
    assert r.status_code == 400 and "1000" in r.json()["reason"]


# -- files ----------------------------------------------------------------------------------


def test_file_create_and_content(http: httpx.Client, project_id: str) -> None:
    content = b"def f(x):\n    return x + 1\n" + bytes(range(256))
    r = http.post(
        "/file/create", data={"project_id": project_id}, files={"file": ("obj.py", content)}
    )
    assert r.status_code == 200, r.text
    digest = r.json()["digest"]
    assert digest == weave_digest(content)
    again = http.post(
        "/file/create", data={"project_id": project_id}, files={"file": ("x", content)}
    )
    assert again.json()["digest"] == digest
    got = http.post("/file/content", json={"project_id": project_id, "digest": digest})
    assert got.status_code == 200
    assert got.headers["content-type"] == "application/octet-stream"
    assert got.content == content
    # Files belong to their project.
    other = http.post("/file/content", json={"project_id": project_id + "-other", "digest": digest})
    assert other.status_code == 404
    assert digest in other.json()["reason"]


def test_file_create_without_parts_is_4xx(http: httpx.Client, project_id: str) -> None:
    r = http.post("/file/create", data={"project_id": project_id})
    assert r.status_code == 422 and "file" in r.json()["reason"]
    r = http.post("/file/create", files={"file": ("x", b"1")})
    assert r.status_code == 422 and "project_id" in r.json()["reason"]


def test_long_id_lists_beyond_sqlite_variable_limits(http: httpx.Client, project_id: str) -> None:
    # More values than SQLite allows bound variables in one statement (32,766).
    noise = [f"n{i}" for i in range(40_000)]
    create(http, project_id, "needle", {"x": 1})
    found = objs(http, project_id, filter={"object_ids": [*noise, "needle"]})
    assert [o["object_id"] for o in found] == ["needle"]
    t = table_create(http, project_id, [{"i": 0}, {"i": 1}])
    rows = table_rows(
        http, project_id, t["digest"], filter={"row_digests": [*noise, t["row_digests"][1]]}
    )
    assert [r["val"] for r in rows] == [{"i": 1}]
