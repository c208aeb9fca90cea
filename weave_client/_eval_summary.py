"""Evaluation summaries, I/O-free and shared by both flavours.

The aggregation weave's ``weave/flow/scorer.py`` ``auto_summarize`` performs, so
a summary computed here has the same keys and numbers weave would report:

- numbers (not bools) -> ``{"mean": ...}``
- booleans -> ``{"true_count": n, "true_fraction": n / len}``
- dicts -> summarized key by key, recursively (a key whose values summarize to
  nothing is left out; a nested summary that is itself a leaf summary is merged)
- pydantic models -> as their ``model_dump()``
- ``None`` values are skipped; other types (str, lists) are ignored.

Plus the table printed at the end of an evaluation (``format_summary``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from numbers import Number
from typing import Any

import pydantic

__all__ = ["auto_summarize", "flatten_summary", "format_summary", "sum_usage", "transpose"]


def transpose(rows: Iterable[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """Columns of a list of dict rows: ``{key: [value of each row that has it]}``."""
    cols: dict[str, list[Any]] = {}
    for row in rows:
        for k, v in row.items():
            cols.setdefault(k, []).append(v)
    return cols


def auto_summarize(data: Sequence[Any]) -> dict[str, Any] | None:
    """Summarize a column of values as weave's ``auto_summarize`` does.

    Returns ``{}`` for an empty column, None when nothing in it can be
    summarized (all None, strings, ...), else the summary dict. The type of the
    first non-None value decides how the column is read, as in weave.
    """
    if not data:
        return {}
    values = [x for x in data if x is not None]
    if not values:
        return None
    first = values[0]
    if isinstance(first, bool):
        true_count = sum(1 for x in values if x)
        return {"true_count": true_count, "true_fraction": true_count / len(values)}
    if isinstance(first, Number):
        numbers = [x for x in values if isinstance(x, Number) and not isinstance(x, bool)]
        return {"mean": _mean(numbers)}
    if isinstance(first, Mapping):
        result: dict[str, Any] = {}
        keys = list(dict.fromkeys(k for d in values if isinstance(d, Mapping) for k in d))
        for k in keys:
            summary = auto_summarize([d.get(k) for d in values if isinstance(d, Mapping)])
            if summary is None:
                continue
            if k in summary:
                # weave merges a nested summary that already names this key.
                result.update(summary)
            else:
                result[k] = summary
        return result or None
    if isinstance(first, pydantic.BaseModel):
        return auto_summarize(
            [x.model_dump() for x in values if isinstance(x, pydantic.BaseModel)]
        )
    return None


def _mean(numbers: Sequence[Any]) -> float:
    # math.fsum: the exact sum, as numpy's pairwise mean is close to it; weave
    # returns numpy's mean as a Python float.
    if not numbers:
        return math.nan
    return math.fsum(float(x) for x in numbers) / len(numbers)


def sum_usage(usages: Iterable[Mapping[str, Any] | None]) -> dict[str, dict[str, Any]]:
    """Add up call summaries' ``usage`` blocks (``{model: {"requests": 1, "total_tokens": ...}}``).

    Numeric leaves are summed per model; anything else is ignored.
    """
    total: dict[str, dict[str, Any]] = {}
    for usage in usages:
        if not isinstance(usage, Mapping):
            continue
        for model, counts in usage.items():
            if not isinstance(counts, Mapping):
                continue
            into = total.setdefault(str(model), {})
            for k, v in counts.items():
                if isinstance(v, int | float) and not isinstance(v, bool):
                    into[k] = into.get(k, 0) + v
    return total


def flatten_summary(summary: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """``[("scorer.key.mean", 0.5), ...]``: the leaves of a summary with dotted paths."""
    out: list[tuple[str, Any]] = []
    for k, v in summary.items():
        path = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, Mapping) and v:
            out.extend(flatten_summary(v, path))
        else:
            out.append((path, v))
    return out


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_summary(summary: Mapping[str, Any], title: str = "Evaluation summary") -> str:
    """A plain-text two-column table of the summary's leaves (what ``evaluate`` prints)."""
    leaves = flatten_summary(summary)
    if not leaves:
        return f"{title}: (empty)"
    width = max(len(path) for path, _ in leaves)
    lines = [title, "-" * max(len(title), width + 12)]
    lines.extend(f"{path.ljust(width)}  {_fmt(value)}" for path, value in leaves)
    return "\n".join(lines)
