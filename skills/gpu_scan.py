"""Idle-GPU findings: every watched machine with its verdict, owner and hourly price."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from skills.gpu_fleet import ON_PREM, SOURCE, FleetError, GpuFleet, GpuInstance, open_fleet
from skills.gpu_idle import IdlePolicy, Verdict, judge, judge_fallback
from skills.gpu_prices import HourlyPrice, hourly_price, onprem_hourly_price
from skills.gpu_sagemaker import (
    ENDPOINT,
    SAGEMAKER,
    SageMakerFleet,
    SageMakerResource,
    assess_resource,
    open_sagemaker,
)
from skills.registry import SkillContext
from storage import gpu_telemetry
from storage.allocation import OWNER_TAG_KEYS, resolve_recipient
from storage.connectors.onprem_gpus import price_table
from storage.gpu_savings import active_snooze

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Machine:
    """A GPU machine: an EC2 instance the fleet found, or an on-premises host an agent reports."""

    id: str
    provider: str
    type: str | None = None
    region: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    instance: GpuInstance | None = None
    hook: str | None = None
    """For an on-premises host: the command that stops it, when one is configured."""
    sagemaker: SageMakerResource | None = None
    endpoint_action: str = "off"
    """For a SageMaker endpoint: what a stop does (`SPENDBOT_GPU_SAGEMAKER_ENDPOINTS`)."""

    @classmethod
    def from_instance(cls, instance: GpuInstance) -> Machine:
        """The machine an EC2 instance is."""
        return cls(
            instance.id, instance.provider, instance.type, instance.region, instance.tags, instance
        )

    @classmethod
    def from_sagemaker(cls, resource: SageMakerResource, settings: Any) -> Machine:
        """The machine a SageMaker notebook instance or endpoint is, known by its ARN."""
        return cls(
            resource.arn,
            SAGEMAKER,
            resource.type,
            resource.region,
            resource.tags,
            sagemaker=resource,
            endpoint_action=getattr(settings, "gpu_sagemaker_endpoints", "off"),
        )

    @property
    def kind(self) -> str:
        """instance, host, notebook or endpoint."""
        if self.sagemaker is not None:
            return self.sagemaker.kind
        return "instance" if self.instance is not None else "host"

    @property
    def stop_problem(self) -> str | None:
        """Why spendbot may not stop this machine, or None."""
        if self.sagemaker is not None:
            if self.sagemaker.kind == ENDPOINT and self.endpoint_action == "off":
                return "endpoints are only listed (SPENDBOT_GPU_SAGEMAKER_ENDPOINTS=off)"
            return None
        if self.instance is None:
            return (
                None
                if self.hook
                else "no stop hook for on-premises hosts (set SPENDBOT_GPU_STOP_HOOK)"
            )
        if self.instance.root_device_type != "ebs":
            return "not EBS-backed: stopping would lose its instance-store data"
        return None


@dataclass(frozen=True)
class Finding:
    """A machine's verdict with its owner, where to tell them, and what an idle hour costs."""

    machine: Machine
    verdict: Verdict
    owner: str | None
    contact: str | None
    price: HourlyPrice | None

    def target(self) -> dict[str, Any]:
        """The JSON form shown in lists and stored as a stop plan's target."""
        machine, verdict, price = self.machine, self.verdict, self.price
        utilization = "last " + ", ".join(
            f"{item['utilization_pct']:g}%" for item in verdict.evidence if "text" not in item
        )
        facts = [item["text"] for item in verdict.evidence if "text" in item]
        sources = sorted({item["source"] for item in verdict.evidence})
        return {
            "id": machine.id,
            "kind": machine.kind,
            "name": machine.sagemaker.name if machine.sagemaker else machine.id,
            "provider": machine.provider,
            "type": machine.type,
            "region": machine.region,
            "owner": self.owner,
            "contact": self.contact,
            "idle_since": verdict.idle_since.isoformat() if verdict.idle_since else None,
            "evidence": f"{'; '.join(facts) or utilization} ({', '.join(sources)})"
            if verdict.evidence
            else "",
            "hourly_cost": round(price.amount, 4) if price else None,
            "daily_cost": round(price.amount * 24, 2) if price else None,
            "currency": price.currency if price else None,
            "price_source": price.source if price else None,
            "hibernate": bool(machine.instance and machine.instance.hibernation_configured),
        }


def on_prem(context: SkillContext, host: str) -> Machine:
    """An on-premises host an agent reports, with the configured stop hook."""
    return Machine(host, ON_PREM, hook=getattr(context.settings, "gpu_stop_hook", None))


def lookback(policy: IdlePolicy) -> timedelta:
    """How far back samples are read: enough to date `idle_since` beyond the window."""
    return max(policy.window * 2, timedelta(hours=24))


