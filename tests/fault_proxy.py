"""A real fault-injecting HTTP proxy on 127.0.0.1, in front of a real trace server.

Unlike ``tests/faultserver.py`` (which answers from a script and stores nothing),
this proxy forwards every request it does not break to a real upstream server
(ours, usually), so a test can check what actually got stored::

    with FaultProxy(upstream_url, fault_rate=0.3, seed=7) as proxy:
        client = WeaveClient(..., server_url=proxy.url)
        ...
        proxy.stats  # Counter of what was injected, by kind

Faults (``FAULT_KINDS``), drawn from a seeded ``random.Random``:

- ``"500"``, ``"502"``, ``"503"``: that status, upstream never sees the request;
- ``"502_after"``: the request reaches upstream (and is stored), the client gets a 502;
- ``"429"``: 429 with a ``Retry-After`` header, upstream never sees the request;
- ``"slow"``: forwarded, but the answer comes ``slow_delay`` seconds late (longer
  than the client's timeout, so it gives up while upstream has stored the request);
- ``"reset_before"``: the connection is reset mid-request, nothing forwarded;
- ``"reset_after"``: forwarded, then the connection is reset instead of answering;
- ``"cut"``: forwarded, then half the response body is sent and the connection
  reset (mid-stream for the JSONL routes).

``force(path, *kinds)`` queues faults for the next requests to a path, for
deterministic tests; ``fault_rate`` applies to everything else. Every delay is
capped (``MAX_DELAY``) and ends early when the proxy stops; ``max_faults`` bounds
how many faults are injected in all. Everything runs in daemon threads.
"""

from __future__ import annotations

import http.client
import random
import socket
import struct
import threading
import urllib.parse
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests._loopback import LoopbackHTTPServer, QuietThreadingServer

__all__ = ["FAULT_KINDS", "FaultProxy"]

FAULT_KINDS: tuple[str, ...] = (
    "500",
    "502",
    "503",
    "502_after",
    "429",
    "slow",
    "reset_before",
    "reset_after",
    "cut",
)

#: No injected delay may exceed this, so a broken test still finishes.
MAX_DELAY = 10.0

# Hop-by-hop headers (RFC 9110 7.6.1) are the proxy's own business, never forwarded.
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "host",
    "content-length",
}


