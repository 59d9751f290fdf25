"""GPU skills: which GPUs are idle, stop them (guarded), and what stopping them saved."""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from skills.errors import UserError
from skills.gpu_digest import realized_saving
from skills.gpu_fleet import ON_PREM, FleetError, GpuInstance, open_fleet, stop_host
from skills.gpu_idle import IdlePolicy
from skills.gpu_sagemaker import ENDPOINT, SAGEMAKER, open_sagemaker
from skills.gpu_scan import Finding, Machine, assess, on_prem, owner_of, scan
from skills.money import format_money
from skills.registry import FAILED_TARGETS, SKILLS, ActionPlan, SkillContext
from skills.replies import Reply, Table
from storage.gpu_savings import Snooze, Stop, list_stops, record

INSTANCE_ID = re.compile(r"\bi-[0-9a-f]{8,17}\b")
SAGEMAKER_ARN = re.compile(
    r"\barn:aws[\w-]*:sagemaker:[\w-]+:\d+:(?:notebook-instance|endpoint)/[\w-]+"
)
FLEET_HINT = (
    "spendbot needs ec2:DescribeInstances, cloudwatch:ListMetrics and "
    "cloudwatch:GetMetricData in each region of SPENDBOT_GPU_AWS_REGIONS, and the SageMaker "
    "List/Describe actions to watch notebooks and endpoints (see the README)"
)


def _scan(context: SkillContext) -> list[Finding]:
    try:
        return scan(context)
    except FleetError as error:
        raise UserError(f"The GPU fleet could not be read: {error}", FLEET_HINT) from None


def _money(amount: float | None, currency: str | None) -> str:
    return format_money(amount, currency or "USD") if amount is not None else "unknown"


def _policy_words(context: SkillContext) -> str:
    policy = IdlePolicy.from_settings(context.settings)
    key, value = policy.keep_tag
    return (
        f"Idle: every GPU below {policy.threshold_pct:g}% with no GPU process for "
        f"{int(policy.window.total_seconds() // 60)} min, on fresh telemetry (missing or stale "
        f"telemetry counts as busy). Tag {key}={value} to keep a machine off this list."
    )


def _waste(targets: list[dict[str, Any]]) -> tuple[float, str]:
    priced = [target for target in targets if target["hourly_cost"] is not None]
    currencies = {target["currency"] for target in priced}
    return sum(target["hourly_cost"] for target in priced), (
        currencies.pop() if len(currencies) == 1 else "USD"
    )


# gpu_idle_list --------------------------------------------------------------------------------


class GpuIdleListArgs(BaseModel):
    """Arguments of gpu_idle_list."""

    show_busy: bool = Field(False, description="Also list machines that are not idle, and why.")


def parse_idle_list_text(text: str, context: SkillContext) -> GpuIdleListArgs:
    """Busy machines are shown too when the message asks for all/every/busy ones."""
    return GpuIdleListArgs(show_busy=bool(re.search(r"\b(all|every|busy|why)\b", text, re.I)))


