"""Payment facts (what the provider said, merged) and payment alerts raised once per condition

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db.types

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_AT = core.db.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "payment_facts",
        sa.Column("id", _ID, nullable=False),
        sa.Column("top_up_id", _ID, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("object_id", sa.String(length=255), nullable=False),
        sa.Column("amount_cents", _ID, nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=40), nullable=False),
        sa.Column("as_of", _ID, nullable=False),
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column("recorded_at", _AT, nullable=False),
        sa.Column("updated_at", _AT, nullable=False),
        sa.CheckConstraint(
            "kind IN ('paid', 'refunded', 'dispute', 'credit_anyway')",
            name=op.f("ck_payment_facts_kind_known"),
        ),
        sa.CheckConstraint("amount_cents >= 0", name=op.f("ck_payment_facts_amount_non_negative")),
        sa.ForeignKeyConstraint(
            ["top_up_id"], ["top_ups.id"], name=op.f("fk_payment_facts_top_up_id_top_ups")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_facts")),
        sa.UniqueConstraint(
            "top_up_id", "kind", "object_id", name=op.f("uq_payment_facts_top_up_id_kind_object_id")
        ),
    )
    op.create_table(
        "payment_alerts",
        sa.Column("top_up_id", _ID, nullable=False),
        sa.Column("alert", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("raised_at", _AT, nullable=False),
        sa.Column("resolved_at", _AT, nullable=True),
        sa.Column("resolution", sa.String(length=500), nullable=False),
        sa.ForeignKeyConstraint(
            ["top_up_id"], ["top_ups.id"], name=op.f("fk_payment_alerts_top_up_id_top_ups")
        ),
        sa.PrimaryKeyConstraint("top_up_id", "alert", name=op.f("pk_payment_alerts")),
    )
    op.create_index("ix_payment_alerts_open", "payment_alerts", ["resolved_at", "account_id"], unique=False)
    with op.batch_alter_table("top_ups") as batch:
        batch.add_column(sa.Column("debt_restored_nanos", _ID, nullable=False, server_default="0"))
    _facts_from_top_ups()


def _facts_from_top_ups() -> None:
    """What the top-ups already know becomes facts, so settling them again changes nothing."""
    now = "CURRENT_TIMESTAMP"
    op.execute(
        "INSERT INTO payment_facts (top_up_id, kind, object_id, amount_cents, currency, status, as_of, "
        "source, recorded_at, updated_at) "
        f"SELECT id, 'paid', COALESCE(payment_intent_id, ''), amount_cents, currency, '', 0, 'migration', "
        f"{now}, {now} FROM top_ups WHERE grant_id IS NOT NULL"
    )
    op.execute(
        "INSERT INTO payment_facts (top_up_id, kind, object_id, amount_cents, currency, status, as_of, "
        "source, recorded_at, updated_at) "
        f"SELECT id, 'refunded', COALESCE(payment_intent_id, ''), refunded_cents, '', '', 0, 'migration', "
        f"{now}, {now} FROM top_ups WHERE refunded_cents > 0"
    )
    op.execute(
        "INSERT INTO payment_facts (top_up_id, kind, object_id, amount_cents, currency, status, as_of, "
        "source, recorded_at, updated_at) "
        "SELECT id, 'dispute', dispute_id, amount_cents, '', "
        "CASE dispute_status WHEN 'open' THEN 'needs_response' ELSE dispute_status END, 0, 'migration', "
        f"{now}, {now} FROM top_ups WHERE dispute_id IS NOT NULL AND dispute_status <> ''"
    )


def downgrade() -> None:
    with op.batch_alter_table("top_ups") as batch:
        batch.drop_column("debt_restored_nanos")
    op.drop_index("ix_payment_alerts_open", table_name="payment_alerts")
    op.drop_table("payment_alerts")
    op.drop_table("payment_facts")
