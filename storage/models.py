"""Database tables: FOCUS line items, tags and slices; roles, guarded actions and the audit log."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
    Unicode,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeEngine

from storage.focus import COLUMNS, ColumnKind

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base for ORM models; its metadata holds every table, Core ones too."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def column_type(kind: ColumnKind) -> TypeEngine:
    """The SQL type that stores a FOCUS column of `kind`."""
    if kind == "money":
        # Exact decimals in PostgreSQL; read back as float, exact to the cent at any
        # realistic total.
        return Numeric(24, 10, asdecimal=False)
    if kind == "number":
        return Numeric(30, 10, asdecimal=False)
    if kind == "datetime":
        return DateTime()
    return Text()


ingest_slices = Table(
    "ingest_slices",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column("provider_name", String(200), nullable=False),
    Column("billing_account_id", String(200), nullable=False),
    Column("billing_period_start", DateTime(), nullable=False),
    Column("source", Text(), nullable=False),
    Column("row_count", Integer, nullable=False),
    Column("loaded_at", DateTime(), nullable=False),
    UniqueConstraint("provider_name", "billing_account_id", "billing_period_start"),
)
"""A (provider, billing account, billing period) slice: the unit a restated export replaces."""

cost_line_items = Table(
    "cost_line_items",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "slice_id",
        Integer,
        ForeignKey("ingest_slices.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    *(
        Column(column.name, column_type(column.kind), nullable=not column.required)
        for column in COLUMNS
    ),
    # Derived at ingest from the SKU, description and resource fields (storage.focus).
    Column("gpu_instance_type", Text()),
    Column("is_gpu", Boolean, nullable=False, default=False),
    Index("ix_cost_line_items_charge_period_start", "charge_period_start"),
)
"""One FOCUS cost and usage row, with the columns in `storage.focus.COLUMNS`."""

cost_tags = Table(
    "cost_tags",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "line_item_id",
        Integer,
        ForeignKey("cost_line_items.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column(
        "slice_id",
        Integer,
        ForeignKey("ingest_slices.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("key", String(200), nullable=False),
    Column("value", Text(), nullable=False),
    UniqueConstraint("line_item_id", "key"),
    Index("ix_cost_tags_key_value", "key", "value"),
)
"""One tag of a line item; keys are lower-cased so `Team` and `team` are one key."""


role_grants = Table(
    "role_grants",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column("identity", String(200), nullable=False),
    Column("role", String(100), nullable=False),
    # "*" means every team: NULL would not take part in the unique constraint.
    Column("team", String(200), nullable=False),
    Column("granted_by", String(200), nullable=False),
    Column("granted_at", DateTime(), nullable=False),
    UniqueConstraint("identity", "role", "team"),
)
"""A role held by an identity (``slack:U1``, ``slack-group:S2``, ``teams:<aad id>``), per team."""

actions = Table(
    "actions",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column("skill", String(100), nullable=False),
    Column("risk", String(20), nullable=False),
    Column("args_json", Text(), nullable=False),
    Column("summary", Text(), nullable=False),
    Column("targets_json", Text(), nullable=False),
    Column("impact", Text(), nullable=False),
    Column("impact_amount", Numeric(24, 10, asdecimal=False)),
    Column("impact_currency", String(10)),
    Column("team", String(200)),
    Column("requested_by", String(200), nullable=False),
    Column("requested_at", DateTime(), nullable=False),
    Column("expires_at", DateTime(), nullable=False),
    Column("approvals_required", Integer, nullable=False),
    Column("allow_self_approval", Boolean, nullable=False),
    Column("approver_role", String(100), nullable=False),
    Column("state", String(30), nullable=False, index=True),
    Column("state_changed_at", DateTime(), nullable=False),
    Column("decided_by", String(200)),
    Column("reason", Text()),
    Column("claimed_at", DateTime()),
    Column("result_json", Text()),
    # A transport's event id: a retried request finds its action instead of proposing twice.
    Column("request_key", String(200), unique=True),
)
"""A guarded call waiting for, or past, its approval; `state` moves only by compare-and-set."""

action_approvals = Table(
    "action_approvals",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "action_id",
        Integer,
        ForeignKey("actions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("approver", String(200), nullable=False),
    # The identity whose grant made the approver eligible: the person, or one of their groups.
    Column("via", String(200), nullable=False),
    Column("approved_at", DateTime(), nullable=False),
    UniqueConstraint("action_id", "approver"),
)
"""One approver's approval of an action; an action needing N approvals needs N rows."""

