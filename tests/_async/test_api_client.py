"""The API client against a real misbehaving HTTP server on loopback (tests/faultserver.py).

Retries, backoff, Retry-After, no retry on 4xx, timeouts, connection resets, cut
JSONL streams, key redaction and the closed-client error, all over real sockets.
"""

from __future__ import annotations

import base64
import email.utils
import json
import logging
import pickle
import socket
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import certifi
import pytest

from tests.faultserver import FaultServer, JsonlStream, Reply, Reset
from weave_client import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AsyncAPIClient,
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
    InternalServerError,
    NotFoundError,
    RateLimitError,
    UnprocessableEntityError,
)
from weave_client._models import (
    CallSchema,
    CallsQueryReq,
    ObjCreateReq,
    ObjCreateRes,
    ObjSchemaForInsert,
    Query,
    TableQueryReq,
    TableRowSchema,
)

KEY = "sk-test-SECRET-0123456789"
ROUTE = "/obj/create"
REQ = ObjCreateReq(obj=ObjSchemaForInsert(project_id="ent/proj", object_id="thing", val={"a": 1}))
OK = Reply(200, {"digest": "d1"})


@pytest.fixture
def fault() -> Iterator[FaultServer]:
    with FaultServer() as server:
        yield server


def make_client(server: FaultServer, **kwargs: Any) -> AsyncAPIClient:
    """A client with tiny backoff, so retry tests take milliseconds."""
    options: dict[str, Any] = {
        "api_key": KEY,
        "max_retries": 2,
        "timeout": 5.0,
        "retry_delay": 0.001,
        "max_retry_delay": 0.01,
    }
    options.update(kwargs)
    return AsyncAPIClient(server.url, **options)


def rows(n: int) -> list[dict[str, Any]]:
    return [{"digest": f"row{i}", "val": {"i": i}} for i in range(n)]


def call_dict(i: int) -> dict[str, Any]:
    return {
        "id": f"call{i}",
        "project_id": "ent/proj",
        "op_name": "op",
        "trace_id": "t1",
        "started_at": "2026-01-01T00:00:00Z",
        "attributes": {},
        "inputs": {"i": i},
    }


# --- retries ---------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 408, 429])
async def test_retryable_status_is_retried_then_succeeds(fault: FaultServer, status: int) -> None:
    fault.script(ROUTE, Reply(status, {"detail": "try later"}), Reply(status), OK)
    async with make_client(fault) as api:
        res = await api.obj_create(REQ)
    assert isinstance(res, ObjCreateRes)
    assert res.digest == "d1"
    seen = fault.requests_to(ROUTE)
    assert len(seen) == 3
    # Every attempt carries the same body and the auth header.
    assert len({r.body for r in seen}) == 1
    assert seen[0].json()["obj"]["object_id"] == "thing"
    expected_auth = "Basic " + base64.b64encode(f"api:{KEY}".encode()).decode()
    assert all(r.headers["authorization"] == expected_auth for r in seen)


async def test_retries_exhausted_raises_last_status_error(fault: FaultServer) -> None:
    fault.script(ROUTE, then=Reply(503, {"detail": "overloaded"}))
    async with make_client(fault, max_retries=2) as api:
        with pytest.raises(InternalServerError) as info:
            await api.obj_create(REQ)
    assert info.value.status_code == 503
    assert info.value.message == "overloaded"
    assert info.value.route == ROUTE
    assert len(fault.requests_to(ROUTE)) == 3


async def test_retry_after_seconds_is_honoured(fault: FaultServer) -> None:
    fault.script(ROUTE, Reply(429, {"detail": "slow down"}, headers={"Retry-After": "1"}), OK)
    async with make_client(fault) as api:
        assert (await api.obj_create(REQ)).digest == "d1"
    gaps = FaultServer.gaps(fault.requests_to(ROUTE))
    # Backoff alone would wait at most 10 ms; the server asked for a second.
    assert len(gaps) == 1
    assert gaps[0] >= 0.9


