"""The summary of an ended call, as weave's ``finish_call`` makes it: usage rolled up
from its children (or read from its own OpenAI-style output) and status counts.

I/O-free and flavour-free. The common leaf calls share two read-only summaries whose
JSON texts the record writer has by identity.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from ._trace_values import LEAVES, encode_value

if TYPE_CHECKING:
    from ._tracing import CallFrame

__all__ = [
    "ERROR_SUMMARY",
    "SHARED_SUMMARY_JSON",
    "STATUS_COUNTS_KEY",
    "SUCCESS_SUMMARY",
    "USAGE_KEY",
    "add_child_summary",
    "end_summary",
    "merge_user_summary",
    "sum_dict_leaves",
]

USAGE_KEY = "usage"
STATUS_COUNTS_KEY = "status_counts"

# Taken only to make a frame's child_summaries list (once per parent call).
_summaries_lock = threading.Lock()


def add_child_summary(parent: CallFrame, summary: dict[str, Any]) -> None:
    """Roll an ended child's summary into ``parent`` (children may end in other
    threads: the list is made under a lock, and list.append is atomic)."""
    summaries = parent.child_summaries
    if summaries is None:
        with _summaries_lock:
            summaries = parent.child_summaries
            if summaries is None:
                summaries = parent.child_summaries = []
    summaries.append(summary)


# Shared summaries of the common leaf calls (no children, no usage). Read-only:
# roll-ups build new dicts, and a Call built from a record copies its summary.
SUCCESS_SUMMARY: dict[str, Any] = {STATUS_COUNTS_KEY: {"success": 1, "error": 0}}
ERROR_SUMMARY: dict[str, Any] = {STATUS_COUNTS_KEY: {"success": 0, "error": 1}}
# Their JSON texts, by identity (encode_record writes them without encoding).
SHARED_SUMMARY_JSON: dict[int, str] = {
    id(SUCCESS_SUMMARY): '{"status_counts":{"success":1,"error":0}}',
    id(ERROR_SUMMARY): '{"status_counts":{"success":0,"error":1}}',
}


def end_summary(frame: CallFrame, raw_output: Any, exception: BaseException | None) -> dict[str, Any]:
    """weave's ``finish_call`` summary: children's leaves summed, else own usage."""
    summary: dict[str, Any]
    if frame.child_summaries:
        summary = sum_dict_leaves(frame.child_summaries)
    else:
        # A primitive output has no usage (and getattr on it would raise inside).
        usage = None if type(raw_output) in LEAVES else _usage_of(raw_output)
        if usage is None:
            return ERROR_SUMMARY if exception is not None else SUCCESS_SUMMARY
        summary = {USAGE_KEY: usage}
    counts = summary.setdefault(STATUS_COUNTS_KEY, {"success": 0, "error": 0})
    key = "error" if exception is not None else "success"
    counts[key] = counts.get(key, 0) + 1
    return summary


def merge_user_summary(user: dict[str, Any], computed: dict[str, Any]) -> dict[str, Any]:
    """What the op put in its summary, deep-merged under the computed values (as weave)."""
    merged = encode_value(user)
    if not isinstance(merged, dict):
        merged = {}
    elif merged is user:
        merged = dict(user)

    def deep_update(dst: dict[str, Any], src: dict[str, Any]) -> None:
        for k, v in src.items():
            if isinstance(v, dict) and isinstance(dst.get(k), dict):
                dst[k] = dict(dst[k])
                deep_update(dst[k], v)
            else:
                dst[k] = v

    deep_update(merged, computed)
    return merged


def _usage_of(output: Any) -> dict[str, Any] | None:
    """``{model: {"requests": 1, **usage}}`` for an OpenAI-style output, else None."""
    if isinstance(output, dict):
        if USAGE_KEY not in output or "model" not in output:
            return None
        model, usage = output["model"], output[USAGE_KEY]
    else:
        model = getattr(output, "model", None)
        usage = getattr(output, USAGE_KEY, None)
        if usage is None or model is None:
            return None
        dump = getattr(usage, "model_dump", None)
        if callable(dump):  # a pydantic usage object, as the OpenAI SDK returns
            usage = dump(exclude_unset=True)
    if not isinstance(usage, dict) or not isinstance(model, str):
        return None
    return {model: {"requests": 1, **usage}}


def sum_dict_leaves(dicts: list[dict[str, Any]]) -> dict[str, Any]:
    """Combine dicts by summing numeric leaves and recursing into nested dicts."""
    nested: dict[str, list[dict[str, Any]]] = {}
    leaves: dict[str, list[Any]] = {}
    for d in dicts:
        for k, v in d.items():
            if isinstance(v, dict):
                nested.setdefault(k, []).append(v)
            elif v is not None:
                if isinstance(v, list):
                    leaves.setdefault(k, []).extend(v)
                else:
                    leaves.setdefault(k, []).append(v)
    result: dict[str, Any] = {}
    for k, values in leaves.items():
        if k not in nested and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in values
        ):
            result[k] = sum(values)
        else:
            result[k] = values
    for k, group in nested.items():
        result[k] = sum_dict_leaves(group)
    return result
