"""The idle-GPU policy: pure functions over samples and tags; doubt always means busy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

from skills.gpu_fleet import Activity
from storage.gpu_telemetry import GpuSample

THRESHOLD_TAG = "spendbot:idle-threshold-pct"
WINDOW_TAG = "spendbot:idle-window-minutes"

IGNORED_PROCESSES = frozenset(
    {"nvidia-persistenced", "nv-hostengine", "dcgm-exporter", "dcgmi", "Xorg", "gnome-shell"}
)
"""Processes that hold a GPU without using it: they do not make a machine busy."""

EVIDENCE_SAMPLES = 6
FALLBACK_CPU_PCT = 2.0
FALLBACK_NETWORK_BYTES = 5_000_000
"""The fallback signal: below 2 % CPU and 5 MB network in+out in every 5 minutes of the window."""
FALLBACK_SOURCE = "CPU/network fallback"


@dataclass(frozen=True)
class IdlePolicy:
    """When a machine counts as idle: utilization below `threshold_pct` for all of `window`.

    `max_gap`: telemetry older than this at either end of the window, or with a hole this long,
    leaves the machine busy (fail safe: missing or stale data never proposes a stop).
    """

    threshold_pct: float = 5.0
    window: timedelta = timedelta(minutes=60)
    keep_tag: tuple[str, str] = ("spendbot:keep", "true")
    max_gap: timedelta = timedelta(minutes=15)

    @classmethod
    def from_settings(cls, settings: Any) -> IdlePolicy:
        """The policy configured in settings (`gpu_idle_*`, `gpu_keep_tag`); defaults without."""
        if settings is None:
            return cls()
        key, _, value = settings.gpu_keep_tag.partition("=")
        return cls(
            threshold_pct=settings.gpu_idle_threshold_pct,
            window=timedelta(minutes=settings.gpu_idle_window_minutes),
            keep_tag=(key.strip(), value.strip() or "true"),
        )

    def for_tags(self, tags: Mapping[str, str]) -> IdlePolicy:
        """The policy with a machine's own threshold and window tags applied, where valid."""
        policy = self
        try:
            if THRESHOLD_TAG in tags:
                policy = replace(policy, threshold_pct=float(tags[THRESHOLD_TAG]))
            if WINDOW_TAG in tags:
                policy = replace(policy, window=timedelta(minutes=int(tags[WINDOW_TAG])))
        except ValueError:
            return self
        return policy


@dataclass(frozen=True)
class Verdict:
    """Whether a machine is idle, why (or why not), since when, and the samples that show it."""

    idle: bool
    reason: str
    idle_since: datetime | None = None
    evidence: tuple[dict[str, Any], ...] = field(default=())
    kept: bool = False
    """Kept on purpose (opt-out tag, an owner's snooze) rather than found busy."""


def kept_by_tag(tags: Mapping[str, str], policy: IdlePolicy) -> str | None:
    """Why the machine's tags keep it (the opt-out tag), or None."""
    key, value = policy.keep_tag
    if tags.get(key, "").strip().lower() == value.lower():
        return f"kept by tag {key}={value}"
    return None


def busy_reason(sample: GpuSample, policy: IdlePolicy) -> str | None:
    """Why one sample shows work on its GPU: utilization at or above the threshold, or a process."""
    if sample.utilization_pct >= policy.threshold_pct:
        return f"GPU {sample.gpu_index} at {sample.utilization_pct:g}% at {sample.sampled_at:%H:%M}"
    if sample.processes is not None:
        working = [name for name in sample.processes if name not in IGNORED_PROCESSES]
        if working:
            return f"process {working[0]} on GPU {sample.gpu_index} at {sample.sampled_at:%H:%M}"
    elif sample.process_count > 0:
        return f"{sample.process_count} process(es) on GPU {sample.gpu_index}"
    return None


def _coverage_problem(
    times: Sequence[datetime],
    start: datetime,
    now: datetime,
    policy: IdlePolicy,
    what: str = "GPU telemetry",
) -> str | None:
    if not times:
        return f"no {what} in the last {_minutes(policy.window)}"
    if now - times[-1] > policy.max_gap:
        return f"{what} is stale (last sample {times[-1]:%Y-%m-%d %H:%M})"
    if times[0] - start > policy.max_gap:
        return f"{what} covers only the last {_minutes(now - times[0])}"
    for before, after in pairwise(times):
        if after - before > policy.max_gap:
            return f"{what} has a gap from {before:%H:%M} to {after:%H:%M}"
    return None


