"""Cost anomaly detection: a robust weekday-seasonal baseline per series, grouped by root cause.

Per series and day the expected cost is ``level × weekday factor``: the weekday factors are the
medians of each weekday over the last 8 weeks divided by the median of all those days, and the
level is the median of the last 4 weeks with the weekday pattern divided out. The noise is the
median absolute deviation (MAD) of week-over-week log differences over the 8 weeks, scaled to a
standard deviation. A day is anomalous when it passes all three thresholds: `min_impact` in
money, `min_relative` of the expected cost, and `sigmas` robust standard deviations on the log
scale. Increases and decreases both count. A service or SKU whose first spend falls in the
window, at least two weeks after the data starts, is new spend. Anomalous days of one series
moving the same way, at most `max_gap_days` apart, form one episode.

Episodes seen at several levels of the hierarchy (provider, service, sub account, team, SKU,
resource) are grouped into one alert per root cause: the most specific episode becomes the alert,
and a coarser episode that overlaps it in time, moves the same way, contains it (by cost, in the
lineage of line items) and is at least half explained by it is folded in (`also_seen_at`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Literal

import numpy as np
import pandas as pd
from sqlalchemy import Engine

from storage.cost_series import (
    LEVELS,
    TEAM_TAG,
    Level,
    last_usage_day,
    load_level_series,
    load_lineage,
)
from storage.costs import NONE_LABEL

Kind = Literal["spike", "drop", "new"]
MAD_TO_SIGMA = 1.4826
NEW_SPEND_LEVELS = ("service", "sku")
"""Levels where a first appearance is reported as new spend (a new service or SKU)."""
NAMED_LEVELS = ("resource", "sku", "sub_account")
"""Levels whose missing value (``(none)``) is not a driver: that spend is seen at coarser levels."""


@dataclass(frozen=True)
class DetectorParams:
    """Thresholds and windows of the detector; money is in the report currency, per day."""

    min_impact: float = 100.0
    min_relative: float = 0.25
    sigmas: float = 4.0
    level_days: int = 28
    season_days: int = 56
    min_history: int = 21
    new_after_days: int = 14
    min_spread: float = 0.05
    max_gap_days: int = 6


@dataclass(frozen=True)
class Episode:
    """Consecutive anomalous days of one series, moving one way."""

    series: tuple[str, ...]
    start: date
    end: date
    kind: Kind
    days: int
    expected: float
    actual: float

    @property
    def impact(self) -> float:
        """Actual minus expected cost over the episode's anomalous days."""
        return self.actual - self.expected

    @property
    def up(self) -> bool:
        """Whether cost went up (spike or new spend)."""
        return self.kind != "drop"