async def test_retry_after_http_date_is_honoured(fault: FaultServer) -> None:
    when = email.utils.formatdate(time.time() + 2, usegmt=True)
    fault.script(ROUTE, Reply(503, headers={"Retry-After": when}), OK)
    async with make_client(fault) as api:
        assert (await api.obj_create(REQ)).digest == "d1"
    gaps = FaultServer.gaps(fault.requests_to(ROUTE))
    # The date has one-second resolution, so "now + 2 s" is 1 to 2 s away when sent,
    # less the time the answer took to arrive; backoff alone would wait at most 10 ms.
    assert gaps[0] >= 0.5


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (404, NotFoundError),
        (422, UnprocessableEntityError),
    ],
)
async def test_client_errors_are_not_retried(
    fault: FaultServer, status: int, cls: type[APIStatusError]
) -> None:
    fault.script(ROUTE, Reply(status, {"reason": f"no good ({status})"}), OK)
    async with make_client(fault) as api:
        with pytest.raises(cls) as info:
            await api.obj_create(REQ)
    err = info.value
    assert err.status_code == status
    assert err.message == f"no good ({status})"
    assert err.route == ROUTE
    assert f"HTTP {status} from {ROUTE}: no good ({status})" == str(err)
    assert len(fault.requests_to(ROUTE)) == 1


async def test_fastapi_validation_detail_names_the_bad_field(fault: FaultServer) -> None:
    detail = [{"loc": ["body", "obj", "object_id"], "msg": "Field required", "type": "missing"}]
    fault.script(ROUTE, Reply(422, {"detail": detail}))
    async with make_client(fault) as api:
        with pytest.raises(UnprocessableEntityError) as info:
            await api.obj_create(REQ)
    assert info.value.message == "body.obj.object_id: Field required"
    assert info.value.body == {"detail": detail}


async def test_plain_text_error_body_is_the_message(fault: FaultServer) -> None:
    fault.script(ROUTE, Reply(404, "no such object", headers={"Content-Type": "text/plain"}))
    async with make_client(fault) as api:
        with pytest.raises(NotFoundError, match="no such object"):
            await api.obj_create(REQ)


# --- timeouts and broken connections ----------------------------------------


async def test_timeout_raises_api_timeout_error_after_retries(fault: FaultServer) -> None:
    fault.script(ROUTE, then=Reply(200, {"digest": "late"}, delay=3))
    async with make_client(fault, timeout=0.2, max_retries=1) as api:
        with pytest.raises(APITimeoutError) as info:
            await api.obj_create(REQ)
    assert info.value.route == ROUTE
    assert "timed out" in str(info.value)
    assert len(fault.requests_to(ROUTE)) == 2


async def test_per_call_timeout_overrides_the_default(fault: FaultServer) -> None:
    fault.script(ROUTE, Reply(200, {"digest": "late"}, delay=3))
    async with make_client(fault, timeout=30.0, max_retries=0) as api:
        with pytest.raises(APITimeoutError):
            await api.request("POST", ROUTE, body=REQ, cast_to=ObjCreateRes, timeout=0.2)
        # with_options gives the same override for every call of the copy.
        fault.script(ROUTE, Reply(200, {"digest": "late"}, delay=3))
        with pytest.raises(APITimeoutError):
            await api.with_options(timeout=0.2).obj_create(REQ)
        assert api.timeout.read == 30.0


async def test_a_slow_answer_within_the_timeout_succeeds(fault: FaultServer) -> None:
    fault.script(ROUTE, Reply(200, {"digest": "slow"}, delay=0.3))
    async with make_client(fault, timeout=5.0, max_retries=0) as api:
        assert (await api.obj_create(REQ)).digest == "slow"


async def test_reset_connections_raise_api_connection_error_after_retries(
    fault: FaultServer,
) -> None:
    fault.script(ROUTE, then=Reset())
    async with make_client(fault, max_retries=2) as api:
        with pytest.raises(APIConnectionError) as info:
            await api.obj_create(REQ)
    assert not isinstance(info.value, APITimeoutError)
    assert info.value.route == ROUTE
    assert "attempt 3 of 3" in str(info.value)
    assert len(fault.requests_to(ROUTE)) == 3


@pytest.mark.parametrize("step", [Reset(), Reset(after_bytes=10)], ids=["before", "mid-body"])
async def test_a_reset_is_retried(fault: FaultServer, step: Reset) -> None:
    fault.script(ROUTE, step, OK)
    async with make_client(fault) as api:
        assert (await api.obj_create(REQ)).digest == "d1"
    assert len(fault.requests_to(ROUTE)) == 2


async def test_nothing_listening_raises_api_connection_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # The port is free again: connecting is refused.
    async with AsyncAPIClient(
        f"http://127.0.0.1:{port}", max_retries=1, retry_delay=0.001, max_retry_delay=0.01
    ) as api:
        with pytest.raises(APIConnectionError, match="ConnectError") as info:
            await api.health()
    assert info.value.route == "/health"


