"""``python -m weave_client calls``: recent calls as a table, or the latest traces as trees.

::

    python -m weave_client calls [--project entity/project] [--tree] [--op NAME]
                                 [--limit N] [--server-url URL] [--follow]

The server is ``--server-url``, else ``WEAVE_TRACE_SERVER_URL``, else the hosted
service when ``WANDB_API_KEY`` is set, else the local database the embedded
server writes (read by a short-lived local server). Without ``--project`` the
local server's most recently active project is shown. It speaks the public
trace API over plain httpx (``/calls/query``); only the project default uses
the local server's ``GET /viewer/projects``.

``--follow`` prints calls as they end, like ``tail -f``, until Ctrl-C: it reads
``client.calls_live()`` (the local server's ``/calls/watch``, else polling).

:func:`show_calls` does the same from Python (the demo ends with it);
:func:`follow_calls` is ``--follow``.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from . import _routes as routes
from ._cli_format import (
    cost_of,
    latency_text,
    money,
    op_name,
    outcome,
    started_text,
    status_of,
    status_text,
    tokens_of,
)
from ._errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    InvalidSettingError,
    WeaveError,
    status_error_class,
)
from ._http import error_message
from ._settings import local_db_path, resolve_api_key, resolve_server_url

__all__ = ["add_calls_parser", "follow_calls", "run_calls", "show_calls"]

DEFAULT_LIMIT_TABLE = 20
DEFAULT_LIMIT_TREES = 5
# A trace tree prints at most this many calls; the rest are counted.
MAX_TREE_CALLS = 500
_TIMEOUT = 30.0
_LIST_COLUMNS = [
    "id",
    "trace_id",
    "parent_id",
    "op_name",
    "display_name",
    "started_at",
    "ended_at",
    "exception",
    "summary",
]
# The table's Output column (an error's exception, else the output): its text is cut to
# _OUTPUT_WIDTH characters, and it is shown on consoles at least _OUTPUT_MIN_CONSOLE wide.
_OUTPUT_WIDTH = 40
_OUTPUT_MIN_CONSOLE = 120


class _Api:
    """The few trace-server routes the command needs, over one httpx client."""

    def __init__(self, base_url: str, api_key: str | None) -> None:
        auth = ("api", api_key) if api_key else None
        self._http = httpx.Client(base_url=base_url.rstrip("/"), auth=auth, timeout=_TIMEOUT)

    def close(self) -> None:
        self._http.close()

    def _send(self, method: str, route: str, body: dict[str, Any] | None = None) -> Any:
        try:
            res = self._http.request(method, route, json=body)
        except httpx.TimeoutException as exc:
            raise APITimeoutError(f"{route} timed out after {_TIMEOUT:g} s", route=route) from exc
        except httpx.TransportError as exc:
            raise APIConnectionError(
                f"cannot reach the trace server at {self._http.base_url} ({exc})", route=route
            ) from exc
        if res.status_code >= 400:
            message, body = error_message(res.content, res.reason_phrase)
            raise status_error_class(res.status_code)(
                message, status_code=res.status_code, route=route, body=body
            )
        return res.json()

    def post(self, route: str, body: dict[str, Any]) -> Any:
        return self._send("POST", route, body)

    def get(self, route: str) -> Any:
        return self._send("GET", route)


@contextmanager
def _server(server_url: str | None) -> Iterator[str]:
    """The URL to read from; serves the local database for the block when no server is named."""
    url = resolve_server_url(server_url)
    if url is not None:
        yield url
        return
    path = local_db_path()
    if not path.exists():
        raise InvalidSettingError(
            f"no trace server named (--server-url, WEAVE_TRACE_SERVER_URL) and no local "
            f"traces at {path} yet: trace something first, or name a server"
        )
    from .server import start_background_server

    server = start_background_server(path)
    try:
        yield server.url
    finally:
        server.stop()


def _default_project(api: _Api) -> str:
    try:
        projects = api.get("/viewer/projects")["projects"]
    except APIStatusError as exc:
        if exc.status_code == 404:
            raise InvalidSettingError(
                "--project is required: this server cannot list its projects"
            ) from exc
        raise
    if not projects:
        raise InvalidSettingError("the server holds no projects yet: nothing to show")
    return str(projects[0]["project_id"])


def _validate_project(project_id: str) -> str:
    entity, sep, project = project_id.partition("/")
    if not sep or not entity or not project or "/" in project:
        raise InvalidSettingError(f"--project must be 'entity/project', got {project_id!r}")
    return project_id


# -- the two views --------------------------------------------------------------------------


def _op_filter(project_id: str, op: str | None) -> dict[str, Any]:
    if not op:
        return {}
    names = [op] if op.startswith("weave:///") else [op, f"weave:///{project_id}/op/{op}:*"]
    return {"op_names": names}


def _calls_table(api: _Api, console: Console, project_id: str, op: str | None, limit: int) -> None:
    calls = api.post(
        routes.CALLS_QUERY,
        {
            "project_id": project_id,
            "filter": _op_filter(project_id, op),
            "sort_by": [{"field": "started_at", "direction": "desc"}],
            "limit": limit,
            "columns": [*_LIST_COLUMNS, "output"],
            "include_costs": True,
        },
    )["calls"]
    if not calls:
        console.print(
            f"No calls in {escape(project_id)}" + (f" for op {escape(op)}." if op else ".")
        )
        return
    # Text, not str: rich would read "[...]" in a name as markup.
    table = Table(
        title=Text(f"Latest calls in {project_id}"),
        title_justify="left",
        header_style="bold",
        box=box.SIMPLE_HEAD,
    )
    # Output only on a terminal wide enough for it and every other column.
    with_output = console.width >= _OUTPUT_MIN_CONSOLE
    table.add_column("Started", no_wrap=True)
    table.add_column("Op", min_width=12)
    table.add_column("Name")
    table.add_column("Status", no_wrap=True)
    table.add_column("Latency", justify="right", no_wrap=True)
    table.add_column("Tokens", justify="right", no_wrap=True)
    table.add_column("Cost", justify="right", no_wrap=True)
    if with_output:
        table.add_column("Output", no_wrap=True, overflow="ellipsis", max_width=_OUTPUT_WIDTH + 2)
    for call in calls:
        tokens = tokens_of(call)
        cost = cost_of(call)
        output = [outcome(call, _OUTPUT_WIDTH, arrow="")] if with_output else []
        table.add_row(
            started_text(call),
            Text(op_name(call["op_name"]), style="bold"),
            Text(call.get("display_name") or "", style="dim"),
            status_text(status_of(call)),
            latency_text(call),
            "—" if tokens is None else f"{tokens:,}",
            "—" if cost is None else money(cost),
            *output,
        )
    console.print(table)


@dataclass
class _Node:
    call: dict[str, Any]
    children: list[_Node] = field(default_factory=list)


def _trace_calls(api: _Api, project_id: str, trace_id: str) -> tuple[list[dict[str, Any]], int]:
    base: dict[str, Any] = {"project_id": project_id, "filter": {"trace_ids": [trace_id]}}
    calls = api.post(
        routes.CALLS_QUERY,
        {
            **base,
            "sort_by": [{"field": "started_at", "direction": "asc"}],
            "limit": MAX_TREE_CALLS,
            "columns": [*_LIST_COLUMNS, "output"],
            "include_costs": True,
        },
    )["calls"]
    total = len(calls)
    if total == MAX_TREE_CALLS:
        total = int(api.post(routes.CALLS_QUERY_STATS, base)["count"])
    return calls, total


def _node_label(call: dict[str, Any]) -> Text:
    # One line per call, cut at the terminal's edge: a tree that wraps is hard to follow.
    label = Text(no_wrap=True, overflow="ellipsis")
    label.append(op_name(call["op_name"]), style="bold")
    if call.get("display_name"):
        label.append(f" {call['display_name']}", style="dim")
    label.append("  ")
    label.append_text(status_text(status_of(call)))
    label.append(f"  {latency_text(call)}", style="dim")
    tokens = tokens_of(call)
    if tokens is not None:
        label.append(f"  {tokens:,} tokens", style="dim")
    cost = cost_of(call)
    if cost is not None:
        label.append(f"  {money(cost)}", style="dim")
    if call.get("ended_at"):
        label.append("  ")
        label.append_text(outcome(call, 50 if call.get("exception") else 40))
    return label


def _trees(api: _Api, console: Console, project_id: str, op: str | None, limit: int) -> None:
    roots = api.post(
        routes.CALLS_QUERY,
        {
            "project_id": project_id,
            "filter": {"trace_roots_only": True, **_op_filter(project_id, op)},
            "sort_by": [{"field": "started_at", "direction": "desc"}],
            "limit": limit,
            "columns": ["id", "trace_id"],
        },
    )["calls"]
    if not roots:
        console.print(
            f"No traces in {escape(project_id)}" + (f" for op {escape(op)}." if op else ".")
        )
        return
    for root in roots:
        calls, total = _trace_calls(api, project_id, root["trace_id"])
        nodes = {c["id"]: _Node(c) for c in calls}
        top: list[_Node] = []
        for node in nodes.values():
            parent = nodes.get(node.call.get("parent_id") or "")
            (parent.children if parent else top).append(node)
        started = started_text(calls[0]) if calls else ""
        header = f"trace {root['trace_id']}  {started}"
        # The roots' summaries hold the whole trace's usage and cost (rolled up).
        tokens = [t for n in top if (t := tokens_of(n.call)) is not None]
        costs = [c for n in top if (c := cost_of(n.call)) is not None]
        if tokens:
            header += f"  · {sum(tokens):,} tokens"
        if costs:
            header += f"  · {money(sum(costs))}"
        tree = Tree(Text(header, style="dim"), guide_style="dim")

        def add(branch: Tree, node: _Node) -> None:
            sub = branch.add(_node_label(node.call))
            for child in node.children:
                add(sub, child)

        for node in top:
            add(tree, node)
        if total > len(calls):
            tree.add(Text(f"… {total - len(calls):,} more calls", style="dim"))
        console.print(tree)
        console.print()


def show_calls(
    server_url: str | None = None,
    project_id: str | None = None,
    *,
    tree: bool = False,
    op: str | None = None,
    limit: int | None = None,
    api_key: str | None = None,
    console: Console | None = None,
) -> None:
    """Print a project's latest calls as a table, or (``tree=True``) its latest traces as trees.

    ``server_url`` and ``api_key`` resolve as the client's do (argument, then the
    environment; with neither, the local database). ``project_id`` defaults to
    the local server's most recently active project. ``limit`` counts calls in
    the table and traces in tree mode. Raises :class:`WeaveError` subclasses.
    """
    if limit is not None and limit < 1:
        raise InvalidSettingError(f"--limit must be at least 1, got {limit}")
    if project_id is not None:
        _validate_project(project_id)
    console = console or Console()
    with _server(server_url) as url:
        api = _Api(url, resolve_api_key(api_key))
        try:
            project = project_id or _default_project(api)
            if tree:
                _trees(api, console, project, op, limit or DEFAULT_LIMIT_TREES)
            else:
                _calls_table(api, console, project, op, limit or DEFAULT_LIMIT_TABLE)
        finally:
            api.close()


def _follow_line(call: Any) -> Text:
    """One line for an ended call: time, op, name, status, latency, output or error."""
    line = Text(no_wrap=True, overflow="ellipsis")
    ended = call.ended_at.astimezone().strftime("%H:%M:%S") if call.ended_at else "--:--:--"
    line.append(f"{ended}  ", style="dim")
    if call.parent_id is not None:
        line.append("└ ", style="dim")
    line.append(op_name(call.op_name), style="bold")
    if call.display_name:
        line.append(f" {call.display_name}", style="dim")
    as_dict: dict[str, Any] = {
        "summary": call.summary,
        "exception": call.exception,
        "ended_at": call.ended_at.isoformat() if call.ended_at else None,
        "started_at": call.started_at.isoformat(),
        "output": call.output,
    }
    line.append("  ")
    line.append_text(status_text(status_of(as_dict)))
    line.append(f"  {latency_text(as_dict)}", style="dim")
    tokens = tokens_of(as_dict)
    if tokens is not None:
        line.append(f"  {tokens:,} tokens", style="dim")
    line.append("  ")
    line.append_text(outcome(as_dict, 60 if call.exception else 50))
    line.append(f"  {call.trace_id[-8:]}", style="dim")
    return line


def follow_calls(
    server_url: str | None = None,
    project_id: str | None = None,
    *,
    op: str | None = None,
    roots_only: bool = False,
    since: int | None = None,
    api_key: str | None = None,
    console: Console | None = None,
    max_calls: int | None = None,
) -> None:
    """Print calls as they end, one line each, until interrupted (or after ``max_calls``).

    Server and project resolve as :func:`show_calls`; ``op`` and ``roots_only``
    filter; ``since`` (an event seq, 0 for all) prints stored calls first. Uses
    ``WeaveClient.calls_live()``: over the local server's ``/calls/watch``,
    reconnecting after a restart; polling other servers.
    """
    if project_id is not None:
        _validate_project(project_id)
    if max_calls is not None and max_calls < 1:
        raise InvalidSettingError(f"max_calls must be at least 1, got {max_calls}")
    # The CLI is an application of the public client API (imported here, not at load time).
    from . import WeaveClient

    console = console or Console()
    key = resolve_api_key(api_key)
    with _server(server_url) as url:
        if project_id is None:
            api = _Api(url, key)
            try:
                project_id = _default_project(api)
            finally:
                api.close()
        entity, project = project_id.split("/", 1)
        with WeaveClient(entity, project, server_url=url, api_key=key) as client:
            fields: dict[str, Any] = {"trace_roots_only": True} if roots_only else {}
            if op:
                fields.update(_op_filter(project_id, op))
            console.print(
                Text(f"Following calls in {project_id} as they end (Ctrl-C to stop)", style="dim")
            )
            printed = 0
            with client.calls_live(since=since, **fields) as live:
                for event in live:
                    if event.kind != "end":
                        continue
                    console.print(_follow_line(event.call))
                    printed += 1
                    if max_calls is not None and printed >= max_calls:
                        return


def run_calls(args: argparse.Namespace) -> int:
    """The ``calls`` command: print, or report the error on stderr and return 1."""
    try:
        if args.follow:
            if args.tree:
                raise InvalidSettingError("--follow prints calls one per line; drop --tree")
            follow_calls(
                args.server_url,
                args.project,
                op=args.op,
                roots_only=args.roots,
                since=args.since,
                max_calls=args.limit,
            )
        else:
            show_calls(
                args.server_url,
                args.project,
                tree=args.tree,
                op=args.op,
                limit=args.limit,
            )
    except KeyboardInterrupt:
        return 0
    except WeaveError as exc:
        Console(stderr=True).print(Text(f"error: {exc}", style="red"))
        return 1
    return 0


def add_calls_parser(commands: Any) -> None:
    """Register the ``calls`` command on an argparse subparsers object."""
    calls = commands.add_parser(
        "calls", help="show the latest calls as a table, or the latest traces as trees (--tree)"
    )
    calls.add_argument(
        "--project",
        default=None,
        help="entity/project (default: the local server's most recently active project)",
    )
    calls.add_argument("--tree", action="store_true", help="show whole traces as trees")
    calls.add_argument(
        "--follow",
        "-f",
        action="store_true",
        help="print calls as they end, like tail -f (with --limit: stop after that many)",
    )
    calls.add_argument(
        "--roots", action="store_true", help="with --follow: only root calls (whole traces)"
    )
    calls.add_argument(
        "--since",
        type=int,
        default=None,
        help="with --follow: first the calls that ended after this event seq (0: all)",
    )
    calls.add_argument("--op", default=None, help="only calls (or traces) of this op name")
    calls.add_argument(
        "--limit",
        type=int,
        default=None,
        help=f"how many calls (default {DEFAULT_LIMIT_TABLE}) or, with --tree, traces "
        f"(default {DEFAULT_LIMIT_TREES})",
    )
    calls.add_argument(
        "--server-url",
        default=None,
        help="trace server URL (default: WEAVE_TRACE_SERVER_URL, the hosted service when "
        "WANDB_API_KEY is set, else the local database)",
    )
    calls.set_defaults(func=run_calls)
