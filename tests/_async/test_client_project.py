"""Creating a client: names, the current client, repr, and the W&B project upsert.

The project upsert talks W&B GraphQL; here W&B is a real HTTP server on loopback
(tests/faultserver.py) that answers as W&B does and records what it was sent.
A trace server is "a W&B one" when it sits at ``{WANDB_BASE_URL}/traces``.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faultserver import FaultServer, Reply
from weave_client import (
    APIError,
    AsyncWeaveClient,
    AuthenticationError,
    InvalidNameError,
    create_async_client,
)
from weave_client._context import current_client

KEY = "wandb-key-SECRET-0123456789abcdef"


@pytest.fixture
def wandb() -> Iterator[FaultServer]:
    with FaultServer() as server:
        yield server


@pytest.fixture
def wandb_env(wandb: FaultServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point WANDB_BASE_URL at the fake W&B; returns the trace server URL under it."""
    monkeypatch.setenv("WANDB_BASE_URL", wandb.url)
    return wandb.url + "/traces"


def graphql_ops(server: FaultServer) -> list[str]:
    """The GraphQL operation (Project / UpsertModel) of each request W&B received."""
    out = []
    for request in server.requests_to("/graphql"):
        query = request.json()["query"]
        out.append("UpsertModel" if "upsertModel" in query else "Project")
    return out


async def test_missing_project_is_looked_up_then_created(
    wandb: FaultServer, wandb_env: str
) -> None:
    wandb.script(
        "/graphql",
        Reply(200, {"data": {"model": None}}),
        Reply(200, {"data": {"upsertModel": {"model": {"name": "proj"}}}}),
    )
    client = await create_async_client("ent", "proj", server_url=wandb_env, api_key=KEY)
    await client.aclose()
    assert graphql_ops(wandb) == ["Project", "UpsertModel"]
    lookup, upsert = wandb.requests_to("/graphql")
    assert lookup.json()["variables"] == {"entity": "ent", "project": "proj"}
    assert upsert.json()["variables"] == {"entity": "ent", "name": "proj"}
    expected = "Basic " + base64.b64encode(f"api:{KEY}".encode()).decode()
    assert lookup.headers["authorization"] == expected
    # Nothing was sent to the trace server itself.
    assert [r.path for r in wandb.requests] == ["/graphql", "/graphql"]


async def test_existing_project_is_not_upserted(wandb: FaultServer, wandb_env: str) -> None:
    wandb.script("/graphql", Reply(200, {"data": {"model": {"id": "x", "name": "proj"}}}))
    async with AsyncWeaveClient("ent", "proj", server_url=wandb_env, api_key=KEY) as client:
        assert client.is_hosted
    assert graphql_ops(wandb) == ["Project"]


async def test_graphql_error_fails_creation_with_its_message(
    wandb: FaultServer, wandb_env: str
) -> None:
    wandb.script(
        "/graphql",
        Reply(200, {"data": {"model": None}}),
        Reply(200, {"errors": [{"message": "permission denied for entity ent"}]}),
    )
    with pytest.raises(APIError, match="permission denied for entity ent") as info:
        await create_async_client("ent", "proj", server_url=wandb_env, api_key=KEY)
    assert "creating project ent/proj" in str(info.value)
    assert KEY not in str(info.value)


async def test_refused_key_is_an_authentication_error(
    wandb: FaultServer, wandb_env: str
) -> None:
    wandb.script("/graphql", Reply(401, {"errors": [{"message": "bad key"}]}))
    with pytest.raises(AuthenticationError) as info:
        async with AsyncWeaveClient("ent", "proj", server_url=wandb_env, api_key=KEY):
            pass
    assert KEY not in str(info.value)


async def test_no_key_for_a_wandb_server_is_a_clear_error(
    wandb: FaultServer, wandb_env: str
) -> None:
    with pytest.raises(AuthenticationError, match="no API key"):
        await create_async_client("ent", "proj", server_url=wandb_env)
    assert wandb.requests == []


async def test_ensure_project_exists_false_contacts_nothing(
    wandb: FaultServer, wandb_env: str
) -> None:
    client = await create_async_client(
        "ent", "proj", server_url=wandb_env, api_key=KEY, ensure_project_exists=False
    )
    await client.aclose()
    assert wandb.requests == []


async def test_other_trace_servers_never_see_graphql(
    wandb: FaultServer, wandb_env: str, local_server_url: str
) -> None:
    async with AsyncWeaveClient("ent", "proj", server_url=local_server_url) as client:
        assert not client.is_hosted
        assert await client.objects() == []
    assert wandb.requests == []


