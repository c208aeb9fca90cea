"""The background server's listening socket: accepted connections get TCP_NODELAY."""

from __future__ import annotations

import socket
from pathlib import Path

from weave_client.server import start_background_server


def test_listening_socket_is_tcp_so_asyncio_disables_nagle(tmp_path: Path) -> None:
    # asyncio sets TCP_NODELAY on an accepted connection only when the socket's
    # proto is IPPROTO_TCP (accepted sockets inherit it from the listener). With
    # proto 0, every small reply waited on Nagle + delayed ACK (~40 ms a batch).
    with start_background_server(tmp_path / "s.db") as server:
        listener = server._sock
        assert listener.proto == socket.IPPROTO_TCP
        with socket.create_connection(("127.0.0.1", server.port)) as client:
            client.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            reply = b""
            while chunk := client.recv(4096):
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 200")
