"""The data-status skill: which billing data is loaded, for which periods, and when."""

from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy import select

from skills.registry import SKILLS, SkillContext
from skills.replies import Reply, Table
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
    examples=("what data do you have?", "when was the billing data loaded?", "data freshness"),
    triggers=(
        r"\b(what|which) (billing )?data\b|\bdata (status|freshness|coverage)\b|\bfreshness\b|\b(when was|last) (the )?(data|billing data)? ?(loaded|updated|ingested)\b",
    ),
)
def data_status(context: SkillContext, args: DataStatusArgs) -> Reply:
    """Which billing data is loaded: providers, accounts, billing periods, rows, load times."""
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
            data={"line_items": 0, "slices": []},
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
        data={
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
