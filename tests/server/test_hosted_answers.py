"""The local server answers as the hosted service does (issue 15), request by request.

Parametrized over our server and weave's reference server (``server_url``) wherever the
reference agrees with the hosted service: error bodies, reactions, column selection,
unknown table digests and partial deletes. The ``$convert`` rows run against ours alone:
weave's SQLite server casts a failed conversion to 0, the hosted service (ClickHouse's
``toInt64OrNull``) to NULL, and the hosted behaviour is the one pinned here.
"""

from __future__ import annotations

import ast
import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

DELETE_PREFIX = "Delete request contains 3 digests, but found 1 objects to delete. Diff digests: "


@pytest.fixture
def http(server_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server_url, timeout=30) as client:
        yield client


@pytest.fixture
def local_http(local_server_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=local_server_url, timeout=30) as client:
        yield client


def post(http: httpx.Client, route: str, body: dict[str, Any]) -> Any:
    r = http.post(route, json=body)
    assert r.status_code == 200, (route, r.status_code, r.text)
    return r.json()


def log_call(
    http: httpx.Client, project_id: str, inputs: dict[str, Any], *, ended: bool = True
) -> str:
    """One call (ids unique: the reference keys calls by id alone); returns its id."""
    call_id = str(uuid.uuid4())
    start = {
        "project_id": project_id,
        "id": call_id,
        "trace_id": str(uuid.uuid4()),
        "op_name": f"weave:///{project_id}/op/predict:abc",
        "started_at": "2025-01-01T00:00:00.000000+00:00",
        "attributes": {},
        "inputs": inputs,
    }
    batch: list[dict[str, Any]] = [{"mode": "start", "req": {"start": start}}]
    if ended:
        end = {
            "project_id": project_id,
            "id": call_id,
            "ended_at": "2025-01-01T00:00:01.250000+00:00",
            "output": 1,
            "summary": {},
        }
        batch.append({"mode": "end", "req": {"end": end}})
    post(http, "/call/upsert_batch", {"batch": batch})
    return call_id


def react(http: httpx.Client, project_id: str, call_id: str, emoji: Any) -> httpx.Response:
    return http.post(
        "/feedback/create",
        json={
            "project_id": project_id,
            "weave_ref": f"weave:///{project_id}/call/{call_id}",
            "feedback_type": "wandb.reaction.1",
            "payload": {"emoji": emoji},
        },
    )


# -- error bodies -------------------------------------------------------------------------


def test_errors_are_reason_bodies(http: httpx.Client, project_id: str) -> None:
    missing = http.post(
        "/obj/read", json={"project_id": project_id, "object_id": "nope", "digest": "latest"}
    )
    assert missing.status_code == 404
    assert set(missing.json()) == {"reason"} and "nope" in missing.json()["reason"]
    bad = http.post("/calls/query_stats", json={"project_id": project_id, "limit": 0})
    assert bad.status_code == 400
    assert set(bad.json()) == {"reason"} and "imit" in bad.json()["reason"]


def test_deleted_object_adds_deleted_at(http: httpx.Client, project_id: str) -> None:
    val = {"unique": str(uuid.uuid4())}
    digest = post(
        http, "/obj/create", {"obj": {"project_id": project_id, "object_id": "o", "val": val}}
    )["digest"]
    post(http, "/obj/delete", {"project_id": project_id, "object_id": "o", "digests": [digest]})
    gone = http.post("/obj/read", json={"project_id": project_id, "object_id": "o", "digest": digest})
    assert gone.status_code == 404
    body = gone.json()
    assert set(body) == {"reason", "deleted_at"}
    deleted_at = datetime.fromisoformat(body["deleted_at"])
    # weave's message: "{object_id}:v{index} was deleted at {deleted_at}".
    assert body["reason"] == f"o:v0 was deleted at {deleted_at}"


def test_validation_errors_list_the_fields_under_detail(
    http: httpx.Client, project_id: str
) -> None:
    # The hosted service leaves a 422 to FastAPI: the bad fields listed under `detail`.
    r = http.post("/obj/read", json={"project_id": project_id, "object_id": "x"})
    assert r.status_code == 422
    [error] = r.json()["detail"]
    assert (error["loc"], error["msg"], error["type"]) == (
        ["body", "digest"],
        "Field required",
        "missing",
    )