@SKILLS.skill(
    name="gpu_idle_list",
    args=GpuIdleListArgs,
    parse_text=parse_idle_list_text,
    command="gpus",
    examples=("which GPUs are idle?", "idle gpus", "show all idle GPU instances and busy ones"),
    triggers=(r"\bidle\b.*\bgpus?\b|\bgpus?\b.*\bidle\b|\bunused gpus?\b",),
)
def gpu_idle_list(context: SkillContext, args: GpuIdleListArgs) -> Reply:
    """Idle GPU machines with owner, type, region, idle since, evidence and the money wasted."""
    findings = _scan(context)
    idle = [finding.target() for finding in findings if finding.verdict.idle]
    busy = [
        {"id": finding.machine.id, "reason": finding.verdict.reason}
        for finding in findings
        if not finding.verdict.idle
    ]
    hourly, currency = _waste(idle)
    data = {
        "idle": idle,
        "not_idle": busy,
        "checked": len(findings),
        "hourly_waste": round(hourly, 4),
        "daily_waste": round(hourly * 24, 2),
        "currency": currency,
    }
    if not findings:
        text = (
            "No GPU machines are watched yet: set SPENDBOT_GPU_AWS_REGIONS for EC2, or run "
            "`spendbot agent` on GPU hosts."
        )
    elif not idle:
        text = f"No idle GPUs among {len(findings)} machine(s) checked."
    else:
        text = (
            f"{len(idle)} idle GPU machine(s) of {len(findings)} checked, wasting about "
            f"{format_money(hourly, currency)}/hour ({format_money(hourly * 24, currency)}/day)."
        )
    rows: list[list[Any]] = [
        [
            target["id"],
            target["owner"] or "(unknown)",
            target["type"] or "",
            target["region"] or target["provider"],
            target["idle_since"][:16].replace("T", " "),
            target["evidence"],
            _money(target["hourly_cost"], target["currency"]),
            _money(target["daily_cost"], target["currency"]),
        ]
        for target in idle
    ]
    if args.show_busy:
        rows += [[item["id"], "", "", "", "not idle", item["reason"], "", ""] for item in busy]
    table = Table(
        [
            "Machine",
            "Owner",
            "Type",
            "Region",
            "Idle since (UTC)",
            "Evidence",
            "Per hour",
            "Per day",
        ],
        rows,
    )
    return Reply(
        text=text,
        table=table if rows else None,
        context=_policy_words(context)
        + (" Say 'stop the idle GPUs' to propose stopping them." if idle else ""),
        data=data,
    )


# gpu_stop -------------------------------------------------------------------------------------


class GpuStopArgs(BaseModel):
    """Arguments of gpu_stop."""

    instances: list[str] = Field(
        default_factory=list,
        description="EC2 instance ids to stop if idle; empty: every idle, stoppable instance.",
    )
    dry_run: bool = Field(False, description="Only show what would be stopped; create no action.")


def parse_stop_text(text: str, context: SkillContext) -> GpuStopArgs:
    """Instance ids named in the text; a dry run when it says dry run / what would / preview."""
    dry = re.search(r"\bdry[- ]?run\b|\bwhat would\b|\bpreview\b|\bsimulate\b", text, re.I)
    named = INSTANCE_ID.findall(text) + SAGEMAKER_ARN.findall(text)
    return GpuStopArgs(instances=named, dry_run=bool(dry))


def _why_not(finding: Finding) -> str | None:
    """Why a machine is not in a stop plan: it is busy (or kept), or may not be stopped."""
    return finding.verdict.reason if not finding.verdict.idle else finding.machine.stop_problem


def plan_stop(context: SkillContext, args: GpuStopArgs) -> ActionPlan:
    """The idle, stoppable instances (of those named, if any), with what each costs per hour."""
    findings = _scan(context)
    if args.instances:
        findings = [finding for finding in findings if finding.machine.id in args.instances]
    chosen = [finding.target() for finding in findings if not _why_not(finding)]
    left_out = [
        f"{finding.machine.id}: {_why_not(finding)}"
        for finding in findings
        # Named machines that cannot be stopped, and idle ones that may not be: say why.
        if (args.instances or finding.verdict.idle) and _why_not(finding)
    ]
    unknown = sorted(set(args.instances) - {finding.machine.id for finding in findings})
    left_out += [f"{instance}: not a running GPU instance spendbot watches" for instance in unknown]
    hourly, currency = _waste(chosen)
    owners = {target["owner"] for target in chosen}
    mentions = sorted({target["contact"] for target in chosen if target["contact"]})
    keep = "=".join(IdlePolicy.from_settings(context.settings).keep_tag)
    impact = (
        f"saves about {format_money(hourly, currency)}/hour "
        f"({format_money(hourly * 24, currency)}/day) while stopped"
    )
    if mentions:
        impact += (
            f"; owners: {', '.join(mentions)} (say 'keep INSTANCE for 24 hours' or tag it {keep})"
        )
    if left_out:
        impact += "; not included: " + "; ".join(left_out)
    if not chosen:
        return ActionPlan(
            summary="No idle GPU instances to stop.",
            impact=impact if left_out else "",
            preview_only=True,
        )
    verb = "Dry run: would stop" if args.dry_run else "Stop"
    return ActionPlan(
        summary=f"{verb} {len(chosen)} idle GPU instance(s): {', '.join(t['id'] for t in chosen)}",
        targets=tuple(chosen),
        impact=impact,
        impact_amount=round(hourly * 24, 2),
        currency=currency,
        team=owners.pop() if len(owners) == 1 else None,
        preview_only=args.dry_run,
    )


