"""The data-status skill: which billing data is loaded, for which periods, and when."""

from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy import select

from skills.registry import SKILLS, SkillContext
from skills.replies import Reply, Table
from storage.connector_status import SourceStatus, source_statuses
from storage.costs import data_coverage
from storage.models import ingest_slices


class DataStatusArgs(BaseModel):
    """Arguments of data_status (none)."""


def parse_data_status_text(text: str, context: SkillContext) -> DataStatusArgs:
    """data_status takes no arguments."""
    return DataStatusArgs()


@SKILLS.skill(
    name="data_status",
    args=DataStatusArgs,
    parse_text=parse_data_status_text,
    command="data",
    examples=(
        "what data do you have?",
        "when was the billing data loaded?",
        "data freshness",
        "how fresh is the data?",
        "when did the connectors last sync?",
    ),
    triggers=(
        r"\b(what|which) (billing )?data\b|\bdata (status|freshness|coverage)\b|\bfreshness\b|\b(when was|last) (the )?(data|billing data)? ?(loaded|updated|ingested)\b",
        r"\bhow (fresh|stale|old|recent|up[- ]to[- ]date) is (the |our |my )?(billing |cost )?data\b",
        r"\b(connectors?|sources?)\b.*\b(last )?sync(ed)?\b|\bsync status\b",
    ),
)
def data_status(context: SkillContext, args: DataStatusArgs) -> Reply:
    """Which billing data is loaded and how fresh: periods, rows, load times, connector syncs."""
    statuses = source_statuses(context.engine)
    sources = _sources_text(statuses)
    statement = select(ingest_slices).order_by(
        ingest_slices.c.provider_name,
        ingest_slices.c.billing_account_id,
        ingest_slices.c.billing_period_start,
    )
    with context.engine.connect() as connection:
        slices = connection.execute(statement).all()
    first, last, count = data_coverage(context.engine)
    if not slices:
        return Reply(
            text="No billing data is loaded yet. Load FOCUS files with `spendbot ingest PATH`.",
            context=sources,
            data={"line_items": 0, "slices": [], "sources": [s.as_dict() for s in statuses]},
        )
    rows = [
        [
            s.provider_name,
            s.billing_account_id,
            f"{s.billing_period_start:%Y-%m}",
            s.row_count,
            f"{s.loaded_at:%Y-%m-%d %H:%M} UTC",
            s.source,
        ]
        for s in slices
    ]
    text = f"{count:,} line items from {first:%Y-%m-%d} to {last:%Y-%m-%d}, in {len(slices)} billing slices."
    return Reply(
        text=text,
        table=Table(
            ["Provider", "Billing account", "Billing period", "Rows", "Loaded", "Source"], rows
        ),
        context=sources,
        data={
            "sources": [s.as_dict() for s in statuses],
            "line_items": count,
            "first_charge": first.isoformat(),
            "last_charge": last.isoformat(),
            "slices": [
                dict(
                    zip(
                        [
                            "provider",
                            "billing_account",
                            "billing_period",
                            "rows",
                            "loaded_at",
                            "source",
                        ],
                        row,
                        strict=True,
                    )
                )
                for row in rows
            ],
        },
    )


def _sources_text(statuses: list[SourceStatus]) -> str | None:
    """One line per connector source: its last successful sync and rows, or its last error."""
    if not statuses:
        return None
    lines = []
    for status in statuses:
        success = (
            f"last synced {status.last_success_at:%Y-%m-%d %H:%M} UTC ({status.rows:,} rows)"
            if status.last_success_at
            else "never synced successfully"
        )
        failure = (
            f"; the attempt at {status.last_attempt_at:%Y-%m-%d %H:%M} UTC failed: "
            f"{status.last_error}"
            if status.last_error
            else ""
        )
        lines.append(f"{status.source}: {success}{failure}")
    return "Connector syncs:\n" + "\n".join(lines)
