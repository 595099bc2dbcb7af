"""Credits-expiring notices and auto-recharge to a target balance

- ``alert_rules.kind`` may be ``credits_expiring``; every existing account gets the default rules
  "credits expire within 30 days" and "… 7 days" (in-app, and email to its owners), once.
- ``credit_expiry_notices``: the fact "told about this grant at N days", unique per
  (account, grant, N), so a notice is sent once under any concurrency.
- ``auto_recharges.mode`` (``fixed`` | ``target``) and ``target_nanos``: "bring the balance back to Y".

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import core.db.types

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_KINDS = "'balance_below', 'spend_above', 'projected_spend_above', 'runway_below', 'spend_spike'"
NEW_KINDS = OLD_KINDS + ", 'credits_expiring'"
DEFAULT_DAYS = (30, 7)
DEFAULT_AUTHOR = "meterline (default)"  # core.spend.expiring.DEFAULT_RULES_AUTHOR
BIG = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("alert_rules") as batch:
        batch.drop_constraint(op.f("ck_alert_rules_kind_known"), type_="check")
        batch.create_check_constraint("kind_known", f"kind IN ({NEW_KINDS})")
    op.create_table(
        "credit_expiry_notices",
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("grant_id", BIG, nullable=False),
        sa.Column("threshold_days", BIG, nullable=False),
        sa.Column("rule_id", BIG, nullable=True),
        sa.Column("firing_id", BIG, nullable=True),
        sa.Column("remaining_nanos", BIG, nullable=False),
        sa.Column("expected_lost_nanos", BIG, nullable=False),
        sa.Column("notified_at", core.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("threshold_days > 0", name=op.f("ck_credit_expiry_notices_days_positive")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_credit_expiry_notices_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["grant_id"], ["credit_grants.id"], name=op.f("fk_credit_expiry_notices_grant_id_credit_grants")
        ),
        sa.ForeignKeyConstraint(
            ["rule_id"], ["alert_rules.id"], name=op.f("fk_credit_expiry_notices_rule_id_alert_rules")
        ),
        sa.ForeignKeyConstraint(
            ["firing_id"], ["alert_firings.id"], name=op.f("fk_credit_expiry_notices_firing_id_alert_firings")
        ),
        sa.PrimaryKeyConstraint(
            "account_id", "grant_id", "threshold_days", name=op.f("pk_credit_expiry_notices")
        ),
    )
    with op.batch_alter_table("auto_recharges") as batch:
        batch.add_column(sa.Column("mode", sa.String(length=8), nullable=False, server_default="fixed"))
        batch.add_column(sa.Column("target_nanos", BIG, nullable=True))
        batch.create_check_constraint("mode_known", "mode IN ('fixed', 'target')")
        batch.create_check_constraint(
            "target_above_threshold",
            "mode <> 'target' OR (target_nanos IS NOT NULL AND target_nanos > threshold_nanos)",
        )
    _backfill_default_rules()


def _backfill_default_rules() -> None:
    """The default expiry rules for every account that never had them (idempotent)."""
    connection = op.get_bind()
    rules = sa.table(
        "alert_rules",
        sa.column("account_id", sa.String),
        sa.column("name", sa.String),
        sa.column("kind", sa.String),
        sa.column("scope", sa.String),
        sa.column("scope_value", sa.String),
        sa.column("days", sa.Integer),
        sa.column("notify_in_app", sa.Boolean),
        sa.column("email_to", sa.JSON),
        sa.column("paused", sa.Boolean),
        sa.column("state", sa.String),
        sa.column("created_by", sa.String),
        sa.column("created_at", core.db.types.UTCDateTime(timezone=True)),
        sa.column("updated_at", core.db.types.UTCDateTime(timezone=True)),
    )
    had = {
        row[0]
        for row in connection.execute(
            sa.text(
                "SELECT DISTINCT account_id FROM alert_rules "
                "WHERE kind = 'credits_expiring' AND created_by = :by"
            ),
            {"by": DEFAULT_AUTHOR},
        )
    }
    owners: dict[str, list[str]] = {}
    for account_id, email in connection.execute(
        sa.text(
            "SELECT m.account_id, u.email FROM memberships m JOIN users u ON u.id = m.user_id "
            "WHERE m.role = 'owner' ORDER BY u.email"
        )
    ):
        owners.setdefault(account_id, []).append(email)
    at = datetime.now(UTC)
    rows = [
        {
            "account_id": account_id,
            "name": f"Credits expire within {days} days",
            "kind": "credits_expiring",
            "scope": "account",
            "scope_value": "",
            "days": days,
            "notify_in_app": True,
            "email_to": [e for e in owners.get(account_id, []) if "@" in e][:10],
            "paused": False,
            "state": "ok",
            "created_by": DEFAULT_AUTHOR,
            "created_at": at,
            "updated_at": at,
        }
        for (account_id,) in connection.execute(sa.text("SELECT id FROM accounts ORDER BY id"))
        if account_id not in had
        for days in DEFAULT_DAYS
    ]
    if rows:
        connection.execute(rules.insert(), rows)


def downgrade() -> None:
    op.execute(
        "DELETE FROM alert_deliveries WHERE firing_id IN (SELECT f.id FROM alert_firings f "
        "JOIN alert_rules r ON r.id = f.rule_id WHERE r.kind = 'credits_expiring')"
    )
    op.execute(
        "DELETE FROM notifications WHERE firing_id IN (SELECT f.id FROM alert_firings f "
        "JOIN alert_rules r ON r.id = f.rule_id WHERE r.kind = 'credits_expiring')"
    )
    op.drop_table("credit_expiry_notices")
    op.execute(
        "DELETE FROM alert_firings WHERE rule_id IN "
        "(SELECT id FROM alert_rules WHERE kind = 'credits_expiring')"
    )
    op.execute("DELETE FROM alert_rules WHERE kind = 'credits_expiring'")
    with op.batch_alter_table("alert_rules") as batch:
        batch.drop_constraint(op.f("ck_alert_rules_kind_known"), type_="check")
        batch.create_check_constraint("kind_known", f"kind IN ({OLD_KINDS})")
    with op.batch_alter_table("auto_recharges") as batch:
        batch.drop_constraint(op.f("ck_auto_recharges_target_above_threshold"), type_="check")
        batch.drop_constraint(op.f("ck_auto_recharges_mode_known"), type_="check")
        batch.drop_column("target_nanos")
        batch.drop_column("mode")