def test_our_422_adds_a_one_line_reason_without_the_input(local_http: httpx.Client) -> None:
    r = local_http.post("/obj/read", json={"project_id": "e/p", "object_id": "x"})
    assert r.status_code == 422
    body = r.json()
    assert body["reason"] == "invalid request: digest: Field required"
    assert all("input" not in error for error in body["detail"])


# -- reactions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("emoji", "alias", "detoned", "detoned_alias"),
    [
        ("🎱", ":pool_8_ball:", "🎱", ":pool_8_ball:"),
        ("👍🏽", ":thumbs_up_medium_skin_tone:", "👍", ":thumbs_up:"),
        ("🧑🏿‍🚀", ":astronaut_dark_skin_tone:", "🧑‍🚀", ":astronaut:"),
    ],
    ids=["plain", "toned", "zwj-toned"],
)
def test_reaction_payload_is_augmented(
    http: httpx.Client, project_id: str, emoji: str, alias: str, detoned: str, detoned_alias: str
) -> None:
    call_id = log_call(http, project_id, {})
    r = react(http, project_id, call_id, emoji)
    assert r.status_code == 200, r.text
    expected = {
        "emoji": emoji,
        "alias": alias,
        "detoned": detoned,
        "detoned_alias": detoned_alias,
    }
    assert r.json()["payload"] == expected
    stored = post(http, "/feedback/query", {"project_id": project_id})["result"]
    assert [f["payload"] for f in stored] == [expected]


@pytest.mark.parametrize("emoji", ["👍👍", "abc", "", "👍 ok 🎱"])
def test_reaction_must_be_exactly_one_emoji(
    http: httpx.Client, project_id: str, emoji: str
) -> None:
    call_id = log_call(http, project_id, {})
    r = react(http, project_id, call_id, emoji)
    assert r.status_code == 400, r.text
    assert set(r.json()) == {"reason"}
    assert post(http, "/feedback/query", {"project_id": project_id})["result"] == []


def test_other_feedback_replies_with_an_empty_payload(http: httpx.Client, project_id: str) -> None:
    call_id = log_call(http, project_id, {})
    note = post(
        http,
        "/feedback/create",
        {
            "project_id": project_id,
            "weave_ref": f"weave:///{project_id}/call/{call_id}",
            "feedback_type": "wandb.note.1",
            "payload": {"note": "fine"},
        },
    )
    assert note["payload"] == {}


# -- columns ------------------------------------------------------------------------------


def test_stream_query_with_summary_returns_what_it_is_derived_from(
    http: httpx.Client, project_id: str
) -> None:
    log_call(http, project_id, {"x": 1})
    r = http.post(
        "/calls/stream_query", json={"project_id": project_id, "columns": ["id", "summary"]}
    )
    assert r.status_code == 200, r.text
    [call] = [json.loads(line) for line in r.text.splitlines() if line]
    assert datetime.fromisoformat(call["ended_at"]) == datetime.fromisoformat(
        "2025-01-01T00:00:01.250000+00:00"
    )
    assert call["exception"] is None and call["display_name"] is None
    assert call["summary"]["weave"]["status"] == "success"
    assert call["summary"]["weave"]["latency_ms"] == 1250
    assert call["inputs"] == {} and call["output"] is None  # not selected


def test_query_with_columns_and_feedback_derives_the_summary(
    http: httpx.Client, project_id: str
) -> None:
    call_id = log_call(http, project_id, {"x": 1})
    assert react(http, project_id, call_id, "🎱").status_code == 200
    [call] = post(
        http,
        "/calls/query",
        {"project_id": project_id, "columns": ["id"], "include_feedback": True},
    )["calls"]
    weave = call["summary"]["weave"]
    # Derived from the selected fields only (no ended_at): the hosted service's answer.
    assert weave["status"] == "running"
    assert weave["trace_name"] == "predict"
    [feedback] = weave["feedback"]
    assert feedback["feedback_type"] == "wandb.reaction.1"
    assert feedback["payload"]["alias"] == ":pool_8_ball:"
    # With `summary` selected, the status is the call's own.
    [call] = post(
        http,
        "/calls/query",
        {"project_id": project_id, "columns": ["id", "summary"], "include_feedback": True},
    )["calls"]
    assert call["summary"]["weave"]["status"] == "success"
    assert len(call["summary"]["weave"]["feedback"]) == 1


# -- $convert: SQL three-valued logic (ours against the hosted behaviour) -----------------