class _Dropped(Exception):
    """The handler tore the connection down on purpose."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests read proxy.stats instead of stderr noise

    def setup(self) -> None:
        super().setup()
        # One upstream connection per client connection, kept alive alongside it.
        self._upstream: http.client.HTTPConnection | None = None

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            if self._upstream is not None:
                self._upstream.close()

    def _serve(self) -> None:
        proxy = self.server.proxy
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path = self.path.split("?", 1)[0]
        kind = proxy._draw(path)
        try:
            if kind is None:
                status, headers, payload = self._forward(body)
                if proxy.latency:
                    proxy._stopped.wait(min(proxy.latency, MAX_DELAY))
                self._send(status, headers, payload)
            elif kind in ("500", "502", "503"):
                self._send(int(kind), {"content-type": "application/json"}, _fault_body(kind))
            elif kind == "429":
                headers = {"content-type": "application/json", "retry-after": proxy.retry_after}
                self._send(429, headers, _fault_body(kind))
            elif kind == "reset_before":
                self._drop()
            else:
                status, headers, payload = self._forward(body)
                if kind == "502_after":
                    self._send(502, {"content-type": "application/json"}, _fault_body(kind))
                elif kind == "slow":
                    proxy._stopped.wait(min(proxy.slow_delay, MAX_DELAY))
                    self._send(status, headers, payload)
                elif kind == "reset_after":
                    self._drop()
                else:  # "cut"
                    self._send(status, headers, payload, cut_at=len(payload) // 2)
        except (BrokenPipeError, ConnectionResetError, _Dropped):
            self.close_connection = True

    do_GET = _serve
    do_POST = _serve
    do_PUT = _serve
    do_DELETE = _serve

    def _forward(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
        proxy = self.server.proxy
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        headers["Content-Length"] = str(len(body))
        for attempt in (1, 2):
            if self._upstream is None:
                self._upstream = http.client.HTTPConnection(
                    proxy._upstream_host, proxy._upstream_port, timeout=60
                )
            try:
                self._upstream.request(self.command, self.path, body=body, headers=headers)
                response = self._upstream.getresponse()
                payload = response.read()  # de-chunks a streamed body
            except (OSError, http.client.HTTPException):
                # A kept-alive upstream connection may have been closed meanwhile.
                self._upstream.close()
                self._upstream = None
                if attempt == 2:
                    raise
                continue
            out = {k.lower(): v for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP}
            return response.status, out, payload
        raise AssertionError("unreachable")

    def _send(
        self, status: int, headers: dict[str, str], payload: bytes, cut_at: int | None = None
    ) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if cut_at is None:
            self.wfile.write(payload)
            return
        self.wfile.write(payload[:cut_at])
        self.wfile.flush()
        self.server.proxy._stopped.wait(0.02)  # let the partial body arrive before the RST
        self._drop()

    def _drop(self) -> None:
        # SO_LINGER with a zero timeout turns close() into an RST.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True
        raise _Dropped


def _fault_body(kind: str) -> bytes:
    return b'{"reason": "fault_proxy: injected ' + kind.encode() + b'"}'


class _Server(QuietThreadingServer):
    # A client that gave up (timeout) or a dropped keep-alive is expected here.
    quiet_errors = (ConnectionError, _Dropped)
    proxy: FaultProxy


class FaultProxy(LoopbackHTTPServer):
    """The proxy; use as a context manager or call ``start()``/``stop()``.

    - ``fault_rate``: the share of requests (not forced) that get a fault.
    - ``kinds``: which faults to draw from, uniformly (default: all of ``FAULT_KINDS``).
    - ``seed``: the draw's seed, so a run can be repeated.
    - ``slow_delay``: how late a ``"slow"`` answer comes (keep it above the client's timeout).
    - ``retry_after``: the ``Retry-After`` value of a 429.
    - ``max_faults``: stop injecting (random faults) after this many.
    - ``paths``: only these paths get random faults (default: every path).
    - ``latency``: seconds added to every answer that is not a fault (a slow server).
    """

    def __init__(
        self,
        upstream: str,
        *,
        fault_rate: float = 0.0,
        kinds: Sequence[str] = FAULT_KINDS,
        seed: int = 0,
        slow_delay: float = 1.0,
        retry_after: str = "0.01",
        max_faults: int | None = None,
        paths: Iterable[str] | None = None,
        latency: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        unknown = set(kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}; known: {FAULT_KINDS}")
        if not 0.0 <= fault_rate <= 1.0:
            raise ValueError(f"fault_rate must be within [0, 1], got {fault_rate!r}")
        parts = urllib.parse.urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname or parts.port is None:
            raise ValueError(f"upstream must be http://host:port, got {upstream!r}")
        self.upstream = upstream.rstrip("/")
        self._upstream_host = parts.hostname
        self._upstream_port = parts.port
        self.fault_rate = fault_rate
        self.kinds = tuple(kinds)
        self.slow_delay = slow_delay
        self.retry_after = retry_after
        self.max_faults = max_faults
        self.paths = frozenset(paths) if paths is not None else None
        self.latency = latency
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._forced: dict[str, deque[str]] = {}
        self.stats: Counter[str] = Counter()
        self.requests: Counter[str] = Counter()
        super().__init__(_Handler, host=host, port=port, name="fault-proxy", server_class=_Server)
        self._httpd.proxy = self  # type: ignore[attr-defined]

    @property
    def faults(self) -> int:
        """How many faults were injected in all."""
        with self._lock:
            return sum(self.stats.values())

    def force(self, path: str, *kinds: str) -> None:
        """Inject ``kinds`` (in order) into the next requests to ``path``."""
        unknown = set(kinds) - set(FAULT_KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds {sorted(unknown)}")
        with self._lock:
            self._forced.setdefault(path, deque()).extend(kinds)

    def _draw(self, path: str) -> str | None:
        with self._lock:
            self.requests[path] += 1
            forced = self._forced.get(path)
            if forced:
                kind = forced.popleft()
                self.stats[kind] += 1
                return kind
            if self.fault_rate <= 0.0 or (self.paths is not None and path not in self.paths):
                return None
            if self.max_faults is not None and sum(self.stats.values()) >= self.max_faults:
                return None
            if self._random.random() >= self.fault_rate:
                return None
            kind = self._random.choice(self.kinds)
            self.stats[kind] += 1
            return kind
