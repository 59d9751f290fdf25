"""Deterministic demo billing data in FOCUS 1.0 form: daily AI-infrastructure spend."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd

DEMO_TAG_KEYS = ("team", "project", "env")

# Column order of a FOCUS 1.0 export, as in the FinOps Foundation sample data.
_COLUMNS = (
    "AvailabilityZone",
    "BilledCost",
    "BillingAccountId",
    "BillingAccountName",
    "BillingCurrency",
    "BillingPeriodEnd",
    "BillingPeriodStart",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "ChargePeriodEnd",
    "ChargePeriodStart",
    "CommitmentDiscountCategory",
    "CommitmentDiscountId",
    "CommitmentDiscountName",
    "CommitmentDiscountStatus",
    "CommitmentDiscountType",
    "ConsumedQuantity",
    "ConsumedUnit",
    "ContractedCost",
    "ContractedUnitPrice",
    "EffectiveCost",
    "InvoiceIssuerName",
    "ListCost",
    "ListUnitPrice",
    "PricingCategory",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "RegionId",
    "RegionName",
    "ResourceId",
    "ResourceName",
    "ResourceType",
    "ServiceCategory",
    "Id",
    "ServiceName",
    "SkuId",
    "SkuPriceId",
    "SubAccountId",
    "SubAccountName",
    "Tags",
)
_NUMERIC = (
    "BilledCost",
    "ConsumedQuantity",
    "ContractedCost",
    "ContractedUnitPrice",
    "EffectiveCost",
    "ListCost",
    "ListUnitPrice",
    "PricingQuantity",
)

# The stories the demo tells, in days before `end`: a runaway gpt-4o batch job (one day),
# the search team's p5 left training around the clock (every day from then on), and a
# one-off promotional credit.
_SPIKE_DAYS_BEFORE_END = 9
_SHIFT_DAYS_BEFORE_END = 17
_CREDIT_DAYS_BEFORE_END = 45
_CREDIT_AMOUNT = -5000.0
_TAX_RATE = 0.0725
_PERIOD_COLUMNS = ("ChargePeriodStart", "ChargePeriodEnd", "BillingPeriodStart", "BillingPeriodEnd")
_AI = "AI and Machine Learning"

# A run of rows: its length, and each column's value (one per row, or a scalar for all rows).
_Block = tuple[int, dict[str, Any]]


def _hex(label: str, length: int) -> str:
    """Return a stable pseudo-random hex id for `label`, independent of the seed."""
    return hashlib.sha256(label.encode()).hexdigest()[:length]


def _aws_sku(label: str) -> str:
    """Return an AWS-style 16-character SKU code for `label`."""
    return base64.b32encode(hashlib.sha256(label.encode()).digest()).decode()[:16]


def _gcp_sku(label: str) -> str:
    """Return a Google Cloud-style SKU id (three groups of four hex digits) for `label`."""
    h = _hex(label, 12).upper()
    return f"{h[:4]}-{h[4:8]}-{h[8:]}"


def _guid(label: str) -> str:
    """Return a GUID-shaped id for `label`, as Azure uses for subscriptions."""
    h = _hex(label, 32)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass(frozen=True)
class _Account:
    """Who bills a line: provider, billing account and sub account."""

    provider: str
    issuer: str
    billing_id: str
    sub_id: str | None
    sub_name: str | None
    billing_name: str = "Acme AI"


@dataclass(frozen=True)
class _Line:
    """One usage series (a resource or usage type) that gets a row on each active day."""

    account: _Account
    service: str
    category: str
    sku_id: str
    description: str
    unit: str
    list_price: float  # per pricing unit
    daily: float  # consumed quantity on a weekday at the start of the window
    tags: tuple[str, str, str] | None  # team, project, env
    region: tuple[str, str] | None = None
    zone: str | None = None
    resource: tuple[str, str | None, str] | None = None  # id, name, type
    sku_price_id: str | None = None
    pricing_unit: str | None = None
    units_per_price: float = 1.0  # e.g. a million tokens per priced unit
    weekend: float = 1.0
    growth: float = 0.0  # fractional rise from first to last day
    noise: float = 0.0  # sigma of the daily log-normal jitter
    spike: float = 1.0  # multiple of the weekday level on the spike day
    shift_to: float | None = None  # daily quantity from the level-shift day on
    discount: float = 0.0  # negotiated discount off list
    commitment: bool = False  # covered by the savings plan


_AWS = _Account("AWS", "Amazon Web Services, Inc.", "210987654321", "314159265358", "ml-prod")
_AWS_DEV = replace(_AWS, sub_id="271828182845", sub_name="ml-dev")
_AWS_DATA = replace(_AWS, sub_id="161803398874", sub_name="data-platform")
_GCP = _Account(
    "Google Cloud", "Google Cloud", "01A2B3-C4D5E6-F7A8B9", "acme-ml-research", "acme-ml-research"
)
_GCP_DATA = replace(_GCP, sub_id="acme-data", sub_name="acme-data")
_AZ_BILLING = "/providers/Microsoft.Billing/billingAccounts/73815526"
_AZ_TRAIN_SUB = "/subscriptions/" + _guid("ml-training")
_AZ_SERVE_SUB = "/subscriptions/" + _guid("ml-serving")
_AZURE = _Account("Microsoft", "Microsoft", _AZ_BILLING, _AZ_TRAIN_SUB, "ml-training")
_AZURE_SERVE = replace(_AZURE, sub_id=_AZ_SERVE_SUB, sub_name="ml-serving")
_OPENAI = _Account("OpenAI", "OpenAI", "org-" + _hex("openai", 24), None, None)
_ANTHROPIC = _Account("Anthropic", "Anthropic", _guid("anthropic"), None, None)

# A compute savings plan that exactly covers the research p4d running 24/7: its hourly fee is
# billed monthly as a Purchase and amortized into the usage rows' EffectiveCost.
_P4D_PRICE = 32.7726
_SP_RATE = 0.62
_SP_HOURLY = round(_P4D_PRICE * _SP_RATE, 4)
_SP_ID = f"arn:aws:savingsplans::{_AWS.billing_id}:savingsplan/{_guid('p4d-savings-plan')}"


def _ec2(
    account: _Account,
    itype: str,
    price: float,
    hours: float,
    tags: tuple[str, str, str] | None,
    zone: str = "us-east-1a",
    **kw: Any,
) -> _Line:
    """Describe an EC2 instance billed by the hour at its Linux on-demand price."""
    rid = "i-0" + _hex(f"{account.sub_name}/{itype}/{tags}/{zone}", 16)
    sku = _aws_sku(f"ec2/{itype}/{zone[:-1]}")
    return _Line(
        account,
        "Amazon Elastic Compute Cloud",
        "Compute",
        sku,
        f"${price:g} per On Demand Linux {itype} Instance Hour",
        "Hours",
        price,
        hours,
        tags,
        ("us-east-1", "US East (N. Virginia)"),
        zone,
        (rid, None, "Instance"),
        **kw,
    )


def _tokens(
    account: _Account,
    service: str,
    model: str,
    kind: str,
    per_million: float,
    millions: float,
    tags: tuple[str, str, str] | None,
    **kw: Any,
) -> _Line:
    """Describe model API usage: tokens consumed, priced per million."""
    kw.setdefault("weekend", 0.4)
    kw.setdefault("growth", 0.25)
    kw.setdefault("noise", 0.08)
    return _Line(
        account,
        service,
        _AI,
        model,
        f"{model} {kind} tokens",
        "Tokens",
        per_million,
        millions * 1e6,
        tags,
        sku_price_id=f"{model}:{kind}",
        pricing_unit="1M Tokens",
        units_per_price=1e6,
        **kw,
    )


def _gce(
    account: _Account,
    mtype: str,
    price: float,
    hours: float,
    name: str,
    zone: str,
    tags: tuple[str, str, str],
    **kw: Any,
) -> _Line:
    """Describe a Compute Engine VM billed by the hour."""
    rid = f"//compute.googleapis.com/projects/{account.sub_id}/zones/{zone}/instances/{name}"
    return _Line(
        account,
        "Compute Engine",
        "Compute",
        _gcp_sku(mtype),
        f"{mtype} instance running in Americas",
        "Hours",
        price,
        hours,
        tags,
        ("us-central1", "Iowa"),
        zone,
        (rid, name, "Instance"),
        **kw,
    )


def _azure_vm(
    account: _Account,
    size: str,
    price: float,
    hours: float,
    name: str,
    region: tuple[str, str],
    tags: tuple[str, str, str],
    service: str,
    category: str,
    **kw: Any,
) -> _Line:
    """Describe an Azure VM or ML endpoint billed hourly under a 10% negotiated discount."""
    group = f"{account.sub_id}/resourcegroups/rg-{account.sub_name}/providers"
    if service == "Virtual Machines":
        rid, rtype = f"{group}/microsoft.compute/virtualmachines/{name}", "Virtual machine"
    else:
        workspace = f"{group}/microsoft.machinelearningservices/workspaces/mlw-{account.sub_name}"
        rid, rtype = f"{workspace}/onlineendpoints/{name}", "Online endpoint"
    return _Line(
        account,
        service,
        category,
        str(int(_hex(size, 7), 16)),
        f"{size} Linux hours - {region[1]}",
        "Hours",
        price,
        hours,
        tags,
        region,
        None,
        (rid, name, rtype),
        discount=0.10,
        **kw,
    )


_TRAINING = {"weekend": 0.3, "growth": 0.2, "noise": 0.2}

_LINES: tuple[_Line, ...] = (
    # AWS: a committed training node, an experimental p5, inference, storage and CPU fleet.
    _ec2(
        _AWS, "p4d.24xlarge", _P4D_PRICE, 24, ("research", "llm-pretrain", "prod"), commitment=True
    ),
    _ec2(
        _AWS,
        "p5.48xlarge",
        55.04,
        7,
        ("search", "ranker-train", "prod"),
        zone="us-east-1b",
        weekend=0.0,
        growth=0.1,
        noise=0.25,
        shift_to=24.0,
    ),
    _ec2(_AWS, "g5.xlarge", 1.006, 24, ("search", "semantic-search", "prod")),
    _ec2(_AWS, "g5.xlarge", 1.006, 24, ("search", "semantic-search", "prod"), zone="us-east-1c"),
    _ec2(_AWS_DEV, "g5.12xlarge", 5.672, 24, ("ml-platform", "notebooks", "dev")),
    _ec2(_AWS_DEV, "m6i.2xlarge", 0.384, 24, None),
    _ec2(_AWS_DATA, "m6i.2xlarge", 0.384, 24, ("data", "etl", "prod")),
    _ec2(_AWS_DATA, "m6i.2xlarge", 0.384, 24, ("data", "etl", "prod"), zone="us-east-1b"),
    _ec2(_AWS_DATA, "m6i.8xlarge", 1.536, 24, ("data", "etl", "prod")),
    _Line(
        _AWS,
        "Amazon SageMaker",
        _AI,
        _aws_sku("sagemaker/ml.g5.2xlarge"),
        "$1.515 per Hosting ml.g5.2xlarge hour in US East (N. Virginia)",
        "Hours",
        1.515,
        24,
        ("ml-platform", "model-serving", "prod"),
        ("us-east-1", "US East (N. Virginia)"),
        resource=(
            f"arn:aws:sagemaker:us-east-1:{_AWS.sub_id}:endpoint/reranker-prod",
            "reranker-prod",
            "Endpoint",
        ),
    ),
    _Line(
        _AWS,
        "Amazon Simple Storage Service",
        "Storage",
        _aws_sku("s3/standard"),
        "$0.023 per GB - first 50 TB / month of storage used",
        "GB-Months",
        0.023,
        2000,
        ("research", "llm-pretrain", "prod"),
        ("us-east-1", "US East (N. Virginia)"),
        resource=("acme-llm-checkpoints", "acme-llm-checkpoints", "Bucket"),
        growth=0.6,
    ),
    _Line(
        _AWS_DATA,
        "Amazon Simple Storage Service",
        "Storage",
        _aws_sku("s3/standard"),
        "$0.023 per GB - first 50 TB / month of storage used",
        "GB-Months",
        0.023,
        5000,
        None,
        ("us-east-1", "US East (N. Virginia)"),
        resource=("acme-training-data", "acme-training-data", "Bucket"),
        growth=0.15,
    ),
    _Line(
        _AWS,
        "AWS Data Transfer",
        "Networking",
        _aws_sku("transfer/out"),
        "$0.09 per GB - first 10 TB / month data transfer out beyond the global free tier",
        "GB",
        0.09,
        900,
        None,
        ("us-east-1", "US East (N. Virginia)"),
        weekend=0.7,
        growth=0.2,
        noise=0.1,
    ),
    _tokens(
        _AWS_DATA,
        "Amazon Bedrock",
        "amazon.nova-pro-v1:0",
        "input",
        0.8,
        60,
        None,
        region=("us-east-1", "US East (N. Virginia)"),
    ),
    _tokens(
        _AWS_DATA,
        "Amazon Bedrock",
        "amazon.nova-pro-v1:0",
        "output",
        3.2,
        8,
        None,
        region=("us-east-1", "US East (N. Virginia)"),
    ),
    # Google Cloud: A100 training and evaluation VMs, a Vertex AI endpoint, analytics.
    _gce(
        _GCP,
        "a2-highgpu-8g",
        29.387882,
        20,
        "a100-train-01",
        "us-central1-a",
        ("research", "vision-models", "prod"),
        **_TRAINING,
    ),
    _gce(
        _GCP,
        "a2-highgpu-1g",
        3.673385,
        24,
        "a100-eval-01",
        "us-central1-b",
        ("ml-platform", "eval", "staging"),
    ),
    _Line(
        _GCP,
        "Vertex AI",
        _AI,
        _gcp_sku("vertex/g2-standard-12"),
        "Vertex AI: Online Prediction g2-standard-12 node hours",
        "Hours",
        1.21,
        24,
        ("ml-platform", "model-serving", "prod"),
        ("us-central1", "Iowa"),
        resource=(
            f"projects/{_GCP.sub_id}/locations/us-central1/endpoints/7341985",
            "embedder-endpoint",
            "Endpoint",
        ),
    ),
    _Line(
        _GCP_DATA,
        "BigQuery",
        "Analytics",
        _gcp_sku("bigquery/analysis"),
        "Analysis (on-demand) in US multi-region",
        "Tebibytes",
        6.25,
        9,
        None,
        ("us", "US"),
        weekend=0.3,
        growth=0.2,
        noise=0.15,
    ),
    _Line(
        _GCP,
        "Cloud Storage",
        "Storage",
        _gcp_sku("gcs/standard"),
        "Standard Storage US Multi-region",
        "GB-Months",
        0.026,
        1500,
        ("research", "vision-models", "prod"),
        ("us", "US"),
        resource=("acme-vision-datasets", "acme-vision-datasets", "Bucket"),
        growth=0.3,
    ),
    # Microsoft: A100 VMs for EU training and fine-tuning, an Azure ML endpoint.
    _azure_vm(
        _AZURE,
        "Standard_ND96asr_v4",
        27.197,
        12,
        "nd96-train-01",
        ("westeurope", "West Europe"),
        ("research", "eu-llm", "prod"),
        "Virtual Machines",
        "Compute",
        weekend=0.3,
        growth=0.2,
        noise=0.2,
    ),
    _azure_vm(
        _AZURE,
        "Standard_NC24ads_A100_v4",
        3.673,
        16,
        "nc24-finetune-01",
        ("eastus", "East US"),
        ("ml-platform", "fine-tune", "staging"),
        "Virtual Machines",
        "Compute",
        weekend=0.0,
        noise=0.15,
    ),
    _azure_vm(
        _AZURE_SERVE,
        "Standard_NC4as_T4_v3",
        0.526,
        24,
        "support-bot-endpoint",
        ("eastus", "East US"),
        ("ml-platform", "model-serving", "prod"),
        "Azure Machine Learning",
        _AI,
    ),
    # Model APIs, one sub account per project; the default project's usage is untagged.
    *(
        _tokens(
            replace(_OPENAI, sub_id="proj_" + _hex(p, 24), sub_name=p),
            "OpenAI API",
            m,
            k,
            price,
            millions,
            tags,
            **kw,
        )
        for p, m, k, price, millions, tags, kw in (
            (
                "answer-engine",
                "gpt-4o",
                "input",
                2.5,
                50,
                ("search", "answer-engine", "prod"),
                {"spike": 5.0},
            ),
            (
                "answer-engine",
                "gpt-4o",
                "output",
                10.0,
                10,
                ("search", "answer-engine", "prod"),
                {"spike": 5.0},
            ),
            (
                "query-rewrite",
                "gpt-4o-mini",
                "input",
                0.15,
                250,
                ("search", "query-rewrite", "prod"),
                {},
            ),
            (
                "query-rewrite",
                "gpt-4o-mini",
                "output",
                0.6,
                50,
                ("search", "query-rewrite", "prod"),
                {},
            ),
            (
                "semantic-search",
                "text-embedding-3-large",
                "input",
                0.13,
                300,
                ("search", "semantic-search", "prod"),
                {"weekend": 0.5},
            ),
            ("Default project", "gpt-4o-mini", "input", 0.15, 60, None, {}),
            ("Default project", "gpt-4o-mini", "output", 0.6, 12, None, {}),
        )
    ),
    *(
        _tokens(
            replace(_ANTHROPIC, sub_id="wrkspc_" + _hex(w, 24), sub_name=w),
            "Claude API",
            m,
            k,
            price,
            millions,
            tags,
        )
        for w, m, k, price, millions, tags in (
            (
                "support-assistant",
                "claude-sonnet-4-5",
                "input",
                3.0,
                35,
                ("ml-platform", "support-assistant", "prod"),
            ),
            (
                "support-assistant",
                "claude-sonnet-4-5",
                "output",
                15.0,
                7,
                ("ml-platform", "support-assistant", "prod"),
            ),
            (
                "doc-extraction",
                "claude-haiku-4-5",
                "input",
                1.0,
                90,
                ("data", "doc-extraction", "prod"),
            ),
            (
                "doc-extraction",
                "claude-haiku-4-5",
                "output",
                5.0,
                15,
                ("data", "doc-extraction", "prod"),
            ),
        )
    ),
)

# Providers that add sales tax to their monthly invoice, with the service it is filed under.
_TAXED = ((_OPENAI, "OpenAI API"), (_ANTHROPIC, "Claude API"))


def _stamp(day: date) -> str:
    """Format a day as the FOCUS export does: midnight, to the second."""
    return f"{day.isoformat()} 00:00:00"


def _month_bounds(day: date) -> tuple[date, date]:
    """Return the first day of `day`'s month and of the month after."""
    first = day.replace(day=1)
    return first, (first + timedelta(days=32)).replace(day=1)


