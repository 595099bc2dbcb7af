"""Tables of the billing core (SQLAlchemy 2.x typed models).

Money columns end in ``_nanos`` (nano-credits, see ``core.money``) or ``_cents``
(US cents paid). Ledger entries are append-only: nothing in this module is ever
updated or deleted except the cached ``accounts.balance_nanos`` and
``credit_grants.remaining_nanos``, which ``core.ledger.check`` proves equal to
the sum of their entries.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db.base import Base
from core.money import TOTAL_CEILING

ROLES = ("owner", "admin", "billing", "viewer")
GRANT_SOURCES = ("purchased", "promotional", "goodwill")


class Account(Base):
    """A billed customer (an organisation)."""

    __tablename__ = "accounts"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default="active")  # active|suspended|closed
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    rate_card_id: Mapped[int | None] = mapped_column(ForeignKey("rate_cards.id"))
    # Account-specific prices: a card of its own whose prices win over the base card's.
    override_rate_card_id: Mapped[int | None] = mapped_column(ForeignKey("rate_cards.id"))
    balance_nanos: Mapped[int] = mapped_column(default=0)  # cache of sum(ledger_entries)
    created_at: Mapped[datetime]


class User(Base):
    """A person who signs in; identified by a lower-cased email."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime]


class Membership(Base):
    """A user's role in one account."""

    __tablename__ = "memberships"
    __table_args__ = (CheckConstraint(f"role IN {ROLES!r}", name="role_known"),)

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime]


class Meter(Base):
    """A billable quantity, e.g. ``input_tokens``, with the dimensions it may carry."""

    __tablename__ = "meters"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    unit: Mapped[str] = mapped_column(String(32), default="unit")  # singular: "token"
    dimensions: Mapped[list[str]] = mapped_column(default=list)
    created_at: Mapped[datetime]


class RateCard(Base):
    """A named price list; its prices live in immutable, effective-dated versions."""

    __tablename__ = "rate_cards"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # Set for an account's override card (prices that win over its base card).
    account_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]