@pytest.mark.parametrize(
    ("entity", "project", "bad"),
    [("", "p", "entity"), ("e/x", "p", "'/'"), ("e", "p:1", "':'"), ("e", " p", "whitespace")],
)
def test_invalid_names_fail_at_creation(entity: str, project: str, bad: str) -> None:
    with pytest.raises(InvalidNameError, match=bad):
        AsyncWeaveClient(entity, project, server_url="http://127.0.0.1:9")


def test_repr_names_the_project_never_the_key() -> None:
    client = AsyncWeaveClient("ent", "proj", server_url="http://127.0.0.1:9", api_key=KEY)
    text = repr(client)
    assert "ent" in text and "proj" in text and "http://127.0.0.1:9" in text
    assert KEY not in text
    assert KEY not in repr(vars(client))
    with pytest.raises(TypeError, match="cannot be pickled"):
        client.__reduce__()


async def test_the_client_entered_last_is_current(wandb: FaultServer) -> None:
    assert current_client() is None
    async with AsyncWeaveClient("ent", "outer", server_url=wandb.url) as outer:
        assert current_client() is outer
        async with AsyncWeaveClient("ent", "inner", server_url=wandb.url) as inner:
            assert current_client() is inner
        assert current_client() is outer
    assert current_client() is None


async def test_create_async_client_makes_it_current_until_closed(wandb: FaultServer) -> None:
    async with await create_async_client("ent", "proj", server_url=wandb.url) as client:
        assert current_client() is client
    assert current_client() is None
    client = await create_async_client("ent", "proj", server_url=wandb.url)
    assert current_client() is client
    await client.aclose()
    assert current_client() is None
    assert client.is_closed


async def test_the_name_wandb_gives_the_project_is_used(
    wandb: FaultServer, wandb_env: str
) -> None:
    wandb.script("/graphql", Reply(200, {"data": {"model": {"id": "x", "name": "my-proj"}}}))
    client = await create_async_client("ent", "My Proj", server_url=wandb_env, api_key=KEY)
    await client.aclose()
    assert client.project == "my-proj"
    assert client.project_id == "ent/my-proj"


async def test_calls_on_a_wandb_server_link_to_its_ui(wandb: FaultServer, wandb_env: str) -> None:
    from weave_client._async._call import AsyncCall as Call

    async with AsyncWeaveClient(
        "ent", "proj", server_url=wandb_env, api_key=KEY, ensure_project_exists=False
    ) as client:
        call = Call._from_schema(
            client,
            {
                "id": "0192-abc",
                "project_id": "ent/proj",
                "op_name": "weave:///ent/proj/op/predict:xyz",
                "trace_id": "t",
                "started_at": "2025-01-01T00:00:00Z",
                "attributes": {},
                "inputs": {"x": 1},
            },
        )
        # This W&B server has no api. host, so it is its own web app.
        assert call.ui_url == f"{wandb.url}/ent/proj/weave/calls/0192-abc"
        assert call.op_short_name == "predict"
        assert call.ref.uri() == "weave:///ent/proj/call/0192-abc"


async def test_server_resolution(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, local_server_url: str
) -> None:
    # Nothing configured: the embedded local server (data under the cache dir).
    monkeypatch.setenv("WEAVE_CLIENT_CACHE_DIR", str(tmp_path))
    async with AsyncWeaveClient("ent", "embedded") as client:
        assert client.server_url.startswith("http://127.0.0.1:")
        ref = await client.save({"where": "embedded"}, "thing")
        assert await client.get(ref) == {"where": "embedded"}
    # WEAVE_TRACE_SERVER_URL wins over the key.
    monkeypatch.setenv("WANDB_API_KEY", KEY)
    monkeypatch.setenv("WEAVE_TRACE_SERVER_URL", local_server_url)
    client = AsyncWeaveClient("ent", "env")
    assert client.server_url == local_server_url
    await client.aclose()
    # A key and no URL: the hosted service (nothing is sent until the client is used).
    monkeypatch.delenv("WEAVE_TRACE_SERVER_URL")
    client = AsyncWeaveClient("ent", "hosted")
    assert client.server_url == "https://trace.wandb.ai"
    assert client.is_hosted
    assert KEY not in repr(client)
    await client.aclose()
    # The argument wins over everything.
    client = AsyncWeaveClient("ent", "arg", server_url=local_server_url)
    assert client.server_url == local_server_url and not client.is_hosted
    await client.aclose()
