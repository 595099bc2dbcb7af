"""Slack incoming webhooks as an alert channel: ``alert_slack_webhooks``, a rule's
``slack_webhook_id``, a delivery's ``slack_webhook_id`` and the ``slack`` delivery channel

Revision ID: 0015
Revises: 0013
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db.types

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "alert_slack_webhooks",
        sa.Column("id", _ID, nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=80), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.Column("url_hint", sa.String(length=16), nullable=False),
        sa.Column("deleted_at", core.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("created_at", core.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_alert_slack_webhooks_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert_slack_webhooks")),
    )
    op.create_index("ix_alert_slack_webhooks_account", "alert_slack_webhooks", ["account_id"], unique=False)
    with op.batch_alter_table("alert_rules") as batch:
        batch.add_column(sa.Column("slack_webhook_id", _ID, nullable=True))
        batch.create_foreign_key(
            op.f("fk_alert_rules_slack_webhook_id_alert_slack_webhooks"),
            "alert_slack_webhooks",
            ["slack_webhook_id"],
            ["id"],
        )
    with op.batch_alter_table("alert_deliveries") as batch:
        batch.add_column(sa.Column("slack_webhook_id", _ID, nullable=True))
        batch.create_foreign_key(
            op.f("fk_alert_deliveries_slack_webhook_id_alert_slack_webhooks"),
            "alert_slack_webhooks",
            ["slack_webhook_id"],
            ["id"],
        )
        batch.drop_constraint(op.f("ck_alert_deliveries_channel_known"), type_="check")
        batch.create_check_constraint("channel_known", "channel IN ('in_app', 'email', 'webhook', 'slack')")


def downgrade() -> None:
    op.execute("DELETE FROM alert_deliveries WHERE channel = 'slack'")
    with op.batch_alter_table("alert_deliveries") as batch:
        batch.drop_constraint(op.f("ck_alert_deliveries_channel_known"), type_="check")
        batch.create_check_constraint("channel_known", "channel IN ('in_app', 'email', 'webhook')")
        batch.drop_constraint(
            op.f("fk_alert_deliveries_slack_webhook_id_alert_slack_webhooks"), type_="foreignkey"
        )
        batch.drop_column("slack_webhook_id")
    with op.batch_alter_table("alert_rules") as batch:
        batch.drop_constraint(
            op.f("fk_alert_rules_slack_webhook_id_alert_slack_webhooks"), type_="foreignkey"
        )
        batch.drop_column("slack_webhook_id")
    op.drop_index("ix_alert_slack_webhooks_account", table_name="alert_slack_webhooks")
    op.drop_table("alert_slack_webhooks")
