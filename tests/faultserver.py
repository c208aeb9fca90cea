"""A real, deliberately misbehaving HTTP/1.1 server on 127.0.0.1, for fault tests.

Tests script what each route answers, request by request::

    with FaultServer() as server:
        server.script("/calls/query", Reply(503), Reply(503), Reply(200, {"calls": []}))
        server.script("/health", Reset())                      # RST before any response
        server.script("/obj/read", Reply(200, {}, delay=5))    # slower than the client's timeout
        server.script("/calls/stream_query", JsonlStream(rows, cut_after=3))
        ...
        server.requests  # every request seen: method, path, headers, body, arrival time

Once a route's script is used up it answers with its ``then`` step (by default
``200 {}``). Everything runs in daemon threads; every delay is capped and ends
early when the server stops, so a test can never hang on it. No mocks: the
client under test talks to this server over real loopback sockets.
"""

from __future__ import annotations

import itertools
import json
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests._loopback import LoopbackHTTPServer, QuietThreadingServer

__all__ = ["FaultServer", "JsonlStream", "RecordedRequest", "Reply", "Reset", "Step"]

#: No scripted delay may exceed this, so a broken test still finishes.
MAX_DELAY = 15.0


def _encode(body: Any) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode("utf-8")
    return json.dumps(body).encode("utf-8")


@dataclass
class Reply:
    """Answer with ``status`` and ``body`` (JSON-encoded unless bytes/str) after ``delay`` seconds."""

    status: int = 200
    body: Any = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Reset:
    """Break the connection with a TCP reset.

    With ``after_bytes=None`` nothing is sent at all; otherwise a 200 response with a
    ``Content-Length`` of ``len(body)`` is started and cut after ``after_bytes`` bytes
    of its body.
    """

    after_bytes: int | None = None
    body: Any = field(default_factory=lambda: {"padding": "x" * 200})


@dataclass
class JsonlStream:
    """A 200 JSONL response, one JSON value per line.

    ``cut_after``: stop after that many complete lines, send half of the next one,
    and drop the connection (``cut="reset"`` for an RST, ``"close"`` for a clean
    FIN). ``framing="chunked"`` uses chunked transfer encoding (as FastAPI does);
    ``"close"`` sends no length at all, so only the broken last line shows the cut.
    ``line_delay`` pauses between lines.
    """

    lines: Iterable[Any]  # a generator works too: lines are encoded as they are sent
    cut_after: int | None = None
    cut: str = "close"
    framing: str = "chunked"
    line_delay: float = 0.0


Step = Reply | Reset | JsonlStream


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    time: float  # time.monotonic() on arrival, taken by the server
    client_port: int  # tells connections apart: keep-alive reuses the port

    def json(self) -> Any:
        return json.loads(self.body)


class _Dropped(Exception):
    """The handler tore the connection down on purpose."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests read server.requests instead of stderr noise

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0]
        fault = self.server.fault
        fault._record(
            RecordedRequest(
                method=self.command,
                path=path,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
                time=time.monotonic(),
                client_port=self.client_address[1],
            )
        )
        step = fault._next_step(path)
        try:
            if isinstance(step, Reply):
                self._reply(step)
            elif isinstance(step, Reset):
                self._reset(step)
            else:
                self._stream(step)
        except (BrokenPipeError, ConnectionResetError, _Dropped):
            self.close_connection = True

    do_GET = _serve
    do_POST = _serve
    do_PUT = _serve
    do_DELETE = _serve

    def _wait(self, seconds: float) -> None:
        if seconds > 0:
            self.server.fault._stopped.wait(min(seconds, MAX_DELAY))

    def _reply(self, step: Reply) -> None:
        self._wait(step.delay)
        payload = _encode(step.body)
        self.send_response(step.status)
        headers = {"Content-Type": "application/json", **step.headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _drop(self, how: str) -> None:
        if how == "reset":
            # SO_LINGER with a zero timeout turns close() into an RST.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.connection.close()
        self.close_connection = True
        raise _Dropped

    def _reset(self, step: Reset) -> None:
        if step.after_bytes is not None:
            payload = _encode(step.body)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload[: step.after_bytes])
            self.wfile.flush()
            time.sleep(0.05)  # let the partial body reach the client before the RST
        self._drop("reset")

    def _stream(self, step: JsonlStream) -> None:
        chunked = step.framing == "chunked"
        self.send_response(200)
        self.send_header("Content-Type", "application/jsonl")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Connection", "close")
        self.end_headers()

        def write(data: bytes) -> None:
            if chunked:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            else:
                self.wfile.write(data)
            self.wfile.flush()

        for i, value in enumerate(step.lines):
            line = _encode(value) + b"\n"
            if step.cut_after is not None and i >= step.cut_after:
                write(line[: max(1, len(line) // 2)])
                time.sleep(0.05)
                self._drop(step.cut)
            write(line)
            self._wait(step.line_delay)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.close_connection = True
        self.wfile.flush()


class _Server(QuietThreadingServer):
    fault: FaultServer


class FaultServer(LoopbackHTTPServer):
    """The scriptable server; use as a context manager or call ``start()``/``stop()``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._lock = threading.Lock()
        self._scripts: dict[str, deque[Step]] = {}
        self._then: dict[str, Step] = {}
        self._default: Step = Reply(200, {})
        self._requests: list[RecordedRequest] = []
        super().__init__(_Handler, host=host, port=port, name="faultserver", server_class=_Server)
        self._httpd.fault = self  # type: ignore[attr-defined]

    # --- scripting ---------------------------------------------------------

    def script(self, path: str, *steps: Step, then: Step | None = None) -> None:
        """Queue ``steps`` for requests to ``path``; afterwards answer with ``then``."""
        with self._lock:
            self._scripts.setdefault(path, deque()).extend(steps)
            if then is not None:
                self._then[path] = then

    def set_default(self, step: Step) -> None:
        """What routes with no script (or a used-up one and no ``then``) answer."""
        with self._lock:
            self._default = step

    def _next_step(self, path: str) -> Step:
        with self._lock:
            queue = self._scripts.get(path)
            if queue:
                return queue.popleft()
            return self._then.get(path, self._default)

    # --- what happened -----------------------------------------------------

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path]

    @staticmethod
    def gaps(requests: Iterable[RecordedRequest]) -> list[float]:
        """Seconds between consecutive arrivals, as the server measured them."""
        times = [r.time for r in requests]
        return [b - a for a, b in itertools.pairwise(times)]
