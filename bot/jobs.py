"""What each kind of scheduled job does: run skills or checks and post the result to its target.

APScheduler stores `run_job` by reference with plain JSON arguments; the scheduler's executor
(`bot.scheduler`) supplies the `JobRuntime` of the process that runs it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from bot import gpu_requests
from bot.housekeeping import housekeep
from skills.anomaly_alerts import scan
from skills.budget_alerts import budget_notices
from skills.replies import Reply
from storage import anomaly_alerts
from storage.clock import utc_now
from storage.connectors import configured_sources, sync_source

if TYPE_CHECKING:
    from bot.notify import Notifier
    from bot.pipeline import Assistant

log = logging.getLogger(__name__)

SCHEDULER = "scheduler"
"""The identity scheduled runs act as: it reads, and changes nothing a person must approve."""


@dataclass(frozen=True)
class JobRuntime:
    """What a job needs from the process running it."""

    assistant: Assistant
    notifier: Notifier


class JobFailed(Exception):
    """A job that could not produce what it posts (recorded as the run's error)."""


def run_job(
    kind: str, target: str | None, args: dict[str, Any], *, runtime: JobRuntime | None = None
) -> str:
    """Run one scheduled job of `kind`; a summary of what it did."""
    if runtime is None:
        raise RuntimeError("scheduled jobs run through bot.scheduler.Scheduler")
    return JOBS[kind](runtime, target, args)


def _required(target: str | None, kind: str) -> str:
    if not target:
        raise JobFailed(f"a {kind} job needs a target")
    return target


def digest(runtime: JobRuntime, target: str | None, args: dict[str, Any]) -> str:
    """Post the weekly digest (optionally scoped) to the target."""
    assistant = runtime.assistant
    skill = assistant.registry.get("digest_show")
    assert skill is not None
    reply = assistant.execute(skill, {"scope": args.get("scope") or {}}, SCHEDULER)
    if reply.is_error:
        raise JobFailed(reply.text)
    message = runtime.notifier.post(_required(target, "digest"), reply)
    return f"posted the digest as {message}"


def anomaly_scan(runtime: JobRuntime, target: str | None, args: dict[str, Any]) -> str:
    """Post anomalies detected for the first time; update the alerts of persisting ones."""
    assistant = runtime.assistant
    posted = updated = 0
    for notice in scan(assistant.context(SCHEDULER)):
        state = notice.state
        if notice.kind == anomaly_alerts.NEW:
            message = runtime.notifier.post(_required(target, "anomaly scan"), notice.reply)
            posted += 1
        else:
            previous = f"{state.channel}:{state.message_ts}"
            message = runtime.notifier.update(previous, notice.reply, _required(target, "scan"))
            updated += 1
            if message == previous:
                continue
        # A new message (or, where messages cannot change, its replacement) is the alert's now.
        channel, ts = message.rsplit(":", 1)
        anomaly_alerts.set_message(assistant.engine, state.id, channel, ts)
    return f"{posted} new alert(s) posted, {updated} updated"


def budget_check(runtime: JobRuntime, target: str | None, args: dict[str, Any]) -> str:
    """Post new budget thresholds with drivers and fixes: to the budget's, owner's or set target."""
    assistant = runtime.assistant
    fallback = target or assistant.settings.alert_channel
    notices = budget_notices(assistant.context(SCHEDULER), fallback)
    for notice in notices:
        if notice.target is None:
            log.warning("budget alert for %s has nowhere to go", notice.alert.budget.label)
            continue
        runtime.notifier.post(notice.target, notice.reply)
    return f"{len(notices)} budget alert(s)"


def sync(runtime: JobRuntime, target: str | None, args: dict[str, Any]) -> str:
    """Pull billing data from `args["source"]`, or every configured source; post a summary."""
    assistant = runtime.assistant
    settings = assistant.settings
    configs = configured_sources(settings)
    lines = []
    for name in [args["source"]] if args.get("source") else list(configs):
        if name not in configs:
            raise JobFailed(f"{name} is not configured (see the README's Connectors section)")
        result = sync_source(
            assistant.engine,
            name,
            configs[name],
            now=settings.current_time(),
            months=settings.sync_months,
        )
        assistant.observer.ingest_rows(name, result.report.rows)
        lines.append(f"{name}: {result.report.rows:,} rows")
    summary = "; ".join(lines) or "no sources configured"
    if target:
        runtime.notifier.post(target, Reply(text=f"Data sync: {summary}."))
    return summary


def housekeeping(runtime: JobRuntime, target: str | None, args: dict[str, Any]) -> str:
    """Delete delivery claims and job-run history past their retention."""
    assistant = runtime.assistant
    return housekeep(assistant.engine, assistant.settings, utc_now()).summary


def gpu_idle_scan(runtime: JobRuntime, target: str | None, args: dict[str, Any]) -> str:
    """Follow up earlier GPU stop requests, then propose stopping newly idle GPUs to owners."""
    return _gpu_job(gpu_requests.idle_scan, runtime, target)


def gpu_offhours(runtime: JobRuntime, target: str | None, args: dict[str, Any]) -> str:
    """Off hours begin: request stopping the running GPU instances with the schedule's tag."""
    return _gpu_job(partial(gpu_requests.off_hours, tag=args["tag"]), runtime, target)


def _gpu_job(run: Callable[..., str], runtime: JobRuntime, target: str | None) -> str:
    try:
        return run(runtime.assistant, runtime.notifier, SCHEDULER, target)
    except gpu_requests.ScanFailed as error:
        raise JobFailed(str(error)) from None


JOBS: dict[str, Callable[[JobRuntime, str | None, dict[str, Any]], str]] = {
    "digest": digest,
    "anomaly_scan": anomaly_scan,
    "budget_check": budget_check,
    "sync": sync,
    "gpu_idle_scan": gpu_idle_scan,
    "gpu_offhours": gpu_offhours,
    "housekeeping": housekeeping,
}
