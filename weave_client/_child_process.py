"""Helper processes of this package (the embedded server, the live watchers' process): how
they are started, how one says it is ready, and how they are stopped.

Each runs ``python -m <a module of this package>`` with pipes on its stdin and
stdout. It says it is ready with one line on stdout, and it exits when its stdin
closes, so it never outlives this process, however this process ends.
"""

from __future__ import annotations

import logging
import os
import selectors
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

__all__ = ["spawn_module", "stop_child", "wait_ready"]

logger = logging.getLogger("weave_client")

# The directory this package was imported from (the child must import the same code).
_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)


def spawn_module(
    module: str, args: Sequence[str], *, pass_fds: Sequence[int] = (), own_session: bool = True
) -> subprocess.Popen[bytes]:
    """Start ``python -m module *args`` with piped stdin and stdout, out of the terminal's
    process group (a Ctrl-C reaches this process only, which stops the child).

    ``own_session``: in a session of its own too, so Linux's scheduler weighs it as a
    group of its own (autogroup) against this process's whole session. False keeps it
    in this session's group, where its niceness counts against this process: what a
    niced helper needs (in a group of its own, nice 19 would still take half the CPU
    this process's session wants).
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_ROOT, env.get("PYTHONPATH")]))
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        pass_fds=tuple(pass_fds),
        env=env,
        start_new_session=own_session,
        process_group=None if own_session else 0,
    )


def wait_ready(proc: subprocess.Popen[bytes], line: bytes, timeout: float) -> bool:
    """True once ``proc`` wrote ``line`` (and nothing after it) on stdout; False if it
    exits or ``timeout`` seconds pass first."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    received = b""
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while line not in received:
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                return False
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                return False
            received += chunk
    return True


def stop_child(proc: subprocess.Popen[bytes], timeout: float, what: str) -> None:
    """Close ``proc``'s stdin (its signal to finish and exit) and wait for it; after
    ``timeout`` seconds kill it, saying so as ``what`` did not stop."""
    if proc.stdin is not None and not proc.stdin.closed:
        try:
            proc.stdin.close()
        except OSError:
            pass
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        logger.warning("weave-client: %s did not stop in %.0f s; killed", what, timeout)
        proc.kill()
        proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()