def _calendar(end: date, days: int) -> pd.DataFrame:
    """Lay out the window: one row per day with its charge and billing period stamps."""
    dates = [end - timedelta(days=days - 1 - i) for i in range(days)]
    months = [_month_bounds(d) for d in dates]
    return pd.DataFrame(
        {
            "ChargePeriodStart": [_stamp(d) for d in dates],
            "ChargePeriodEnd": [_stamp(d + timedelta(days=1)) for d in dates],
            "BillingPeriodStart": [_stamp(m[0]) for m in months],
            "BillingPeriodEnd": [_stamp(m[1]) for m in months],
            "weekend": [d.weekday() >= 5 for d in dates],
        }
    )


def _quantities(line: _Line, weekend: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Daily consumed quantity of `line`: trend, weekly cycle, jitter and its anomalies."""
    n = len(weekend)
    level = line.daily * (1.0 + line.growth * np.linspace(0.0, 1.0, n))
    # Drawn for every line, even noiseless ones, so each line's jitter stays put when a
    # neighbour's settings change.
    jitter = np.exp(rng.normal(0.0, line.noise, n))
    qty = np.where(weekend, level * line.weekend, level) * jitter
    spike_at = n - 1 - _SPIKE_DAYS_BEFORE_END
    if line.spike != 1.0 and spike_at >= 0:
        qty[spike_at] = level[spike_at] * line.spike
    if line.shift_to is not None:
        qty[max(n - 1 - _SHIFT_DAYS_BEFORE_END, 0) :] = line.shift_to
    if line.unit == "Hours":
        qty = np.minimum(qty, 24.0)
    return np.round(qty, 0 if line.unit == "Tokens" else 4)


def _account_fields(account: _Account) -> dict[str, object]:
    """Return the columns that say who billed a row."""
    return {
        "ProviderName": account.provider,
        "PublisherName": account.issuer,
        "InvoiceIssuerName": account.issuer,
        "BillingAccountId": account.billing_id,
        "BillingAccountName": account.billing_name,
        "BillingCurrency": "USD",
        "SubAccountId": account.sub_id,
        "SubAccountName": account.sub_name,
    }


def _tags_json(tags: tuple[str, str, str] | None) -> str | None:
    """Render team/project/env as the FOCUS Tags JSON object."""
    return None if tags is None else json.dumps(dict(zip(DEMO_TAG_KEYS, tags, strict=True)))


def _usage_block(line: _Line, qty: np.ndarray, calendar: pd.DataFrame) -> _Block:
    """Build the Usage rows of one line, one per day it consumed anything."""
    active = qty > 0
    days = calendar[active]
    consumed = qty[active]
    priced = consumed / line.units_per_price
    contracted_price = line.list_price * (1.0 - line.discount)
    contracted = np.round(priced * contracted_price, 10)
    if line.commitment:
        effective = np.round(priced * _SP_HOURLY, 10)
        billed = np.zeros_like(effective)
        commitment = {
            "CommitmentDiscountId": _SP_ID,
            "CommitmentDiscountCategory": "Spend",
            "CommitmentDiscountType": "Savings Plan",
            "CommitmentDiscountStatus": "Used",
        }
    else:
        effective = billed = contracted
        commitment = {}
    resource_id, resource_name, resource_type = line.resource or (None, None, None)
    region_id, region_name = line.region or (None, None)
    sku_price = line.sku_price_id or (
        f"{line.sku_id}.JRTCKXETXF.6YS6EN2CT7" if line.account.provider == "AWS" else line.sku_id
    )
    return len(consumed), {
        **_account_fields(line.account),
        **commitment,
        **{column: days[column].to_numpy(dtype=object) for column in _PERIOD_COLUMNS},
        "ChargeCategory": "Usage",
        "ChargeFrequency": "Usage-Based",
        "ChargeDescription": line.description,
        "PricingCategory": "Committed" if line.commitment else "Standard",
        "ConsumedQuantity": consumed,
        "ConsumedUnit": line.unit,
        "PricingQuantity": np.round(priced, 10),
        "PricingUnit": line.pricing_unit or line.unit,
        "ListUnitPrice": line.list_price,
        "ContractedUnitPrice": round(contracted_price, 10),
        "ListCost": np.round(priced * line.list_price, 10),
        "ContractedCost": contracted,
        "EffectiveCost": effective,
        "BilledCost": billed,
        "ServiceName": line.service,
        "ServiceCategory": line.category,
        "SkuId": line.sku_id,
        "SkuPriceId": sku_price,
        "RegionId": region_id,
        "RegionName": region_name,
        "AvailabilityZone": line.zone,
        "ResourceId": resource_id,
        "ResourceName": resource_name,
        "ResourceType": resource_type,
        "Tags": _tags_json(line.tags),
    }


def _assemble(blocks: list[_Block]) -> pd.DataFrame:
    """Stack row blocks (scalars broadcast to the block's length) into FOCUS column order.

    Text columns are built as object dtype on purpose: pandas' own string dtype would turn
    the None that marks a missing FOCUS value into NaN.
    """
    columns = {}
    for column in _COLUMNS:
        numeric = column in _NUMERIC
        parts = []
        for size, block in blocks:
            value = block.get(column)
            if isinstance(value, np.ndarray):
                parts.append(value)
            else:
                missing = np.nan if numeric else None
                parts.append(np.full(size, missing if value is None else value, dtype=object))
        values = np.concatenate(parts)
        columns[column] = pd.Series(values, dtype="float64" if numeric else object)
    return pd.DataFrame(columns)


def _monthly_rows(usage: list[_Block], calendar: pd.DataFrame) -> list[_Block]:
    """Build savings-plan fees and sales tax, one row per month of the window and payer."""
    rows: list[_Block] = []
    for period, month in calendar.groupby("BillingPeriodStart", sort=True):
        span = {
            "ChargePeriodStart": month["ChargePeriodStart"].iloc[0],
            "ChargePeriodEnd": month["ChargePeriodEnd"].iloc[-1],
            "BillingPeriodStart": period,
            "BillingPeriodEnd": month["BillingPeriodEnd"].iloc[0],
            "ChargeFrequency": "Recurring",
        }
        fee = round(_SP_HOURLY * 24 * len(month), 10)
        # FOCUS amortization: the fee is billed here and carried as EffectiveCost by the
        # covered usage rows, so this row has no EffectiveCost of its own.
        rows.append(
            (
                1,
                {
                    **_account_fields(_AWS),
                    **span,
                    "ChargeCategory": "Purchase",
                    "ChargeDescription": "Savings Plan recurring fee (1 year, no upfront)",
                    "BilledCost": fee,
                    "EffectiveCost": 0.0,
                    "ListCost": fee,
                    "ContractedCost": fee,
                    "CommitmentDiscountId": _SP_ID,
                    "CommitmentDiscountCategory": "Spend",
                    "CommitmentDiscountType": "Savings Plan",
                    "ResourceId": _SP_ID,
                    "ServiceName": "Savings Plans for AWS Compute usage",
                    "ServiceCategory": "Compute",
                },
            )
        )
        for account, service in _TAXED:
            base = sum(
                float(block["BilledCost"][block["BillingPeriodStart"] == period].sum())
                for _, block in usage
                if block["ProviderName"] == account.provider
            )
            tax = round(_TAX_RATE * base, 10)
            rows.append(
                (
                    1,
                    {
                        **_account_fields(account),
                        **span,
                        "ChargeCategory": "Tax",
                        "ChargeDescription": f"Sales tax ({_TAX_RATE:.2%})",
                        "BilledCost": tax,
                        "EffectiveCost": tax,
                        "ListCost": tax,
                        "ContractedCost": tax,
                        "ServiceName": service,
                        "ServiceCategory": _AI,
                    },
                )
            )
    return rows


def _credit_row(calendar: pd.DataFrame) -> list[_Block]:
    """Return the one-off promotional credit row, if its day falls inside the window."""
    at = len(calendar) - 1 - _CREDIT_DAYS_BEFORE_END
    if at < 0:
        return []
    day = calendar.iloc[at]
    return [
        (
            1,
            {
                **_account_fields(_AWS),
                "ChargeCategory": "Credit",
                "ChargeFrequency": "One-Time",
                "ChargeDescription": "AWS Promotional Credit - Generative AI Accelerator",
                "ChargePeriodStart": day["ChargePeriodStart"],
                "ChargePeriodEnd": day["ChargePeriodEnd"],
                "BillingPeriodStart": day["BillingPeriodStart"],
                "BillingPeriodEnd": day["BillingPeriodEnd"],
                "PricingCategory": "Other",
                "BilledCost": _CREDIT_AMOUNT,
                "EffectiveCost": _CREDIT_AMOUNT,
                "ListCost": _CREDIT_AMOUNT,
                "ContractedCost": _CREDIT_AMOUNT,
                "ServiceName": "Amazon Elastic Compute Cloud",
                "ServiceCategory": "Compute",
            },
        )
    ]


def generate_demo_focus(end: date, days: int = 120, seed: int = 7) -> pd.DataFrame:
    """Daily FOCUS line items for the `days` days ending on `end` (inclusive).

    The same (end, days, seed) always gives the same frame. Text columns hold None where
    FOCUS has no value; numeric columns hold NaN there.
    """
    if days < 1:
        raise ValueError("days must be at least 1")
    calendar = _calendar(end, days)
    weekend = calendar["weekend"].to_numpy()
    rng = np.random.default_rng(seed)
    usage = [_usage_block(line, _quantities(line, weekend, rng), calendar) for line in _LINES]
    frame = _assemble(usage + _monthly_rows(usage, calendar) + _credit_row(calendar))
    frame = frame.sort_values("ChargePeriodStart", kind="stable", ignore_index=True)
    frame["Id"] = pd.Series([f"demo-{i:07d}" for i in range(1, len(frame) + 1)], dtype=object)
    return frame
