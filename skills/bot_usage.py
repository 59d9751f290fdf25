"""The bot_usage skill: what spendbot's own LLM use cost, in tokens and dollars, per model."""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

from skills.money import format_small_money
from skills.periods import find_period, parse_period
from skills.registry import SKILLS, SkillContext
from skills.replies import Reply, Table
from storage.conversations import spend_by_model

_LEAD = re.compile(r"^(?:(?:in|for|during|over|within|the)\s+)+", re.IGNORECASE)


class BotUsageArgs(BaseModel):
    """Arguments of bot_usage."""

    period: str = Field(
        "this month",
        description="Time phrase, as for spend_query: 'this month', 'last month', 'last 7 days', "
        "'since 2026-11-01'. Dates are UTC.",
    )


def parse_bot_usage_text(text: str, context: SkillContext) -> BotUsageArgs:
    """The period named in the message, this month when none is."""
    found = find_period(text, context.now.date())
    if found is None:
        return BotUsageArgs()
    start, end = found[1]
    return BotUsageArgs(period=_LEAD.sub("", text[start:end].strip()))


@SKILLS.skill(
    name="bot_usage",
    args=BotUsageArgs,
    parse_text=parse_bot_usage_text,
    command="usage",
    examples=(
        "what did spendbot itself cost this month?",
        "how many tokens has the bot used this month?",
        "LLM usage of spendbot last month",
    ),
    triggers=(
        r"\b(spendbot|the bot|yourself|itself|your own)\b.*\b(cost|costs|spend|spent|usage|tokens?)\b"
        r"|\b(cost|costs|spend|spent|usage|tokens?)\b.*\b(spendbot|the bot|yourself|itself)\b"
        r"|\bllm (usage|cost|costs|spend|tokens)\b",
    ),
)
def bot_usage(context: SkillContext, args: BotUsageArgs) -> Reply:
    """What spendbot's own LLM use cost: questions, tokens and dollars per model.

    Counts every question the LLM tool layer answered or attempted in the period, with the input,
    output and prompt-cache tokens the Anthropic API reported and their cost at list prices.
    """
    period = parse_period(args.period, context.now.date())
    rows = spend_by_model(context.engine, period.start_datetime(), period.end_exclusive())
    window = f"{period.label}, UTC"
    if not rows:
        return Reply(
            text=f"spendbot made no LLM calls in {window}.",
            data={"period": period.label, "cost_usd": 0.0, "questions": 0, "models": []},
        )
    cost = sum(row.cost_usd or 0.0 for row in rows)
    questions = sum(row.questions for row in rows)
    unpriced = sum(row.unpriced_questions for row in rows)
    text = (
        f"spendbot's own LLM use in {window}: {format_small_money(cost, 'USD')} for {questions:,} question(s) "
        f"in {sum(row.conversations for row in rows):,} conversation(s)."
    )
    if unpriced:
        text += f" {unpriced} question(s) used a model with no price on file and count as $0."
    table = Table(
        ["Model", "Questions", "Requests", "Input", "Output", "Cache write", "Cache read", "Cost"],
        [
            [
                row.model,
                row.questions,
                row.usage.requests,
                row.usage.input_tokens,
                row.usage.output_tokens,
                row.usage.cache_creation_input_tokens,
                row.usage.cache_read_input_tokens,
                format_small_money(row.cost_usd, "USD") if row.cost_usd is not None else "no price",
            ]
            for row in rows
        ],
    )
    return Reply(
        text=text,
        table=table,
        context="Tokens as reported by the Anthropic API; cost at the list prices in "
        "bot/llm_prices.py.",
        data={
            "period": period.label,
            "start": period.start.isoformat(),
            "end": period.end.isoformat(),
            "cost_usd": round(cost, 6),
            "questions": questions,
            "models": [
                {
                    "model": row.model,
                    "questions": row.questions,
                    "conversations": row.conversations,
                    **row.usage.as_dict(),
                    "cost_usd": round(row.cost_usd, 6) if row.cost_usd is not None else None,
                }
                for row in rows
            ],
        },
    )
