"""Make sure a W&B project exists before tracing into it (hosted service only).

The hosted trace service files traces under a W&B project, which must exist.
weave's own client (``wandb_interface/project_creator.py``) first looks the
project up over W&B GraphQL and, when it is missing, creates it with the
``upsertModel`` mutation (a project is a "model" in W&B's schema). Looking up
first matters: a user may read a project they are not allowed to create.
This module does the same two GraphQL calls over httpx. Other trace servers
(the local one, weave's reference server) have no W&B behind them, so the
client never calls this for them.
"""

from __future__ import annotations

from typing import Any

import httpx

from .._errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    status_error_class,
)
from .._synchronization import async_sleep

__all__ = ["ensure_project_exists"]

_PROJECT_QUERY = """
query Project($entity: String!, $project: String!) {
    model(name: $project, entityName: $entity) {
        id
        name
    }
}
"""

_UPSERT_PROJECT_MUTATION = """
mutation UpsertModel($name: String!, $entity: String!) {
    upsertModel(input: {name: $name, entityName: $entity}) {
        model {
            name
        }
    }
}
"""

_ROUTE = "/graphql"
_RETRIES = 2


async def _graphql(
    http: httpx.AsyncClient, query: str, variables: dict[str, Any], what: str
) -> dict[str, Any]:
    """POST one GraphQL document; return its ``data``, or raise naming ``what`` failed."""
    attempt = 0
    while True:
        try:
            response = await http.post(_ROUTE, json={"query": query, "variables": variables})
        except httpx.TimeoutException as e:
            if attempt < _RETRIES:
                attempt += 1
                await async_sleep(0.5 * 2**attempt)
                continue
            raise APITimeoutError(f"W&B GraphQL timed out while {what}", route=_ROUTE) from e
        except httpx.TransportError as e:
            if attempt < _RETRIES:
                attempt += 1
                await async_sleep(0.5 * 2**attempt)
                continue
            raise APIConnectionError(
                f"could not reach W&B GraphQL while {what}: {type(e).__name__}", route=_ROUTE
            ) from e
        if response.status_code >= 500 and attempt < _RETRIES:
            attempt += 1
            await async_sleep(0.5 * 2**attempt)
            continue
        break
    if response.status_code >= 400:
        cls = status_error_class(response.status_code)
        detail = response.text[:500]
        raise cls(
            f"W&B GraphQL refused {what}: {detail}",
            status_code=response.status_code,
            route=_ROUTE,
            body=detail,
        )
    try:
        body = response.json()
    except ValueError as e:
        raise APIError(f"W&B GraphQL answered {what} with non-JSON", route=_ROUTE) from e
    errors = body.get("errors") if isinstance(body, dict) else None
    if errors:
        messages = "; ".join(
            str(err.get("message", err)) if isinstance(err, dict) else str(err) for err in errors
        )
        raise APIError(f"W&B GraphQL error while {what}: {messages}", route=_ROUTE)
    data = body.get("data") if isinstance(body, dict) else None
    return data if isinstance(data, dict) else {}


async def ensure_project_exists(
    entity: str,
    project: str,
    *,
    wandb_base_url: str,
    api_key: str | None,
    timeout: float = 30.0,
) -> str:
    """Look up ``entity/project`` on W&B and create it when missing; return its name.

    ``wandb_base_url`` is the W&B API server (``https://api.wandb.ai`` or the
    ``WANDB_BASE_URL`` of a self-hosted one). Raises ``AuthenticationError``
    without a key or when the key is refused, ``APIError`` when W&B reports a
    GraphQL error (e.g. no permission to create the project in ``entity``).
    """
    if not api_key:
        raise AuthenticationError(
            f"cannot ensure W&B project {entity}/{project} exists: no API key "
            "(pass api_key= or set WANDB_API_KEY)",
            status_code=401,
            route=_ROUTE,
        )
    async with httpx.AsyncClient(
        base_url=wandb_base_url.rstrip("/"),
        auth=httpx.BasicAuth("api", api_key),
        timeout=timeout,
    ) as http:
        data = await _graphql(
            http,
            _PROJECT_QUERY,
            {"entity": entity, "project": project},
            f"looking up project {entity}/{project}",
        )
        model = data.get("model")
        if isinstance(model, dict) and model.get("name"):
            return str(model["name"])
        data = await _graphql(
            http,
            _UPSERT_PROJECT_MUTATION,
            {"entity": entity, "name": project},
            f"creating project {entity}/{project}",
        )
    upserted = data.get("upsertModel")
    created = upserted.get("model") if isinstance(upserted, dict) else None
    if not isinstance(created, dict) or not created.get("name"):
        raise APIError(
            f"W&B did not create project {entity}/{project} (upsertModel returned no project)",
            route=_ROUTE,
        )
    return str(created["name"])
