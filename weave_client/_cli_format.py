"""How the ``calls`` command writes a call: op name, status, latency, tokens, cost, output.

Each function reads a call as the trace API's JSON (a dict), so the table, the
trees and ``--follow`` (which turns its ``Call`` into such a dict) show a call alike.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from rich.text import Text

__all__ = [
    "cost_of",
    "latency_text",
    "money",
    "op_name",
    "outcome",
    "started_text",
    "status_of",
    "status_text",
    "tokens_of",
]

_STATUS_STYLE = {
    "success": "green",
    "error": "bold red",
    "running": "cyan",
    "descendant_error": "yellow",
}
_STATUS_LABEL = {"descendant_error": "child error"}


def op_name(op: str) -> str:
    """``predict`` for ``weave:///e/p/op/predict:digest``; other names as they are."""
    if op.startswith("weave:///"):
        last = op.rsplit("/", 1)[-1]
        return last.split(":", 1)[0]
    return op


def status_of(call: dict[str, Any]) -> str:
    weave = (call.get("summary") or {}).get("weave") or {}
    status = weave.get("status")
    if status:
        return str(status)
    if call.get("exception"):
        return "error"
    return "success" if call.get("ended_at") else "running"


def status_text(status: str) -> Text:
    return Text(_STATUS_LABEL.get(status, status), style=_STATUS_STYLE.get(status, ""))


def latency_text(call: dict[str, Any]) -> str:
    if not call.get("ended_at"):
        return "running"
    weave = (call.get("summary") or {}).get("weave") or {}
    ms = weave.get("latency_ms")
    if not isinstance(ms, int | float):
        try:
            start = datetime.fromisoformat(call["started_at"])
            end = datetime.fromisoformat(call["ended_at"])
        except (KeyError, TypeError, ValueError):
            return "—"
        ms = (end - start).total_seconds() * 1000
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.2f} s"
    return f"{int(ms // 60_000)} min {ms % 60_000 / 1000:.0f} s"


def tokens_of(call: dict[str, Any]) -> int | None:
    usage = (call.get("summary") or {}).get("usage")
    if not isinstance(usage, dict) or not usage:
        return None
    total = 0
    for u in usage.values():
        if not isinstance(u, dict):
            continue
        t = u.get("total_tokens")
        if not isinstance(t, int):
            t = sum(
                v
                for v in (
                    u.get("prompt_tokens") or u.get("input_tokens") or 0,
                    u.get("completion_tokens") or u.get("output_tokens") or 0,
                )
                if isinstance(v, int)
            )
        total += t
    return total


def cost_of(call: dict[str, Any]) -> float | None:
    """The call's cost in USD (``summary.weave.costs``, read with ``include_costs``), if priced."""
    costs = ((call.get("summary") or {}).get("weave") or {}).get("costs")
    if not isinstance(costs, dict) or not costs:
        return None
    total = 0.0
    for c in costs.values():
        if isinstance(c, dict):
            for key in ("prompt_tokens_total_cost", "completion_tokens_total_cost"):
                value = c.get(key)
                if isinstance(value, int | float):
                    total += value
    return total


def money(value: float) -> str:
    return f"${value:.6f}" if value < 1 else f"${value:,.4f}"


def started_text(call: dict[str, Any]) -> str:
    try:
        return datetime.fromisoformat(call["started_at"]).astimezone().strftime("%m-%d %H:%M:%S")
    except (KeyError, TypeError, ValueError):
        return str(call.get("started_at", ""))


def _short(value: Any, width: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _exception_message(raw: str) -> str:
    try:
        parsed = json.loads(raw)
    except ValueError:
        return raw
    if isinstance(parsed, dict):
        return f"{parsed.get('type', 'Exception')}: {parsed.get('message', '')}"
    return raw


def outcome(call: dict[str, Any], width: int, arrow: str = "→ ") -> Text:
    """What an ended call gave: its exception (red) or ``arrow`` and its output (cyan),
    cut to ``width``; nothing while it runs."""
    if call.get("exception"):
        return Text(_short(_exception_message(call["exception"]), width), style="red")
    if call.get("ended_at"):
        return Text(arrow + _short(call.get("output"), width), style="cyan")
    return Text("")
