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
    level_series,
    lineage_costs,
    load_daily_costs,
)
from storage.costs import NONE_LABEL

Kind = Literal["spike", "drop", "new"]
MAD_TO_SIGMA = 1.4826
NEW_SPEND_LEVELS = ("service", "sku")
"""Levels where a first appearance is reported as new spend (a new service or SKU)."""
NAMED_LEVELS = ("resource", "sku", "sub_account")
"""Levels whose missing value (``(none)``) is not a driver: that spend is seen at coarser levels."""
BLOCK_CELLS = 2_000_000
"""Window values scored at once (series x tested days x past days): bounds memory, ~16 MB each."""


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


def _row_medians(matrix: np.ndarray) -> np.ndarray:
    """The median of the non-NaN values along the last axis; NaN where there are none.

    The same arithmetic as a median of each row's values alone: the middle value, or the
    mean of the two middle ones.
    """
    ordered = np.sort(matrix, axis=-1)  # NaN sorts last
    count = np.count_nonzero(~np.isnan(matrix), axis=-1)
    middle = (count // 2)[..., None]
    upper = np.take_along_axis(ordered, middle, axis=-1)[..., 0]
    lower = np.take_along_axis(ordered, np.maximum(middle - 1, 0), axis=-1)[..., 0]
    medians = np.where(count % 2 == 1, upper, (lower + upper) / 2.0)
    return np.where(count > 0, medians, np.nan)


def _weekday_medians(padded: np.ndarray, window_days: np.ndarray, day: int) -> np.ndarray:
    """Medians of each window's values on weekday `day` (NaN where it has none).

    `padded` holds the windows with one trailing all-NaN position, which pads the shorter lists.
    """
    hits = window_days == day
    width = int(hits.sum(axis=1).max())
    if width == 0:
        return np.full(padded.shape[:-1], np.nan)
    order = np.argsort(~hits, axis=1, kind="stable")[:, :width]
    positions = np.where(np.take_along_axis(hits, order, axis=1), order, hits.shape[1])
    return _row_medians(padded[..., np.arange(len(hits))[:, None], positions])


def _baselines(
    windows: np.ndarray, window_days: np.ndarray, weekdays: np.ndarray, params: DetectorParams
) -> tuple[np.ndarray, np.ndarray]:
    """Expected values and robust spreads of log residuals, for many days of many series.

    `windows` is (series, day, past day): the values before each tested day, NaN where the
    series did not exist yet; `window_days` (day, past day) their weekdays; `weekdays` (day,)
    the tested days' weekdays.
    """
    overall = _row_medians(windows)
    padded = np.concatenate([windows, np.full((*overall.shape, 1), np.nan)], axis=-1)
    profile = np.stack([_weekday_medians(padded, window_days, day) for day in range(7)], axis=-1)
    profile = np.where(np.isnan(profile), overall[..., None], profile)
    today = np.broadcast_to(weekdays[None, :, None], (*overall.shape, 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        factors = profile / overall[..., None]
        recent = windows[..., -params.level_days :]
        recent_days = np.broadcast_to(window_days[:, -params.level_days :], recent.shape)
        recent_factors = np.take_along_axis(factors, recent_days, axis=-1)
        usable = (recent_factors > 0) & ~np.isnan(recent)
        level = np.where(
            usable.any(axis=-1),
            _row_medians(np.where(usable, recent / recent_factors, np.nan)),
            _row_medians(recent),
        )
        seasonal = level * np.take_along_axis(factors, today, axis=-1)[..., 0]
    # Mostly idle series (overall median zero): the weekday medians themselves are the best guess.
    expected = np.where(overall > 0, seasonal, np.take_along_axis(profile, today, axis=-1)[..., 0])
    # Cloud costs vary by multiples (hours × rate), so noise is measured on a log scale, from
    # week-over-week differences of the same weekday: they hold no seasonality, barely any
    # trend, and unlike in-sample residuals they do not shrink with the fitted profile.
    offset = _offset(params)
    logs = np.log(np.maximum(windows, 0) + offset)
    later, earlier = windows[..., 7:], windows[..., :-7]
    active = ((later > offset) | (earlier > offset)) & ~np.isnan(earlier)
    differences = np.where(active, logs[..., 7:] - logs[..., :-7], np.nan)
    deviations = np.abs(differences - _row_medians(differences)[..., None])
    spread = MAD_TO_SIGMA * _row_medians(deviations) / np.sqrt(2.0)
    spread = np.where(active.any(axis=-1), np.maximum(spread, params.min_spread), params.min_spread)
    return np.maximum(expected, 0.0), spread


def _offset(params: DetectorParams) -> float:
    return max(params.min_impact / 10.0, 0.01)


def _flagged_days(
    values: np.ndarray,
    firsts: np.ndarray,
    weekdays: np.ndarray,
    first_test: int,
    params: DetectorParams,
) -> list[list[tuple[int, float, float]]]:
    """Anomalous (day, expected, actual) of each column of a day-by-series array, from `first_test`.

    Every tested day of every series is scored at once, a block of series at a time, each day
    against the `season_days` before it.
    """
    n_days, n_series = values.shape
    flagged: list[list[tuple[int, float, float]]] = [[] for _ in range(n_series)]
    if not n_series:
        return flagged
    tests = np.arange(max(first_test, int(firsts.min()) + params.min_history), n_days)
    if not len(tests):
        return flagged
    season = params.season_days
    padded = np.vstack([np.full((season, n_series), np.nan), values])
    positions = tests[:, None] + np.arange(season)[None, :]
    window_days = np.concatenate([np.zeros(season, dtype=weekdays.dtype), weekdays])[positions]
    offset = _offset(params)
    block = max(1, BLOCK_CELLS // (len(tests) * season))
    for low in range(0, n_series, block):
        high = min(low + block, n_series)
        windows = padded[:, low:high][positions].transpose(2, 0, 1)
        expected, spread = _baselines(windows, window_days, weekdays[tests], params)
        actual = values[tests, low:high].T
        gap = np.abs(actual - expected)
        log_gap = np.abs(np.log((np.maximum(actual, 0) + offset) / (expected + offset)))
        hits = (
            (tests[None, :] >= firsts[low:high, None] + params.min_history)
            & (gap >= np.maximum(params.min_relative * expected, params.min_impact))
            & (gap > 0)
            & (log_gap >= params.sigmas * spread)
        )
        for series, day in zip(*np.nonzero(hits), strict=True):
            flagged[low + series].append(
                (int(tests[day]), float(expected[series, day]), float(actual[series, day]))
            )
    return flagged


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
    values = frame.to_numpy(dtype=float)
    present = ~np.isnan(values)
    firsts = np.where(present.any(axis=0), present.argmax(axis=0), len(days))
    tested = np.flatnonzero(firsts < first_test)
    scored = _flagged_days(values[:, tested], firsts[tested], weekdays, first_test, params)
    flagged = dict(zip(tested.tolist(), scored, strict=True))
    found: list[Episode] = []
    for index, column in enumerate(frame.columns):
        series = column if isinstance(column, tuple) else (column,)
        first = int(firsts[index])
        if index in flagged:
            found.extend(episodes_from_days(series, days, flagged[index], params))
        elif first < len(days) and new_spend and first - origin >= params.new_after_days:
            window = values[first:, index]
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
    tuned: dict[str, float] = field(default_factory=dict)
    """Per series key, a minimum daily impact raised by feedback (alerts below it were dropped)."""


class _Lineage:
    """Which line-item groups (provider, service, sub account, team, SKU, resource) a series covers."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.weights = frame["amount"].abs().to_numpy() if len(frame) else np.zeros(0)
        self._masks: dict[tuple[str, tuple[str, ...]], np.ndarray] = {}
        self._columns: dict[str, tuple[np.ndarray, np.ndarray, dict[str, int]]] = {}

    def coded(self, column: str) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
        """A column as integer codes, its sorted distinct values, and each value's code."""
        if column not in self._columns:
            codes, values = pd.factorize(self.frame[column].to_numpy(dtype=object), sort=True)
            self._columns[column] = (
                codes,
                values,
                {value: code for code, value in enumerate(values)},
            )
        return self._columns[column]

    def mask(self, level: Level, series: tuple[str, ...]) -> np.ndarray:
        cached = (level.name, series)
        if cached not in self._masks:
            mask = np.ones(len(self.frame), dtype=bool)
            for key, value in zip(level.keys, series, strict=True):
                codes, _, lookup = self.coded(key)
                mask &= codes == lookup.get(value, -2)
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
        codes, values, _ = self.coded(column)
        shares = np.bincount(codes[mask], weights=self.weights[mask], minlength=len(values))
        total = shares.sum()
        if total <= 0:
            return None
        best = int(np.argmax(shares))
        value = str(values[best])
        if value == NONE_LABEL or shares[best] < 0.5 * total:
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
    daily = load_daily_costs(engine, history_start, end, currency)
    found: list[tuple[Level, Episode]] = []
    data_start = None
    frames = {level.name: level_series(daily, level, history_start, end) for level in LEVELS}
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
    alerts = group_alerts(found, lineage_costs(daily))
    return Detection(alerts, since, end, params, currency, count)
