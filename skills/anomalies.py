"""The anomaly skill: cost anomalies found now, one alert per root cause, worst first."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, timedelta

from pydantic import BaseModel, Field
from sqlalchemy import Engine

from skills.aws_anomalies import with_aws_anomalies
from skills.detection import Alert, Detection, DetectorParams, detect
from skills.money import format_money
from skills.periods import Period, parse_period, take_period
from skills.registry import SKILLS, SkillContext
from skills.replies import Reply, Table
from storage.anomaly_alerts import acknowledged
from storage.cost_series import TEAM_TAG

LEVEL_LABELS = {
    "resource": "Resource",
    "sku": "SKU",
    "sub_account": "Sub account",
    "team": "Team",
    "service": "Service",
    "provider": "Provider",
}
TEAM_WORDS = re.compile(r"\bteam\s*[=:]?\s*([\w.\-]+)", re.IGNORECASE)
AMOUNT = re.compile(
    r"\b(?:over|above|more than|at least|bigger than|larger than)\s*\$?\s*([\d,]+(?:\.\d+)?)\s*(k)?\b",
    re.IGNORECASE,
)
SHOWN = 10
TUNED_MARGIN = 1.5
"""How far above spend people called normal a series' next anomaly must be, per day."""


class AnomalyListArgs(BaseModel):
    """Arguments of anomaly_list."""

    period: str = Field(
        "last 30 days",
        description="Days to check, as a time phrase ('yesterday', 'this week', 'last 14 days', "
        "'since 2026-11-01'). Each day is compared with the weeks before it; today is not "
        "checked until it is complete.",
    )
    team: str | None = Field(None, description="Only anomalies owned by this team (team tag).")
    min_impact: float = Field(
        100.0, ge=0, description="Smallest difference from expected worth an alert, per day."
    )
    min_relative: float = Field(
        0.25, ge=0, description="Smallest difference as a share of the expected cost (0.25 = 25%)."
    )
    currency: str | None = Field(
        None, description="Billing currency; default: the store's most common one."
    )


def run_detection(
    context: SkillContext, period: Period, params: DetectorParams, currency: str
) -> Detection:
    """Detect over the complete days of `period` (today is never complete), tuned by feedback.

    An alert whose series people called "expected" or "planned" before is kept only when its
    daily impact is above that series' raised minimum (`tuned_minimums`).
    """
    until = min(period.end, context.now.date() - timedelta(days=1))
    detection = detect(context.costs, period.start, until, params, currency)
    tuned = tuned_minimums(context.engine)
    kept = [
        alert
        for alert in detection.alerts
        if abs(alert.episode.impact) / alert.episode.days > tuned.get(series_key(alert), 0.0)
    ]
    return replace(detection, alerts=kept, tuned=tuned)


def series_key(alert: Alert) -> str:
    """The series an alert is about: its level and path of values."""
    return f"{alert.level.name}:" + "|".join(alert.episode.series)


def tuned_minimums(engine: Engine) -> dict[str, float]:
    """Per series, the minimum daily impact raised by feedback.

    "Expected" or "planned" on an alert makes spend like it normal for its series: later
    anomalies there need a daily impact above `TUNED_MARGIN` times the largest daily impact
    (actual minus expected, over the days flagged) people called normal.
    """
    tuned: dict[str, float] = {}
    for state in acknowledged(engine):
        alert = state.alert["alert"]
        daily = abs(alert["impact"]) / max(alert["days"], 1)
        tuned[state.series_key] = max(tuned.get(state.series_key, 0.0), TUNED_MARGIN * daily)
    return tuned


def parse_anomaly_text(text: str, context: SkillContext) -> AnomalyListArgs:
    """Anomaly arguments from chat: a period, a team, a minimum amount."""
    values: dict = {}
    phrase, text = take_period(text, context.now.date())
    if phrase:
        values["period"] = phrase
    if amount := AMOUNT.search(text):
        number = float(amount.group(1).replace(",", ""))
        values["min_impact"] = number * (1000 if amount.group(2) else 1)
        text = text[: amount.start()] + text[amount.end() :]
    if team := TEAM_WORDS.search(text):
        values["team"] = context.vocabulary.resolve(TEAM_TAG, team.group(1))
    else:
        for mention in context.vocabulary.find_mentions(text):
            if mention.dimension == TEAM_TAG:
                values["team"] = mention.value
                break
    return AnomalyListArgs(**values)


