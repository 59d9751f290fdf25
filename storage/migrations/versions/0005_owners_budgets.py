"""Owners, allocation rules (virtual tags), shared-cost splits, budgets and fired thresholds.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

MONEY = sa.Numeric(precision=24, scale=10, asdecimal=False)


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "owners",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("contact", sa.String(length=300), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_owners")),
        sa.UniqueConstraint("name", name=op.f("uq_owners_name")),
    )
    op.create_table(
        "allocation_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("project", sa.String(length=200), nullable=True),
        sa.Column("provider", sa.String(length=200), nullable=True),
        sa.Column("billing_account", sa.String(length=200), nullable=True),
        sa.Column("sub_account", sa.String(length=300), nullable=True),
        sa.Column("service", sa.String(length=300), nullable=True),
        sa.Column("region", sa.String(length=100), nullable=True),
        sa.Column("sku", sa.String(length=300), nullable=True),
        sa.Column("resource", sa.Text(), nullable=True),
        sa.Column("tag_key", sa.String(length=200), nullable=True),
        sa.Column("tag_value", sa.Text(), nullable=True),
        sa.Column("override", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_allocation_rules")),
    )
    op.create_table(
        "cost_splits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pool", sa.String(length=200), nullable=False),
        sa.Column("method", sa.String(length=20), nullable=False),
        sa.Column("shares_json", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cost_splits")),
        sa.UniqueConstraint("pool", name=op.f("uq_cost_splits_pool")),
    )
    op.create_table(
        "budgets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=200), nullable=False),
        sa.Column("scope_value", sa.String(length=300), nullable=False),
        sa.Column("period", sa.String(length=20), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("currency", sa.String(length=10), nullable=False),
        sa.Column("thresholds_json", sa.Text(), nullable=False),
        sa.Column("notify", sa.String(length=300), nullable=True),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_budgets")),
        sa.UniqueConstraint("scope", "scope_value", "period", name=op.f("uq_budgets_scope")),
    )
    op.create_table(
        "budget_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("budget_id", sa.Integer(), nullable=False),
        sa.Column("period_start", sa.DateTime(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("percent", sa.Integer(), nullable=False),
        sa.Column("fired_at", sa.DateTime(), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["budget_id"],
            ["budgets.id"],
            name=op.f("fk_budget_alerts_budget_id_budgets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_budget_alerts")),
        sa.UniqueConstraint(
            "budget_id", "period_start", "kind", "percent", name=op.f("uq_budget_alerts_budget_id")
        ),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("budget_alerts")
    op.drop_table("budgets")
    op.drop_table("cost_splits")
    op.drop_table("allocation_rules")
    op.drop_table("owners")
