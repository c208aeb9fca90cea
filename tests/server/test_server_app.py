"""Server tier: auth, body limit, malformed requests, the CLI and the embedded server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from weave_client.server import BackgroundServer, embedded_server_url, start_background_server

POST_ROUTES = [
    "/call/start",
    "/call/end",
    "/call/upsert_batch",
    "/call/read",
    "/call/update",
    "/calls/query",
    "/calls/stream_query",
    "/calls/query_stats",
    "/calls/delete",
    "/threads/stream_query",
    "/obj/create",
    "/obj/read",
    "/objs/query",
    "/obj/delete",
    "/table/create",
    "/table/update",
    "/table/query",
    "/table/query_stream",
    "/table/query_stats",
    "/refs/read_batch",
    "/file/create",
    "/file/content",
    "/feedback/create",
    "/feedback/query",
    "/feedback/purge",
    "/feedback/replace",
    "/feedback/batch/create",
]
KEY = "s3cret-key-for-tests"


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    """A server that requires the API key, with a small body limit."""
    db = tmp_path_factory.mktemp("guarded") / "t.db"
    with start_background_server(db, api_key=KEY, max_body_bytes=4096) as server:
        yield server


@pytest.fixture
def http(local_server: BackgroundServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=local_server.url, timeout=30) as client:
        yield client


@pytest.mark.parametrize("route", POST_ROUTES)
@pytest.mark.parametrize(
    "body",
    [b"{}", b"[]", b"null", b"{not json", b'{"project_id": 5, "obj": 1, "table": [], "batch": {}}'],
    ids=["empty", "list", "null", "garbage", "wrong-types"],
)
def test_malformed_bodies_are_4xx_never_500(http: httpx.Client, route: str, body: bytes) -> None:
    r = http.post(route, content=body, headers={"content-type": "application/json"})
    assert 400 <= r.status_code < 500, (route, r.status_code, r.text)
    reason = r.json()["reason"]
    assert isinstance(reason, str) and reason


def test_validation_error_names_the_field(http: httpx.Client) -> None:
    r = http.post("/obj/read", json={"project_id": "e/p", "object_id": "x"})
    assert r.status_code == 422
    body = r.json()
    assert "digest" in body["reason"]
    # FastAPI's list under `detail`, as the hosted service answers a 422 (without `input`).
    assert body["detail"] == [{"loc": ["body", "digest"], "msg": "Field required", "type": "missing"}]


def test_unknown_route_is_404(http: httpx.Client) -> None:
    assert http.post("/no/such/route", json={}).status_code == 404


def test_api_key_required_on_every_route(guarded: BackgroundServer) -> None:
    with httpx.Client(base_url=guarded.url) as anon:
        for route in ("/health", "/server_info"):
            r = anon.get(route)
            assert r.status_code == 401
            assert r.headers["www-authenticate"].startswith("Basic")
        for route in POST_ROUTES:
            assert anon.post(route, json={}).status_code == 401, route
    with httpx.Client(base_url=guarded.url, auth=("api", "wrong")) as wrong:
        r = wrong.get("/health")
        assert r.status_code == 401
        assert KEY not in r.text
    with httpx.Client(base_url=guarded.url, headers={"authorization": "Bearer " + KEY}) as bearer:
        assert bearer.get("/health").status_code == 401
    with httpx.Client(base_url=guarded.url, auth=("api", KEY)) as ok:
        assert ok.get("/health").json() == {"status": "ok"}
        r = ok.post("/calls/query", json={"project_id": "e/p"})
        assert r.status_code == 200 and r.json() == {"calls": []}


def test_body_limit_is_413(guarded: BackgroundServer) -> None:
    with httpx.Client(base_url=guarded.url, auth=("api", KEY)) as http:
        big = {"project_id": "e/p", "refs": ["x" * 100] * 100}
        r = http.post("/refs/read_batch", json=big)
        assert r.status_code == 413
        assert "4096" in r.json()["reason"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted while reading
            yield b'{"refs": ['
            for _ in range(100):
                yield b'"' + b"x" * 100 + b'",'
            yield b'"x"]}'

        r = http.post(
            "/refs/read_batch", content=chunks(), headers={"content-type": "application/json"}
        )
        assert r.status_code == 413
        small = http.post("/refs/read_batch", json={"refs": []})
        assert small.status_code == 200 and small.json() == {"vals": []}


def test_background_server_lifecycle(tmp_path: Path) -> None:
    server = start_background_server(tmp_path / "a.db")
    try:
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert httpx.get(server.url + "/health").status_code == 200
        assert "127.0.0.1" in repr(server)
    finally:
        server.stop()
    server.stop()  # idempotent
    with pytest.raises(httpx.TransportError):
        httpx.get(server.url + "/health", timeout=2)
    # The data outlives the server.
    with start_background_server(tmp_path / "a.db") as again:
        httpx.post(
            again.url + "/obj/create",
            json={"obj": {"project_id": "e/p", "object_id": "k", "val": 1}},
        ).raise_for_status()
    with start_background_server(tmp_path / "a.db") as third:
        r = httpx.post(
            third.url + "/obj/read",
            json={"project_id": "e/p", "object_id": "k", "digest": "latest"},
        )
        assert r.json()["obj"]["val"] == 1


def test_api_key_never_in_repr(tmp_path: Path) -> None:
    with start_background_server(tmp_path / "k.db", api_key=KEY) as server:
        assert KEY not in repr(server)
        assert KEY not in repr(vars(server))


def test_embedded_server_is_a_singleton(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("WEAVE_CLIENT_DB", str(tmp_path / "embedded.db"))
    with caplog.at_level("INFO", logger="weave_client.server"):
        url = embedded_server_url()
    assert embedded_server_url() == url
    assert httpx.get(url + "/health").json() == {"status": "ok"}
    started = [r for r in caplog.records if "storing traces in" in r.getMessage()]
    # Another test may have started it first (it is process-wide); if we did, it said where.
    if started:
        assert str(tmp_path / "embedded.db") in started[0].getMessage()
        assert (tmp_path / "embedded.db").exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(
    tmp_path: Path, *args: str, env_key: str | None = None
) -> tuple[subprocess.Popen[str], str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "WEAVE_CLIENT_SERVER_API_KEY"}
    if env_key is not None:
        env["WEAVE_CLIENT_SERVER_API_KEY"] = env_key
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "weave_client",
            "serve",
            "--port",
            str(port),
            "--db",
            str(tmp_path / "cli.db"),
            "--log-level",
            "warning",
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    return proc, f"http://127.0.0.1:{port}"


def _wait(
    proc: subprocess.Popen[str], url: str, auth: tuple[str, str] | None = None
) -> httpx.Response:
    deadline = time.monotonic() + 60
    while True:
        try:
            return httpx.get(url + "/health", auth=auth, timeout=2)
        except httpx.TransportError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"serve did not come up: {proc.communicate()}") from None
            time.sleep(0.1)


def test_cli_serve_with_api_key(tmp_path: Path) -> None:
    proc, url = _serve(tmp_path, "--api-key", KEY)
    try:
        assert _wait(proc, url).status_code == 401
        assert httpx.get(url + "/health", auth=("api", KEY)).json() == {"status": "ok"}
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=20)
    assert "HTTP Basic auth required" in out
    assert str(tmp_path / "cli.db") in out
    assert KEY not in out + err
    assert "warning" not in err


def test_cli_serve_key_from_env_and_public_host_warning(tmp_path: Path) -> None:
    # Loopback host: no warning; the key comes from the environment.
    proc, url = _serve(tmp_path, env_key=KEY)
    try:
        assert _wait(proc, url).status_code == 401
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert "warning" not in err
    # A non-loopback host without a key: warned (the bind itself may fail in a sandbox).
    proc, _ = _serve(tmp_path, "--host", "0.0.0.0")
    try:
        deadline = time.monotonic() + 30
        err_text = ""
        assert proc.stderr is not None
        while "warning" not in err_text and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            err_text += line
    finally:
        proc.terminate()
        proc.communicate(timeout=20)
    assert "without an API key" in err_text


def test_cli_requires_a_command() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "weave_client"], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 2
    assert "serve" in r.stderr