def _owner(context: SkillContext, machine: Machine) -> tuple[str | None, str | None]:
    tagged = next((machine.tags[key] for key in OWNER_TAG_KEYS if machine.tags.get(key)), None)
    recipient = resolve_recipient(
        context.engine, resource=machine.id, owner=tagged, costs=context.costs
    )
    return recipient.owner, recipient.contact


def refresh(
    engine: Engine, fleet: GpuFleet, instance: GpuInstance, start: datetime, now: datetime
) -> None:
    """Store the instance's CloudWatch GPU samples since `start`; an unreadable cloud leaves gaps."""
    try:
        rows = fleet.utilization(instance, start, now)
    except FleetError as error:
        log.warning("GPU utilization of %s unreadable: %s", instance.id, error)
        return
    with engine.begin() as connection:
        gpu_telemetry.replace_samples(connection, instance.id, SOURCE, start, now, rows)


def _fallback_verdict(
    fleet: GpuFleet, instance: GpuInstance, start: datetime, now: datetime, policy: IdlePolicy
) -> Verdict:
    """Judge an instance that publishes no GPU metrics by its CPU and network use."""
    try:
        points = fleet.activity(instance, start, now)
    except FleetError as error:
        return Verdict(False, f"no GPU telemetry; fallback signal unreadable: {error}")
    return judge_fallback(points, instance.tags, now, policy)


def assess(
    context: SkillContext,
    machine: Machine,
    policy: IdlePolicy,
    fleet: GpuFleet | None,
    sagemaker: SageMakerFleet | None = None,
) -> Finding:
    """Unless an owner snoozed it: read fresh cloud samples, then judge on everything stored.

    A SageMaker notebook or endpoint is judged on its activity instead (`skills/gpu_sagemaker.py`).
    """
    now = context.now
    snooze = active_snooze(context.engine, machine.id, now)
    if snooze is not None:
        reason = f"kept by {snooze.kept_by} until {snooze.until:%Y-%m-%d %H:%M} UTC"
        verdict = Verdict(False, f"{reason}: {snooze.reason}", kept=True)
    elif machine.sagemaker is not None:
        verdict = (
            assess_resource(sagemaker, machine.sagemaker, now, policy)
            if sagemaker is not None
            else Verdict(False, "SageMaker is not watched")
        )
    else:
        start = now - lookback(policy)
        if fleet is not None and machine.instance is not None:
            refresh(context.engine, fleet, machine.instance, start, now)
        samples = gpu_telemetry.samples_for(context.engine, machine.id, start, now)
        fallback = getattr(context.settings, "gpu_cpu_fallback", True)
        if not samples and fallback and fleet is not None and machine.instance is not None:
            verdict = _fallback_verdict(fleet, machine.instance, start, now, policy)
        else:
            verdict = judge(samples, machine.tags, now, policy)
    owner, contact = _owner(context, machine)
    price = hourly_price(context.costs, machine.id, machine.type, now)
    if price is None and machine.provider == ON_PREM:
        prices = price_table(getattr(context.settings, "onprem_gpu_price_table", None))
        price = onprem_hourly_price(context.engine, machine.id, prices, now)
    return Finding(machine, verdict, owner, contact, price)


def owner_of(context: SkillContext, machine_id: str) -> str | None:
    """A machine's owner: from its billing rows and rules, else its cloud tags when watched."""
    fleet = open_fleet(context.settings)
    try:
        found = [i for i in fleet.instances() if i.id == machine_id] if fleet else []
    except FleetError as error:
        log.warning("GPU fleet unreadable, owner of %s from billing only: %s", machine_id, error)
        found = []
    machine = Machine.from_instance(found[0]) if found else on_prem(context, machine_id)
    return _owner(context, machine)[0]


def scan(context: SkillContext) -> list[Finding]:
    """Every watched machine's finding: EC2 GPU instances, SageMaker, on-premises hosts."""
    policy = IdlePolicy.from_settings(context.settings)
    fleet = open_fleet(context.settings)
    machines = [Machine.from_instance(i) for i in fleet.instances()] if fleet else []
    sagemaker = open_sagemaker(context.settings)
    try:
        resources = sagemaker.resources() if sagemaker else []
    except FleetError as error:
        # Unlisted means never proposed: safe, but say so in the log.
        log.warning("SageMaker unreadable, its GPU resources are not checked: %s", error)
        resources = []
    machines += [Machine.from_sagemaker(r, context.settings) for r in resources]
    since = context.now - policy.max_gap - policy.window
    hosts = gpu_telemetry.agent_hosts(context.engine, since)
    machines += [
        on_prem(context, host) for host, instance_id in sorted(hosts.items()) if instance_id is None
    ]
    return [assess(context, machine, policy, fleet, sagemaker) for machine in machines]
