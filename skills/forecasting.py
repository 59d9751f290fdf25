"""Daily spend forecasts: Holt-Winters with weekly seasonality, simulated uncertainty bands."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from statsmodels.tsa.holtwinters import ExponentialSmoothing

# Two full weeks is the least history in which a weekly pattern can be told from noise.
MIN_SEASONAL_HISTORY = 14
RUN_RATE_DAYS = 7
SIMULATIONS = 500
BAND = (0.10, 0.90)


@dataclass(frozen=True)
class Forecast:
    """Expected daily amounts for the next days, and an 80% band for their sum."""

    expected: np.ndarray
    total_low: float
    total_high: float
    method: str
    note: str | None = None

    @property
    def total(self) -> float:
        """Expected sum over the forecast days."""
        return float(self.expected.sum())


def run_rate(history: pd.Series, horizon: int) -> np.ndarray:
    """The naive baseline: the mean of the last seven days, repeated."""
    return np.full(horizon, float(history.tail(RUN_RATE_DAYS).mean()) if len(history) else 0.0)


def forecast_daily(history: pd.Series, horizon: int, skip: int = 0, seed: int = 0) -> Forecast:
    """Forecast `horizon` days after `history` (one value per consecutive day, oldest first).

    The first `skip` of those days are forecast but left out of the result (a period that starts
    after tomorrow). With less than two weeks of history there is no weekly pattern to learn, and the forecast
    says so and falls back to the run rate of the days there are; with less history than days
    ahead (a quarter or year from a few weeks of data) it says the range is rough.
    """
    if horizon <= skip:
        return Forecast(np.zeros(0), 0.0, 0.0, "none")
    if len(history) < MIN_SEASONAL_HISTORY:
        expected = run_rate(history, horizon - skip)
        spread = (
            float(history.std()) * np.sqrt(len(expected)) if len(history) > 1 else expected.sum()
        )
        return Forecast(
            expected,
            max(0.0, expected.sum() - 1.28 * spread),
            expected.sum() + 1.28 * spread,
            "run rate",
            f"only {len(history)} days of history: a run-rate estimate, not a seasonal forecast",
        )
    # Sums of the same line items differ in their last bits between engines (and between runs
    # of a parallel one); the fit magnifies that, so it sees amounts to a millionth.
    values = history.to_numpy(dtype=float).round(6)
    with warnings.catch_warnings():
        # statsmodels warns about convergence on short or flat series; the fit is still usable
        # and the simulated band shows how uncertain it is.
        warnings.simplefilter("ignore")
        fitted = ExponentialSmoothing(
            values,
            trend="add",
            damped_trend=True,
            seasonal="add",
            seasonal_periods=7,
            initialization_method="estimated",
        ).fit()
        expected = np.clip(fitted.forecast(horizon), 0.0, None)[skip:]
        paths = fitted.simulate(
            horizon,
            anchor="end",
            repetitions=SIMULATIONS,
            error="add",
            rng=np.random.default_rng(seed),
        )
    totals = np.clip(np.asarray(paths).reshape(horizon, -1)[skip:], 0.0, None).sum(axis=0)
    low, high = np.quantile(totals, BAND)
    note = (
        f"only {len(history)} days of history for a forecast {horizon} days ahead: the trend "
        "beyond what was seen is a guess, so read the range as rough"
        if len(history) < horizon
        else None
    )
    return Forecast(
        expected, float(low), float(high), "Holt-Winters (damped trend, weekly seasonality)", note
    )


def mape(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Mean absolute percentage error over days with non-zero actual spend."""
    mask = actual != 0
    return float(np.mean(np.abs((actual[mask] - predicted[mask]) / actual[mask])) * 100)
