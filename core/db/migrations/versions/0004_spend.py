"""Spend control: alert rules, firings, deliveries, caps, notifications (issue 8)

Tables: ``alert_webhooks`` (endpoints and their signing secrets), ``alert_rules``,
``spend_caps`` (monthly caps, soft or hard), ``spend_settings`` (overdraft allowance),
``alert_firings`` (each crossing, with its value), ``alert_deliveries`` (the outbox: one row
per message and channel, retried with backoff), ``notifications`` and ``notification_reads``
(the in-app notification centre and how far each person has read it).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db.types

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alert_webhooks",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("secret", sa.String(length=100), nullable=False),
        sa.Column("secret_hint", sa.String(length=16), nullable=False),
        sa.Column("deleted_at", core.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("created_at", core.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_alert_webhooks_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_webhooks")),
    )
    op.create_index("ix_alert_webhooks_account", "alert_webhooks", ["account_id"], unique=False)
    op.create_table(
        "notification_reads",
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("last_read_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("updated_at", core.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_notification_reads_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("email", "account_id", name=op.f("pk_notification_reads")),
    )
    op.create_table(
        "spend_caps",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("scope_value", sa.String(length=128), nullable=False),
        sa.Column("limit_nanos", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("last_value", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("deleted_at", core.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("created_at", core.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", core.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("mode IN ('soft', 'hard')", name=op.f("ck_spend_caps_mode_known")),
        sa.CheckConstraint(
            "scope IN ('account', 'project', 'meter')", name=op.f("ck_spend_caps_scope_known")
        ),
        sa.CheckConstraint("state IN ('ok', 'firing')", name=op.f("ck_spend_caps_state_known")),
        sa.CheckConstraint("limit_nanos > 0", name=op.f("ck_spend_caps_limit_positive")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_spend_caps_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_spend_caps")),
    )
    op.create_index("ix_spend_caps_account", "spend_caps", ["account_id"], unique=False)
    op.create_table(
        "spend_settings",
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("overdraft_nanos", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("updated_by", sa.String(length=320), nullable=False),
        sa.Column("updated_at", core.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("overdraft_nanos >= 0", name=op.f("ck_spend_settings_overdraft_non_negative")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_spend_settings_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_spend_settings")),
    )
    op.create_table(
        "alert_rules",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("scope_value", sa.String(length=128), nullable=False),
        sa.Column("threshold_nanos", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("budget_nanos", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("percent", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("days", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("factor_percent", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("notify_in_app", sa.Boolean(), nullable=False),
        sa.Column("email_to", sa.JSON(), nullable=False),
        sa.Column("webhook_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("last_value", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("last_evaluated_at", core.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("deleted_at", core.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("created_at", core.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", core.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('balance_below', 'spend_above', 'projected_spend_above', 'runway_below', "
            "'spend_spike')",
            name=op.f("ck_alert_rules_kind_known"),
        ),
        sa.CheckConstraint(
            "scope IN ('account', 'project', 'meter', 'api_key')", name=op.f("ck_alert_rules_scope_known")
        ),
        sa.CheckConstraint("state IN ('ok', 'firing')", name=op.f("ck_alert_rules_state_known")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_alert_rules_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["webhook_id"], ["alert_webhooks.id"], name=op.f("fk_alert_rules_webhook_id_alert_webhooks")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_rules")),
    )
    op.create_index("ix_alert_rules_account", "alert_rules", ["account_id"], unique=False)
    op.create_table(
        "alert_firings",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("rule_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("cap_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("value", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("threshold", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("unit", sa.String(length=8), nullable=False),
        sa.Column("message", sa.String(length=1000), nullable=False),
        sa.Column("at", core.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("event IN ('fired', 'resolved')", name=op.f("ck_alert_firings_event_known")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_alert_firings_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["cap_id"], ["spend_caps.id"], name=op.f("fk_alert_firings_cap_id_spend_caps")
        ),
        sa.ForeignKeyConstraint(
            ["rule_id"], ["alert_rules.id"], name=op.f("fk_alert_firings_rule_id_alert_rules")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_firings")),
    )
    op.create_index("ix_alert_firings_account", "alert_firings", ["account_id", "id"], unique=False)
    op.create_table(
        "alert_deliveries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("firing_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=2000), nullable=False),
        sa.Column("webhook_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("next_attempt_at", core.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=False),
        sa.Column("delivered_at", core.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", core.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "channel IN ('in_app', 'email', 'webhook')", name=op.f("ck_alert_deliveries_channel_known")
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'delivered', 'failed')", name=op.f("ck_alert_deliveries_status_known")
        ),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_alert_deliveries_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["firing_id"], ["alert_firings.id"], name=op.f("fk_alert_deliveries_firing_id_alert_firings")
        ),
        sa.ForeignKeyConstraint(
            ["webhook_id"], ["alert_webhooks.id"], name=op.f("fk_alert_deliveries_webhook_id_alert_webhooks")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_deliveries")),
    )
    op.create_index("ix_alert_deliveries_account", "alert_deliveries", ["account_id", "id"], unique=False)
    op.create_index(
        "ix_alert_deliveries_due", "alert_deliveries", ["status", "next_attempt_at"], unique=False
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("firing_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("body", sa.String(length=1000), nullable=False),
        sa.Column("created_at", core.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_notifications_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["firing_id"], ["alert_firings.id"], name=op.f("fk_notifications_firing_id_alert_firings")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    op.create_index("ix_notifications_account", "notifications", ["account_id", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_notifications_account", table_name="notifications")
    op.drop_table("notifications")
    op.drop_index("ix_alert_deliveries_due", table_name="alert_deliveries")
    op.drop_index("ix_alert_deliveries_account", table_name="alert_deliveries")
    op.drop_table("alert_deliveries")
    op.drop_index("ix_alert_firings_account", table_name="alert_firings")
    op.drop_table("alert_firings")
    op.drop_index("ix_alert_rules_account", table_name="alert_rules")
    op.drop_table("alert_rules")
    op.drop_table("spend_settings")
    op.drop_index("ix_spend_caps_account", table_name="spend_caps")
    op.drop_table("spend_caps")
    op.drop_table("notification_reads")
    op.drop_index("ix_alert_webhooks_account", table_name="alert_webhooks")
    op.drop_table("alert_webhooks")