# --- max_retries: per client, per call, with_options -------------------------


async def test_max_retries_per_client_per_call_and_with_options(fault: FaultServer) -> None:
    fault.set_default(Reply(503, {"detail": "down"}))
    async with make_client(fault, max_retries=0) as api:
        with pytest.raises(InternalServerError):
            await api.obj_create(REQ)
        assert len(fault.requests_to(ROUTE)) == 1

        with pytest.raises(InternalServerError):
            await api.request("POST", ROUTE, body=REQ, cast_to=ObjCreateRes, max_retries=2)
        assert len(fault.requests_to(ROUTE)) == 1 + 3

        patient = api.with_options(max_retries=1)
        assert patient.max_retries == 1
        assert api.max_retries == 0
        with pytest.raises(InternalServerError):
            await patient.obj_create(REQ)
        assert len(fault.requests_to(ROUTE)) == 4 + 2


async def test_with_options_shares_the_connection_pool(fault: FaultServer) -> None:
    async with make_client(fault) as api:
        other = api.with_options(max_retries=5, timeout=2.0)
        await api.health()
        await other.health()
        await api.health()
        # Keep-alive: one TCP connection (one client port) served all three.
        assert len({r.client_port for r in fault.requests_to("/health")}) == 1
        assert other.timeout.read == 2.0
    # Closing the original closes the pool the copy uses.
    assert other.is_closed
    with pytest.raises(ClientClosedError):
        await other.health()


def test_invalid_options_are_rejected(fault: FaultServer) -> None:
    with pytest.raises(ValueError, match="max_retries"):
        make_client(fault, max_retries=-1)
    with pytest.raises(ValueError, match="timeout"):
        make_client(fault, timeout=0)
    with pytest.raises(ValueError, match="base_url"):
        AsyncAPIClient("ftp://example.com")


# --- JSONL streams -----------------------------------------------------------


async def test_stream_yields_typed_items(fault: FaultServer) -> None:
    fault.script("/table/query_stream", JsonlStream(rows(50)))
    async with make_client(fault) as api:
        async with api.table_query_stream(TableQueryReq(project_id="e/p", digest="t")) as stream:
            got = [row async for row in stream]
    assert [r.digest for r in got] == [f"row{i}" for i in range(50)]
    assert all(isinstance(r, TableRowSchema) for r in got)
    assert got[7].val == {"i": 7}
    assert fault.requests_to("/table/query_stream")[0].headers["accept"] == "application/jsonl"


async def test_stream_memory_stays_flat(fault: FaultServer) -> None:
    # 10,000 lines of ~2 KB (about 20 MB), generated as they are sent: if the
    # stream buffered the body, the peak would be tens of MB.
    pad = "x" * 2000
    fault.script(
        "/table/query_stream",
        JsonlStream({"digest": f"r{i}", "val": pad} for i in range(10_000)),
    )
    count = 0
    tracemalloc.start()
    try:
        async with make_client(fault) as api:
            async for row in api.table_query_stream(TableQueryReq(project_id="e/p", digest="t")):
                count += 1
                assert row.val == pad
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 10_000
    assert peak < 5_000_000, f"peak traced memory {peak} bytes"


@pytest.mark.parametrize(
    ("framing", "cut"),
    [("chunked", "close"), ("chunked", "reset"), ("close", "close")],
)
async def test_stream_cut_midway_raises(fault: FaultServer, framing: str, cut: str) -> None:
    fault.script(
        "/table/query_stream", JsonlStream(rows(10), cut_after=4, framing=framing, cut=cut)
    )
    got: list[TableRowSchema] = []
    async with make_client(fault) as api:
        stream = api.table_query_stream(TableQueryReq(project_id="e/p", digest="t"))
        with pytest.raises(APIConnectionError, match="incomplete") as info:
            async for row in stream:
                got.append(row)
    # Items arrive incrementally: the four complete lines came before the error.
    assert [r.digest for r in got] == ["row0", "row1", "row2", "row3"]
    assert info.value.route == "/table/query_stream"


async def test_stream_opening_is_retried(fault: FaultServer) -> None:
    fault.script("/calls/stream_query", Reply(502), Reset(), JsonlStream([call_dict(0)]))
    async with make_client(fault) as api:
        calls = [c async for c in api.calls_query_stream(CallsQueryReq(project_id="e/p"))]
    assert [c.id for c in calls] == ["call0"]
    assert all(isinstance(c, CallSchema) for c in calls)
    assert len(fault.requests_to("/calls/stream_query")) == 3