def revalidate_stop(context: SkillContext, args: GpuStopArgs, target: dict[str, Any]) -> str | None:
    """Just before the stop: still there, running, stoppable, not kept, idle on fresh telemetry."""
    fleet = open_fleet(context.settings)
    sagemaker = open_sagemaker(context.settings)
    if target["provider"] == SAGEMAKER:
        if sagemaker is None:
            return "SageMaker is not watched"
        resource = sagemaker.resource(target["kind"], target["name"], target["region"])
        if resource is None:
            return "no longer exists"
        if resource.status != "InService":
            return f"is {resource.status}"
        machine = Machine.from_sagemaker(resource, context.settings)
    elif target["provider"] == ON_PREM:
        machine = on_prem(context, target["id"])
    elif fleet is None:
        return "no GPU fleet is configured"
    else:
        instance = fleet.instance(target["id"], target["region"])
        if instance is None:
            return "no longer exists"
        if instance.state != "running":
            return f"is {instance.state}"
        machine = Machine.from_instance(instance)
    if machine.stop_problem:
        return machine.stop_problem
    policy = IdlePolicy.from_settings(context.settings)
    verdict = assess(context, machine, policy, fleet, sagemaker).verdict
    if verdict.idle:
        return None
    return verdict.reason if verdict.kept else f"busy again: {verdict.reason}"


def _stop_sagemaker(context: SkillContext, target: dict[str, Any]) -> str | None:
    """Stop a notebook instance, or scale to zero or delete an endpoint, as configured."""
    sagemaker = open_sagemaker(context.settings)
    if sagemaker is None:
        return "SageMaker is not watched"
    try:
        resource = sagemaker.resource(target["kind"], target["name"], target["region"])
    except FleetError as error:
        return str(error)
    if resource is None:
        return "no longer exists"
    return sagemaker.stop(resource, getattr(context.settings, "gpu_sagemaker_endpoints", "off"))


def _outcome(context: SkillContext, target: dict[str, Any], hibernate: bool) -> str:
    """What a successful stop did to the machine."""
    if target.get("kind") == ENDPOINT:
        action = getattr(context.settings, "gpu_sagemaker_endpoints", "off")
        return "scaled to zero" if action == "scale-to-zero" else "deleted"
    return "hibernated" if hibernate else "stopped"


def _stop_one(context: SkillContext, target: dict[str, Any], hibernate: bool) -> str | None:
    """Stop one planned machine through its hook or its cloud; an error message, or None."""
    if target["provider"] == ON_PREM:
        hook = on_prem(context, target["id"]).hook
        return stop_host(hook, target["id"]) if hook else "no stop hook for on-premises hosts"
    if target["provider"] == SAGEMAKER:
        return _stop_sagemaker(context, target)
    fleet = open_fleet(context.settings)
    if fleet is None:
        return "no GPU fleet is configured"
    instance = GpuInstance(target["id"], target["type"], target["region"], "running")
    return fleet.stop(instance, hibernate)


