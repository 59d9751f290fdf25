"""Default daily schedules of `spendbot sync`: one `sync` job per configured connector source."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import Engine

from bot.settings import Settings
from skills.errors import UserError
from storage import schedules
from storage.connectors import configured_sources

log = logging.getLogger(__name__)

DAILY_AT = (5, 0)
"""Hour and minute (UTC) of the default daily sync: after the providers' overnight exports."""


def sync_schedule_id(source: str) -> str:
    """The id of a source's default daily sync job (the id skills/schedules.py would give it)."""
    return f"sync:default:source={source}"


def ensure_daily_syncs(
    engine: Engine, settings: Settings, now: datetime
) -> list[schedules.Schedule]:
    """Add a daily sync job for each configured source that has none; the jobs added.

    A job that already exists, perhaps moved or paused by someone, is left as it is. A source
    configuration that cannot be read (a missing price table) is logged, not raised: the bot
    still starts.
    """
    try:
        sources = configured_sources(settings)
    except UserError as error:
        log.error("daily syncs not scheduled: %s", error)
        return []
    hour, minute = DAILY_AT
    added = []
    for source in sources:
        schedule_id = sync_schedule_id(source)
        if schedules.get(engine, schedule_id) is None:
            added.append(
                schedules.add(
                    engine,
                    schedule_id,
                    kind="sync",
                    target=None,
                    args={"source": source},
                    trigger=CronTrigger(hour=hour, minute=minute, timezone=UTC),
                    when=f"daily at {hour:02d}:{minute:02d} UTC",
                    now=now,
                )
            )
    return added