async def test_stream_error_status_raises_the_status_error(fault: FaultServer) -> None:
    fault.script("/calls/stream_query", Reply(400, {"reason": "bad sort field"}))
    async with make_client(fault) as api:
        with pytest.raises(BadRequestError, match="bad sort field"):
            async with api.calls_query_stream(CallsQueryReq(project_id="e/p")):
                pass


async def test_stream_bad_line_raises_validation_error(fault: FaultServer) -> None:
    fault.script("/table/query_stream", JsonlStream([*rows(2), {"nope": 1}]))
    async with make_client(fault) as api:
        stream = api.table_query_stream(TableQueryReq(project_id="e/p", digest="t"))
        with pytest.raises(APIResponseValidationError, match="Line 3") as info:
            async for _ in stream:
                pass
        assert stream.items_read == 2
        assert "TableRowSchema" in str(info.value)


async def test_stream_without_final_newline_is_complete(fault: FaultServer) -> None:
    body = "\n".join(json.dumps({"digest": f"r{i}", "val": i}) for i in range(3))
    fault.script("/table/query_stream", Reply(200, body))
    async with make_client(fault) as api:
        got = [r async for r in api.table_query_stream(TableQueryReq(project_id="e/p", digest="t"))]
    assert [r.digest for r in got] == ["r0", "r1", "r2"]


async def test_closed_stream_refuses_iteration(fault: FaultServer) -> None:
    fault.script("/table/query_stream", JsonlStream(rows(5)))
    async with make_client(fault) as api:
        stream = api.table_query_stream(TableQueryReq(project_id="e/p", digest="t"))
        first = await stream.__anext__()
        assert first.digest == "row0"
        await stream.aclose()
        with pytest.raises(ClientClosedError, match="closed after 1 items"):
            await stream.__anext__()


async def test_calls_query_retries_a_cut_stream_and_returns_everything(
    fault: FaultServer,
) -> None:
    all_calls = [call_dict(i) for i in range(6)]
    fault.script("/calls/stream_query", JsonlStream(all_calls, cut_after=2), JsonlStream(all_calls))
    async with make_client(fault) as api:
        res = await api.calls_query(CallsQueryReq(project_id="e/p"))
    assert [c.id for c in res.calls] == [f"call{i}" for i in range(6)]
    assert len(fault.requests_to("/calls/stream_query")) == 2


async def test_calls_query_never_returns_a_truncated_list(fault: FaultServer) -> None:
    # Read-until-close framing: only the half-written last line shows the cut.
    cut = JsonlStream([call_dict(i) for i in range(6)], cut_after=3, framing="close")
    fault.script("/calls/stream_query", then=cut)
    async with make_client(fault, max_retries=0) as api:
        with pytest.raises(APIConnectionError, match="incomplete"):
            await api.calls_query(CallsQueryReq(project_id="e/p"))


# --- request encoding --------------------------------------------------------


async def test_requests_are_sent_by_alias_keeping_explicit_nulls(fault: FaultServer) -> None:
    query = Query.model_validate(
        {"$expr": {"$eq": [{"$getField": "exception"}, {"$literal": None}]}}
    )
    fault.script("/calls/stream_query", JsonlStream([]))
    async with make_client(fault) as api:
        res = await api.calls_query(CallsQueryReq(project_id="e/p", query=query))
    assert res.calls == []
    sent = fault.requests_to("/calls/stream_query")[0]
    assert sent.headers["content-type"] == "application/json"
    # Excluding None would turn {"$literal": null} into {} and change the query.
    assert sent.json()["query"] == {
        "$expr": {"$eq": [{"$getField": "exception"}, {"$literal": None}]}
    }


# --- responses that do not match -------------------------------------------


async def test_response_mismatch_raises_validation_error(fault: FaultServer) -> None:
    fault.script(ROUTE, Reply(200, {"unexpected": True}))
    async with make_client(fault) as api:
        with pytest.raises(APIResponseValidationError) as info:
            await api.obj_create(REQ)
    assert info.value.route == ROUTE
    assert "ObjCreateRes" in str(info.value)
    assert "digest" in str(info.value)


async def test_non_json_response_raises_validation_error(fault: FaultServer) -> None:
    fault.script(ROUTE, Reply(200, "<html>proxy login</html>"))
    async with make_client(fault) as api:
        with pytest.raises(APIResponseValidationError, match="/obj/create"):
            await api.obj_create(REQ)