@SKILLS.skill(
    name="gpu_stop",
    args=GpuStopArgs,
    parse_text=parse_stop_text,
    command="stop-gpus",
    examples=(
        "stop the idle GPUs",
        "stop idle gpu instance i-0123456789abcdef0",
        "dry run: stop the idle GPUs",
    ),
    triggers=(r"\b(stop|shut ?down|turn off|power off|hibernate)\b.*\b(gpus?|gpu instances?)\b",),
    risk="destructive",
    permission="finops",
    plan=plan_stop,
    revalidate=revalidate_stop,
)
def gpu_stop(context: SkillContext, args: GpuStopArgs) -> Reply:
    """Stop idle GPU machines (never terminate), after approval and a last idleness check."""
    targets = list(context.targets or ())
    hibernate_allowed = bool(getattr(context.settings, "gpu_hibernate", False))
    failed, rows, saved = [], [], 0.0
    for target in targets:
        hibernate = hibernate_allowed and target.get("hibernate", False)
        error = _stop_one(context, target, hibernate)
        if error:
            failed.append({"id": target["id"], "error": error})
            rows.append([target["id"], "failed", error, None])
            continue
        if target["hourly_cost"] is not None:
            with context.engine.begin() as connection:
                record(
                    connection,
                    Stop(
                        action_id=context.action_id,
                        instance_id=target["id"],
                        provider=target["provider"],
                        instance_type=target["type"],
                        region=target["region"],
                        owner=target["owner"],
                        stopped_at=context.now,
                        hourly_cost=target["hourly_cost"],
                        currency=target["currency"],
                        price_source=target["price_source"],
                    ),
                )
            saved += target["hourly_cost"] * 24
        rows.append(
            [
                target["id"],
                _outcome(context, target, hibernate),
                "",
                _money(target["daily_cost"], target["currency"]),
            ]
        )
    outcomes = Counter(row[1] for row in rows if row[1] != "failed")
    done = ", ".join(f"{outcome} {count}" for outcome, count in sorted(outcomes.items()))
    return Reply(
        text=f"GPU machines {done or 'stopped 0'}, saving about {format_money(saved)}/day.",
        table=Table(["Instance", "Outcome", "Error", "Saving per day"], rows),
        data={FAILED_TARGETS: failed, "saving_per_day": round(saved, 2)},
    )


# gpu_keep -------------------------------------------------------------------------------------


class GpuKeepArgs(BaseModel):
    """Arguments of gpu_keep."""

    instances: list[str] = Field(min_length=1, description="Instance ids (or host names) to keep.")
    hours: int = Field(24, ge=1, le=24 * 14, description="Keep them off idle lists this long.")
    reason: str = Field("", max_length=300, description="Why, e.g. 'training run until Friday'.")


def parse_keep_text(text: str, context: SkillContext) -> GpuKeepArgs:
    """Instance ids, 'for N hours/days' (24 hours otherwise), and the reason after because/it's."""
    instances = INSTANCE_ID.findall(text)
    if not instances:
        raise UserError(
            "Which instance should be kept?", "e.g. 'keep i-0123456789abcdef0 for 48 hours'"
        )
    span = re.search(r"\bfor (\d{1,3})\s*(h|hours?|d|days?)\b", text, re.I)
    hours = 24
    if span:
        hours = int(span.group(1)) * (24 if span.group(2).lower().startswith("d") else 1)
    because = re.search(r"\b(?:because|it'?s|it is)\b[:,]?\s*(.+)$", text, re.I)
    return GpuKeepArgs(
        instances=instances,
        hours=min(max(hours, 1), 24 * 14),
        reason=because.group(1).strip() if because else "",
    )


def plan_keep(context: SkillContext, args: GpuKeepArgs) -> ActionPlan:
    """Who owns each instance: a team's own finops role may keep its instances."""
    until = context.now + timedelta(hours=args.hours)
    targets = []
    for instance in args.instances:
        targets.append(
            {"id": instance, "owner": owner_of(context, instance), "until": until.isoformat()}
        )
    owners = {target["owner"] for target in targets}
    return ActionPlan(
        summary=f"Keep {', '.join(args.instances)} running until {until:%Y-%m-%d %H:%M} UTC"
        + (f" ({args.reason})" if args.reason else ""),
        targets=tuple(targets),
        impact="not proposed or stopped as idle until then",
        team=owners.pop() if len(owners) == 1 else None,
    )


@SKILLS.skill(
    name="gpu_keep",
    args=GpuKeepArgs,
    parse_text=parse_keep_text,
    command="keep",
    examples=(
        "keep i-0123456789abcdef0 running, it's training",
        "snooze i-0123456789abcdef0 for 48 hours",
    ),
    triggers=(r"\b(keep|snooze)\b.*" + INSTANCE_ID.pattern,),
    risk="write",
    permission="finops",
    plan=plan_keep,
)
def gpu_keep(context: SkillContext, args: GpuKeepArgs) -> Reply:
    """Keep GPU instances running: no idle listing or stop for a while (snooze 24 h by default)."""
    until = context.now + timedelta(hours=args.hours)
    with context.engine.begin() as connection:
        for instance in args.instances:
            record(
                connection,
                Snooze(instance, until, args.reason or "kept", context.user, context.now),
            )
    return Reply(
        text=f"Kept {', '.join(args.instances)} until {until:%Y-%m-%d %H:%M} UTC: not listed "
        "as idle or stopped before then.",
        data={"kept": args.instances, "until": until.isoformat()},
    )


