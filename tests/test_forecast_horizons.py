"""Quarter and year forecasts: accuracy on hand-built seasonal series, honesty, whole-period sums."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine

from bot.pipeline import Assistant
from skills.forecasting import forecast_daily, mape, run_rate
from storage.database import open_database
from storage.demo import generate_demo_focus
from storage.ingest import ingest_frame
from tests.conftest import make_assistant

# Hand-set weekly shape, Monday first: weekdays busy, weekends at under half.
WEEK = np.array([1.0, 1.1, 1.05, 1.0, 0.95, 0.45, 0.4])
DEMO_END = date(2026, 11, 19)
DEMO = generate_demo_focus(DEMO_END, days=200)
NOW = datetime(2026, 11, 20, 12)


def seasonal(days: int, level: float, slope: float, noise: float, seed: int) -> np.ndarray:
    """Level + slope * day, times the weekly shape, times (1 + N(0, noise)); day 0 a Monday."""
    day = np.arange(days)
    rng = np.random.default_rng(seed)
    return (level + slope * day) * WEEK[day % 7] * (1 + rng.normal(0, noise, days))


@pytest.mark.parametrize(
    ("history", "horizon", "slope"),
    [(140, 91, 0.0), (140, 91, 2.0), (400, 365, 0.5)],
    ids=["quarter-flat", "quarter-trend", "year-trend"],
)
def test_long_horizons_beat_the_run_rate_on_a_weekly_series(
    history: int, horizon: int, slope: float
) -> None:
    series = seasonal(history + horizon, 800.0, slope, 0.04, seed=7)
    seen, future = pd.Series(series[:history]), series[history:]
    forecast = forecast_daily(seen, horizon)
    ours, naive = mape(future, forecast.expected), mape(future, run_rate(seen, horizon))
    # The run rate misses every weekend by about half; the seasonal model follows the shape.
    assert ours < naive / 2, (ours, naive)
    assert ours < 12, ours
    assert forecast.note is None


def test_a_flat_quarter_sums_to_the_hand_computed_total_inside_the_band() -> None:
    history, horizon = 140, 91
    series = seasonal(history + horizon, 800.0, 0.0, 0.04, seed=3)
    forecast = forecast_daily(pd.Series(series[:history]), horizon)
    # Without noise the quarter is 13 whole weeks of the shape at level 800.
    truth = 800.0 * WEEK.sum() * 13
    assert forecast.total == pytest.approx(truth, rel=0.03)
    assert forecast.total_low <= truth <= forecast.total_high
    assert forecast.total_low < forecast.total < forecast.total_high


def test_less_history_than_days_ahead_says_the_range_is_rough() -> None:
    short = forecast_daily(pd.Series(seasonal(30, 500.0, 0.0, 0.05, seed=1)), 91)
    assert short.method.startswith("Holt-Winters")
    assert "only 30 days of history for a forecast 91 days ahead" in (short.note or "")
    assert forecast_daily(pd.Series(seasonal(120, 500.0, 0.0, 0.05, seed=1)), 91).note is None


@pytest.fixture(scope="module")
def assistant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Assistant]:
    engine: Engine = open_database(f"sqlite:///{Path(tmp_path_factory.mktemp('fh')) / 'f.db'}")
    ingest_frame(engine, DEMO, "demo")
    yield make_assistant(engine, NOW)
    engine.dispose()


def team(tags: object) -> object:
    return json.loads(tags).get("team") if isinstance(tags, str) else None


def spent(first: str, team_name: str | None = None) -> float:
    """EffectiveCost by pandas from `first` to the day before NOW."""
    day = DEMO["ChargePeriodStart"].str[:10]
    rows = DEMO[(day >= first) & (day <= f"{DEMO_END:%Y-%m-%d}")]
    if team_name:
        rows = rows[rows["Tags"].map(team) == team_name]
    return float(rows["EffectiveCost"].sum())


def test_quarter_end_forecast_for_a_team(assistant: Assistant) -> None:
    answer = assistant.ask("quarter-end forecast for research", "test")
    assert answer.tool_calls[0]["name"] == "forecast_show"
    data = answer.reply.data
    assert data["period"] == {"label": "Q4 2026", "start": "2026-10-01", "end": "2026-12-31"}
    assert data["filters"] == [{"dimension": "tag:team", "values": ["research"], "exclude": False}]
    assert data["actual_to_date"] == pytest.approx(spent("2026-10-01", "research"), abs=0.01)
    assert data["remaining_days"] == 42
    assert data["low"] <= data["expected_total"] <= data["high"]
    assert answer.reply.table.columns[0] == "Week ending"
    same = assistant.ask("forecast this quarter for research", "test").reply.data
    assert same["expected_total"] == pytest.approx(data["expected_total"])


def test_year_end_counts_the_whole_year_and_next_year_is_monthly_and_honest(
    assistant: Assistant,
) -> None:
    year = assistant.ask("year-end forecast", "test").reply.data
    assert year["period"]["label"] == "2026"
    # All of 2026 so far, further back than a month or quarter forecast's fitting window.
    assert year["actual_to_date"] == pytest.approx(spent("2026-01-01"), abs=0.01)
    assert year["history_days"] == 200
    ahead = assistant.ask("forecast next year", "test").reply
    assert ahead.data["period"]["start"] == "2027-01-01" and ahead.data["remaining_days"] == 365
    assert ahead.table.columns[0] == "Month ending" and len(ahead.table.rows) == 12
    assert "only 200 days of history for a forecast 407 days ahead" in ahead.text
