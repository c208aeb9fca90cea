"""The built-in token price table (USD per token) and the cost of a call's usage.

I/O-free and shared: the local server prices ``summary.usage`` with it when
calls are read with ``include_costs=True`` (as the hosted service prices them
from its own table), and project prices added with ``/cost/create`` take
precedence. Prices are list prices of the providers as of 2025; a model id
with a date suffix (``gpt-4o-2024-08-06``, ``claude-3-5-haiku-20241022``) that
is not listed itself falls back to its base name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NamedTuple

__all__ = ["DEFAULT_PRICES", "PRICES_EFFECTIVE_DATE", "Price", "cost_entry", "default_price"]


class Price(NamedTuple):
    """One model's price: provider, USD per prompt token, USD per completion token."""

    provider_id: str
    prompt_token_cost: float
    completion_token_cost: float


# When the built-in prices are taken to apply from (older calls get them too:
# a price effective after a call started is used when nothing older matches).
PRICES_EFFECTIVE_DATE = "2024-01-01T00:00:00+00:00"

_M = 1e-6  # per million tokens -> per token

DEFAULT_PRICES: dict[str, Price] = {
    # OpenAI chat and reasoning models
    "gpt-5": Price("openai", 1.25 * _M, 10 * _M),
    "gpt-5-mini": Price("openai", 0.25 * _M, 2 * _M),
    "gpt-5-nano": Price("openai", 0.05 * _M, 0.4 * _M),
    "gpt-4.1": Price("openai", 2 * _M, 8 * _M),
    "gpt-4.1-mini": Price("openai", 0.4 * _M, 1.6 * _M),
    "gpt-4.1-nano": Price("openai", 0.1 * _M, 0.4 * _M),
    "gpt-4o": Price("openai", 2.5 * _M, 10 * _M),
    "gpt-4o-2024-05-13": Price("openai", 5 * _M, 15 * _M),
    "gpt-4o-mini": Price("openai", 0.15 * _M, 0.6 * _M),
    "gpt-4-turbo": Price("openai", 10 * _M, 30 * _M),
    "gpt-4": Price("openai", 30 * _M, 60 * _M),
    "gpt-3.5-turbo": Price("openai", 0.5 * _M, 1.5 * _M),
    "o1": Price("openai", 15 * _M, 60 * _M),
    "o1-mini": Price("openai", 1.1 * _M, 4.4 * _M),
    "o3": Price("openai", 2 * _M, 8 * _M),
    "o3-mini": Price("openai", 1.1 * _M, 4.4 * _M),
    "o4-mini": Price("openai", 1.1 * _M, 4.4 * _M),
    # OpenAI embeddings (no completion tokens)
    "text-embedding-3-small": Price("openai", 0.02 * _M, 0.0),
    "text-embedding-3-large": Price("openai", 0.13 * _M, 0.0),
    "text-embedding-ada-002": Price("openai", 0.1 * _M, 0.0),
    # Anthropic
    "claude-opus-4-1": Price("anthropic", 15 * _M, 75 * _M),
    "claude-opus-4-0": Price("anthropic", 15 * _M, 75 * _M),
    "claude-opus-4": Price("anthropic", 15 * _M, 75 * _M),
    "claude-sonnet-4-5": Price("anthropic", 3 * _M, 15 * _M),
    "claude-sonnet-4-0": Price("anthropic", 3 * _M, 15 * _M),
    "claude-sonnet-4": Price("anthropic", 3 * _M, 15 * _M),
    "claude-haiku-4-5": Price("anthropic", 1 * _M, 5 * _M),
    "claude-3-7-sonnet": Price("anthropic", 3 * _M, 15 * _M),
    "claude-3-7-sonnet-latest": Price("anthropic", 3 * _M, 15 * _M),
    "claude-3-5-sonnet": Price("anthropic", 3 * _M, 15 * _M),
    "claude-3-5-sonnet-latest": Price("anthropic", 3 * _M, 15 * _M),
    "claude-3-5-haiku": Price("anthropic", 0.8 * _M, 4 * _M),
    "claude-3-5-haiku-latest": Price("anthropic", 0.8 * _M, 4 * _M),
    "claude-3-opus": Price("anthropic", 15 * _M, 75 * _M),
    "claude-3-opus-latest": Price("anthropic", 15 * _M, 75 * _M),
    "claude-3-sonnet": Price("anthropic", 3 * _M, 15 * _M),
    "claude-3-haiku": Price("anthropic", 0.25 * _M, 1.25 * _M),
}

_DATE_SUFFIX = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8})$")


def default_price(llm_id: str) -> Price | None:
    """The built-in price of ``llm_id``, trying it without a date suffix; None if unknown."""
    price = DEFAULT_PRICES.get(llm_id)
    if price is None:
        base = _DATE_SUFFIX.sub("", llm_id)
        if base != llm_id:
            price = DEFAULT_PRICES.get(base)
    return price


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def cost_entry(usage: Mapping[str, Any], price: Mapping[str, Any]) -> dict[str, Any]:
    """One model's ``summary.weave.costs`` entry, as the hosted service computes it.

    Prompt tokens are ``prompt_tokens`` (else ``input_tokens``), completion tokens
    ``completion_tokens`` (else ``output_tokens``); ``price`` holds the price
    record's fields (``prompt_token_cost``, units, ``effective_date``, ...).
    """
    prompt = _int(usage["prompt_tokens"] if "prompt_tokens" in usage else usage.get("input_tokens"))
    completion = _int(
        usage["completion_tokens"] if "completion_tokens" in usage else usage.get("output_tokens")
    )
    prompt_cost = float(price["prompt_token_cost"])
    completion_cost = float(price["completion_token_cost"])
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "requests": _int(usage.get("requests")),
        "total_tokens": _int(usage.get("total_tokens")),
        "prompt_token_cost": prompt_cost,
        "completion_token_cost": completion_cost,
        "prompt_tokens_total_cost": prompt * prompt_cost,
        "completion_tokens_total_cost": completion * completion_cost,
        "prompt_token_cost_unit": price.get("prompt_token_cost_unit") or "USD",
        "completion_token_cost_unit": price.get("completion_token_cost_unit") or "USD",
        "effective_date": price.get("effective_date"),
        "provider_id": price.get("provider_id"),
        "pricing_level": price.get("pricing_level"),
        "pricing_level_id": price.get("pricing_level_id"),
        "created_by": price.get("created_by"),
        "created_at": price.get("created_at"),
    }