def driver_label(alert: Alert) -> str:
    """What an alert is about, for people: ``SKU gpt-4o``, ``Resource i-0abc``."""
    key = alert.key if alert.key != "(none)" else "(no team tag)"
    return f"{LEVEL_LABELS[alert.level.name]} {key}"


def describe_alert(alert: Alert, currency: str) -> str:
    """One sentence: the driver, where, when, actual vs expected, impact and owner."""
    episode = alert.episode
    where = ", ".join(value for value in (alert.service, alert.provider) if value != alert.key)
    when = (
        f"on {episode.start:%Y-%m-%d}"
        if episode.start == episode.end
        else f"from {episode.start:%Y-%m-%d} to {episode.end:%Y-%m-%d} ({episode.days} days flagged)"
    )
    if episode.kind == "new":
        what = f"new spend, {format_money(episode.actual, currency)} since it first appeared"
    else:
        direction = "above" if episode.kind == "spike" else "below"
        what = (
            f"{format_money(abs(episode.impact), currency)} {direction} expected "
            f"({format_money(episode.actual, currency)} vs {format_money(episode.expected, currency)})"
        )
    owner = f"owner: team {alert.owner}" if alert.owner else "no owner (no team tag)"
    return f"{driver_label(alert)}{f' ({where})' if where else ''} {when}: {what}; {owner}."


def method_line(
    params: DetectorParams, currency: str, tuned: dict[str, float] | None = None
) -> str:
    """How expected costs and alerts are decided, for the context line."""
    line = (
        "Baseline: 4-week median with an 8-week weekday profile, per provider, service, sub "
        f"account, team, SKU and resource; alert when at least {format_money(params.min_impact, currency)}"
        f" a day, {params.min_relative:.0%} and {params.sigmas:g} robust sigmas from expected"
    )
    if tuned:
        raised = ", ".join(
            f"{series_label(key)} above {format_money(amount, currency)} a day"
            for key, amount in sorted(tuned.items())
        )
        line += f"; raised by feedback: {raised}"
    return line


def series_label(key: str) -> str:
    """A series key for people: ``sku:OpenAI|OpenAI API|gpt-4o`` -> ``SKU gpt-4o``."""
    level, _, path = key.partition(":")
    return f"{LEVEL_LABELS.get(level, level)} {path.rsplit('|', 1)[-1]}"


def alerts_table(alerts: list[Alert], currency: str) -> Table:
    """Dates, driver, service, owner, expected, actual and impact, one row per alert."""
    rows: list[list] = []
    for alert in alerts:
        episode = alert.episode
        dates = (
            f"{episode.start:%Y-%m-%d}"
            if episode.start == episode.end
            else f"{episode.start:%Y-%m-%d}..{episode.end:%m-%d}"
        )
        rows.append(
            [
                dates,
                driver_label(alert),
                alert.service or "",
                alert.owner or "",
                round(episode.expected, 2),
                round(episode.actual, 2),
                round(episode.impact, 2),
            ]
        )
    return Table(
        ["Dates", "Driver", "Service", "Owner", "Expected", "Actual", "Impact"],
        rows,
        frozenset({4, 5, 6}),
        currency,
    )


