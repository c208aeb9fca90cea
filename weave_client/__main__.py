"""Command line: ``python -m weave_client serve`` (also the ``weave-client`` console script).

::

    python -m weave_client serve [--host 127.0.0.1] [--port 6345] [--db PATH] [--api-key KEY]
    python -m weave_client calls [--project entity/project] [--tree] [--op NAME] [--limit N]
    python -m weave_client calls --follow [--project entity/project] [--op NAME] [--roots]
"""

from __future__ import annotations

import argparse
import gc
import ipaddress
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from ._cli_calls import add_calls_parser

__all__ = ["main"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 6345
# Read when --api-key is not given, so the key need not appear in `ps` output.
API_KEY_ENV = "WEAVE_CLIENT_SERVER_API_KEY"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _serve(args: argparse.Namespace) -> int:
    if args.embedded_fd is not None:
        return _serve_embedded(args)
    import uvicorn

    from ._settings import local_db_path
    from .server import create_app
    from .server._ws_protocol import WS_OPTIONS

    db_path = Path(args.db).expanduser() if args.db else local_db_path()
    api_key = args.api_key if args.api_key is not None else os.environ.get(API_KEY_ENV) or None
    if not _is_loopback(args.host) and api_key is None:
        print(
            f"warning: serving on {args.host}, which is reachable from other machines, "
            f"without an API key: anyone who can reach it can read and write your traces. "
            f"Pass --api-key (or set {API_KEY_ENV}).",
            file=sys.stderr,
        )
    options = {} if args.keep_events is None else {"keep_events": args.keep_events}
    # The live watchers are handed off to a niced child process (_live_process).
    app = create_app(db_path, api_key=api_key, watch_process=True, **options)
    host = f"[{args.host}]" if ":" in args.host else args.host
    auth = " (HTTP Basic auth required)" if api_key else ""
    print(f"weave-client local trace server on http://{host}:{args.port}{auth}; data in {db_path}")
    print(f"trace viewer: http://{host}:{args.port}/", flush=True)
    # This process is only a server: move everything loaded so far out of the
    # collector's reach, and let it run less often (request bodies allocate
    # tens of thousands of short-lived containers; see scripts/benchmarks/bench_server.py).
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    try:
        uvicorn.run(
            app,
            host=args.host,
            port=args.port,
            log_level=args.log_level,
            access_log=False,
            **WS_OPTIONS,
        )
    finally:
        app.state.close()
    return 0


def _serve_embedded(args: argparse.Namespace) -> int:
    """The embedded server of a client process (see ``weave_client._embedded``).

    Serves on the listening socket inherited as ``--embedded-fd``, writes the ready
    line on stdout once it accepts connections, and stops when stdin closes (the
    client process exited or died).
    """
    import socket
    import threading
    import time

    import uvicorn

    from ._embedded import READY_LINE
    from .server import create_app
    from .server._ws_protocol import WS_OPTIONS

    sock = socket.socket(fileno=args.embedded_fd)
    app = create_app(Path(args.db), watch_process=True)
    config = uvicorn.Config(
        app,
        log_level=args.log_level,
        access_log=False,
        lifespan="off",
        # Keep-alive a little longer than clients' pools expect to reuse.
        timeout_keep_alive=30,
        # Stopping must not hang on a client that keeps a stream open.
        timeout_graceful_shutdown=5,
        **WS_OPTIONS,
    )
    server = uvicorn.Server(config)

    def watch_parent() -> None:
        # EOF (or an error) on stdin: the client process is gone or done with us.
        try:
            while sys.stdin.buffer.read(4096):
                pass
        except OSError:
            pass
        server.should_exit = True

    def say_ready() -> None:
        while not server.started and not server.should_exit:
            time.sleep(0.002)
        if server.started:
            sys.stdout.buffer.write(READY_LINE)
            sys.stdout.buffer.flush()

    threading.Thread(target=watch_parent, daemon=True).start()
    threading.Thread(target=say_ready, daemon=True).start()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    try:
        server.run(sockets=[sock])
    finally:
        app.state.close()
    return 0


def _at_least_one(text: str) -> int:
    """An argparse type: a whole number of at least 1 (argparse names the option on error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="weave-client", description="weave-client command line tools."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser(
        "serve", help="run the local trace server (the hosted Weave trace API over SQLite)"
    )
    serve.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind (default {DEFAULT_HOST})")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    serve.add_argument(
        "--db",
        default=None,
        help="SQLite file (default: WEAVE_CLIENT_DB, else traces.db in the user cache dir)",
    )
    serve.add_argument(
        "--api-key",
        default=None,
        help=f"require HTTP Basic auth with this password (default: {API_KEY_ENV}, else none)",
    )
    serve.add_argument(
        "--keep-events",
        type=_at_least_one,
        default=None,
        # (The server's DEFAULT_KEEP_EVENTS: not imported here, the server loads on use.)
        help="how many call events to keep for /calls/watch replays, the newest "
        "(default 1,000,000)",
    )
    serve.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="uvicorn log level (default info)",
    )
    # Internal: the embedded server of a client process, on the socket it bound.
    serve.add_argument("--embedded-fd", type=int, default=None, help=argparse.SUPPRESS)
    serve.set_defaults(func=_serve)
    add_calls_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m weave_client`` and the ``weave-client`` script."""
    args = _parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
