"""Business metrics loaded for unit economics (cost per 1K requests...), and nested budgets.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "unit_metrics",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("value", sa.Numeric(precision=30, scale=10, asdecimal=False), nullable=False),
        sa.Column("loaded_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unit_metrics")),
        sa.UniqueConstraint("name", "date", name=op.f("uq_unit_metrics_name")),
    )
    op.create_table(
        "budget_links",
        sa.Column("child_budget_id", sa.Integer(), nullable=False),
        sa.Column("parent_budget_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["child_budget_id"],
            ["budgets.id"],
            name=op.f("fk_budget_links_child_budget_id_budgets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["parent_budget_id"],
            ["budgets.id"],
            name=op.f("fk_budget_links_parent_budget_id_budgets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("child_budget_id", name=op.f("pk_budget_links")),
    )
    op.create_index(
        op.f("ix_budget_links_parent_budget_id"),
        "budget_links",
        ["parent_budget_id"],
        unique=False,
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index(op.f("ix_budget_links_parent_budget_id"), table_name="budget_links")
    op.drop_table("budget_links")
    op.drop_table("unit_metrics")
