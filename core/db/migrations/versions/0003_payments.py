"""Payments: top-ups, Stripe customers, webhook events, auto-recharge (issue 7)

Tables: ``top_ups`` (each purchase of credits and its state), ``payment_customers`` (the
provider's customer per account), ``payment_cards`` (saved cards: brand, last 4, expiry;
never the number), ``payment_events`` (webhook events, recorded once by id),
``auto_recharges`` (the standing order and its guardrails) and ``payment_sandbox_objects``
(what the sandbox provider keeps in place of Stripe).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import core.db.types

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _int() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _at(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, core.db.types.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "top_ups",
        sa.Column("id", _int(), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("amount_cents", _int(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("credits_nanos", _int(), nullable=False),
        sa.Column("request_key", sa.String(length=100), nullable=False),
        sa.Column("save_card", sa.Boolean(), nullable=False),
        sa.Column("customer_id", sa.String(length=255), nullable=True),
        sa.Column("checkout_session_id", sa.String(length=255), nullable=True),
        sa.Column("checkout_url", sa.Text(), nullable=False),
        sa.Column("payment_intent_id", sa.String(length=255), nullable=True),
        sa.Column("payment_method_id", sa.String(length=255), nullable=True),
        sa.Column("card_brand", sa.String(length=32), nullable=False),
        sa.Column("card_last4", sa.String(length=4), nullable=False),
        sa.Column("receipt_url", sa.Text(), nullable=False),
        sa.Column("action_url", sa.Text(), nullable=False),
        sa.Column("access_token", sa.String(length=64), nullable=False),
        sa.Column("failure_code", sa.String(length=64), nullable=False),
        sa.Column("failure_message", sa.String(length=500), nullable=False),
        sa.Column("grant_id", _int(), nullable=True),
        sa.Column("refunded_cents", _int(), nullable=False),
        sa.Column("reversed_nanos", _int(), nullable=False),
        sa.Column("refund_spent_nanos", _int(), nullable=False),
        sa.Column("dispute_id", sa.String(length=255), nullable=True),
        sa.Column("dispute_status", sa.String(length=8), nullable=False),
        sa.Column("frozen_nanos", _int(), nullable=False),
        sa.Column("note", sa.String(length=1000), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        _at("created_at"),
        _at("updated_at"),
        _at("paid_at", nullable=True),
        _at("credited_at", nullable=True),
        sa.CheckConstraint(
            "dispute_status IN ('', 'open', 'won', 'lost')", name=op.f("ck_top_ups_dispute_status_known")
        ),
        sa.CheckConstraint(
            "kind IN ('checkout', 'saved_card', 'auto_recharge')", name=op.f("ck_top_ups_kind_known")
        ),
        sa.CheckConstraint(
            "state IN ('created', 'pending_payment', 'paid', 'credited', 'failed', 'canceled', 'refunded')",
            name=op.f("ck_top_ups_state_known"),
        ),
        sa.CheckConstraint("amount_cents > 0", name=op.f("ck_top_ups_amount_positive")),
        sa.CheckConstraint("credits_nanos > 0", name=op.f("ck_top_ups_credits_positive")),
        sa.CheckConstraint(
            "refunded_cents BETWEEN 0 AND amount_cents", name=op.f("ck_top_ups_refund_within_amount")
        ),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], name=op.f("fk_top_ups_account_id_accounts")),
        sa.ForeignKeyConstraint(
            ["grant_id"], ["credit_grants.id"], name=op.f("fk_top_ups_grant_id_credit_grants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_top_ups")),
        sa.UniqueConstraint("account_id", "request_key", name=op.f("uq_top_ups_account_id_request_key")),
        sa.UniqueConstraint("checkout_session_id", name=op.f("uq_top_ups_checkout_session_id")),
        sa.UniqueConstraint("payment_intent_id", name=op.f("uq_top_ups_payment_intent_id")),
    )
    op.create_index("ix_top_ups_account", "top_ups", ["account_id", "id"], unique=False)
    op.create_index("ix_top_ups_state", "top_ups", ["state", "updated_at"], unique=False)

    op.create_table(
        "payment_customers",
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("customer_id", sa.String(length=255), nullable=True),
        _at("created_at"),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_payment_customers_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("account_id", "provider", name=op.f("pk_payment_customers")),
    )

    op.create_table(
        "payment_cards",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("customer_id", sa.String(length=255), nullable=False),
        sa.Column("brand", sa.String(length=32), nullable=False),
        sa.Column("last4", sa.String(length=4), nullable=False),
        sa.Column("exp_month", _int(), nullable=True),
        sa.Column("exp_year", _int(), nullable=True),
        _at("created_at"),
        _at("removed_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_payment_cards_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_cards")),
    )
    op.create_index("ix_payment_cards_account", "payment_cards", ["account_id"], unique=False)

    op.create_table(
        "payment_events",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("top_up_id", _int(), nullable=True),
        _at("received_at"),
        _at("processed_at", nullable=True),
        sa.Column("outcome", sa.String(length=500), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_events")),
    )

    op.create_table(
        "auto_recharges",
        sa.Column("account_id", sa.String(length=64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("threshold_nanos", _int(), nullable=False),
        sa.Column("amount_cents", _int(), nullable=False),
        sa.Column("monthly_max_cents", _int(), nullable=False),
        sa.Column("card_id", sa.String(length=255), nullable=True),
        sa.Column("in_flight_top_up_id", _int(), nullable=True),
        sa.Column("failures", _int(), nullable=False),
        _at("next_attempt_at", nullable=True),
        sa.Column("last_decision", sa.String(length=500), nullable=False),
        sa.Column("last_decision_code", sa.String(length=20), nullable=False),
        _at("last_decision_at", nullable=True),
        sa.Column("updated_by", sa.String(length=320), nullable=False),
        _at("created_at"),
        _at("updated_at"),
        sa.CheckConstraint("amount_cents > 0", name=op.f("ck_auto_recharges_amount_positive")),
        sa.CheckConstraint("failures >= 0", name=op.f("ck_auto_recharges_failures_non_negative")),
        sa.CheckConstraint(
            "monthly_max_cents >= amount_cents", name=op.f("ck_auto_recharges_monthly_max_covers_amount")
        ),
        sa.CheckConstraint("threshold_nanos >= 0", name=op.f("ck_auto_recharges_threshold_non_negative")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_auto_recharges_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["in_flight_top_up_id"],
            ["top_ups.id"],
            name=op.f("fk_auto_recharges_in_flight_top_up_id_top_ups"),
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_auto_recharges")),
    )

    op.create_table(
        "payment_sandbox_objects",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        _at("created_at"),
        _at("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_sandbox_objects")),
    )


def downgrade() -> None:
    op.drop_table("payment_sandbox_objects")
    op.drop_table("auto_recharges")
    op.drop_table("payment_events")
    op.drop_index("ix_payment_cards_account", table_name="payment_cards")
    op.drop_table("payment_cards")
    op.drop_table("payment_customers")
    op.drop_index("ix_top_ups_state", table_name="top_ups")
    op.drop_index("ix_top_ups_account", table_name="top_ups")
    op.drop_table("top_ups")
