"""Store housekeeping: delete chat delivery claims and job-run history past their retention.

A daily ``housekeeping`` job runs it in ``spendbot serve``; ``spendbot housekeeping`` runs it once.
GPU samples are kept: on-premises GPU costs are rebuilt from them for every synced month, and
fleet efficiency reads them over whole periods.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from apscheduler.jobstores.base import ConflictingIdError
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import Engine

from bot.settings import Settings
from storage import deliveries, schedules

log = logging.getLogger(__name__)

RUN_HISTORY = timedelta(days=90)
"""How long the scheduler's record of each fire (``job_runs``) is kept."""
SCHEDULE_ID = "housekeeping:daily"
DAILY_AT = (3, 30)
"""Hour and minute (UTC) of the daily housekeeping job: a quiet hour, before the daily syncs."""


@dataclass(frozen=True)
class Pruned:
    """What one housekeeping pass deleted (or, in a dry run, would delete)."""

    deliveries: int
    job_runs: int
    dry_run: bool

    @property
    def summary(self) -> str:
        """One line for people: the job's result and the command's output."""
        verb = "would delete" if self.dry_run else "deleted"
        return f"{verb} {self.deliveries} delivery claim(s) and {self.job_runs} job run(s)"


def housekeep(
    engine: Engine, settings: Settings, now: datetime, *, dry_run: bool = False
) -> Pruned:
    """Delete rows past their retention as of `now` (naive UTC, the real clock); log what went."""
    delivery_cutoff = now - timedelta(hours=settings.delivery_retention_hours)
    runs_cutoff = now - RUN_HISTORY
    pruned = Pruned(
        deliveries=deliveries.prune(engine, delivery_cutoff, dry_run=dry_run),
        job_runs=schedules.prune_runs(engine, runs_cutoff, dry_run=dry_run),
        dry_run=dry_run,
    )
    record = {
        "event": "housekeeping",
        **asdict(pruned),
        "deliveries_before": delivery_cutoff.isoformat(),
        "job_runs_before": runs_cutoff.isoformat(),
    }
    log.info(json.dumps(record))
    return pruned


def ensure_daily_housekeeping(engine: Engine, now: datetime) -> schedules.Schedule | None:
    """Add the daily housekeeping job unless it exists (perhaps paused by someone); the job added."""
    if schedules.get(engine, SCHEDULE_ID) is not None:
        return None
    hour, minute = DAILY_AT
    try:
        return schedules.add(
            engine,
            SCHEDULE_ID,
            kind="housekeeping",
            target=None,
            args={},
            trigger=CronTrigger(hour=hour, minute=minute, timezone=UTC),
            when=f"daily at {hour:02d}:{minute:02d} UTC",
            now=now,
        )
    except ConflictingIdError:
        return None  # another replica starting at the same moment added it
