"""LLM conversations: stored turns, the bounded history replayed to the model, token spend."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, insert, select, update

from storage.models import llm_conversations, llm_turns


@dataclass
class TokenUsage:
    """Tokens one turn used, summed over its API requests, as the API reported them."""

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    def add(self, usage: Any) -> None:
        """Add one response's `usage` (an SDK object or a dict); missing cache fields count 0."""
        get = usage.get if isinstance(usage, dict) else lambda name: getattr(usage, name, None)
        self.requests += 1
        self.input_tokens += get("input_tokens") or 0
        self.output_tokens += get("output_tokens") or 0
        self.cache_creation_input_tokens += get("cache_creation_input_tokens") or 0
        self.cache_read_input_tokens += get("cache_read_input_tokens") or 0

    def as_dict(self) -> dict[str, int]:
        """The counts as JSON-ready values."""
        return {
            "requests": self.requests,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
        }


@dataclass(frozen=True)
class Turn:
    """One question the LLM answered (or tried to), as stored."""

    question: str
    answer: str
    outcome: str
    history: list[dict[str, Any]] | None
    model: str
    usage: TokenUsage
    cost_usd: float | None


@dataclass(frozen=True)
class SpendByModel:
    """The bot's own LLM spend in a period, for one model."""

    model: str
    questions: int
    conversations: int
    usage: TokenUsage
    cost_usd: float | None
    unpriced_questions: int


def record_turn(
    engine: Engine, key: str, user: str, at: datetime, turn: Turn, *, keep_history: int
) -> None:
    """Store a turn of conversation `key` (created on first use).

    Only the `keep_history` most recent turns keep their replayable history: older ones keep
    their question, answer and usage (for spend reports) but no longer take space in prompts.
    """
    with engine.begin() as connection:
        conversation = connection.execute(
            select(llm_conversations.c.id).where(llm_conversations.c.key == key)
        ).scalar()
        if conversation is None:
            conversation = connection.execute(
                insert(llm_conversations).values(
                    key=key, started_by=user, started_at=at, updated_at=at
                )
            ).inserted_primary_key[0]
        else:
            connection.execute(
                update(llm_conversations)
                .where(llm_conversations.c.id == conversation)
                .values(updated_at=at)
            )
        connection.execute(
            insert(llm_turns).values(
                conversation_id=conversation,
                at=at,
                asked_by=user,
                question=turn.question,
                answer=turn.answer,
                outcome=turn.outcome,
                history_json=json.dumps(turn.history) if turn.history is not None else None,
                model=turn.model,
                cost_usd=turn.cost_usd,
                **{
                    name: value
                    for name, value in turn.usage.as_dict().items()
                    if name != "requests"
                },
                requests=turn.usage.requests,
            )
        )
        kept = (
            select(llm_turns.c.id)
            .where(llm_turns.c.conversation_id == conversation)
            .order_by(llm_turns.c.id.desc())
            .limit(keep_history)
        )
        connection.execute(
            update(llm_turns)
            .where(
                llm_turns.c.conversation_id == conversation,
                llm_turns.c.history_json.is_not(None),
                llm_turns.c.id.not_in(kept.scalar_subquery()),
            )
            .values(history_json=None)
        )


def history(engine: Engine, key: str) -> list[list[dict[str, Any]]]:
    """The replayable messages of each recent turn of conversation `key`, oldest first."""
    statement = (
        select(llm_turns.c.history_json)
        .join(llm_conversations, llm_conversations.c.id == llm_turns.c.conversation_id)
        .where(llm_conversations.c.key == key, llm_turns.c.history_json.is_not(None))
        .order_by(llm_turns.c.id)
    )
    with engine.connect() as connection:
        return [json.loads(row) for row in connection.execute(statement).scalars()]


def _usage(row: Any) -> TokenUsage:
    return TokenUsage(
        requests=int(row.requests or 0),
        input_tokens=int(row.input_tokens or 0),
        output_tokens=int(row.output_tokens or 0),
        cache_creation_input_tokens=int(row.cache_creation_input_tokens or 0),
        cache_read_input_tokens=int(row.cache_read_input_tokens or 0),
    )


def _sums() -> list:
    return [
        func.count().label("questions"),
        func.count(func.distinct(llm_turns.c.conversation_id)).label("conversations"),
        func.sum(llm_turns.c.requests).label("requests"),
        func.sum(llm_turns.c.input_tokens).label("input_tokens"),
        func.sum(llm_turns.c.output_tokens).label("output_tokens"),
        func.sum(llm_turns.c.cache_creation_input_tokens).label("cache_creation_input_tokens"),
        func.sum(llm_turns.c.cache_read_input_tokens).label("cache_read_input_tokens"),
        func.sum(llm_turns.c.cost_usd).label("cost_usd"),
        func.count().filter(llm_turns.c.cost_usd.is_(None)).label("unpriced"),
    ]


def spend_by_model(engine: Engine, start: datetime, end: datetime) -> list[SpendByModel]:
    """The bot's LLM tokens and cost per model for turns at or after `start` and before `end`."""
    statement = (
        select(llm_turns.c.model, *_sums())
        .where(llm_turns.c.at >= start, llm_turns.c.at < end)
        .group_by(llm_turns.c.model)
        .order_by(func.sum(llm_turns.c.cost_usd).desc(), llm_turns.c.model)
    )
    with engine.connect() as connection:
        return [
            SpendByModel(
                model=row.model,
                questions=int(row.questions),
                conversations=int(row.conversations),
                usage=_usage(row),
                cost_usd=float(row.cost_usd) if row.cost_usd is not None else None,
                unpriced_questions=int(row.unpriced),
            )
            for row in connection.execute(statement)
        ]


def conversation_spend(engine: Engine, key: str) -> tuple[TokenUsage, float]:
    """Total tokens and dollar cost of conversation `key` (unpriced turns count 0 dollars)."""
    statement = (
        select(*_sums())
        .select_from(llm_turns.join(llm_conversations))
        .where(llm_conversations.c.key == key)
    )
    with engine.connect() as connection:
        row = connection.execute(statement).one()
    return _usage(row), float(row.cost_usd or 0.0)
