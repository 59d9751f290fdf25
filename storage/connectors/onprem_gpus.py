"""Owned GPU clusters priced as FOCUS rows: NVML agent samples times a price per GPU-hour.

Hosts without a cloud instance id (and hosts named in the config) are on-prem. Each sample of a
GPU covers the time to that GPU's next sample, at most `max_gap_seconds` (so an agent that
stopped is not billed for the silence); the newest sample covers up to now, likewise capped.
The time is counted on the day its sample was taken, summed per day, host and GPU model, and
priced from a table of $/GPU-hour by model.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine, or_, select

from storage.connectors.base import ConnectorError, daily_periods, focus_frame
from storage.models import gpu_samples

PROVIDER = "On-prem"
SERVICE = "GPU Cluster"
UNIT = "GPU-Hours"
UNKNOWN_MODEL = "unknown GPU"
CHUNK_ROWS = 200_000
_SAMPLE_COLUMNS = ("host", "gpu_index", "gpu_model", "sampled_at")

# Rough all-in cost of owning one GPU for an hour (hardware over 4 years, power, cooling,
# hosting), in USD; replace it with your own figures through a price table. A key matches any
# GPU model name containing it (case-insensitive); the longest matching key wins.
DEFAULT_PRICES: dict[str, float] = {
    "B200": 3.50,
    "H200": 2.80,
    "H100": 2.20,
    "GH200": 2.60,
    "A100": 1.20,
    "L40S": 0.90,
    "L40": 0.80,
    "A10": 0.45,
    "L4": 0.35,
    "V100": 0.40,
    "T4": 0.20,
    "RTX 4090": 0.30,
}


@dataclass(frozen=True)
class OnPremConfig:
    """Price table, extra on-prem hosts, the longest gap a sample covers and the account id."""

    prices: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_PRICES))
    hosts: tuple[str, ...] = ()
    max_gap_seconds: float = 120.0
    billing_account_id: str = "on-prem"
    currency: str = "USD"


def load_price_table(path: Path) -> dict[str, float]:
    """A price table: CSV with `gpu_model,price_per_gpu_hour`, or YAML mapping model to price."""
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            if not isinstance(loaded, dict):
                raise ValueError("expected a mapping of GPU model to price")
            items = loaded.items()
        else:
            with path.open(encoding="utf-8-sig", newline="") as handle:
                items = [
                    (row["gpu_model"], row["price_per_gpu_hour"]) for row in csv.DictReader(handle)
                ]
        prices = {str(model).strip(): float(price) for model, price in items}
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ConnectorError(
            f"{path}: not a GPU price table: {error}",
            "CSV columns gpu_model,price_per_gpu_hour, or YAML 'H100: 2.20' lines",
        ) from None
    if any(price < 0 for price in prices.values()):
        raise ConnectorError(f"{path}: a GPU price is negative")
    return prices


def price_table(path: str | None) -> dict[str, float]:
    """The price table at `path` (see `load_price_table`), else the default one."""
    return load_price_table(Path(path)) if path else dict(DEFAULT_PRICES)


def price_for(model: str, prices: dict[str, float]) -> float | None:
    """The price of `model`: the longest key it contains, else the `*` entry, else None."""
    name = model.lower()
    matches = [key for key in prices if key != "*" and key.lower() in name]
    if matches:
        return prices[max(matches, key=len)]
    return prices.get("*")


def gpu_hours(engine: Engine, config: OnPremConfig, start: date, now: datetime) -> pd.DataFrame:
    """GPU-hours per day, host and GPU model from samples taken from `start` until `now`.

    Samples stream in chunks of `CHUNK_ROWS`, ordered by GPU and time, so months of samples of
    a large cluster never sit in memory at once.
    """
    statement = (
        select(*(gpu_samples.c[name] for name in _SAMPLE_COLUMNS))
        .where(
            gpu_samples.c.sampled_at >= datetime(start.year, start.month, start.day),
            gpu_samples.c.sampled_at < now,
            or_(gpu_samples.c.instance_id.is_(None), gpu_samples.c.host.in_(config.hosts)),
        )
        .order_by(gpu_samples.c.host, gpu_samples.c.gpu_index, gpu_samples.c.sampled_at)
    )
    sums: list[pd.DataFrame] = []
    held = pd.DataFrame(columns=list(_SAMPLE_COLUMNS))
    with engine.connect() as connection:
        result = connection.execution_options(yield_per=CHUNK_ROWS).execute(statement)
        for rows in result.partitions():
            # Plain tuples: pandas probes Row objects attribute by attribute, a hundred times slower.
            chunk = pd.DataFrame([tuple(row) for row in rows], columns=list(_SAMPLE_COLUMNS))
            samples = pd.concat([held, chunk])
            # The chunk's last sample waits for the next chunk, which may hold its successor.
            held = samples.iloc[-1:]
            sums.append(_covered_hours(samples, config, now).iloc[:-1])
    sums.append(_covered_hours(held, config, now))
    hours = pd.concat(sums)
    return hours.groupby(["day", "host", "gpu_model"], as_index=False)["hours"].sum()


def _covered_hours(samples: pd.DataFrame, config: OnPremConfig, now: datetime) -> pd.DataFrame:
    """Each sample's day, host, model and the hours it covers (its GPU's last: up to `now`)."""
    samples = samples.reset_index(drop=True)
    taken = pd.to_datetime(samples["sampled_at"])
    following = taken.groupby([samples["host"], samples["gpu_index"]]).shift(-1)
    covered = (following.fillna(pd.Timestamp(now)) - taken).dt.total_seconds()
    return pd.DataFrame(
        {
            "day": taken.dt.date,
            "host": samples["host"],
            "gpu_model": samples["gpu_model"].fillna(UNKNOWN_MODEL),
            "hours": covered.clip(lower=0, upper=config.max_gap_seconds) / 3600,
        }
    )


def fetch_onprem_gpus(
    engine: Engine, config: OnPremConfig, months: list[date], now: datetime
) -> tuple[pd.DataFrame, list[str]]:
    """FOCUS rows for on-prem GPU time in `months`, and notes on GPU models left unpriced."""
    hours = gpu_hours(engine, config, months[0], now)
    rows: list[dict[str, object]] = []
    unpriced: dict[str, float] = {}
    for day, host, model, quantity in hours.itertuples(index=False):
        price = price_for(model, config.prices)
        if price is None:
            unpriced[model] = unpriced.get(model, 0.0) + quantity
            continue
        cost = quantity * price
        rows.append(
            {
                **daily_periods(day),
                "BillingAccountId": config.billing_account_id,
                "BillingAccountName": "On-prem GPU clusters",
                "BillingCurrency": config.currency,
                "ChargeCategory": "Usage",
                "ChargeFrequency": "Usage-Based",
                "ChargeDescription": f"{model} GPU time on {host}",
                "BilledCost": cost,
                "EffectiveCost": cost,
                "ListCost": cost,
                "ContractedCost": cost,
                "ListUnitPrice": price,
                "ContractedUnitPrice": price,
                "PricingQuantity": quantity,
                "PricingUnit": UNIT,
                "ConsumedQuantity": quantity,
                "ConsumedUnit": UNIT,
                "ProviderName": PROVIDER,
                "PublisherName": PROVIDER,
                "InvoiceIssuerName": PROVIDER,
                "ResourceId": host,
                "ResourceName": host,
                "ResourceType": "GPU Server",
                "ServiceName": SERVICE,
                "ServiceCategory": "Compute",
                "SkuId": model,
            }
        )
    notes = [
        f"no price for {model}: {quantity:.2f} GPU-hours left out (add it to the price table)"
        for model, quantity in sorted(unpriced.items())
    ]
    return (focus_frame(rows) if rows else pd.DataFrame()), notes
