"""Anomaly detection benchmark: injected anomalies in synthetic daily cost series.

Run ``python -m bench.anomalies``. Synthetic series (levels from $150 to a few thousand dollars
a day, weekday patterns, trends, multiplicative noise) get spikes, drops, level shifts, new
spend and slow drifts injected at known days. The detector (`skills.detection`) and a plain
3-sigma rolling z-score (28 days, no seasonality) run on the same data; their flagged days are
merged into episodes the same way. An episode is a true positive when it overlaps an injected
anomaly's window on the same series; precision is over episodes, recall over injected anomalies.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from skills.detection import DetectorParams, Episode, detect_frame, episodes_from_days

KINDS = ("spike", "drop", "level_shift", "new_spend", "drift")
# How long after its start an injected anomaly may be reported and still count as found.
WINDOWS = {"spike": 0, "drop": 0, "level_shift": 6, "new_spend": 2, "drift": 27}


@dataclass(frozen=True)
class Injected:
    """One injected anomaly: its series, kind, first day and the last day it may be found."""

    series: int
    kind: str
    start: int
    last: int


@dataclass(frozen=True)
class Dataset:
    """Series with NaN before a series exists (`frame`), the same zero-filled, and the truth."""

    frame: pd.DataFrame
    zero_filled: pd.DataFrame
    truth: list[Injected]
    first_test: int


def make_dataset(
    n_series: int = 300, days: int = 140, seed: int = 20261129, anomaly_share: float = 0.5
) -> Dataset:
    """Synthetic daily costs with anomalies injected into `anomaly_share` of the series."""
    rng = np.random.default_rng(seed)
    index = pd.date_range(date(2026, 1, 5), periods=days, freq="D")
    weekend = index.day_of_week.to_numpy() >= 5
    first_test = days - 63
    columns: dict[int, np.ndarray] = {}
    truth: list[Injected] = []
    for series in range(n_series):
        base = float(np.clip(rng.lognormal(np.log(500), 0.8), 150, 20000))
        weekend_factor = rng.choice([1.0, 1.0, 0.7, 0.4, 0.0])
        noise = rng.uniform(0.03, 0.25)
        growth = rng.uniform(-0.1, 0.3)
        trend = 1.0 + growth * np.linspace(0.0, 1.0, days)
        values = base * trend * np.where(weekend, weekend_factor, 1.0)
        values = values * np.exp(rng.normal(0.0, noise, days))
        if rng.random() < anomaly_share:
            kind = str(rng.choice(KINDS))
            start = int(rng.integers(first_test + 7, days - 28))
            level = base * trend[start]
            if kind == "spike":
                length = int(rng.integers(1, 3))
                values[start : start + length] += level * rng.uniform(1.5, 4.0)
            elif kind == "drop":
                length = int(rng.integers(1, 3))
                values[start : start + length] *= rng.uniform(0.0, 0.3)
                # A drop on a day that costs nothing anyway is no anomaly: move it to a weekday.
                while weekend[start] and weekend_factor == 0.0:
                    start += 1
                    values[start : start + length] *= rng.uniform(0.0, 0.3)
            elif kind == "level_shift":
                length = days - start
                factor = rng.choice([rng.uniform(1.8, 3.0), rng.uniform(0.2, 0.45)])
                values[start:] *= factor
            elif kind == "new_spend":
                length = days - start
                values[:start] = np.nan
            else:  # drift: a ramp to 2-3x over three weeks, then staying there
                length = days - start
                ramp = np.minimum(np.arange(days - start) / 21.0, 1.0)
                values[start:] *= 1.0 + ramp * rng.uniform(1.0, 2.0)
            last = start + max(WINDOWS[kind], min(length, 3) - 1)
            truth.append(Injected(series, kind, start, min(last, days - 1)))
        columns[series] = np.round(values, 2)
    frame = pd.DataFrame(columns, index=index)
    return Dataset(frame, frame.fillna(0.0), truth, first_test)


def zscore_episodes(
    frame: pd.DataFrame, first_test: int, params: DetectorParams, *, window: int = 28
) -> list[Episode]:
    """The plain baseline: flag days more than 3 rolling standard deviations from the mean."""
    values = frame.to_numpy(dtype=float)
    mean = frame.rolling(window, min_periods=window).mean().shift(1).to_numpy()
    std = frame.rolling(window, min_periods=window).std().shift(1).to_numpy()
    found: list[Episode] = []
    for column in range(values.shape[1]):
        flagged = []
        for t in range(first_test, values.shape[0]):
            mu, sd, x = mean[t, column], std[t, column], values[t, column]
            if np.isnan(mu) or x == mu:
                continue
            if sd == 0 or abs(x - mu) > 3.0 * sd:
                flagged.append((t, float(mu), float(x)))
        found.extend(episodes_from_days((str(column),), frame.index, flagged, params))
    return found


def score(episodes: list[Episode], dataset: Dataset) -> dict[str, float]:
    """Precision over episodes, recall over injected anomalies (overall and per kind)."""
    origin = dataset.frame.index[0].date()

    def day(value: date) -> int:
        return (value - origin).days

    by_series: dict[int, list[Injected]] = {}
    for injected in dataset.truth:
        by_series.setdefault(injected.series, []).append(injected)
    true_positive = 0
    found: set[Injected] = set()
    for episode in episodes:
        hits = [
            injected
            for injected in by_series.get(int(episode.series[0]), [])
            if day(episode.start) <= injected.last and injected.start <= day(episode.end)
        ]
        if hits:
            true_positive += 1
            found.update(hits)
    result = {
        "episodes": float(len(episodes)),
        "precision": true_positive / len(episodes) if episodes else 1.0,
        "recall": len(found) / len(dataset.truth) if dataset.truth else 1.0,
    }
    for kind in KINDS:
        of_kind = [injected for injected in dataset.truth if injected.kind == kind]
        result[f"recall_{kind}"] = (
            sum(injected in found for injected in of_kind) / len(of_kind) if of_kind else 1.0
        )
    return result


def run(
    n_series: int = 300, days: int = 140, seed: int = 20261129, params: DetectorParams | None = None
) -> dict[str, dict[str, float]]:
    """Score the detector, the z-score baseline, and the baseline with the same $ floor."""
    params = params or DetectorParams()
    dataset = make_dataset(n_series, days, seed)
    start = (dataset.frame.index[dataset.first_test]).date()
    results: dict[str, dict[str, float]] = {}
    began = time.perf_counter()
    detected = detect_frame(dataset.frame, start, params, data_start=dataset.frame.index[0].date())
    results["detector"] = {**score(detected, dataset), "seconds": time.perf_counter() - began}
    began = time.perf_counter()
    plain = zscore_episodes(dataset.zero_filled, dataset.first_test, params)
    results["z-score 3σ"] = {**score(plain, dataset), "seconds": time.perf_counter() - began}
    floored = [episode for episode in plain if abs(episode.impact) >= params.min_impact]
    results["z-score 3σ + $ floor"] = {**score(floored, dataset), "seconds": 0.0}
    results["_data"] = {
        "series": float(n_series),
        "days": float(days),
        "injected": float(len(dataset.truth)),
        "test_days": float(days - dataset.first_test),
    }
    return results


def _table(results: dict[str, dict[str, float]]) -> str:
    columns = ["precision", "recall", *(f"recall_{kind}" for kind in KINDS), "episodes", "seconds"]
    heads = ["method", "precision", "recall", *KINDS, "alerts", "seconds"]
    rows = [heads]
    for method, figures in results.items():
        if method.startswith("_"):
            continue
        rows.append(
            [
                method,
                *(f"{figures[c]:.3f}" for c in columns[:-2]),
                f"{figures['episodes']:.0f}",
                f"{figures['seconds']:.2f}",
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(heads))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    )


def main() -> None:
    """Print precision and recall of both methods on the synthetic benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=300)
    parser.add_argument("--days", type=int, default=140)
    parser.add_argument("--seed", type=int, default=20261129)
    options = parser.parse_args()
    began = time.perf_counter()
    results = run(options.series, options.days, options.seed)
    data = results["_data"]
    print(
        f"{data['series']:.0f} series x {data['days']:.0f} days, last {data['test_days']:.0f} "
        f"days scored, {data['injected']:.0f} injected anomalies, seed {options.seed}"
    )
    print(_table(results))
    print(f"total {time.perf_counter() - began:.1f} s")


if __name__ == "__main__":
    main()
