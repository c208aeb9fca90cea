"""Token prices of the local server: ``/cost/create``, ``/cost/query``, ``/cost/purge``,
and the ``summary.weave.costs`` of calls read with ``include_costs``.

Prices live in ``llm_token_prices`` (one row per price, ``pricing_level`` =
``project``); the built-in table of ``weave_client._prices`` is the ``default``
level. A call's model is priced as the hosted service prices it: among the
prices effective when the call started (else any), a project price before the
default one, the newest first.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from weave_client._models import (
    CostCreateReq,
    CostPurgeReq,
    CostQueryReq,
    SortBy,
)
from weave_client._prices import PRICES_EFFECTIVE_DATE, cost_entry, default_price

from ._common import InvalidRequest, now_timestamp, purge_ids
from ._db import Database
from ._query_sql import QueryError, Sql, compile_condition, fmt, order_terms, sort_direction
from ._schema import format_timestamp

__all__ = ["CostStore", "attach_costs"]


# The fields of a price record, in weave's order (``fields`` / ``$getField`` / ``sort_by``).
PRICE_FIELDS: tuple[str, ...] = (
    "id",
    "llm_id",
    "prompt_token_cost",
    "completion_token_cost",
    "prompt_token_cost_unit",
    "completion_token_cost_unit",
    "effective_date",
    "provider_id",
    "pricing_level",
    "pricing_level_id",
    "created_by",
    "created_at",
)
_OUTPUT_FIELDS = PRICE_FIELDS[:8]
LOCAL_USER = "local"


def _field(name: str, where: str) -> Sql:
    if name in PRICE_FIELDS:
        return Sql(name)
    raise QueryError(
        f"unknown field {name!r} in {where}; expected one of {', '.join(PRICE_FIELDS)}"
    )


def _order_by(sort_by: Sequence[SortBy] | None) -> Sql:
    parts: list[Sql] = []
    for i, s in enumerate(sort_by or ()):
        direction = sort_direction(s.direction, f"sort_by[{i}]")
        parts.extend(order_terms(_field(s.field, f"sort_by[{i}].field"), direction))
    parts.append(Sql("rowid ASC"))
    return fmt(" ORDER BY " + ", ".join("{}" for _ in parts), *parts)




class CostStore:
    """The project prices of the local server."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, req: CostCreateReq) -> list[tuple[str, str]]:
        """``/cost/create``: store each model's price; ``(llm_id, id)`` pairs."""
        if not req.costs:
            raise InvalidRequest("costs: at least one model's price is needed")
        created_at = now_timestamp()
        ids: list[tuple[str, str]] = []
        rows = []
        for llm_id, cost in req.costs.items():
            if not llm_id:
                raise InvalidRequest("costs: a model id (llm_id) must not be empty")
            for name in ("prompt_token_cost", "completion_token_cost"):
                value = getattr(cost, name)
                if not value >= 0:  # also refuses NaN
                    raise InvalidRequest(f"costs[{llm_id!r}].{name}: must be >= 0, got {value!r}")
            effective = cost.effective_date or datetime.now(UTC)
            if effective.tzinfo is None:
                effective = effective.replace(tzinfo=UTC)
            cost_id = str(uuid.uuid4())
            ids.append((llm_id, cost_id))
            rows.append((
                cost_id, llm_id, cost.prompt_token_cost, cost.completion_token_cost,
                cost.prompt_token_cost_unit or "USD", cost.completion_token_cost_unit or "USD",
                format_timestamp(effective), cost.provider_id or "default", "project",
                req.project_id, req.wb_user_id or LOCAL_USER, created_at,
            ))
        marks = ", ".join("?" for _ in PRICE_FIELDS)
        with self.db.write() as conn:
            conn.executemany(
                f"INSERT INTO llm_token_prices ({', '.join(PRICE_FIELDS)}) VALUES ({marks})", rows
            )
        return ids

    def query(self, req: CostQueryReq) -> list[dict[str, Any]]:
        """``/cost/query``: the project's prices matching the query, sorted and paged."""
        fields = list(req.fields) if req.fields else list(_OUTPUT_FIELDS)
        for i, name in enumerate(fields):
            _field(name, f"fields[{i}]")
        for name, value in (("limit", req.limit), ("offset", req.offset)):
            if value is not None and value < 0:
                raise QueryError(f"invalid {name} {value}: must not be negative")
        conds = [Sql("pricing_level_id = ?", (req.project_id,))]
        if req.query is not None:
            conds.append(compile_condition(req.query, _field))
        sql = fmt(
            f"SELECT {', '.join(fields)} FROM llm_token_prices WHERE "
            + " AND ".join("{}" for _ in conds)
            + "{} LIMIT ? OFFSET ?",
            *conds,
            _order_by(req.sort_by),
            Sql("", (req.limit if req.limit is not None else -1, req.offset or 0)),
        )
        with self.db.read() as conn:
            return [
                {k: row[k] for k in row.keys() if k in _OUTPUT_FIELDS}
                for row in conn.execute(sql.sql, list(sql.params))
            ]

    def purge(self, req: CostPurgeReq) -> int:
        """``/cost/purge``: delete the project prices whose ids the query names."""
        ids = purge_ids(req.query, "costs")
        with self.db.write() as conn:
            return conn.execute(
                "DELETE FROM llm_token_prices WHERE pricing_level_id = ? "
                "AND id IN (SELECT value FROM json_each(?))",
                [req.project_id, json.dumps(ids)],
            ).rowcount


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _default_record(llm_id: str) -> dict[str, Any] | None:
    price = default_price(llm_id)
    if price is None:
        return None
    return {
        "llm_id": llm_id,
        "prompt_token_cost": price.prompt_token_cost,
        "completion_token_cost": price.completion_token_cost,
        "prompt_token_cost_unit": "USD",
        "completion_token_cost_unit": "USD",
        "effective_date": PRICES_EFFECTIVE_DATE,
        "provider_id": price.provider_id,
        "pricing_level": "default",
        "pricing_level_id": "default",
        "created_by": "system",
        "created_at": PRICES_EFFECTIVE_DATE,
    }


