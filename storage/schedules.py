"""Scheduled jobs in APScheduler's job store, and run leases so each fire runs on one replica.

Jobs live in the ``apscheduler_jobs`` table (pickled by APScheduler's `SQLAlchemyJobStore`)
and call `JOB_FUNCTION` with plain JSON arguments: a kind, a target (``slack:#finops``) and the
kind's arguments. Every replica's scheduler sees the same jobs and computes the same fire times;
before running a fire it inserts a ``job_runs`` row keyed by (job id, fire time), and only the
replica whose insert succeeds runs it. A run claimed but never finished (its replica died) is
taken over by one replica once its lease has passed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.job import Job
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from storage.models import job_runs
from storage.retention import delete_rows

JOB_FUNCTION = "bot.jobs:run_job"
"""What every stored job calls, by reference, so any replica can load and run it."""
KINDS = (
    "digest",
    "anomaly_scan",
    "budget_check",
    "sync",
    "gpu_idle_scan",
    "gpu_offhours",
    "housekeeping",
)
STORE = "default"
EXECUTOR = "default"
GRACE_SECONDS = 6 * 3600
"""A fire up to this late (the bot was down at the time) still runs, once; later ones are missed."""

LEASE = timedelta(minutes=30)
"""A claimed run not finished after this long is taken to be lost with its replica, and rerun."""

OK = "ok"
ERROR = "error"
MISSED = "missed"


@dataclass(frozen=True)
class Schedule:
    """One stored job as people see it."""

    id: str
    kind: str
    target: str | None
    args: dict[str, Any]
    when: str
    next_run: datetime | None

    @property
    def paused(self) -> bool:
        """A paused job keeps its trigger but has no next run."""
        return self.next_run is None

    def as_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "id": self.id,
            "kind": self.kind,
            "target": self.target,
            "args": self.args,
            "when": self.when,
            "next_run": self.next_run.isoformat() if self.next_run else None,
            "paused": self.paused,
        }


def job_store(engine: Engine) -> SQLAlchemyJobStore:
    """APScheduler's store on the bot's database (the table comes from migration 0008)."""
    return SQLAlchemyJobStore(engine=engine)


def _opened(engine: Engine) -> SQLAlchemyJobStore:
    """A store usable without a running scheduler: enough to read and write job rows."""
    store = job_store(engine)
    store.start(_settings_only(), STORE)
    return store


def _settings_only() -> BackgroundScheduler:
    """A scheduler that is never started: jobs and stores read their time zone from it."""
    return BackgroundScheduler(timezone=UTC)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _naive(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.astimezone(UTC).replace(tzinfo=None)


def as_schedule(job: Job) -> Schedule:
    """The people-facing view of an APScheduler job."""
    return Schedule(
        id=job.id,
        kind=job.kwargs["kind"],
        target=job.kwargs.get("target"),
        args=job.kwargs.get("args") or {},
        when=job.name,
        next_run=_naive(job.next_run_time),
    )


def add(
    engine: Engine,
    schedule_id: str,
    *,
    kind: str,
    target: str | None,
    args: dict[str, Any],
    trigger: BaseTrigger,
    when: str,
    now: datetime,
) -> Schedule:
    """Store (or replace) a job; its first run is the trigger's next fire time after `now`."""
    if kind not in KINDS:
        raise ValueError(f"unknown job kind {kind!r}")
    job = Job(
        _settings_only(),
        id=schedule_id,
        func=JOB_FUNCTION,
        trigger=trigger,
        executor=EXECUTOR,
        args=(),
        kwargs={"kind": kind, "target": target, "args": args},
        name=when,
        misfire_grace_time=GRACE_SECONDS,
        coalesce=True,
        max_instances=1,
        next_run_time=trigger.get_next_fire_time(None, _utc(now)),
    )
    store = _opened(engine)
    if store.lookup_job(schedule_id) is not None:
        store.update_job(job)
    else:
        store.add_job(job)
    return as_schedule(job)


