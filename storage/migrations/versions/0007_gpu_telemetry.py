"""GPU telemetry (NVML agents, cloud metrics), the GPU savings ledger and owners' snoozes.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "gpu_samples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(length=200), nullable=False),
        sa.Column("instance_id", sa.String(length=100), nullable=True),
        sa.Column("provider", sa.String(length=100), nullable=True),
        sa.Column("gpu_index", sa.Integer(), nullable=False),
        sa.Column("gpu_uuid", sa.String(length=100), nullable=True),
        sa.Column("gpu_model", sa.String(length=200), nullable=True),
        sa.Column("sampled_at", sa.DateTime(), nullable=False),
        sa.Column("utilization_pct", sa.Float(), nullable=False),
        sa.Column("memory_used_mb", sa.Float(), nullable=True),
        sa.Column("memory_total_mb", sa.Float(), nullable=True),
        sa.Column("power_w", sa.Float(), nullable=True),
        sa.Column("temperature_c", sa.Float(), nullable=True),
        sa.Column("process_count", sa.Integer(), nullable=False),
        sa.Column("processes_json", sa.Text(), nullable=True),
        sa.Column("source", sa.String(length=50), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gpu_samples")),
    )
    op.create_index("ix_gpu_samples_host_sampled_at", "gpu_samples", ["host", "sampled_at"])
    op.create_index(
        "ix_gpu_samples_instance_id_sampled_at", "gpu_samples", ["instance_id", "sampled_at"]
    )
    op.create_table(
        "gpu_savings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("action_id", sa.Integer(), nullable=True),
        sa.Column("instance_id", sa.String(length=200), nullable=False),
        sa.Column("provider", sa.String(length=100), nullable=False),
        sa.Column("instance_type", sa.String(length=100), nullable=True),
        sa.Column("region", sa.String(length=100), nullable=True),
        sa.Column("owner", sa.String(length=200), nullable=True),
        sa.Column("stopped_at", sa.DateTime(), nullable=False),
        sa.Column("hourly_cost", sa.Numeric(24, 10, asdecimal=False), nullable=False),
        sa.Column("currency", sa.String(length=10), nullable=False),
        sa.Column("price_source", sa.String(length=50), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gpu_savings")),
        sa.UniqueConstraint("action_id", "instance_id", name=op.f("uq_gpu_savings_action_id")),
    )
    op.create_index("ix_gpu_savings_action_id", "gpu_savings", ["action_id"])
    op.create_table(
        "gpu_snoozes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.String(length=200), nullable=False),
        sa.Column("until", sa.DateTime(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("kept_by", sa.String(length=200), nullable=False),
        sa.Column("kept_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gpu_snoozes")),
    )
    op.create_index("ix_gpu_snoozes_instance_id", "gpu_snoozes", ["instance_id"])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("gpu_snoozes")
    op.drop_table("gpu_savings")
    op.drop_table("gpu_samples")