# --- the key stays secret ----------------------------------------------------


async def test_api_key_never_leaks(fault: FaultServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, httpx and httpcore included
    basic = base64.b64encode(f"api:{KEY}".encode()).decode()
    # A careless proxy echoes the credentials back in its error body.
    fault.script(ROUTE, Reply(401, {"detail": f"bad key {KEY} (Basic {basic})"}))
    fault.script("/health", Reply(503, {"detail": f"echo {KEY}"}), Reset(), OK)
    fault.script("/table/query_stream", JsonlStream([{"digest": KEY}], cut_after=0))
    texts: list[str] = []
    async with make_client(fault) as api:
        texts.append(repr(api))
        texts.append(str(api))
        with pytest.raises(AuthenticationError) as info:
            await api.obj_create(REQ)
        texts += [str(info.value), repr(info.value), repr(info.value.body), info.value.message]
        await api.health()  # retried twice, logged at DEBUG and INFO
        with pytest.raises(APIConnectionError) as cut:
            async for _ in api.table_query_stream(TableQueryReq(project_id="e/p", digest="t")):
                pass
        texts.append(str(cut.value))
        with pytest.raises(TypeError, match="cannot be pickled") as pickled:
            pickle.dumps(api)
        texts.append(str(pickled.value))
        texts.append(repr(vars(api)))
    texts.append(caplog.text)
    for text in texts:
        assert KEY not in text
        assert basic not in text
    assert "***" in repr(api)
    # ... while the server did receive it.
    assert fault.requests_to(ROUTE)[0].headers["authorization"] == f"Basic {basic}"


async def test_credentials_in_the_url_are_used_and_hidden(fault: FaultServer) -> None:
    url = fault.url.replace("http://", f"http://api:{KEY}@")
    async with AsyncAPIClient(url, max_retries=0) as api:
        assert KEY not in repr(api)
        assert KEY not in api.base_url
        await api.health()
    basic = base64.b64encode(f"api:{KEY}".encode()).decode()
    assert fault.requests_to("/health")[0].headers["authorization"] == f"Basic {basic}"


async def test_no_key_sends_no_auth_header(fault: FaultServer) -> None:
    async with make_client(fault, api_key=None) as api:
        assert "api_key=None" in repr(api)
        await api.health()
    assert "authorization" not in fault.requests_to("/health")[0].headers


def test_verify_false_logs_a_warning(fault: FaultServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="weave_client")
    make_client(fault, verify=False)
    assert any(
        "verification is disabled" in r.getMessage() and r.levelno == logging.WARNING
        for r in caplog.records
    )


def test_verify_accepts_a_ca_bundle_path(fault: FaultServer, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a readable CA bundle"):
        make_client(fault, verify=str(tmp_path / "missing.pem"))
    # The system bundle (certifi's, as httpx uses) loads.
    make_client(fault, verify=certifi.where())


async def test_debug_log_line_per_request(
    fault: FaultServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="weave_client")
    fault.script(ROUTE, Reply(500), OK)
    async with make_client(fault) as api:
        await api.obj_create(REQ)
    lines = [r.getMessage() for r in caplog.records if r.name == "weave_client"]
    assert any(line.startswith("POST /obj/create -> 500 in ") for line in lines)
    assert any("POST /obj/create -> 200 in " in line and "attempt 2 of 3" in line for line in lines)
    assert any(
        line.startswith("Retrying POST /obj/create") and "after HTTP 500 (retry 1 of 2)" in line
        for line in lines
    )


# --- closing ------------------------------------------------------------------


async def test_closed_client_raises_client_closed_error(fault: FaultServer) -> None:
    api = make_client(fault)
    async with api:
        await api.health()
    assert api.is_closed
    with pytest.raises(ClientClosedError, match="is closed") as info:
        await api.obj_create(REQ)
    assert fault.url in str(info.value)
    with pytest.raises(ClientClosedError):
        async for _ in api.calls_query_stream(CallsQueryReq(project_id="e/p")):
            pass
    await api.aclose()  # closing twice is fine
    assert len(fault.requests_to(ROUTE)) == 0


async def test_rate_limit_error_class(fault: FaultServer) -> None:
    fault.script(ROUTE, then=Reply(429, {"detail": "quota"}, headers={"Retry-After": "0"}))
    async with make_client(fault, max_retries=1) as api:
        with pytest.raises(RateLimitError, match="quota"):
            await api.obj_create(REQ)
    assert len(fault.requests_to(ROUTE)) == 2
