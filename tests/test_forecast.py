"""Forecasts: at least as accurate as the run rate, honest about short history, right sums."""

from __future__ import annotations

import json
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

DEMO_END = date(2026, 11, 19)
DEMO = generate_demo_focus(DEMO_END, days=120)
NOW = datetime(2026, 11, 20, 12)


def backtest(series: pd.Series, horizon: int = 7, folds: int = 4) -> tuple[float, float]:
    """Mean MAPE of the forecast and of the run rate over rolling origins at the end of `series`."""
    ours, naive = [], []
    for fold in range(folds):
        cut = len(series) - horizon * (folds - fold)
        history, actual = series.iloc[:cut], series.iloc[cut : cut + horizon].to_numpy()
        ours.append(mape(actual, forecast_daily(history, horizon).expected))
        naive.append(mape(actual, run_rate(history, horizon)))
    return float(np.mean(ours)), float(np.mean(naive))


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("weekend", [0.4, 0.8])
def test_beats_run_rate_on_weekly_seasonal_series(seed: int, weekend: float) -> None:
    rng = np.random.default_rng(seed)
    days = np.arange(90)
    weekly = np.where(days % 7 >= 5, weekend, 1.0)
    series = pd.Series((500 + 4 * days) * weekly * (1 + rng.normal(0, 0.05, len(days))))
    ours, naive = backtest(series)
    assert ours <= naive, (ours, naive)


def test_at_least_as_accurate_as_run_rate_on_demo_data() -> None:
    frame = DEMO.assign(day=DEMO["ChargePeriodStart"].str[:10])
    daily = frame.groupby("day")["EffectiveCost"].sum()
    ours, naive = backtest(daily)
    assert ours <= naive, (ours, naive)


def test_short_history_says_so_and_uses_run_rate() -> None:
    forecast = forecast_daily(pd.Series([10.0, 12.0, 11.0, 9.0, 10.0]), 3)
    assert forecast.method == "run rate"
    assert "only 5 days of history" in (forecast.note or "")
    assert forecast.expected == pytest.approx([10.4, 10.4, 10.4])
    assert forecast.total_low <= forecast.total <= forecast.total_high


@pytest.fixture(scope="module")
def assistant(tmp_path_factory: pytest.TempPathFactory) -> Assistant:
    engine: Engine = open_database(
        f"sqlite:///{Path(tmp_path_factory.mktemp('forecast')) / 'f.db'}"
    )
    ingest_frame(engine, DEMO, "demo")
    return make_assistant(engine, NOW)


def _team(tags: object) -> object:
    return json.loads(tags).get("team") if isinstance(tags, str) else None


def test_month_end_forecast_adds_actuals_to_the_expected_rest(assistant: Assistant) -> None:
    answer = assistant.ask("what will the search team spend this month?", "test")
    assert answer.tool_calls[0]["name"] == "forecast_show"
    data = answer.reply.data
    november = DEMO[
        (DEMO["ChargePeriodStart"] >= "2026-11-01") & (DEMO["Tags"].map(_team) == "search")
    ]
    assert data["actual_to_date"] == pytest.approx(november["EffectiveCost"].sum(), abs=0.01)
    assert data["remaining_days"] == 11
    assert data["expected_total"] == pytest.approx(
        data["actual_to_date"] + data["expected_remaining"], abs=0.01
    )
    assert data["low"] <= data["expected_total"] <= data["high"]
    assert data["period"] == {"label": "November 2026", "start": "2026-11-01", "end": "2026-11-30"}
    assert "80% range" in answer.reply.text and "Holt-Winters" in answer.reply.context


def test_next_month_and_quarter_cover_whole_calendar_units(assistant: Assistant) -> None:
    december = assistant.ask("forecast next month", "test").reply.data
    assert (december["period"]["start"], december["period"]["end"]) == ("2026-12-01", "2026-12-31")
    assert december["actual_to_date"] == 0 and december["remaining_days"] == 31
    quarter = assistant.ask("projected spend this quarter", "test").reply.data
    assert quarter["period"]["label"] == "Q4 2026"
    q4 = DEMO[DEMO["ChargePeriodStart"] >= "2026-10-01"]["EffectiveCost"].sum()
    assert quarter["actual_to_date"] == pytest.approx(q4, abs=0.01)


def test_a_period_already_over_is_refused(assistant: Assistant) -> None:
    reply = assistant.ask("forecast last month", "test").reply
    assert reply.is_error and "is over" in reply.text