# gpu_savings ----------------------------------------------------------------------------------


class GpuSavingsArgs(BaseModel):
    """Arguments of gpu_savings."""

    days: int = Field(30, ge=1, le=366, description="Stops in the last this many days.")


def parse_savings_text(text: str, context: SkillContext) -> GpuSavingsArgs:
    """'last 7 days' and the like; 30 days otherwise."""
    found = re.search(r"\b(\d{1,3})\s*days?\b", text)
    return GpuSavingsArgs(days=int(found.group(1)) if found else 30)


def _restarted_at(context: SkillContext, stop: Stop) -> datetime | None:
    """When a stopped instance was started again (EC2 resets its launch time), or None."""
    fleet = open_fleet(context.settings)
    if fleet is None or stop.region is None:
        return None
    try:
        instance = fleet.instance(stop.instance_id, stop.region)
    except FleetError:
        return None
    if instance and instance.state in ("pending", "running") and instance.launch_time:
        return max(instance.launch_time, stop.stopped_at)
    return None


@SKILLS.skill(
    name="gpu_savings",
    args=GpuSavingsArgs,
    parse_text=parse_savings_text,
    command="gpu-savings",
    examples=("how much did stopping idle GPUs save?", "gpu savings last 7 days"),
    triggers=(
        r"\b(gpus?|stops?|stopping)\b.*\bsav(e|ed|ing|ings)\b"
        r"|\bsav(e|ed|ing|ings)\b.*\b(gpus?|stops?|stopping)\b",
    ),
)
def gpu_savings(context: SkillContext, args: GpuSavingsArgs) -> Reply:
    """What stopping idle GPUs saved: expected (price x hours stopped) and realized in billing."""
    now = context.now
    stops = list_stops(context.engine, since=now - timedelta(days=args.days))
    rows, entries = [], []
    for stop in stops:
        restarted = _restarted_at(context, stop)
        hours = ((restarted or now) - stop.stopped_at).total_seconds() / 3600
        expected = stop.hourly_cost * hours
        realized = realized_saving(context.costs, stop, stop.stopped_at, now)
        entries.append(
            {
                "instance_id": stop.instance_id,
                "owner": stop.owner,
                "stopped_at": stop.stopped_at.isoformat(),
                "restarted_at": restarted.isoformat() if restarted else None,
                "hourly_cost": stop.hourly_cost,
                "hours_avoided": round(hours, 2),
                "expected": round(expected, 2),
                "realized": round(realized, 2) if realized is not None else None,
                "per_day": 0.0 if restarted else round(stop.hourly_cost * 24, 2),
            }
        )
        rows.append(
            [
                stop.instance_id,
                stop.owner or "(unknown)",
                f"{stop.stopped_at:%Y-%m-%d %H:%M}",
                f"{restarted:%Y-%m-%d %H:%M}" if restarted else "still stopped",
                format_money(stop.hourly_cost, stop.currency),
                round(hours, 1),
                format_money(expected, stop.currency),
                format_money(realized, stop.currency) if realized is not None else "not billed yet",
            ]
        )
    expected_total = sum(entry["expected"] for entry in entries)
    per_day = sum(entry["per_day"] for entry in entries)
    if not stops:
        text = f"No idle GPUs were stopped in the last {args.days} days."
    else:
        text = (
            f"{len(stops)} GPU stop(s) in the last {args.days} days saved about "
            f"{format_money(expected_total)} so far; {format_money(per_day)}/day while they stay stopped."
        )
    return Reply(
        text=text,
        table=Table(
            [
                "Instance",
                "Owner",
                "Stopped (UTC)",
                "Restarted",
                "Per hour",
                "Hours",
                "Expected",
                "Realized",
            ],
            rows,
        )
        if rows
        else None,
        context="Expected: hourly price x hours stopped. Realized: the week-before daily cost "
        "minus each billed day's cost since the stop.",
        data={
            "stops": entries,
            "expected_total": round(expected_total, 2),
            "per_day": round(per_day, 2),
        },
    )
