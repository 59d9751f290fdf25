"""Legacy CUR 2.0 rows mapped to FOCUS columns, so old exports load beside FOCUS ones.

The mapping follows AWS's own FOCUS conversion in outline: line item types become charge
categories, and EffectiveCost amortizes commitments (Savings Plan and Reserved Instance covered
usage carry their effective cost; the negation and fee rows carry only the unused commitment).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import numpy as np
import pandas as pd

# CUR 2.0 column -> FOCUS column, copied as they are.
_DIRECT = {
    "bill_payer_account_id": "BillingAccountId",
    "line_item_currency_code": "BillingCurrency",
    "bill_billing_period_start_date": "BillingPeriodStart",
    "bill_billing_period_end_date": "BillingPeriodEnd",
    "line_item_usage_start_date": "ChargePeriodStart",
    "line_item_usage_end_date": "ChargePeriodEnd",
    "line_item_line_item_description": "ChargeDescription",
    "line_item_usage_amount": "ConsumedQuantity",
    "pricing_unit": "PricingUnit",
    "line_item_usage_account_id": "SubAccountId",
    "line_item_usage_account_name": "SubAccountName",
    "line_item_availability_zone": "AvailabilityZone",
    "product_region_code": "RegionId",
    "line_item_resource_id": "ResourceId",
    "product_servicecode": "ServiceName",
    "line_item_usage_type": "SkuId",
    "pricing_public_on_demand_cost": "ListCost",
    "pricing_public_on_demand_rate": "ListUnitPrice",
    "bill_invoicing_entity": "InvoiceIssuerName",
}

_CATEGORY = {
    "Usage": "Usage",
    "DiscountedUsage": "Usage",
    "SavingsPlanCoveredUsage": "Usage",
    "SavingsPlanNegation": "Usage",
    "Fee": "Purchase",
    "RIFee": "Purchase",
    "SavingsPlanRecurringFee": "Purchase",
    "SavingsPlanUpfrontFee": "Purchase",
    "Tax": "Tax",
    "Credit": "Credit",
    "Refund": "Credit",
    "BundledDiscount": "Credit",
    "Discount": "Credit",
    "EdpDiscount": "Credit",
    "PrivateRateDiscount": "Credit",
}


def is_cur(columns: Iterable[object]) -> bool:
    """Whether a file's header is CUR 2.0 rather than FOCUS."""
    names = {str(name).lower() for name in columns}
    return "line_item_unblended_cost" in names and "billedcost" not in names


def _number(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame:
        return pd.Series(0.0, index=frame.index)
    return pd.to_numeric(frame[column].replace("", np.nan), errors="coerce").fillna(0.0)


def _tags(value: object) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value == "":
        return None
    if isinstance(value, str):
        return value  # CSV delivers the map as JSON text already
    pairs = value.items() if isinstance(value, dict) else value  # Parquet maps: key/value pairs
    tags = {str(key).removeprefix("user_"): item for key, item in pairs}
    return json.dumps(tags) if tags else None


def cur_to_focus(frame: pd.DataFrame) -> pd.DataFrame:
    """Map CUR 2.0 rows to the FOCUS columns spendbot stores."""
    frame = frame.rename(columns=str.lower)
    out = pd.DataFrame(index=frame.index)
    for cur, focus in _DIRECT.items():
        if cur in frame:
            out[focus] = frame[cur]
    kind = frame["line_item_line_item_type"].astype(str)
    unblended = _number(frame, "line_item_unblended_cost")
    effective = unblended.copy()
    covered = kind == "SavingsPlanCoveredUsage"
    effective[covered] = _number(frame, "savings_plan_savings_plan_effective_cost")[covered]
    reserved = kind == "DiscountedUsage"
    effective[reserved] = _number(frame, "reservation_effective_cost")[reserved]
    effective[kind.isin(["SavingsPlanNegation", "SavingsPlanUpfrontFee"])] = 0.0
    sp_fee = kind == "SavingsPlanRecurringFee"
    unused_sp = _number(frame, "savings_plan_total_commitment_to_date") - _number(
        frame, "savings_plan_used_commitment"
    )
    effective[sp_fee] = unused_sp[sp_fee].clip(lower=0.0)
    ri_fee = kind == "RIFee"
    unused_ri = _number(frame, "reservation_unused_amortized_upfront_fee_for_billing_period") + (
        _number(frame, "reservation_unused_recurring_fee")
    )
    effective[ri_fee] = unused_ri[ri_fee]
    out["BilledCost"] = unblended
    out["EffectiveCost"] = effective
    out["ChargeCategory"] = kind.map(_CATEGORY).fillna("Adjustment")
    out["ChargeClass"] = None
    out["ProviderName"] = "AWS"
    out["PublisherName"] = "AWS"
    if "ServiceName" not in out and "line_item_product_code" in frame:
        out["ServiceName"] = frame["line_item_product_code"]
    if "resource_tags" in frame:
        out["Tags"] = [_tags(value) for value in frame["resource_tags"]]
    return out
