"""Server tier: the fast path of ``/table/create`` and ``/table/update``.

Bodies are parsed with orjson and checked by hand; anything the check does not
accept goes through the wire models. These tests pin that both paths store the
same thing under the same digests (computed here from the algorithm's
definition), that malformed bodies still get a 4xx naming the field, that rows
copied from a base version keep their order, and that the OpenAPI schema still
describes both bodies.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from weave_client.server import BackgroundServer


def weave_digest(data: bytes) -> str:
    b64 = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).decode()
    return b64.replace("-", "X").replace("_", "Y").rstrip("=")


def row_digest(row: Any) -> str:
    return weave_digest(json.dumps(row).encode())


def table_digest(rows: list[Any]) -> str:
    return hashlib.sha256("".join(row_digest(r) for r in rows).encode()).hexdigest()


@pytest.fixture
def http(local_server: BackgroundServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=local_server.url, timeout=60) as client:
        yield client


def create(http: httpx.Client, project_id: str, rows: list[Any]) -> str:
    r = http.post("/table/create", json={"table": {"project_id": project_id, "rows": rows}})
    assert r.status_code == 200, r.text
    return str(r.json()["digest"])


def update(http: httpx.Client, project_id: str, base: str, updates: list[Any]) -> dict[str, Any]:
    r = http.post(
        "/table/update", json={"project_id": project_id, "base_digest": base, "updates": updates}
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def values(http: httpx.Client, project_id: str, digest: str) -> list[Any]:
    r = http.post("/table/query", json={"project_id": project_id, "digest": digest})
    assert r.status_code == 200, r.text
    rows = r.json()["rows"]
    assert [row["original_index"] for row in rows] == list(range(len(rows)))
    return [row["val"] for row in rows]


def test_appends_in_chunks_equal_one_create(http: httpx.Client, project_id: str) -> None:
    rows = [{"i": i, "s": f"row {i}", "ü": [i, {"x": i / 3}]} for i in range(3000)]
    digest = create(http, project_id, rows[:1])
    for start in range(1, 3000, 700):
        chunk = rows[start : start + 700]
        res = update(http, project_id, digest, [{"append": {"row": r}} for r in chunk])
        assert res["updated_row_digests"] == [row_digest(r) for r in chunk]
        digest = res["digest"]
    assert digest == table_digest(rows)
    assert digest == create(http, project_id, rows)
    assert values(http, project_id, digest) == rows


def test_pop_and_insert_after_copied_rows_keep_order(http: httpx.Client, project_id: str) -> None:
    rows = [{"i": i} for i in range(50)]
    base = create(http, project_id, rows)
    res = update(
        http,
        project_id,
        base,
        [
            {"append": {"row": {"i": 50}}},
            {"pop": {"index": 30}},
            {"insert": {"index": 10, "row": {"i": "new"}}},
            {"append": {"row": {"i": 51}}},
        ],
    )
    expected = [*rows[:10], {"i": "new"}, *rows[10:30], *rows[31:], {"i": 50}, {"i": 51}]
    assert values(http, project_id, res["digest"]) == expected
    assert res["digest"] == table_digest(expected)
    assert values(http, project_id, base) == rows  # the base version is untouched


def test_bodies_the_fast_check_passes_on_get_the_models_answer(
    http: httpx.Client, project_id: str
) -> None:
    base = create(http, project_id, [{"i": 0}, {"i": 1}])
    # An index as a string and a float: the wire model coerces both, as before.
    lax = update(
        http,
        project_id,
        base,
        [{"pop": {"index": "0"}}, {"insert": {"index": 1.0, "row": {"i": 2}}}],
    )
    strict = update(
        http, project_id, base, [{"pop": {"index": 0}}, {"insert": {"index": 1, "row": {"i": 2}}}]
    )
    assert lax == strict
    assert values(http, project_id, lax["digest"]) == [{"i": 1}, {"i": 2}]
    # Unknown keys are ignored on both paths.
    extra = http.post(
        "/table/update",
        json={
            "project_id": project_id,
            "base_digest": base,
            "updates": [{"append": {"row": {"i": 2}, "why": 1}}],
            "note": "x",
        },
    )
    assert extra.status_code == 200, extra.text
    assert extra.json()["updated_row_digests"] == [row_digest({"i": 2})]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"base_digest": "d", "updates": []}, "project_id"),
        ({"project_id": "e/p", "updates": []}, "base_digest"),
        ({"project_id": "e/p", "base_digest": "d", "updates": {}}, "updates"),
        ({"project_id": "e/p", "base_digest": "d", "updates": [{"shuffle": {}}]}, "updates.0"),
        (
            {"project_id": "e/p", "base_digest": "d", "updates": [{"append": {"row": [1]}}]},
            "updates.0.append.append.row",
        ),
        (
            {"project_id": "e/p", "base_digest": "d", "updates": [{"pop": {"index": "first"}}]},
            "updates.0.pop.pop.index",
        ),
        ({"project_id": 5, "base_digest": "d", "updates": []}, "project_id"),
    ],
)
def test_malformed_update_bodies_get_422_naming_the_field(
    http: httpx.Client, body: dict[str, Any], field: str
) -> None:
    r = http.post("/table/update", json=body)
    assert r.status_code == 422, r.text
    assert f"{field}:" in r.json()["reason"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"table": {"project_id": "e/p"}}, "table.rows"),
        ({"table": {"project_id": "e/p", "rows": [1]}}, "table.rows.0"),
        ({"rows": []}, "table"),
    ],
)
def test_malformed_create_bodies_get_422_naming_the_field(
    http: httpx.Client, body: dict[str, Any], field: str
) -> None:
    r = http.post("/table/create", json=body)
    assert r.status_code == 422, r.text
    assert f"{field}:" in r.json()["reason"]


@pytest.mark.parametrize("body", [b"{not json", b"{\xbe}"], ids=["syntax", "not-utf8"])
@pytest.mark.parametrize("route", ["/table/create", "/table/update", "/call/upsert_batch"])
def test_non_json_bodies_get_400(http: httpx.Client, route: str, body: bytes) -> None:
    r = http.post(route, content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert "not valid JSON" in r.json()["reason"]


def test_non_finite_floats_digest_as_json_dumps_writes_them(
    http: httpx.Client, project_id: str
) -> None:
    nan_row = {"x": math.nan, "y": [math.inf]}
    # A string that merely contains "NaN" is an ordinary row.
    text_row = {"s": "NaN and Infinity"}
    body = json.dumps({"table": {"project_id": project_id, "rows": [text_row, nan_row]}})
    r = http.post("/table/create", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    assert r.json()["row_digests"] == [row_digest(text_row), row_digest(nan_row)]
    assert values(http, project_id, r.json()["digest"]) == [text_row, {"x": None, "y": [None]}]


def test_openapi_documents_both_bodies(http: httpx.Client) -> None:
    schema = http.get("/openapi.json").json()
    components = schema["components"]["schemas"]
    for route, model in (("/table/create", "TableCreateReq"), ("/table/update", "TableUpdateReq")):
        body = schema["paths"][route]["post"]["requestBody"]
        assert body["content"]["application/json"]["schema"] == {
            "$ref": f"#/components/schemas/{model}"
        }
        assert model in components
    update_props = components["TableUpdateReq"]["properties"]
    assert set(update_props) == {"project_id", "base_digest", "updates"}
    assert {"TableAppendSpec", "TablePopSpec", "TableInsertSpec"} <= set(components)