def _field(path: str, to: str) -> dict[str, Any]:
    return {"$convert": {"input": {"$getField": path}, "to": to}}


@pytest.fixture
def numbers(local_http: httpx.Client, project_id: str) -> dict[str, str]:
    return {
        name: log_call(local_http, project_id, inputs)
        for name, inputs in [
            ("five", {"n": 5}),
            ("ten", {"n": 10}),
            ("text", {"n": "abc"}),
            ("numeric-text", {"n": "7"}),
            ("missing", {}),
            ("null", {"n": None}),
        ]
    }


def _names(
    http: httpx.Client, project_id: str, numbers: dict[str, str], expr: dict[str, Any]
) -> set[str]:
    calls = post(http, "/calls/query", {"project_id": project_id, "query": {"$expr": expr}})
    by_id = {v: k for k, v in numbers.items()}
    return {by_id[c["id"]] for c in calls["calls"]}


@pytest.mark.parametrize("to", ["int", "double"])
def test_not_of_gt_over_a_failed_convert_selects_nothing(
    local_http: httpx.Client, project_id: str, numbers: dict[str, str], to: str
) -> None:
    n = _field("inputs.n", to)
    names = lambda expr: _names(local_http, project_id, numbers, expr)  # noqa: E731
    assert names({"$gt": [n, {"$literal": 6}]}) == {"ten", "numeric-text"}
    # A failed conversion is NULL, not 0: its comparison is unknown, and so is the $not.
    assert names({"$not": [{"$gt": [n, {"$literal": 6}]}]}) == {"five"}
    assert names({"$not": [{"$gte": [n, {"$literal": 7}]}]}) == {"five"}
    assert names({"$not": [{"$gte": [n, {"$literal": -1}]}]}) == set()
    assert names({"$not": [{"$eq": [n, {"$literal": 5}]}]}) == {"ten", "numeric-text"}
    # Unknown OR true is true; unknown AND false is false.
    assert names(
        {"$or": [{"$not": [{"$gt": [n, {"$literal": 6}]}]}, {"$eq": [n, {"$literal": None}]}]}
    ) == {"five", "text", "missing", "null"}
    assert names({"$not": [{"$and": [{"$gt": [n, {"$literal": 6}]}, {"$literal": False}]}]}) == (
        set(numbers)
    )


def test_comparisons_without_convert_stay_two_valued(
    local_http: httpx.Client, project_id: str, numbers: dict[str, str]
) -> None:
    # A missing JSON value compares false (the hosted service reads it as ''), so $not is true.
    names = _names(
        local_http,
        project_id,
        numbers,
        {"$not": [{"$eq": [{"$getField": "inputs.n"}, {"$literal": "abc"}]}]},
    )
    assert names == set(numbers) - {"text"}


# -- tables and deletes -------------------------------------------------------------------


def test_unknown_table_digest_has_no_rows(http: httpx.Client, project_id: str) -> None:
    missing = {"project_id": project_id, "digest": uuid.uuid4().hex}
    r = http.post("/table/query", json=missing)
    assert r.status_code == 200 and r.json() == {"rows": []}
    r = http.post("/table/query_stream", json=missing)
    assert r.status_code == 200 and r.text.strip() == ""


def test_delete_of_valid_and_unknown_digests_names_every_unknown(
    http: httpx.Client, project_id: str
) -> None:
    val = {"unique": str(uuid.uuid4())}
    digest = post(
        http, "/obj/create", {"obj": {"project_id": project_id, "object_id": "d", "val": val}}
    )["digest"]
    unknown = {"a" * 64, "b" * 64}
    r = http.post(
        "/obj/delete",
        json={"project_id": project_id, "object_id": "d", "digests": [digest, *sorted(unknown)]},
    )
    assert r.status_code == 404, r.text
    reason = r.json()["reason"]
    assert reason.startswith(DELETE_PREFIX), reason
    assert ast.literal_eval(reason[len(DELETE_PREFIX) :]) == unknown
    # Nothing was deleted.
    post(http, "/obj/read", {"project_id": project_id, "object_id": "d", "digest": digest})

    r = http.post(
        "/obj/delete", json={"project_id": project_id, "object_id": "d", "digests": ["c" * 64]}
    )
    assert r.status_code == 404
    assert r.json()["reason"] == f"Object d (['{'c' * 64}']) not found when deleting."
