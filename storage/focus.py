"""The FOCUS vocabulary: which columns spendbot keeps, how they are typed and named."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

ColumnKind = Literal["text", "money", "number", "datetime"]


@dataclass(frozen=True)
class FocusColumn:
    """One FOCUS column as spendbot stores it."""

    focus_name: str
    kind: ColumnKind = "text"
    required: bool = False
    aliases: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """The snake_case storage name, e.g. ``effective_cost`` for ``EffectiveCost``."""
        return re.sub(r"(?<!^)(?=[A-Z])", "_", self.focus_name).lower()


# Required columns are the ones a cost question cannot be answered without; the rest are
# stored when present. Aliases cover FOCUS 1.2+ renames (ProviderName -> ServiceProviderName).
COLUMNS: tuple[FocusColumn, ...] = (
    FocusColumn("BillingAccountId", required=True),
    FocusColumn("BillingAccountName"),
    FocusColumn("BillingCurrency", required=True),
    FocusColumn("BillingPeriodStart", "datetime", required=True),
    FocusColumn("BillingPeriodEnd", "datetime"),
    FocusColumn("ChargePeriodStart", "datetime", required=True),
    FocusColumn("ChargePeriodEnd", "datetime", required=True),
    FocusColumn("ChargeCategory", required=True),
    FocusColumn("ChargeClass"),
    FocusColumn("ChargeDescription"),
    FocusColumn("ChargeFrequency"),
    FocusColumn("BilledCost", "money", required=True),
    FocusColumn("EffectiveCost", "money", required=True),
    FocusColumn("ListCost", "money"),
    FocusColumn("ContractedCost", "money"),
    FocusColumn("ListUnitPrice", "number"),
    FocusColumn("ContractedUnitPrice", "number"),
    FocusColumn("PricingCategory"),
    FocusColumn("PricingQuantity", "number"),
    FocusColumn("PricingUnit"),
    FocusColumn("ConsumedQuantity", "number"),
    FocusColumn("ConsumedUnit"),
    FocusColumn("ProviderName", required=True, aliases=("ServiceProviderName",)),
    FocusColumn("PublisherName", aliases=("HostProviderName",)),
    FocusColumn("InvoiceIssuerName"),
    FocusColumn("RegionId"),
    FocusColumn("RegionName"),
    FocusColumn("AvailabilityZone"),
    FocusColumn("ResourceId"),
    FocusColumn("ResourceName"),
    FocusColumn("ResourceType"),
    FocusColumn("ServiceName"),
    FocusColumn("ServiceCategory"),
    FocusColumn("SkuId"),
    FocusColumn("SkuPriceId"),
    FocusColumn("SubAccountId"),
    FocusColumn("SubAccountName"),
    FocusColumn("CommitmentDiscountId"),
    FocusColumn("CommitmentDiscountName"),
    FocusColumn("CommitmentDiscountCategory"),
    FocusColumn("CommitmentDiscountType"),
    FocusColumn("CommitmentDiscountStatus"),
    FocusColumn("Tags"),
)

REQUIRED = tuple(column for column in COLUMNS if column.required)

COST_METRICS: dict[str, str] = {
    "effective": "effective_cost",
    "billed": "billed_cost",
    "list": "list_cost",
    "contracted": "contracted_cost",
}

METRIC_LABELS: dict[str, str] = {
    "effective": "EffectiveCost (amortized)",
    "billed": "BilledCost (invoiced)",
    "list": "ListCost (on-demand list price)",
    "contracted": "ContractedCost (negotiated price)",
}

# GPU instance families across clouds, matched against the SKU, description and resource
# fields of a line item: AWS p/g/trn/inf (and their SageMaker ml.* forms), GCP a2/a3/g2,
# Azure NC/ND/NV, and accelerator SKUs described as NVIDIA GPUs.
GPU_INSTANCE_PATTERN = re.compile(
    r"\b(?:ml\.)?(?:p[2-6][a-z]*|g[3-6][a-z]*|trn[12][a-z]*|inf[12])\.\d*x?large\b"
    r"|\b(?:a2|a3|g2)-(?:highgpu|megagpu|ultragpu|edgegpu|standard)-\d+g?\b"
    r"|\bStandard_N[CDV]\w*"
    r"|\bNVIDIA\b[\w\s-]*?\bGPU\b",
    re.IGNORECASE,
)


def find_gpu_instance_type(*texts: str | None) -> str | None:
    """Return the first GPU instance type named in any of `texts`, or None."""
    for text in texts:
        if text:
            match = GPU_INSTANCE_PATTERN.search(text)
            if match:
                return match.group(0)
    return None