class RateCardVersion(Base):
    """One version of a rate card, in force from ``effective_from`` until the next one."""

    __tablename__ = "rate_card_versions"
    __table_args__ = (
        UniqueConstraint("rate_card_id", "version"),
        UniqueConstraint("rate_card_id", "effective_from"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    rate_card_id: Mapped[int] = mapped_column(ForeignKey("rate_cards.id"))
    version: Mapped[int]
    effective_from: Mapped[datetime]
    notes: Mapped[str] = mapped_column(Text, default="")
    source_sha256: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime]


class RatePrice(Base):
    """The price of one meter (optionally for one dimension value) in one card version.

    ``tiers`` is a list of ``{"up_to": int | None, "price_nanos": int}`` (graduated by the
    account's monthly volume of this meter; the last tier has ``up_to`` None). A flat price
    is one tier. Prices are per ``per_units`` units (1, 1,000 or 1,000,000).
    """

    __tablename__ = "rate_prices"
    __table_args__ = (
        UniqueConstraint("version_id", "meter_id", "match_dimension", "match_value"),
        CheckConstraint("per_units > 0", name="per_units_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("rate_card_versions.id"))
    meter_id: Mapped[int] = mapped_column(ForeignKey("meters.id"))
    # "" means "any value": a NULL would not take part in the unique constraint.
    match_dimension: Mapped[str] = mapped_column(String(64), default="")
    match_value: Mapped[str] = mapped_column(String(200), default="")
    per_units: Mapped[int] = mapped_column(default=1)
    tiers: Mapped[list[dict[str, Any]]] = mapped_column(default=list)


class IngestBatch(Base):
    """One accepted request (or file chunk) of usage events; ledger debits reference it."""

    __tablename__ = "ingest_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(32))  # api|cli|seed
    received_at: Mapped[datetime]
    accepted_count: Mapped[int] = mapped_column(default=0)
    duplicate_count: Mapped[int] = mapped_column(default=0)
    rejected_count: Mapped[int] = mapped_column(default=0)


class UsageEvent(Base):
    """A raw usage event, rated once with the card version in force at ``occurred_at``."""

    __tablename__ = "usage_events"
    __table_args__ = (
        UniqueConstraint("account_id", "event_id"),
        Index("ix_usage_events_account_occurred", "account_id", "occurred_at"),
    )

    # No foreign keys on this table, on purpose: PostgreSQL checks each one per row with a
    # trigger, which tripled the cost of COPYing a batch (67 ms vs 26 ms per 1,000 rows).
    # Ingestion checks account and meter in the same transaction (accounts locked, meters
    # loaded), writes the batch row first, and `meterline ledger check` proves batches whole.
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[str] = mapped_column(String(64))
    event_id: Mapped[str] = mapped_column(String(128))
    meter_id: Mapped[int]
    quantity: Mapped[int]
    occurred_at: Mapped[datetime]
    usage_date: Mapped[date] = mapped_column(Date)  # the account's local day
    model: Mapped[str] = mapped_column(String(128), default="")
    project: Mapped[str] = mapped_column(String(128), default="")
    api_key: Mapped[str] = mapped_column(String(128), default="")
    dimensions: Mapped[dict[str, Any]] = mapped_column(default=dict)
    amount_nanos: Mapped[int]
    rate_card_version_id: Mapped[int | None]
    content_hash: Mapped[str] = mapped_column(String(32))
    batch_id: Mapped[int]
    received_at: Mapped[datetime]


def _within_ceiling(*columns: str) -> tuple[CheckConstraint, ...]:
    """CHECKs that keep stored totals within 0..TOTAL_CEILING (see core.metering.limits)."""
    names = {"quantity": "quantity_within_ceiling", "amount_nanos": "amount_within_ceiling"}
    return tuple(
        CheckConstraint(f"{column} BETWEEN 0 AND {TOTAL_CEILING}", name=names[column]) for column in columns
    )


class UsageRollupHourly(Base):
    """Usage summed per account, meter, UTC hour and dimension values."""

    __tablename__ = "usage_rollup_hourly"
    __table_args__ = _within_ceiling("quantity", "amount_nanos")

    account_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    hour_start: Mapped[datetime] = mapped_column(primary_key=True)
    meter_id: Mapped[int] = mapped_column(primary_key=True)
    model: Mapped[str] = mapped_column(String(128), primary_key=True)
    project: Mapped[str] = mapped_column(String(128), primary_key=True)
    api_key: Mapped[str] = mapped_column(String(128), primary_key=True)
    quantity: Mapped[int]
    amount_nanos: Mapped[int]
    event_count: Mapped[int]


class UsageRollupDaily(Base):
    """Usage summed per account, meter, local day (account timezone) and dimension values."""

    __tablename__ = "usage_rollup_daily"
    __table_args__ = _within_ceiling("quantity", "amount_nanos")

    account_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    usage_date: Mapped[date] = mapped_column(Date, primary_key=True)
    meter_id: Mapped[int] = mapped_column(primary_key=True)
    model: Mapped[str] = mapped_column(String(128), primary_key=True)
    project: Mapped[str] = mapped_column(String(128), primary_key=True)
    api_key: Mapped[str] = mapped_column(String(128), primary_key=True)
    quantity: Mapped[int]
    amount_nanos: Mapped[int]
    event_count: Mapped[int]


class LateUsage(Base):
    """Usage that arrived after its (account-local) day had ended: past numbers that changed.

    One row per account, day the events belong to and day they arrived, so the portal can
    say "numbers for Nov 18 changed on Nov 22" (DESIGN invariant 6) without scanning events.
    """

    __tablename__ = "late_usage"
    __table_args__ = _within_ceiling("amount_nanos")

    account_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    usage_date: Mapped[date] = mapped_column(Date, primary_key=True)
    received_date: Mapped[date] = mapped_column(Date, primary_key=True)
    event_count: Mapped[int]
    amount_nanos: Mapped[int]


class CreditGrant(Base):
    """Credits added to an account: purchased (with a cost basis), promotional or goodwill."""

    __tablename__ = "credit_grants"
    __table_args__ = (
        CheckConstraint(f"source IN {GRANT_SOURCES!r}", name="source_known"),
        CheckConstraint("amount_nanos > 0", name="amount_positive"),
        Index("ix_credit_grants_account", "account_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    source: Mapped[str] = mapped_column(String(20))
    description: Mapped[str] = mapped_column(String(500), default="")
    priority: Mapped[int] = mapped_column(default=100)  # lower burns first
    amount_nanos: Mapped[int]
    remaining_nanos: Mapped[int]  # cache of sum(ledger_entries for this grant)
    cost_basis_cents: Mapped[int | None]  # what the customer paid, for purchased grants
    effective_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    expired: Mapped[bool] = mapped_column(default=False)
    # Client-made key for "grant once": a retry with the same key returns the same grant.
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    created_by: Mapped[str] = mapped_column(String(320), default="system")
    created_at: Mapped[datetime]


class LedgerEntry(Base):
    """An immutable movement of credits. ``grant_id`` None is the account's deficit
    (usage that no grant covered: a negative balance the next grant pays off first)."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        Index("ix_ledger_entries_account_id", "account_id", "id"),
        Index("ix_ledger_entries_grant", "grant_id"),
        CheckConstraint("amount_nanos <> 0", name="amount_nonzero"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    grant_id: Mapped[int | None] = mapped_column(ForeignKey("credit_grants.id"))
    amount_nanos: Mapped[int]  # signed: + adds credits, - removes them
    balance_after_nanos: Mapped[int]  # account balance once this entry is applied
    reason: Mapped[str] = mapped_column(String(32))  # see core.ledger.reasons
    reference: Mapped[str] = mapped_column(String(200), default="")  # "batch:12", "grant:5"
    memo: Mapped[str] = mapped_column(String(500), default="")
    effective_at: Mapped[datetime]
    created_at: Mapped[datetime]


class AuditLog(Base):
    """Who did what to which account, why, and when (support actions, operator commands)."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_account", "account_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    actor: Mapped[str] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]


class Setting(Base):
    """Small key/value settings the server keeps (e.g. the demo-mode API token)."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