def _median(values: np.ndarray) -> float:
    """The median of a small non-empty array, without np.median's per-call overhead."""
    ordered = np.sort(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return float(ordered[middle])
    return float(ordered[middle - 1] + ordered[middle]) / 2.0


def _baseline(
    history: np.ndarray, weekdays: np.ndarray, weekday: int, params: DetectorParams
) -> tuple[float, float]:
    """Expected value on `weekday`, and the robust spread of log residuals, from past values."""
    overall = _median(history)
    recent = history[-params.level_days :]
    recent_days = weekdays[-params.level_days :]
    profile = np.array(
        [
            _median(history[weekdays == day]) if np.any(weekdays == day) else overall
            for day in range(7)
        ]
    )
    if overall > 0:
        factors = profile / overall
        usable = factors[recent_days] > 0
        if usable.any():
            level = _median(recent[usable] / factors[recent_days][usable])
        else:
            level = _median(recent)
        expected = level * float(factors[weekday])
    else:
        # Mostly idle series: the weekday medians themselves are the best guess.
        expected = float(profile[weekday])
    # Cloud costs vary by multiples (hours × rate), so noise is measured on a log scale, from
    # week-over-week differences of the same weekday: they hold no seasonality, barely any
    # trend, and unlike in-sample residuals they do not shrink with the fitted profile.
    offset = _offset(params)
    logs = np.log(np.maximum(history, 0) + offset)
    active = (history[7:] > offset) | (history[:-7] > offset)
    if not active.any():
        return max(expected, 0.0), params.min_spread
    differences = (logs[7:] - logs[:-7])[active]
    spread = MAD_TO_SIGMA * _median(np.abs(differences - _median(differences))) / np.sqrt(2.0)
    return max(expected, 0.0), max(spread, params.min_spread)


def _offset(params: DetectorParams) -> float:
    return max(params.min_impact / 10.0, 0.01)


def episodes_from_days(
    series: tuple[str, ...],
    days: pd.DatetimeIndex,
    flagged: list[tuple[int, float, float]],
    params: DetectorParams,
) -> list[Episode]:
    """Merge flagged (index, expected, actual) days into episodes of one direction."""
    found: list[Episode] = []
    run: list[tuple[int, float, float]] = []

    def close() -> None:
        if run:
            up = run[0][2] > run[0][1]
            found.append(
                Episode(
                    series,
                    days[run[0][0]].date(),
                    days[run[-1][0]].date(),
                    "spike" if up else "drop",
                    len(run),
                    sum(item[1] for item in run),
                    sum(item[2] for item in run),
                )
            )

    for item in flagged:
        if run:
            same_way = (item[2] > item[1]) == (run[-1][2] > run[-1][1])
            if not same_way or item[0] - run[-1][0] > params.max_gap_days + 1:
                close()
                run = []
        run.append(item)
    close()
    return found


def detect_frame(
    frame: pd.DataFrame,
    start: date,
    params: DetectorParams,
    *,
    new_spend: bool = True,
    data_start: date | None = None,
) -> list[Episode]:
    """Anomalous episodes from `start` on, in a day-by-series frame (NaN before a series exists).

    `data_start` is when the data begins (default: the frame's first day); a series that first
    appears `new_after_days` or more after it, within the window, is new spend when it costs at
    least `min_impact` on some day.
    """
    days = pd.DatetimeIndex(frame.index)
    if len(days) == 0:
        return []
    weekdays = days.day_of_week.to_numpy()
    first_test = int(days.searchsorted(pd.Timestamp(start)))
    origin = int(days.searchsorted(pd.Timestamp(data_start))) if data_start else 0
    found: list[Episode] = []
    for column in frame.columns:
        series = column if isinstance(column, tuple) else (column,)
        values = frame[column].to_numpy(dtype=float)
        present = np.flatnonzero(~np.isnan(values))
        if len(present) == 0:
            continue
        first = int(present[0])
        if first >= first_test:
            if new_spend and first - origin >= params.new_after_days:
                window = values[first:]
                if np.nanmax(window) >= params.min_impact:
                    found.append(
                        Episode(
                            series,
                            days[first].date(),
                            days[-1].date(),
                            "new",
                            len(window),
                            0.0,
                            float(np.nansum(window)),
                        )
                    )
            continue
        flagged: list[tuple[int, float, float]] = []
        offset = _offset(params)
        for t in range(max(first_test, first + params.min_history), len(values)):
            low = max(first, t - params.season_days)
            history = values[low:t]
            expected, spread = _baseline(history, weekdays[low:t], int(weekdays[t]), params)
            actual = values[t]
            gap = abs(actual - expected)
            log_gap = abs(np.log((max(actual, 0) + offset) / (expected + offset)))
            if (
                gap >= max(params.min_relative * expected, params.min_impact)
                and gap > 0
                and log_gap >= params.sigmas * spread
            ):
                flagged.append((t, expected, float(actual)))
        found.extend(episodes_from_days(series, days, flagged, params))
    return found


@dataclass
class Alert:
    """One anomaly per root cause, named by its most specific driver."""

    level: Level
    episode: Episode
    provider: str | None
    service: str | None
    sub_account: str | None
    owner: str | None
    also_seen_at: list[dict[str, str]] = field(default_factory=list)

    @property
    def key(self) -> str:
        """The driver's value: a resource id, SKU, sub account, team, service or provider."""
        return self.episode.series[-1]

    def as_dict(self) -> dict:
        """JSON form: date, provider, service, dimension, key, expected, actual, impact, owner."""
        episode = self.episode
        return {
            "date": episode.start.isoformat(),
            "end_date": episode.end.isoformat(),
            "days": episode.days,
            "kind": episode.kind,
            "provider": self.provider,
            "service": self.service,
            "sub_account": self.sub_account,
            "dimension": self.level.name,
            "key": self.key,
            "expected": round(episode.expected, 2),
            "actual": round(episode.actual, 2),
            "impact": round(episode.impact, 2),
            "owner": self.owner,
            "also_seen_at": self.also_seen_at,
        }


@dataclass(frozen=True)
class Detection:
    """The result of one detection run: alerts, worst first, and what was looked at."""

    alerts: list[Alert]
    start: date
    end: date | None
    params: DetectorParams
    currency: str | None
    series_count: int = 0


class _Lineage:
    """Which line-item groups (provider, service, sub account, team, SKU, resource) a series covers."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.weights = frame["amount"].abs().to_numpy() if len(frame) else np.zeros(0)
        self._masks: dict[tuple[str, tuple[str, ...]], np.ndarray] = {}

    def mask(self, level: Level, series: tuple[str, ...]) -> np.ndarray:
        cached = (level.name, series)
        if cached not in self._masks:
            mask = np.ones(len(self.frame), dtype=bool)
            for key, value in zip(level.keys, series, strict=True):
                mask &= (self.frame[key] == value).to_numpy()
            self._masks[cached] = mask
        return self._masks[cached]

    def contained(
        self, inner: tuple[Level, tuple[str, ...]], outer: tuple[Level, tuple[str, ...]]
    ) -> float:
        """Share of the inner series' cost that lies within the outer series."""
        mask = self.mask(*inner)
        total = self.weights[mask].sum()
        if total <= 0:
            return 0.0
        return float(self.weights[mask & self.mask(*outer)].sum() / total)

    def dominant(self, level: Level, series: tuple[str, ...], column: str) -> str | None:
        """The value of `column` holding most of the series' cost, if it holds at least half."""
        mask = self.mask(level, series)
        if not mask.any():
            return None
        shares = pd.Series(self.weights[mask]).groupby(self.frame[column].to_numpy()[mask]).sum()
        if shares.sum() <= 0:
            return None
        value = str(shares.idxmax())
        if value == NONE_LABEL or shares.max() < 0.5 * shares.sum():
            return None
        return value


def _describe(level: Level, episode: Episode, lineage: _Lineage) -> Alert:
    fields = dict(zip(level.keys, episode.series, strict=True))

    def pick(column: str) -> str | None:
        value = fields.get(column)
        if value is not None:
            return None if value == NONE_LABEL else value
        return lineage.dominant(level, episode.series, column)

    return Alert(
        level,
        episode,
        provider=pick("provider"),
        service=pick("service"),
        sub_account=pick("sub_account"),
        owner=pick(TEAM_TAG),
    )


def group_alerts(
    found: list[tuple[Level, Episode]], lineage_frame: pd.DataFrame, *, explained_share: float = 0.5
) -> list[Alert]:
    """One alert per root cause: coarser episodes explained by a more specific one are folded in."""
    lineage = _Lineage(lineage_frame)
    candidates = sorted(
        (
            (level, episode)
            for level, episode in found
            if not (level.name in NAMED_LEVELS and episode.series[-1] == NONE_LABEL)
        ),
        key=lambda item: (item[0].rank, -abs(item[1].impact)),
    )
    alerts: list[Alert] = []
    for level, episode in candidates:
        related = [
            alert
            for alert in alerts
            if alert.level.rank < level.rank
            and alert.episode.up == episode.up
            and alert.episode.start <= episode.end
            and episode.start <= alert.episode.end
            and lineage.contained((alert.level, alert.episode.series), (level, episode.series))
            >= 0.5
        ]
        explained = sum(abs(alert.episode.impact) for alert in related)
        if related and explained >= explained_share * abs(episode.impact):
            biggest = max(related, key=lambda alert: abs(alert.episode.impact))
            biggest.also_seen_at.append({"dimension": level.name, "key": episode.series[-1]})
        else:
            alerts.append(_describe(level, episode, lineage))
    return sorted(alerts, key=lambda alert: -abs(alert.episode.impact))


def detect(
    engine: Engine,
    since: date,
    until: date,
    params: DetectorParams,
    currency: str | None,
) -> Detection:
    """Run detection over the store for days `since` to `until` (cut at the last day with data)."""
    end = last_usage_day(engine, until + timedelta(days=1))
    if end is None or end < since:
        return Detection([], since, end, params, currency)
    history_start = since - timedelta(days=params.season_days + params.min_history)
    lineage = load_lineage(engine, history_start, end, currency)
    found: list[tuple[Level, Episode]] = []
    data_start = None
    frames = {
        level.name: load_level_series(engine, level, history_start, end, currency)
        for level in LEVELS
    }
    provider_frame = frames["provider"]
    if len(provider_frame.columns):
        present = provider_frame.notna().any(axis=1).to_numpy()
        if present.any():
            data_start = provider_frame.index[int(np.argmax(present))].date()
    count = 0
    for level in LEVELS:
        frame = frames[level.name]
        count += len(frame.columns)
        episodes = detect_frame(
            frame,
            since,
            params,
            new_spend=level.name in NEW_SPEND_LEVELS,
            data_start=data_start,
        )
        found.extend((level, episode) for episode in episodes)
    alerts = group_alerts(found, lineage)
    return Detection(alerts, since, end, params, currency, count)