@SKILLS.skill(
    name="anomaly_list",
    args=AnomalyListArgs,
    parse_text=parse_anomaly_text,
    command="anomalies",
    examples=(
        "any cost anomalies this week?",
        "unusual spend yesterday",
        "cost spikes for team search in the last 14 days",
        "anomalies over $500 since 2026-11-01",
    ),
    triggers=(
        r"\b(anomal\w*|unusual|unexpected|abnormal|spikes?|spiked|outliers?|surges?|dips?|weird|strange)\b",
        r"\b(costs?|spend|spending|billing|bill)\s+(anomal\w*|spikes?|outliers?|surges?|alerts?)\b"
        r"|\b(unusual|unexpected|abnormal|weird|strange)\s+(costs?|spend|spending|charges?|bill)\b",
        r"\b(today|yesterday|last|this|since|month|week|quarter|year)\b",
    ),
)
def anomaly_list(context: SkillContext, args: AnomalyListArgs) -> Reply:
    """Cost anomalies: spikes, drops and new spend, one alert per root cause, worst first.

    Checks the daily EffectiveCost of Usage and Purchase charges (tax, credits and adjustments
    excluded) per provider, service, sub account, team, SKU and resource against a robust
    baseline with a weekday pattern. An anomaly seen at several levels is one alert naming its
    most specific driver, with expected and actual cost, the dollar impact and the owning team.
    """
    period = parse_period(args.period, context.now.date())
    currency, _ = context.vocabulary.choose_currency(args.currency)
    params = DetectorParams(min_impact=args.min_impact, min_relative=args.min_relative)
    detection = run_detection(context, period, params, currency)
    alerts = [alert for alert in detection.alerts if args.team is None or alert.owner == args.team]
    reply = anomaly_reply(alerts, detection, period, args.team, currency)
    return with_aws_anomalies(reply, context.settings, period.start, period.end)


def anomaly_reply(
    alerts: list[Alert], detection: Detection, period: Period, team: str | None, currency: str
) -> Reply:
    """Headline, table of alerts, context line; the alerts as data."""
    checked = _checked(detection, period)
    scope = f" for team {team}" if team else ""
    if detection.end is None or detection.end < detection.start:
        text = (
            f"No complete days of usage data to check{scope} in {period.label}: a day is "
            "checked once it is over and its billing data is loaded."
        )
    elif not alerts:
        text = f"No cost anomalies{scope} {checked}: every series stayed within its usual range."
    else:
        up = sum(alert.episode.impact for alert in alerts if alert.episode.impact > 0)
        down = -sum(alert.episode.impact for alert in alerts if alert.episode.impact < 0)
        amounts = []
        if up:
            amounts.append(f"{format_money(up, currency)} above expected")
        if down:
            amounts.append(f"{format_money(down, currency)} below")
        count = f"{len(alerts)} cost anomal{'y' if len(alerts) == 1 else 'ies'}"
        text = f"{count}{scope} {checked}: {', '.join(amounts)}.\nBiggest: " + describe_alert(
            alerts[0], currency
        )
    context = (
        "Metric: EffectiveCost (amortized) of Usage and Purchase charges (tax, credits and "
        f"adjustments excluded) · Period: {checked.removeprefix('from ')} (UTC days, by "
        f"ChargePeriodStart) · {method_line(detection.params, currency, detection.tuned)} · Currency: {currency}"
    )
    data = {
        "alerts": [alert.as_dict() for alert in alerts],
        "period": {
            **period.as_dict(),
            "checked_to": detection.end.isoformat() if detection.end else None,
        },
        "team": team,
        "currency": currency,
        "metric": "effective",
        "charge_categories": ["Usage", "Purchase"],
        "series_checked": detection.series_count,
        "params": {
            "min_impact": detection.params.min_impact,
            "min_relative": detection.params.min_relative,
            "sigmas": detection.params.sigmas,
            "level_days": detection.params.level_days,
            "season_days": detection.params.season_days,
        },
    }
    table = alerts_table(alerts[:SHOWN], currency) if alerts else None
    if len(alerts) > SHOWN:
        text += f"\nShowing the {SHOWN} largest of {len(alerts)}."
    return Reply(text=text, table=table, context=context, data=data)


def _checked(detection: Detection, period: Period) -> str:
    end: date = detection.end if detection.end and detection.end < period.end else period.end
    return f"from {period.start:%Y-%m-%d} to {end:%Y-%m-%d}"
