"""OpenAI fine-tuning prices and per-example token limits, in one place (override with train.openai.price_per_million_tokens).

The table holds for OpenAI's own API (api.openai.com) and the model families listed in it, as checked on
PRICES_CHECKED. It does not hold for Azure OpenAI, which prices fine-tuning per region and model and bills each
deployment of a fine-tuned model by the hour: an Azure estimate has no price unless the spec sets one.
"""

from __future__ import annotations

from dataclasses import dataclass

# USD per 1M training tokens (billed tokens = tokens in the training file x n_epochs) and the longest
# example the job accepts, as published on https://openai.com/api/pricing and the fine-tuning guide
# (checked 2025-06). Prices change: a spec overrides them with train.openai.price_per_million_tokens.
PRICES_CHECKED = "2025-06"
PRICED_PROVIDERS = ("openai",)  # the providers the table holds for
DEFAULT_MAX_EXAMPLE_TOKENS = 65_536


@dataclass(frozen=True)
class ModelPrice:
    """Training price and per-example token limit of one fine-tunable base model family."""

    training_per_million: float
    max_example_tokens: int = DEFAULT_MAX_EXAMPLE_TOKENS


# Longest prefix wins, so dated snapshots match their family ("gpt-4o-mini-2024-07-18" -> "gpt-4o-mini").
TRAINING_PRICES: dict[str, ModelPrice] = {
    "gpt-4.1-nano": ModelPrice(1.50),
    "gpt-4.1-mini": ModelPrice(5.00),
    "gpt-4.1": ModelPrice(25.00),
    "gpt-4o-mini": ModelPrice(3.00),
    "gpt-4o": ModelPrice(25.00),
    "gpt-3.5-turbo": ModelPrice(8.00, 16_385),
    "davinci-002": ModelPrice(6.00, 16_384),
    "babbage-002": ModelPrice(0.40, 16_384),
}


def lookup(model_id: str) -> ModelPrice | None:
    """The price entry for a base model id (or a fine-tuned `ft:<base>:...` id), None when unknown."""
    base = model_id.split(":")[1] if model_id.startswith("ft:") and model_id.count(":") >= 1 else model_id
    matches = [k for k in TRAINING_PRICES if base == k or base.startswith(k + "-")]
    return TRAINING_PRICES[max(matches, key=len)] if matches else None


def price_per_million(model_id: str, override: float | None = None) -> float | None:
    """USD per 1M training tokens: the spec's override, else the table, else None."""
    if override is not None:
        return float(override)
    entry = lookup(model_id)
    return entry.training_per_million if entry else None


def max_example_tokens(model_id: str) -> int:
    """The longest training example (in tokens) the base model accepts."""
    entry = lookup(model_id)
    return entry.max_example_tokens if entry else DEFAULT_MAX_EXAMPLE_TOKENS


def table_scope(provider: str = "openai") -> str:
    """For which provider and models the table holds, for estimate lines."""
    if provider not in PRICED_PROVIDERS:
        return (f"no price table for {provider}: it prices fine-tuning per region and model and bills deployments by "
                "the hour; set train.openai.price_per_million_tokens")
    return f"OpenAI price table of {PRICES_CHECKED}, for {', '.join(TRAINING_PRICES)}"
