"""The gpu_efficiency skill: cost per allocated vs per utilized GPU-hour, by owner and family."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, Field

from skills.gpu_prices import gpu_count
from skills.money import format_money
from skills.registry import SKILLS, SkillContext
from skills.replies import Reply, Table
from storage.allocation import UNALLOCATED, load_allocation, resource_owners
from storage.gpu_telemetry import gpu_resource_costs, mean_utilization


class GpuEfficiencyArgs(BaseModel):
    """Arguments of gpu_efficiency."""

    days: int = Field(30, ge=1, le=366, description="The last this many days, up to now.")


def parse_efficiency_text(text: str, context: SkillContext) -> GpuEfficiencyArgs:
    """'last 7 days' and the like; 30 days otherwise."""
    found = re.search(r"\b(\d{1,3})\s*days?\b", text)
    return GpuEfficiencyArgs(days=int(found.group(1)) if found else 30)


@SKILLS.skill(
    name="gpu_efficiency",
    args=GpuEfficiencyArgs,
    parse_text=parse_efficiency_text,
    command="gpu-efficiency",
    examples=(
        "cost per utilized GPU-hour",
        "gpu efficiency by team last 7 days",
        "what do we pay per allocated vs utilized gpu hour?",
    ),
    triggers=(
        r"\b(allocated|utili[sz]ed|used)\b.*\bgpu[- ]hours?\b|\bgpu (efficiency|utili[sz]ation)\b",
    ),
)
def gpu_efficiency(context: SkillContext, args: GpuEfficiencyArgs) -> Reply:
    """Cost per allocated and per utilized GPU-hour, by owner and instance family."""
    end = context.now
    start = end - timedelta(days=args.days)
    allocation = load_allocation(context.engine, context.costs)
    utilization = mean_utilization(context.engine, start, end)
    groups: dict[tuple[str, str], dict[str, Any]] = defaultdict(
        lambda: {
            "cost": 0.0,
            "allocated": 0.0,
            "measured_cost": 0.0,
            "utilized": 0.0,
            "machines": 0,
        }
    )
    currencies = set()
    for resource in gpu_resource_costs(context.costs, start, end):
        found = resource_owners(
            context.engine, resource.resource_id, start, allocation, costs=context.costs
        )
        owner = found[0].owner if found else UNALLOCATED
        family = resource.instance_type.removeprefix("ml.").split(".")[0]
        group = groups[(owner, family)]
        allocated = resource.hours * gpu_count(resource.instance_type)
        group["cost"] += resource.cost
        group["allocated"] += allocated
        group["machines"] += 1
        currencies.add(resource.currency)
        if resource.resource_id in utilization:
            group["measured_cost"] += resource.cost
            group["utilized"] += allocated * utilization[resource.resource_id] / 100
    currency = currencies.pop() if len(currencies) == 1 else "USD"
    rows, entries = [], []
    for (owner, family), group in sorted(groups.items()):
        per_allocated = group["cost"] / group["allocated"] if group["allocated"] else None
        per_utilized = group["measured_cost"] / group["utilized"] if group["utilized"] else None
        entries.append(
            {
                "owner": owner,
                "family": family,
                "machines": group["machines"],
                "cost": round(group["cost"], 2),
                "allocated_gpu_hours": round(group["allocated"], 2),
                "utilized_gpu_hours": round(group["utilized"], 2),
                "per_allocated_gpu_hour": per_allocated,
                "per_utilized_gpu_hour": per_utilized,
            }
        )
        rows.append(
            [
                owner,
                family,
                group["machines"],
                format_money(group["cost"], currency),
                round(group["allocated"], 1),
                round(group["utilized"], 1),
                format_money(per_allocated, currency) if per_allocated is not None else "",
                format_money(per_utilized, currency)
                if per_utilized is not None
                else "no telemetry",
            ]
        )
    period = f"{start:%Y-%m-%d} to {end:%Y-%m-%d}"
    if not rows:
        return Reply(
            text=f"No GPU machine usage with resource ids in billing from {period}.",
            data={"groups": []},
        )
    return Reply(
        text=f"Cost per GPU-hour by owner and instance family, {period}.",
        table=Table(
            [
                "Owner",
                "Family",
                "Machines",
                "Cost",
                "Allocated GPU-h",
                "Utilized GPU-h",
                "Per allocated GPU-h",
                "Per utilized GPU-h",
            ],
            rows,
        ),
        context="Allocated: billed instance hours x GPUs per instance. Utilized: allocated x mean "
        "GPU utilization from telemetry (NVML agents, CloudWatch); machines without telemetry "
        "count only towards the allocated figure.",
        data={"groups": entries, "currency": currency},
    )
