"""Anthropic list prices per model, and the dollar cost of a turn's token usage.

Source: Anthropic's pricing page and model overview pages (platform.claude.com/docs, "Pricing"
and "Models overview"), as read on 2026-11-29; USD per million tokens, standard (not batch, not
US-only inference) rates, 5-minute cache writes (the only cache spendbot asks for). Prices change:
check claude.com/pricing and update this table, the only place they live. Known caveats:
third-party trackers report a Sonnet 5.5 cache-read cut to $0.10 on 2026-10-07 that the model
page we read still showed as $0.20, so we keep $0.20 (an upper bound); Haiku 5.5 has a dearer
band for prompts over 100k tokens, which spendbot's prompts never reach. A model missing here is
still used; its turns record tokens with a NULL cost and spend reports say so.
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.conversations import TokenUsage


@dataclass(frozen=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float
    cache_write: float
    cache_read: float


PRICES: dict[str, Price] = {
    "claude-sonnet-5-5": Price(2.00, 10.00, 2.50, 0.20),
    "claude-sonnet-5": Price(2.00, 10.00, 2.50, 0.20),
    "claude-haiku-5-5": Price(0.10, 0.50, 0.125, 0.01),
    "claude-opus-5-5": Price(4.00, 20.00, 5.00, 0.20),
    "claude-opus-5": Price(5.00, 25.00, 6.25, 0.50),
    "claude-opus-4-8": Price(5.00, 25.00, 6.25, 0.50),
    "claude-opus-4-7": Price(5.00, 25.00, 6.25, 0.50),
    "claude-opus-4-6": Price(5.00, 25.00, 6.25, 0.50),
    "claude-sonnet-4-6": Price(3.00, 15.00, 3.75, 0.30),
    "claude-opus-4-5": Price(5.00, 25.00, 6.25, 0.50),
    "claude-sonnet-4-5": Price(3.00, 15.00, 3.75, 0.30),
    "claude-haiku-4-5": Price(1.00, 5.00, 1.25, 0.10),
}


def price_of(model: str) -> Price | None:
    """The price of `model`; a dated id (``claude-haiku-4-5-20251001``) uses its alias's price."""
    alias, _, suffix = model.rpartition("-")
    if model not in PRICES and len(suffix) == 8 and suffix.isdigit():
        model = alias
    return PRICES.get(model)


def cost_usd(model: str, usage: TokenUsage) -> float | None:
    """Dollar cost of `usage` on `model`, or None when the model has no price here.

    `input_tokens` as reported by the API excludes cached tokens, so the four counts are
    priced separately and added.
    """
    price = price_of(model)
    if price is None:
        return None
    return (
        usage.input_tokens * price.input
        + usage.output_tokens * price.output
        + usage.cache_creation_input_tokens * price.cache_write
        + usage.cache_read_input_tokens * price.cache_read
    ) / 1_000_000