def attach_costs(conn: sqlite3.Connection, project_id: str, calls: list[dict[str, Any]]) -> None:
    """Put ``summary.weave.costs`` on each call with a priced model in ``summary.usage``."""
    usages = {
        id(c): u for c in calls
        if isinstance(u := (c.get("summary") or {}).get("usage"), dict) and u
    }
    llm_ids = sorted({llm for u in usages.values() for llm in u if isinstance(llm, str)})
    if not llm_ids:
        return
    prices: dict[str, list[dict[str, Any]]] = {}
    for row in conn.execute(
        f"SELECT {', '.join(PRICE_FIELDS)} FROM llm_token_prices WHERE pricing_level_id = ?"
        " AND llm_id IN (SELECT value FROM json_each(?))",
        [project_id, json.dumps(llm_ids)],
    ):
        prices.setdefault(row["llm_id"], []).append(dict(row))
    for llm_id in llm_ids:
        default = _default_record(llm_id)
        if default is not None:
            prices.setdefault(llm_id, []).append(default)
    for call in calls:
        usage = usages.get(id(call))
        if usage is None:
            continue
        started = _parse_time(call.get("started_at"))
        costs: dict[str, Any] = {}
        for llm_id, model_usage in usage.items():
            candidates = prices.get(llm_id)
            if not candidates or not isinstance(model_usage, dict):
                continue
            costs[llm_id] = cost_entry(model_usage, _best(candidates, started))
        if costs:
            summary = call["summary"]
            call["summary"] = {**summary, "weave": {**(summary.get("weave") or {}), "costs": costs}}


def _best(candidates: list[dict[str, Any]], started: datetime | None) -> dict[str, Any]:
    """The hosted ranking: effective at the call's start, project level, newest."""

    def rank(price: dict[str, Any]) -> tuple[int, int, float]:
        effective = _parse_time(price["effective_date"])
        in_effect = started is None or effective is None or started >= effective
        level = 0 if price["pricing_level"] == "project" else 1
        return (0 if in_effect else 1, level, -(effective.timestamp() if effective else 0.0))

    return min(candidates, key=rank)