def _minutes(span: timedelta) -> str:
    return f"{int(span.total_seconds() // 60)} min"


def judge(
    samples: Sequence[GpuSample], tags: Mapping[str, str], now: datetime, policy: IdlePolicy
) -> Verdict:
    """Idle only when opted in, fully covered by fresh telemetry, and quiet for the whole window.

    `samples` may reach back before the window: the quiet run before it dates `idle_since`.
    """
    kept = kept_by_tag(tags, policy)
    if kept:
        return Verdict(False, kept, kept=True)
    policy = policy.for_tags(tags)
    start = now - policy.window
    ordered = sorted(samples, key=lambda sample: (sample.sampled_at, sample.gpu_index))
    recent = [sample for sample in ordered if start <= sample.sampled_at <= now]
    evidence = tuple(
        {
            "at": sample.sampled_at.isoformat(),
            "gpu": sample.gpu_index,
            "utilization_pct": sample.utilization_pct,
            "source": sample.source,
        }
        for sample in recent[-EVIDENCE_SAMPLES:]
    )
    times = sorted({sample.sampled_at for sample in recent})
    problem = _coverage_problem(times, start, now, policy)
    if problem:
        return Verdict(False, problem, evidence=evidence)
    for sample in reversed(recent):
        reason = busy_reason(sample, policy)
        if reason:
            return Verdict(False, reason, evidence=evidence)
    last_busy = max(
        (s.sampled_at for s in ordered if s.sampled_at <= now and busy_reason(s, policy)),
        default=None,
    )
    quiet = [s.sampled_at for s in ordered if last_busy is None or s.sampled_at > last_busy]
    peak = max(sample.utilization_pct for sample in recent)
    return Verdict(
        True,
        f"below {policy.threshold_pct:g}% for {_minutes(policy.window)} (peak {peak:g}%)",
        idle_since=min(quiet),
        evidence=evidence,
    )


def _fallback_busy(point: Activity) -> str | None:
    """Why one period of CPU/network use counts as busy: a missing datapoint, or use."""
    if point.cpu_pct is None or point.network_bytes is None:
        return f"CPU/network datapoint missing at {point.at:%H:%M}"
    if point.cpu_pct >= FALLBACK_CPU_PCT:
        return f"CPU at {point.cpu_pct:g}% at {point.at:%H:%M}"
    if point.network_bytes >= FALLBACK_NETWORK_BYTES:
        return f"network {point.network_bytes / 1e6:.1f} MB at {point.at:%H:%M}"
    return None


def judge_fallback(
    points: Sequence[Activity], tags: Mapping[str, str], now: datetime, policy: IdlePolicy
) -> Verdict:
    """For an instance without GPU metrics: idle only when CPU and network stayed quiet throughout.

    Every verdict says it rests on the fallback signal; any missing datapoint means busy.
    """
    kept = kept_by_tag(tags, policy)
    if kept:
        return Verdict(False, kept, kept=True)
    policy = policy.for_tags(tags)
    start = now - policy.window
    ordered = sorted((point for point in points if point.at <= now), key=lambda point: point.at)
    recent = [point for point in ordered if point.at >= start]
    problem = _coverage_problem(
        [point.at for point in recent], start, now, policy, "CPU/network telemetry"
    ) or next(filter(None, (_fallback_busy(point) for point in reversed(recent))), None)
    if problem:
        return Verdict(False, f"no GPU telemetry; fallback signal: {problem}")
    last_busy = max((point.at for point in ordered if _fallback_busy(point)), default=None)
    quiet = [point.at for point in ordered if last_busy is None or point.at > last_busy]
    peak_cpu = max(point.cpu_pct or 0.0 for point in recent)
    peak_net = max(point.network_bytes or 0.0 for point in recent)
    text = (
        f"fallback signal (no GPU metrics): CPU below {FALLBACK_CPU_PCT:g}% and network below "
        f"{FALLBACK_NETWORK_BYTES / 1e6:g} MB per 5 min for {_minutes(policy.window)} "
        f"(peak CPU {peak_cpu:g}%, network {peak_net / 1e6:.2f} MB)"
    )
    evidence = {"at": recent[-1].at.isoformat(), "text": text, "source": FALLBACK_SOURCE}
    return Verdict(True, text, idle_since=min(quiet), evidence=(evidence,))