def list_schedules(engine: Engine) -> list[Schedule]:
    """Every stored job, soonest first, paused ones last."""
    return [as_schedule(job) for job in _opened(engine).get_all_jobs()]


def get(engine: Engine, schedule_id: str) -> Schedule | None:
    """One stored job, or None."""
    job = _opened(engine).lookup_job(schedule_id)
    return as_schedule(job) if job else None


def pause(engine: Engine, schedule_id: str) -> bool:
    """Stop a job firing until resumed; False when there is no such job."""
    store = _opened(engine)
    job = store.lookup_job(schedule_id)
    if job is None:
        return False
    job._modify(next_run_time=None)
    store.update_job(job)
    return True


def delete(engine: Engine, schedule_id: str) -> bool:
    """Remove a job; False when there is no such job."""
    try:
        _opened(engine).remove_job(schedule_id)
    except JobLookupError:
        return False
    return True


# Run leases ------------------------------------------------------------------------------------


def claim_run(
    engine: Engine, job_id: str, fire_time: datetime, replica: str, now: datetime
) -> bool:
    """Whether `replica` runs this fire of the job: exactly one caller per (job, fire time) wins."""
    try:
        with engine.begin() as connection:
            connection.execute(
                insert(job_runs).values(
                    job_id=job_id,
                    fire_time=_naive(_utc(fire_time)),
                    claimed_by=replica,
                    claimed_at=now,
                )
            )
    except IntegrityError:
        return False
    return True


def stale_runs(
    engine: Engine, now: datetime, lease: timedelta = LEASE
) -> list[tuple[str, datetime]]:
    """(job id, fire time) of runs claimed longer than `lease` ago and never finished."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(job_runs.c.job_id, job_runs.c.fire_time).where(
                job_runs.c.finished_at.is_(None), job_runs.c.claimed_at <= now - lease
            )
        )
        return [(job_id, fire_time.replace(tzinfo=UTC)) for job_id, fire_time in rows]


def take_over(
    engine: Engine,
    job_id: str,
    fire_time: datetime,
    replica: str,
    now: datetime,
    lease: timedelta = LEASE,
) -> bool:
    """Claim a stale run for `replica` (compare-and-set: one replica wins)."""
    with engine.begin() as connection:
        taken = connection.execute(
            update(job_runs)
            .where(
                job_runs.c.job_id == job_id,
                job_runs.c.fire_time == _naive(_utc(fire_time)),
                job_runs.c.finished_at.is_(None),
                job_runs.c.claimed_at <= now - lease,
            )
            .values(claimed_by=replica, claimed_at=now)
        )
    return taken.rowcount == 1


def finish_run(
    engine: Engine,
    job_id: str,
    fire_time: datetime,
    *,
    outcome: str,
    detail: str | None,
    now: datetime,
) -> None:
    """Record how a claimed fire ended."""
    with engine.begin() as connection:
        connection.execute(
            update(job_runs)
            .where(job_runs.c.job_id == job_id, job_runs.c.fire_time == _naive(_utc(fire_time)))
            .values(finished_at=now, outcome=outcome, detail=detail)
        )


def prune_runs(engine: Engine, older_than: datetime, *, dry_run: bool = False) -> int:
    """Forget runs claimed before `older_than`; how many (`dry_run`: would be).

    Fires that old are past any grace time and lease: no scheduler claims or takes them over
    again, so their rows are history only (unfinished ones included, e.g. of deleted jobs).
    """
    return delete_rows(engine, job_runs, job_runs.c.claimed_at < older_than, dry_run=dry_run)


def runs(engine: Engine, job_id: str | None = None) -> list[dict[str, Any]]:
    """Recorded fires, newest first (all jobs, or one)."""
    query = select(job_runs).order_by(job_runs.c.fire_time.desc(), job_runs.c.id.desc())
    if job_id is not None:
        query = query.where(job_runs.c.job_id == job_id)
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(query)]
