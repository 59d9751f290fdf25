"""FOCUS cost store: slices, line items, tags.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "ingest_slices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider_name", sa.String(length=200), nullable=False),
        sa.Column("billing_account_id", sa.String(length=200), nullable=False),
        sa.Column("billing_period_start", sa.DateTime(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("loaded_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ingest_slices")),
        sa.UniqueConstraint(
            "provider_name",
            "billing_account_id",
            "billing_period_start",
            name=op.f("uq_ingest_slices_provider_name"),
        ),
    )
    op.create_table(
        "cost_line_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slice_id", sa.Integer(), nullable=False),
        sa.Column("billing_account_id", sa.Text(), nullable=False),
        sa.Column("billing_account_name", sa.Text(), nullable=True),
        sa.Column("billing_currency", sa.Text(), nullable=False),
        sa.Column("billing_period_start", sa.DateTime(), nullable=False),
        sa.Column("billing_period_end", sa.DateTime(), nullable=True),
        sa.Column("charge_period_start", sa.DateTime(), nullable=False),
        sa.Column("charge_period_end", sa.DateTime(), nullable=False),
        sa.Column("charge_category", sa.Text(), nullable=False),
        sa.Column("charge_class", sa.Text(), nullable=True),
        sa.Column("charge_description", sa.Text(), nullable=True),
        sa.Column("charge_frequency", sa.Text(), nullable=True),
        sa.Column(
            "billed_cost", sa.Numeric(precision=24, scale=10, asdecimal=False), nullable=False
        ),
        sa.Column(
            "effective_cost", sa.Numeric(precision=24, scale=10, asdecimal=False), nullable=False
        ),
        sa.Column("list_cost", sa.Numeric(precision=24, scale=10, asdecimal=False), nullable=True),
        sa.Column(
            "contracted_cost", sa.Numeric(precision=24, scale=10, asdecimal=False), nullable=True
        ),
        sa.Column(
            "list_unit_price", sa.Numeric(precision=30, scale=10, asdecimal=False), nullable=True
        ),
        sa.Column(
            "contracted_unit_price",
            sa.Numeric(precision=30, scale=10, asdecimal=False),
            nullable=True,
        ),
        sa.Column("pricing_category", sa.Text(), nullable=True),
        sa.Column(
            "pricing_quantity", sa.Numeric(precision=30, scale=10, asdecimal=False), nullable=True
        ),
        sa.Column("pricing_unit", sa.Text(), nullable=True),
        sa.Column(
            "consumed_quantity", sa.Numeric(precision=30, scale=10, asdecimal=False), nullable=True
        ),
        sa.Column("consumed_unit", sa.Text(), nullable=True),
        sa.Column("provider_name", sa.Text(), nullable=False),
        sa.Column("publisher_name", sa.Text(), nullable=True),
        sa.Column("invoice_issuer_name", sa.Text(), nullable=True),
        sa.Column("region_id", sa.Text(), nullable=True),
        sa.Column("region_name", sa.Text(), nullable=True),
        sa.Column("availability_zone", sa.Text(), nullable=True),
        sa.Column("resource_id", sa.Text(), nullable=True),
        sa.Column("resource_name", sa.Text(), nullable=True),
        sa.Column("resource_type", sa.Text(), nullable=True),
        sa.Column("service_name", sa.Text(), nullable=True),
        sa.Column("service_category", sa.Text(), nullable=True),
        sa.Column("sku_id", sa.Text(), nullable=True),
        sa.Column("sku_price_id", sa.Text(), nullable=True),
        sa.Column("sub_account_id", sa.Text(), nullable=True),
        sa.Column("sub_account_name", sa.Text(), nullable=True),
        sa.Column("commitment_discount_id", sa.Text(), nullable=True),
        sa.Column("commitment_discount_name", sa.Text(), nullable=True),
        sa.Column("commitment_discount_category", sa.Text(), nullable=True),
        sa.Column("commitment_discount_type", sa.Text(), nullable=True),
        sa.Column("commitment_discount_status", sa.Text(), nullable=True),
        sa.Column("tags", sa.Text(), nullable=True),
        sa.Column("gpu_instance_type", sa.Text(), nullable=True),
        sa.Column("is_gpu", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["slice_id"],
            ["ingest_slices.id"],
            name=op.f("fk_cost_line_items_slice_id_ingest_slices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cost_line_items")),
    )
    with op.batch_alter_table("cost_line_items", schema=None) as batch_op:
        batch_op.create_index(
            "ix_cost_line_items_charge_period_start", ["charge_period_start"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_cost_line_items_slice_id"), ["slice_id"], unique=False)

    op.create_table(
        "cost_tags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("line_item_id", sa.Integer(), nullable=False),
        sa.Column("slice_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["line_item_id"],
            ["cost_line_items.id"],
            name=op.f("fk_cost_tags_line_item_id_cost_line_items"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["slice_id"],
            ["ingest_slices.id"],
            name=op.f("fk_cost_tags_slice_id_ingest_slices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cost_tags")),
        sa.UniqueConstraint("line_item_id", "key", name=op.f("uq_cost_tags_line_item_id")),
    )
    with op.batch_alter_table("cost_tags", schema=None) as batch_op:
        batch_op.create_index("ix_cost_tags_key_value", ["key", "value"], unique=False)
        batch_op.create_index(batch_op.f("ix_cost_tags_slice_id"), ["slice_id"], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("cost_tags", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cost_tags_slice_id"))
        batch_op.drop_index("ix_cost_tags_key_value")

    op.drop_table("cost_tags")
    with op.batch_alter_table("cost_line_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cost_line_items_slice_id"))
        batch_op.drop_index("ix_cost_line_items_charge_period_start")

    op.drop_table("cost_line_items")
    op.drop_table("ingest_slices")
