"""The scheduler in each ``spendbot serve``: APScheduler on the bot's database, one run per fire.

Jobs persist in the database (`storage.schedules`), so they survive restarts; a fire missed
while the bot was down runs once on restart when it is within the job's grace time (coalesced,
however many fires were missed) and is recorded as missed otherwise. Every replica runs a
scheduler over the same jobs: before running a fire, the executor claims it in ``job_runs``
(insert or fail), so one replica runs it and the others skip it; a claim never finished (its
replica died) is taken over once its lease has passed. Replicas also poll the store, so a job
one replica adds is seen by all.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from aiohttp import web
from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.job import Job
from apscheduler.schedulers.background import BackgroundScheduler

from bot.housekeeping import ensure_daily_housekeeping
from bot.jobs import JobRuntime
from bot.notify import notifier
from bot.pipeline import Assistant
from bot.settings import Settings
from bot.sync_schedule import ensure_daily_syncs
from storage import schedules
from storage.clock import utc_now

log = logging.getLogger(__name__)

POLL_SECONDS = 30.0
"""How often a scheduler looks for jobs other replicas added or changed."""

Fire = Callable[[Job, datetime], JobExecutionEvent | None]


class LeasedExecutor(ThreadPoolExecutor):
    """A thread pool that runs each fire through `fire`, which claims it first."""

    def __init__(self, fire: Fire, max_workers: int = 4) -> None:
        super().__init__(max_workers)
        self._fire = fire

    def _do_submit_job(self, job: Job, run_times: list[datetime]) -> None:
        def done(future: object) -> None:
            error = future.exception()  # type: ignore[attr-defined]
            if error is not None:
                self._run_job_error(job.id, error, error.__traceback__)
            else:
                self._run_job_success(job.id, future.result())  # type: ignore[attr-defined]

        def run() -> list[JobExecutionEvent]:
            return [event for when in run_times if (event := self._fire(job, when)) is not None]

        self._pool.submit(run).add_done_callback(done)


class Scheduler:
    """APScheduler with the database job store, run leases, and this process's job runtime."""

    def __init__(
        self, runtime: JobRuntime, *, replica: str | None = None, poll: float = POLL_SECONDS
    ) -> None:
        self.runtime = runtime
        self.engine = runtime.assistant.engine
        self.replica = replica or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.poll = poll
        self._stopped = threading.Event()
        self.store = schedules.job_store(self.engine)
        self.jobs = BackgroundScheduler(
            jobstores={schedules.STORE: self.store},
            executors={schedules.EXECUTOR: LeasedExecutor(self._fire)},
            job_defaults={
                "coalesce": True,
                "misfire_grace_time": schedules.GRACE_SECONDS,
                "max_instances": 1,
            },
            timezone=UTC,
        )

    def start(self, *, paused: bool = False) -> None:
        """Start in a background thread (`paused`: load jobs but run nothing until `resume`)."""
        self.jobs.start(paused=paused)
        threading.Thread(
            target=self._poll_store, name="spendbot-schedule-poll", daemon=True
        ).start()

    def _poll_store(self) -> None:
        # APScheduler sleeps until the next fire it knows of; waking it makes it reread the
        # store, where other replicas (and the schedule skills) add and change jobs. Runs lost
        # with a replica that died are picked up here too.
        while not self._stopped.wait(self.poll):
            self.jobs.wakeup()
            try:
                self._take_over_lost_runs()
            except Exception:
                log.exception("checking for lost job runs failed")

    def resume(self) -> None:
        """Start running due jobs after a paused start."""
        self.jobs.resume()

    def shutdown(self) -> None:
        """Stop, waiting for running jobs."""
        self._stopped.set()
        if self.jobs.running:
            self.jobs.shutdown(wait=True)

    def fire(self, job_id: str, fire_time: datetime) -> JobExecutionEvent | None:
        """Run one fire of a stored job now, if this replica wins its lease (None otherwise).

        ``spendbot schedules run-now`` passes the current time; tests pass a fixed fire time.
        """
        job = self.store.lookup_job(job_id)
        return None if job is None else self._fire(job, fire_time)

    def _fire(self, job: Job, fire_time: datetime) -> JobExecutionEvent | None:
        """Claim this fire of `job`; run it if the claim is ours."""
        if fire_time.tzinfo is None:
            fire_time = fire_time.replace(tzinfo=UTC)
        claimed = schedules.claim_run(self.engine, job.id, fire_time, self.replica, utc_now())
        if not claimed:
            log.info("job %s at %s: another replica has it", job.id, fire_time)
            self._report(job, "skipped")
            return None
        return self._run(job, fire_time)

    def _take_over_lost_runs(self) -> None:
        """Rerun fires whose replica claimed them and stopped before finishing (one taker)."""
        for job_id, fire_time in schedules.stale_runs(self.engine, utc_now()):
            job = self.store.lookup_job(job_id)
            if job is not None and schedules.take_over(
                self.engine, job_id, fire_time, self.replica, utc_now()
            ):
                log.warning("job %s at %s was never finished; running it again", job_id, fire_time)
                self._run(job, fire_time)

    def _run(self, job: Job, fire_time: datetime) -> JobExecutionEvent:
        """Run a claimed fire (or record it missed), recording how it ended."""
        late = datetime.now(UTC) - fire_time
        if job.misfire_grace_time is not None and late > timedelta(seconds=job.misfire_grace_time):
            log.warning("job %s at %s was missed by %s", job.id, fire_time, late)
            self._finish(job, fire_time, schedules.MISSED, f"late by {late}")
            self._report(job, "missed")
            return JobExecutionEvent(EVENT_JOB_MISSED, job.id, schedules.STORE, fire_time)
        try:
            summary = job.func(*job.args, **job.kwargs, runtime=self.runtime)
        except Exception as error:
            log.exception("job %s at %s failed", job.id, fire_time)
            self._finish(job, fire_time, schedules.ERROR, f"{type(error).__name__}: {error}")
            self._report(job, "failed")
            return JobExecutionEvent(
                EVENT_JOB_ERROR, job.id, schedules.STORE, fire_time, exception=error
            )
        log.info("job %s at %s: %s", job.id, fire_time, summary)
        self._finish(job, fire_time, schedules.OK, str(summary))
        self._report(job, "ok")
        return JobExecutionEvent(EVENT_JOB_EXECUTED, job.id, schedules.STORE, fire_time, summary)

    def _report(self, job: Job, outcome: str) -> None:
        # Labelled by kind, not job id, so the metric's label set stays bounded.
        kind = str(job.kwargs.get("kind", "unknown"))
        self.runtime.assistant.observer.scheduler_run(kind, outcome)

    def _finish(self, job: Job, fire_time: datetime, outcome: str, detail: str) -> None:
        schedules.finish_run(
            self.engine, job.id, fire_time, outcome=outcome, detail=detail, now=utc_now()
        )


def add_scheduler(app: web.Application, settings: Settings, assistant: Assistant) -> None:
    """Run a scheduler for as long as the web application runs (``spendbot serve``)."""
    scheduler = Scheduler(JobRuntime(assistant, notifier(settings, assistant.engine)))

    async def start(_: web.Application) -> None:
        ensure_daily_syncs(assistant.engine, settings, utc_now())
        ensure_daily_housekeeping(assistant.engine, utc_now())
        scheduler.start()

    async def stop(_: web.Application) -> None:
        await asyncio.to_thread(scheduler.shutdown)

    app.on_startup.append(start)
    app.on_cleanup.insert(0, stop)
