"""LLM conversations and their turns, with token usage and cost.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "llm_conversations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("started_by", sa.String(length=200), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_llm_conversations")),
        sa.UniqueConstraint("key", name=op.f("uq_llm_conversations_key")),
    )
    op.create_table(
        "llm_turns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("asked_by", sa.String(length=200), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("outcome", sa.String(length=30), nullable=False),
        sa.Column("history_json", sa.Text(), nullable=True),
        sa.Column("model", sa.String(length=100), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("input_tokens", sa.Integer(), nullable=False),
        sa.Column("output_tokens", sa.Integer(), nullable=False),
        sa.Column("cache_creation_input_tokens", sa.Integer(), nullable=False),
        sa.Column("cache_read_input_tokens", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Numeric(precision=24, scale=10, asdecimal=False), nullable=True),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["llm_conversations.id"],
            name=op.f("fk_llm_turns_conversation_id_llm_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_llm_turns")),
    )
    with op.batch_alter_table("llm_turns", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_llm_turns_at"), ["at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_llm_turns_conversation_id"), ["conversation_id"], unique=False
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("llm_turns", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_llm_turns_conversation_id"))
        batch_op.drop_index(batch_op.f("ix_llm_turns_at"))
    op.drop_table("llm_turns")
    op.drop_table("llm_conversations")
