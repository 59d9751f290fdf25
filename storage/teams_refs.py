"""Teams conversation references: where the bot may post without being spoken to first.

A reference is saved when the bot is installed in a team, chat or personal scope and refreshed on
every message, keyed by the conversation id without a channel thread's ``;messageid=`` suffix, so
a proactive post opens a new thread in the channel rather than answering an old one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from storage.models import teams_conversations


@dataclass(frozen=True)
class StoredConversation:
    """One conversation the bot can post into."""

    conversation_id: str
    kind: str
    name: str | None
    tenant_id: str | None
    service_url: str
    reference: dict[str, Any]
    updated_at: datetime


def base_conversation_id(conversation_id: str) -> str:
    """The channel's id for a channel thread's id (``19:x@thread.tacv2;messageid=1`` -> ``19:x...``)."""
    return conversation_id.split(";messageid=", 1)[0]


def save(
    engine: Engine,
    reference: dict[str, Any],
    *,
    kind: str,
    name: str | None,
    tenant_id: str | None,
    now: datetime,
) -> str:
    """Insert or refresh the reference (a serialized ConversationReference); its stored id."""
    conversation_id = base_conversation_id(reference["conversation"]["id"])
    reference = {
        **reference,
        "conversation": {**reference["conversation"], "id": conversation_id},
        "activityId": None,
    }
    values = {
        "kind": kind,
        "tenant_id": tenant_id,
        "service_url": reference["serviceUrl"],
        "reference_json": json.dumps(reference, sort_keys=True),
        "updated_at": now,
    }
    where = teams_conversations.c.conversation_id == conversation_id
    with engine.begin() as connection:
        # A message in a channel carries no channel name: keep the one the install gave.
        named = {**values, "name": name} if name else values
        updated = connection.execute(update(teams_conversations).where(where).values(**named))
        if updated.rowcount:
            return conversation_id
    try:
        with engine.begin() as connection:
            connection.execute(
                insert(teams_conversations).values(
                    conversation_id=conversation_id, name=name, **values
                )
            )
    except IntegrityError:
        # Another replica stored it first: refresh that row instead.
        with engine.begin() as connection:
            connection.execute(update(teams_conversations).where(where).values(**values))
    return conversation_id


def find(engine: Engine, conversation: str) -> StoredConversation | None:
    """The conversation with this id (a thread's id finds its channel), else the one so named."""
    with engine.connect() as connection:
        row = connection.execute(
            select(teams_conversations).where(
                teams_conversations.c.conversation_id == base_conversation_id(conversation)
            )
        ).first()
        if row is None:
            named = connection.execute(
                select(teams_conversations)
                .where(teams_conversations.c.name == conversation)
                .order_by(teams_conversations.c.updated_at.desc())
            ).all()
            row = named[0] if len(named) == 1 else None
    if row is None:
        return None
    return StoredConversation(
        conversation_id=row.conversation_id,
        kind=row.kind,
        name=row.name,
        tenant_id=row.tenant_id,
        service_url=row.service_url,
        reference=json.loads(row.reference_json),
        updated_at=row.updated_at,
    )


def forget(engine: Engine, conversation_id: str) -> None:
    """Drop a conversation the bot was removed from."""
    with engine.begin() as connection:
        connection.execute(
            delete(teams_conversations).where(
                teams_conversations.c.conversation_id == base_conversation_id(conversation_id)
            )
        )