audit_log = Table(
    "audit_log",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column("at", DateTime(), nullable=False, index=True),
    Column("actor", String(200), nullable=False, index=True),
    Column("event", String(40), nullable=False),
    Column("skill", String(100)),
    Column("action_id", Integer, index=True),
    Column("detail_json", Text(), nullable=False),
)
"""Append-only record of guarded calls and decisions; database triggers reject UPDATE and DELETE."""


# LLM conversations (bot.llm) ------------------------------------------------------------------

llm_conversations = Table(
    "llm_conversations",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    # "slack:<channel>:<thread ts>", "teams:<conversation id>", "terminal:<session>".
    Column("key", String(300), nullable=False, unique=True),
    Column("started_by", String(200), nullable=False),
    Column("started_at", DateTime(), nullable=False),
    Column("updated_at", DateTime(), nullable=False),
)
"""One chat thread answered by the LLM: a Slack thread, a Teams conversation, a terminal session."""

llm_turns = Table(
    "llm_turns",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "conversation_id",
        Integer,
        ForeignKey("llm_conversations.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("at", DateTime(), nullable=False, index=True),
    Column("asked_by", String(200), nullable=False),
    Column("question", Text(), nullable=False),
    Column("answer", Text(), nullable=False),
    Column("outcome", String(30), nullable=False),
    # Compact messages replayed as history; cleared once the turn falls out of the window.
    Column("history_json", Text()),
    Column("model", String(100), nullable=False),
    Column("requests", Integer, nullable=False),
    Column("input_tokens", Integer, nullable=False),
    Column("output_tokens", Integer, nullable=False),
    Column("cache_creation_input_tokens", Integer, nullable=False),
    Column("cache_read_input_tokens", Integer, nullable=False),
    # NULL when the model has no price in bot.llm_prices.
    Column("cost_usd", Numeric(24, 10, asdecimal=False)),
)
"""One question answered (or attempted) by the LLM, with its token usage and dollar cost."""


# Chat deliveries (storage.deliveries: Slack events, Teams activities) -------------------------

slack_events = Table(
    "slack_events",
    Base.metadata,
    # Slack's event_id, or teams:<digest>: the same on every retry, whichever replica gets it.
    Column("event_id", String(100), primary_key=True),
    Column("state", String(20), nullable=False),
    Column("claimed_at", DateTime(), nullable=False),
    Column("done_at", DateTime()),
    Column("attempts", Integer, nullable=False),
)
"""One delivery being answered (``claimed``) or answered (``done``): retries are deduplicated here."""


# Owners, allocation rules and budgets (storage.allocation, storage.budgets) -------------------

owners = Table(
    "owners",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    # Where the owner is told: slack:#channel, slack:U123, slack-group:S1, teams:<id>.
    Column("contact", String(300), nullable=False),
    Column("updated_by", String(200), nullable=False),
    Column("updated_at", DateTime(), nullable=False),
)
"""A team (or person) that owns spend, with the chat identity that notifications go to."""

allocation_rules = Table(
    "allocation_rules",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    # Explicit order: within its tier (override, rule, account default) the lowest wins.
    Column("position", Integer, nullable=False),
    Column("owner", String(200), nullable=False),
    Column("project", String(200)),
    # Match criteria: every one given must hold; values are exact, `resource` and
    # `tag_value` are glob patterns (* and ?).
    Column("provider", String(200)),
    Column("billing_account", String(200)),
    Column("sub_account", String(300)),
    Column("service", String(300)),
    Column("region", String(100)),
    Column("sku", String(300)),
    Column("resource", Text()),
    Column("tag_key", String(200)),
    Column("tag_value", Text()),
    # Wins over a native owner tag; other rules apply only to spend without one.
    Column("override", Boolean, nullable=False, default=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", DateTime(), nullable=False),
)
"""A virtual tag: spend matching the criteria belongs to `owner`, resolved at query time."""

budgets = Table(
    "budgets",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    # A spend dimension (owner, provider, service, tag:<key>) or "*" for all spend.
    Column("scope", String(200), nullable=False),
    Column("scope_value", String(300), nullable=False),
    Column("period", String(20), nullable=False),
    Column("amount", Numeric(24, 10, asdecimal=False), nullable=False),
    Column("currency", String(10), nullable=False),
    # [{"kind": "actual" | "forecast", "percent": 80}, ...]
    Column("thresholds_json", Text(), nullable=False),
    Column("notify", String(300)),
    Column("updated_by", String(200), nullable=False),
    Column("updated_at", DateTime(), nullable=False),
    UniqueConstraint("scope", "scope_value", "period"),
)
"""A spend limit per owner, provider, service or tag for each month, quarter or year."""

budget_alerts = Table(
    "budget_alerts",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "budget_id",
        Integer,
        ForeignKey("budgets.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("period_start", DateTime(), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("percent", Integer, nullable=False),
    Column("fired_at", DateTime(), nullable=False),
    Column("amount", Numeric(24, 10, asdecimal=False), nullable=False),
    Column("message", Text(), nullable=False),
    # One alert per threshold per period, however often and wherever budgets are evaluated.
    UniqueConstraint("budget_id", "period_start", "kind", "percent"),
)
"""A budget threshold that fired for one period."""

cost_splits = Table(
    "cost_splits",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    # The owner whose spend is shared out, e.g. "platform" or "support".
    Column("pool", String(200), nullable=False, unique=True),
    Column("method", String(20), nullable=False),
    # Owners to share among: ["a", "b"] (even, proportional) or {"a": 60, "b": 40} (fixed).
    Column("shares_json", Text(), nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", DateTime(), nullable=False),
)
"""A shared cost: one owner's spend split across others, evenly, by percentages or by spend."""

# Teams conversation references (migration 0006) ------------------------------------------------

teams_conversations = Table(
    "teams_conversations",
    Base.metadata,
    # The conversation id without a channel thread's ";messageid=...": a post starts a new thread.
    Column("conversation_id", String(300), primary_key=True),
    # "personal", "groupChat" or "channel".
    Column("kind", String(30), nullable=False),
    # The channel (or chat) name where Teams tells it, so a post can name its target.
    Column("name", String(300)),
    Column("tenant_id", String(100)),
    Column("service_url", Text(), nullable=False),
    # A Bot Framework ConversationReference, serialized.
    Column("reference_json", Text(), nullable=False),
    Column("updated_at", DateTime(), nullable=False),
)
"""Where the bot was installed or spoken to in Teams: proactive posts go to these conversations."""


# GPU telemetry (migration 0007) ---------------------------------------------------------------

gpu_samples = Table(
    "gpu_samples",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    # The machine's name; with `instance_id` (e.g. an EC2 id) samples join to billing rows.
    Column("host", String(200), nullable=False),
    Column("instance_id", String(100), nullable=True),
    Column("provider", String(100), nullable=True),
    Column("gpu_index", Integer, nullable=False),
    Column("gpu_uuid", String(100), nullable=True),
    Column("gpu_model", String(200), nullable=True),
    Column("sampled_at", DateTime(), nullable=False),
    Column("utilization_pct", Float, nullable=False),
    Column("memory_used_mb", Float, nullable=True),
    Column("memory_total_mb", Float, nullable=True),
    Column("power_w", Float, nullable=True),
    Column("temperature_c", Float, nullable=True),
    Column("process_count", Integer, nullable=False),
    Column("processes_json", Text(), nullable=True),
    # "nvml" (the agent), "cloudwatch", ...
    Column("source", String(50), nullable=False),
    Index("ix_gpu_samples_host_sampled_at", "host", "sampled_at"),
    Index("ix_gpu_samples_instance_id_sampled_at", "instance_id", "sampled_at"),
)
"""One GPU's utilization, memory, power and processes at one moment."""

gpu_savings = Table(
    "gpu_savings",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column("action_id", Integer, nullable=True, index=True),
    # An EC2 instance id, or an on-premises host name.
    Column("instance_id", String(200), nullable=False),
    Column("provider", String(100), nullable=False),
    Column("instance_type", String(100), nullable=True),
    Column("region", String(100), nullable=True),
    Column("owner", String(200), nullable=True),
    Column("stopped_at", DateTime(), nullable=False),
    Column("hourly_cost", Numeric(24, 10, asdecimal=False), nullable=False),
    Column("currency", String(10), nullable=False),
    # "billing" (the instance's own line items) or "price table".
    Column("price_source", String(50), nullable=False),
    UniqueConstraint("action_id", "instance_id"),
)
"""One executed stop of an idle GPU machine and the hourly cost it avoids while stopped."""

gpu_snoozes = Table(
    "gpu_snoozes",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column("instance_id", String(200), nullable=False, index=True),
    Column("until", DateTime(), nullable=False),
    Column("reason", Text(), nullable=False),
    Column("kept_by", String(200), nullable=False),
    Column("kept_at", DateTime(), nullable=False),
)
"""An owner's word that a GPU machine is busy: never proposed or stopped before `until`."""

# Scheduling, run leases and alert state (migration 0008) --------------------------------------

apscheduler_jobs = Table(
    "apscheduler_jobs",
    Base.metadata,
    # APScheduler's SQLAlchemyJobStore layout, declared here so migrations own the table.
    Column("id", Unicode(191), primary_key=True),
    Column("next_run_time", Float(25), index=True),
    Column("job_state", LargeBinary, nullable=False),
)
"""One scheduled job (trigger, function reference, JSON arguments), pickled by APScheduler."""

job_runs = Table(
    "job_runs",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column("job_id", String(191), nullable=False),
    # The fire time the run is for (naive UTC): every replica computes the same one.
    Column("fire_time", DateTime(), nullable=False),
    Column("claimed_by", String(200), nullable=False),
    Column("claimed_at", DateTime(), nullable=False),
    Column("finished_at", DateTime()),
    # NULL while running, then "ok", "error" or "missed".
    Column("outcome", String(20)),
    Column("detail", Text()),
    UniqueConstraint("job_id", "fire_time"),
)
"""A lease on one fire of one job: the replica whose insert wins runs it; the others skip it."""

anomaly_alerts = Table(
    "anomaly_alerts",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    # The series (level and its path of values) and the episode in it (kind and first day).
    Column("series_key", String(500), nullable=False, index=True),
    Column("cause_key", String(100), nullable=False),
    Column("first_detected", DateTime(), nullable=False),
    Column("last_seen", DateTime(), nullable=False),
    Column("status", String(20), nullable=False),
    # Where the alert was posted (slack:#alerts) and the message there, to update it in place.
    Column("channel", String(300)),
    Column("message_ts", String(50)),
    Column("feedback", String(30)),
    Column("feedback_by", String(200)),
    Column("snoozed_until", DateTime()),
    Column("alert_json", Text(), nullable=False),
    UniqueConstraint("series_key", "cause_key"),
)
"""One anomaly alert per root cause: posted once, updated while it persists, muted by feedback."""

# Connector sources' sync status (migration 0009) ----------------------------------------------

connector_status = Table(
    "connector_status",
    Base.metadata,
    # A name from storage.connectors.SOURCES, e.g. "aws-exports".
    Column("source", String(50), primary_key=True),
    Column("last_attempt_at", DateTime(), nullable=False),
    Column("last_success_at", DateTime(), nullable=True),
    # Rows loaded by the last successful sync.
    Column("rows", Integer, nullable=True),
    # Why the last attempt failed; NULL when it succeeded.
    Column("last_error", Text(), nullable=True),
)
"""Each connector source's last sync attempt, last success, rows loaded and error."""

# Unit-economics metrics (migration 0010) ------------------------------------------------------

unit_metrics = Table(
    "unit_metrics",
    Base.metadata,
    Column("id", Integer, primary_key=True),
    Column("date", Date(), nullable=False),
    # As loaded, e.g. "inferences", "requests", "active users".
    Column("name", String(200), nullable=False),
    Column("value", Numeric(30, 10, asdecimal=False), nullable=False),
    Column("loaded_at", DateTime(), nullable=False),
    UniqueConstraint("name", "date"),
)
"""One day's value of a business metric that spend is divided by (cost per 1K inferences)."""

budget_links = Table(
    "budget_links",
    Base.metadata,
    # A budget has at most one parent: org > team > project.
    Column(
        "child_budget_id",
        Integer,
        ForeignKey("budgets.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column(
        "parent_budget_id",
        Integer,
        ForeignKey("budgets.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
)
"""A budget nested under another of the same period (a project's under its team's)."""
