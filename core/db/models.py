"""Tables of the billing core (SQLAlchemy 2.x typed models).

Money columns end in ``_nanos`` (nano-credits, see ``core.money``) or ``_cents``
(US cents paid). Ledger entries are append-only: nothing in this module is ever
updated or deleted except the cached ``accounts.balance_nanos`` and
``credit_grants.remaining_nanos``, which ``core.ledger.check`` proves equal to
the sum of their entries. ``@protect`` marks the append-only tables (``core.db.append_only``):
the ORM refuses to update or delete their rows, and ``audit_log`` has database triggers as well.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db.append_only import protect
from core.db.base import Base
from core.money import TOTAL_CEILING

ROLES = ("owner", "admin", "billing", "viewer")


# --- Ready to distribute by account (Citus, core.db.distribution) ---------------------------------
# An account's rows are keyed by (account_id, id): the table's primary key contains account_id, and
# a foreign key between two of its tables carries account_id on both sides. The mapper's identity
# stays ``id`` (``ACCOUNT_KEYED``), so ``session.get(Model, id)`` keeps working and ids stay unique
# on their own. On SQLite the table keeps ``id INTEGER PRIMARY KEY`` (the rowid: only it
# autoincrements) and a referenced table has an unnamed UNIQUE (account_id, id) for the composite
# foreign keys (migration 0020).


def _account_keyed(*columns: str) -> PrimaryKeyConstraint:
    return PrimaryKeyConstraint("account_id", *columns)


def _same_account(column: str, table: str) -> ForeignKeyConstraint:
    """``(account_id, column) -> table(account_id, id)``: the referenced row is the same account's."""
    return ForeignKeyConstraint(["account_id", column], [f"{table}.account_id", f"{table}.id"])


ACCOUNT_KEYED: dict[str, Any] = {"primary_key": ["id"]}

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
    # The last ingested batch with usage of this account: with its latest ledger entry, a
    # cheap version of everything the portal shows (core.usage.version).
    last_batch_id: Mapped[int | None]
    created_at: Mapped[datetime]


class User(Base):
    """A person who signs in; identified by a lower-cased email."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime]
    # When a portal session of theirs last started (a sign-in, a reload or a new tab); None: never.
    last_signed_in_at: Mapped[datetime | None]


class Membership(Base):
    """A user's role in one account."""

    __tablename__ = "memberships"
    __table_args__ = (CheckConstraint(f"role IN {ROLES!r}", name="role_known"),)

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime]


INVITATION_STATES = ("pending", "accepted", "revoked")  # expired: pending past ``expires_at``


class Invitation(Base):
    """An offer of a role in an account to an email: a single-use link that expires.

    The link carries a token; only its SHA-256 is stored (``token_hash``), so the table cannot
    be turned back into working links (``core.accounts.invitations``).
    """

    __tablename__ = "invitations"
    __table_args__ = (
        CheckConstraint(f"role IN {ROLES!r}", name="role_known"),
        CheckConstraint(f"state IN {INVITATION_STATES!r}", name="state_known"),
        Index("ix_invitations_account", "account_id", "state"),
        _account_keyed("id"),
        UniqueConstraint("token_hash", "account_id"),
    )

    __mapper_args__ = ACCOUNT_KEYED

    id: Mapped[int] = mapped_column(autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    email: Mapped[str] = mapped_column(String(320))  # lower-cased
    role: Mapped[str] = mapped_column(String(20))
    token_hash: Mapped[str] = mapped_column(String(64))  # sha-256 hex of the link's token
    state: Mapped[str] = mapped_column(String(16), default="pending")
    invited_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    accepted_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(320))


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


class CostCard(Base):
    """An internal cost card: what serving a meter (per model) costs us. Never shown to customers."""

    __tablename__ = "cost_cards"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]


class CostCardVersion(Base):
    """One version of a cost card, in force from ``effective_from`` (a whole UTC hour) until the next."""

    __tablename__ = "cost_card_versions"
    __table_args__ = (
        UniqueConstraint("cost_card_id", "version"),
        UniqueConstraint("cost_card_id", "effective_from"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    cost_card_id: Mapped[int] = mapped_column(ForeignKey("cost_cards.id"))
    version: Mapped[int]
    effective_from: Mapped[datetime]
    notes: Mapped[str] = mapped_column(Text, default="")
    source_sha256: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime]


class CostPrice(Base):
    """What ``per_units`` units of a meter cost us (``cost_nanos``: US dollars x 10**9), for one
    model or, with ``model`` "", for every model of the meter without a cost of its own."""

    __tablename__ = "cost_prices"
    __table_args__ = (
        UniqueConstraint("version_id", "meter_id", "model"),
        CheckConstraint("per_units > 0", name="per_units_positive"),
        CheckConstraint("cost_nanos >= 0", name="cost_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("cost_card_versions.id"))
    meter_id: Mapped[int] = mapped_column(ForeignKey("meters.id"))
    model: Mapped[str] = mapped_column(String(128), default="")
    per_units: Mapped[int] = mapped_column(default=1)
    cost_nanos: Mapped[int]


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
    """A raw usage event, rated once with the card version in force at ``occurred_at``.

    PostgreSQL: partitioned by UTC month of ``occurred_at`` (``core.metering.partitions``),
    primary key ``(account_id, occurred_at, id)``, which also serves the lookups by account
    and time. SQLite: one table whose ``id`` is its INTEGER PRIMARY KEY (migration 0018; Alembic
    does not compare primary keys), with an index on ``(account_id, occurred_at)`` of its own.
    No unique ``(account_id, event_id)``: duplicates are found through ``usage_event_keys``.
    """

    __tablename__ = "usage_events"
    __table_args__ = (
        # SQLite only: on PostgreSQL the primary key's prefix serves (``core.db.schema``).
        Index(
            "ix_usage_events_account_occurred", "account_id", "occurred_at", info={"only_on": "sqlite"}
        ).ddl_if(dialect="sqlite"),
    )

    # No foreign keys on this table, on purpose: PostgreSQL checks each one per row with a
    # trigger, which tripled the cost of COPYing a batch (67 ms vs 26 ms per 1,000 rows).
    # Ingestion checks account and meter in the same transaction (accounts locked, meters
    # loaded), writes the batch row first, and `meterline ledger check` proves batches whole.
    account_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(primary_key=True)
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(128))
    meter_id: Mapped[int]
    quantity: Mapped[int]
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


class UsageEventKey(Base):
    """An event id received within the dedupe window (``core.metering.settings.dedupe_window``).

    One row per ``(account_id, event_id)`` and UTC month it was received (a batch in the first
    hour of a month files its keys under the month before too: ``core.metering.store``).
    PostgreSQL: partitioned by ``received_month``; months past the window are dropped whole.
    ``occurred_at`` finds the raw event by its primary key prefix.
    """

    __tablename__ = "usage_event_keys"

    account_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    received_month: Mapped[date] = mapped_column(Date, primary_key=True)
    content_hash: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[datetime]


class UsageArchive(Base):
    """A UTC month of raw usage events moved to a Parquet file (``core.usage.archive``), once checked."""

    __tablename__ = "usage_archives"

    month: Mapped[date] = mapped_column(Date, primary_key=True)  # first day of the UTC month
    path: Mapped[str] = mapped_column(Text)
    row_count: Mapped[int]
    amount_nanos: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int]
    archived_at: Mapped[datetime]


class ArchivedEventTotal(Base):
    """What an archived month's raw events held per account, batch, meter and model: the ledger check
    and the statements add these to the raw events still stored."""

    __tablename__ = "archived_event_totals"

    account_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    batch_id: Mapped[int] = mapped_column(primary_key=True)
    meter_id: Mapped[int] = mapped_column(primary_key=True)
    model: Mapped[str] = mapped_column(String(128), primary_key=True)
    event_count: Mapped[int]
    quantity: Mapped[int]
    amount_nanos: Mapped[int]


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
        _account_keyed("id"),
        UniqueConstraint("account_id", "idempotency_key"),
    )

    __mapper_args__ = ACCOUNT_KEYED

    id: Mapped[int] = mapped_column(autoincrement=True)
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
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(320), default="system")
    created_at: Mapped[datetime]


@protect
class LedgerEntry(Base):
    """An immutable movement of credits. ``grant_id`` None is the account's deficit
    (usage that no grant covered: a negative balance the next grant pays off first)."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        Index("ix_ledger_entries_account_id", "account_id", "id"),
        Index("ix_ledger_entries_grant", "grant_id"),
        CheckConstraint("amount_nanos <> 0", name="amount_nonzero"),
        _account_keyed("id"),
        _same_account("grant_id", "credit_grants"),
    )

    __mapper_args__ = ACCOUNT_KEYED

    id: Mapped[int] = mapped_column(autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    grant_id: Mapped[int | None]
    amount_nanos: Mapped[int]  # signed: + adds credits, - removes them
    balance_after_nanos: Mapped[int]  # account balance once this entry is applied
    reason: Mapped[str] = mapped_column(String(32))  # see core.ledger.reasons
    reference: Mapped[str] = mapped_column(String(200), default="")  # "batch:12", "grant:5"
    memo: Mapped[str] = mapped_column(String(500), default="")
    effective_at: Mapped[datetime]
    created_at: Mapped[datetime]


@protect
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


# --- Spend control (issue 8): alert rules, firings, deliveries, notifications, caps -------------

ALERT_KINDS = (
    "balance_below",
    "spend_above",
    "projected_spend_above",
    "runway_below",
    "spend_spike",
    "credits_expiring",
)
ALERT_SCOPES = ("account", "project", "meter", "api_key")
ALERT_STATES = ("ok", "firing")
CAP_SCOPES = ("account", "project", "meter", "api_key")
CAP_PERIODS = ("day", "week", "month")  # week: Monday to Sunday; all in the account's zone
CAP_MODES = ("soft", "hard")
DELIVERY_CHANNELS = ("in_app", "email", "webhook", "slack")
DELIVERY_STATUSES = ("pending", "delivered", "failed")


class AlertWebhook(Base):
    """A customer's webhook endpoint. The signing secret is kept because signing needs it; the
    portal shows it once, at creation, and afterwards only ``secret_hint``."""

    __tablename__ = "alert_webhooks"
    __table_args__ = (Index("ix_alert_webhooks_account", "account_id"), _account_keyed("id"))

    __mapper_args__ = ACCOUNT_KEYED

    id: Mapped[int] = mapped_column(autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(100))
    secret_hint: Mapped[str] = mapped_column(String(16))
    deleted_at: Mapped[datetime | None]
    created_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime]


class AlertSlackWebhook(Base):
    """A customer's Slack incoming webhook (``https://hooks.slack.com/services/…``). The URL is the
    secret (whoever has it may post to the channel): the portal shows it once, at creation, and
    afterwards only ``url_hint`` and the customer's ``label``."""

    __tablename__ = "alert_slack_webhooks"
    __table_args__ = (Index("ix_alert_slack_webhooks_account", "account_id"), _account_keyed("id"))

    __mapper_args__ = ACCOUNT_KEYED

    id: Mapped[int] = mapped_column(autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    label: Mapped[str] = mapped_column(String(80))  # "#ops-alerts": which channel, in the customer's words
    url: Mapped[str] = mapped_column(String(500))
    url_hint: Mapped[str] = mapped_column(String(16))
    deleted_at: Mapped[datetime | None]
    created_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime]


class AlertRule(Base):
    """A condition on spend or balance, its scope, its channels and its crossing state.

    Thresholds by kind: ``threshold_nanos`` (balance_below, spend_above, projected_spend_above),
    or ``budget_nanos`` with ``percent`` (spend_above as N % of a budget); ``days``
    (runway_below, credits_expiring); ``factor_percent`` (spend_spike: K as a percentage, 250 = 2.5×). Deleted
    rules are kept (``deleted_at``) so their firing history stays readable.
    """

    __tablename__ = "alert_rules"
    __table_args__ = (
        CheckConstraint(f"kind IN {ALERT_KINDS!r}", name="kind_known"),
        CheckConstraint(f"scope IN {ALERT_SCOPES!r}", name="scope_known"),
        CheckConstraint(f"state IN {ALERT_STATES!r}", name="state_known"),
        Index("ix_alert_rules_account", "account_id"),
        _account_keyed("id"),
        _same_account("webhook_id", "alert_webhooks"),
        _same_account("slack_webhook_id", "alert_slack_webhooks"),
    )

    __mapper_args__ = ACCOUNT_KEYED

    id: Mapped[int] = mapped_column(autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    scope: Mapped[str] = mapped_column(String(16), default="account")
    scope_value: Mapped[str] = mapped_column(String(128), default="")
    threshold_nanos: Mapped[int | None]
    budget_nanos: Mapped[int | None]
    percent: Mapped[int | None]
    days: Mapped[int | None]
    factor_percent: Mapped[int | None]
    notify_in_app: Mapped[bool] = mapped_column(default=True)
    email_to: Mapped[list[str]] = mapped_column(default=list)
    webhook_id: Mapped[int | None]
    slack_webhook_id: Mapped[int | None]
    paused: Mapped[bool] = mapped_column(default=False)
    state: Mapped[str] = mapped_column(String(16), default="ok")
    last_value: Mapped[int | None]
    last_evaluated_at: Mapped[datetime | None]
    deleted_at: Mapped[datetime | None]
    created_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class CreditExpiryNotice(Base):
    """The fact "this account was told that this grant expires within N days": recorded once.

    The primary key is the unique (account, grant, threshold_days): an evaluator inserts it before it
    writes the notice, and an insert that finds it already there (another evaluator, a restart, an
    edited or second rule with the same N) writes nothing, on SQLite and PostgreSQL alike.
    """

    __tablename__ = "credit_expiry_notices"
    __table_args__ = (
        CheckConstraint("threshold_days > 0", name="days_positive"),
        _same_account("grant_id", "credit_grants"),
        _same_account("rule_id", "alert_rules"),
        _same_account("firing_id", "alert_firings"),
    )

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    grant_id: Mapped[int] = mapped_column(primary_key=True)
    threshold_days: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int | None]
    firing_id: Mapped[int | None]
    remaining_nanos: Mapped[int]  # what the grant held when the notice was written
    expected_lost_nanos: Mapped[int]  # what would expire unused at the pace then
    notified_at: Mapped[datetime]


class SpendCap(Base):
    """A spend cap on an account, a project, an API key or a meter, per day, week (from Monday) or
    month in the account's zone: soft (alerts) or hard (authorize says no). Caps stack: a request
    must pass every hard cap that applies to it."""

    __tablename__ = "spend_caps"
    __table_args__ = (
        CheckConstraint(f"scope IN {CAP_SCOPES!r}", name="scope_known"),
        CheckConstraint(f"period IN {CAP_PERIODS!r}", name="period_known"),
        CheckConstraint(f"mode IN {CAP_MODES!r}", name="mode_known"),
        CheckConstraint(f"state IN {ALERT_STATES!r}", name="state_known"),
        CheckConstraint("limit_nanos > 0", name="limit_positive"),
        Index("ix_spend_caps_account", "account_id"),
        _account_keyed("id"),
    )

    __mapper_args__ = ACCOUNT_KEYED

    id: Mapped[int] = mapped_column(autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    scope: Mapped[str] = mapped_column(String(16), default="account")
    scope_value: Mapped[str] = mapped_column(String(128), default="")
    period: Mapped[str] = mapped_column(String(8), default="month", server_default="month")
    limit_nanos: Mapped[int]
    mode: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(16), default="ok")
    last_value: Mapped[int | None]
    deleted_at: Mapped[datetime | None]
    created_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class SpendSettings(Base):
    """Per-account spend settings: how far below zero the balance may go before authorize refuses."""

    __tablename__ = "spend_settings"
    __table_args__ = (CheckConstraint("overdraft_nanos >= 0", name="overdraft_non_negative"),)

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    overdraft_nanos: Mapped[int] = mapped_column(default=0)
    updated_by: Mapped[str] = mapped_column(String(320))
    updated_at: Mapped[datetime]


class AlertFiring(Base):
    """One crossing of a rule or a cap: fired or resolved, with the value and threshold then."""

    __tablename__ = "alert_firings"
    __table_args__ = (
        CheckConstraint("event IN ('fired', 'resolved')", name="event_known"),
        Index("ix_alert_firings_account", "account_id", "id"),
        _account_keyed("id"),
        _same_account("rule_id", "alert_rules"),
        _same_account("cap_id", "spend_caps"),
    )

    __mapper_args__ = ACCOUNT_KEYED

    id: Mapped[int] = mapped_column(autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    rule_id: Mapped[int | None]
    cap_id: Mapped[int | None]
    subject: Mapped[str] = mapped_column(String(300))  # the rule's name or the cap, as it was then
    event: Mapped[str] = mapped_column(String(16))
    value: Mapped[int]
    threshold: Mapped[int]
    unit: Mapped[str] = mapped_column(String(8))  # nanos | days
    message: Mapped[str] = mapped_column(String(1000))
    at: Mapped[datetime]


class AlertDelivery(Base):
    """One message of a firing on one channel (an outbox row): pending until sent, retried with backoff."""

    __tablename__ = "alert_deliveries"
    __table_args__ = (
        CheckConstraint(f"channel IN {DELIVERY_CHANNELS!r}", name="channel_known"),
        CheckConstraint(f"status IN {DELIVERY_STATUSES!r}", name="status_known"),
        Index("ix_alert_deliveries_due", "status", "next_attempt_at"),
        Index("ix_alert_deliveries_account", "account_id", "id"),
        _account_keyed("id"),
        _same_account("firing_id", "alert_firings"),
        _same_account("webhook_id", "alert_webhooks"),
        _same_account("slack_webhook_id", "alert_slack_webhooks"),
    )

    __mapper_args__ = ACCOUNT_KEYED

    id: Mapped[int] = mapped_column(autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    firing_id: Mapped[int]
    channel: Mapped[str] = mapped_column(String(16))
    target: Mapped[str] = mapped_column(String(2000))  # email address, webhook URL, "portal", Slack label
    webhook_id: Mapped[int | None]
    slack_webhook_id: Mapped[int | None]
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str] = mapped_column(String(500), default="")
    delivered_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class Notification(Base):
    """An in-app notification for an account's members (the sidebar badge counts the unread ones)."""

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_account", "account_id", "id"),
        _account_keyed("id"),
        _same_account("firing_id", "alert_firings"),
    )

    __mapper_args__ = ACCOUNT_KEYED

    id: Mapped[int] = mapped_column(autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    firing_id: Mapped[int | None]
    title: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(String(1000))
    created_at: Mapped[datetime]


class NotificationRead(Base):
    """How far one person has read an account's notifications (ids up to ``last_read_id``)."""

    __tablename__ = "notification_reads"

    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    last_read_id: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime]


REFUSAL_REASONS = ("hard_cap_reached", "insufficient_credits", "account_suspended")


class AuthorizeRefusal(Base):
    """How often ``POST /api/v1/authorize`` said no to an account in one UTC minute, for one reason,
    project and meter ('' when the request named none), with the last refused request's figures.

    Tallied in memory by each API process and added here every half second (``core.spend.refusals``);
    kept 30 days. No foreign key to ``accounts``: a refusal names an account that existed when it
    was refused, and a row that could not be written would hold back every tally behind it.
    """

    __tablename__ = "authorize_refusals"
    __table_args__ = (
        # Its index, led by (account_id, minute), is the one that reads an account's newest rows.
        UniqueConstraint("account_id", "minute", "reason", "project", "meter"),
        CheckConstraint(f"reason IN {REFUSAL_REASONS!r}", name="reason_known"),
        CheckConstraint("count > 0", name="count_positive"),
        Index("ix_authorize_refusals_minute", "minute"),  # retention deletes by age alone
        _account_keyed("id"),
    )

    __mapper_args__ = ACCOUNT_KEYED

    id: Mapped[int] = mapped_column(autoincrement=True)
    account_id: Mapped[str] = mapped_column(String(64))
    minute: Mapped[datetime]  # UTC, truncated to the minute
    reason: Mapped[str] = mapped_column(String(32))
    project: Mapped[str] = mapped_column(String(128), default="")
    meter: Mapped[str] = mapped_column(String(64), default="")
    count: Mapped[int]
    last_at: Mapped[datetime]
    last_cost_nanos: Mapped[int]  # the estimated cost of the last refused request
    last_remaining_nanos: Mapped[int]  # the headroom authorize answered it with


# --- Payments (issue 7): top-ups, Stripe customers and cards, webhook events, auto-recharge ---

TOP_UP_STATES = ("created", "pending_payment", "paid", "credited", "failed", "canceled", "refunded")
TOP_UP_KINDS = ("checkout", "saved_card", "auto_recharge")
DISPUTE_STATUSES = ("", "open", "won", "lost")


class TopUp(Base):
    """A purchase of credits, from the customer's click to the credits it granted (or why not).

    ``state`` moves only as ``core.payments.states`` allows. ``request_key`` is the client-made
    key of the intent (one per click on "Pay", reused on retries and reloads); every call to
    the payment provider carries an idempotency key derived from ``id``.
    """

    __tablename__ = "top_ups"
    __table_args__ = (
        CheckConstraint(f"state IN {TOP_UP_STATES!r}", name="state_known"),
        CheckConstraint(f"kind IN {TOP_UP_KINDS!r}", name="kind_known"),
        CheckConstraint(f"dispute_status IN {DISPUTE_STATUSES!r}", name="dispute_status_known"),
        CheckConstraint("amount_cents > 0", name="amount_positive"),
        CheckConstraint("credits_nanos > 0", name="credits_positive"),
        CheckConstraint("refunded_cents BETWEEN 0 AND amount_cents", name="refund_within_amount"),
        UniqueConstraint("account_id", "request_key"),
        # Led by the provider's id: webhooks find the top-up by it alone.
        UniqueConstraint("checkout_session_id", "account_id"),
        UniqueConstraint("payment_intent_id", "account_id"),
        _account_keyed("id"),
        _same_account("grant_id", "credit_grants"),
        Index("ix_top_ups_account", "account_id", "id"),
        Index("ix_top_ups_state", "state", "updated_at"),
    )

    __mapper_args__ = ACCOUNT_KEYED

    id: Mapped[int] = mapped_column(autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    kind: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str] = mapped_column(String(16))  # stripe | sandbox
    state: Mapped[str] = mapped_column(String(20), default="created")
    amount_cents: Mapped[int]  # what the customer pays, in US cents
    currency: Mapped[str] = mapped_column(String(3), default="usd")
    credits_nanos: Mapped[int]  # what it buys (1 credit = $1.00)
    request_key: Mapped[str] = mapped_column(String(100))
    save_card: Mapped[bool] = mapped_column(default=False)
    customer_id: Mapped[str | None] = mapped_column(String(255))
    checkout_session_id: Mapped[str | None] = mapped_column(String(255))
    checkout_url: Mapped[str] = mapped_column(Text, default="")
    payment_intent_id: Mapped[str | None] = mapped_column(String(255))
    payment_method_id: Mapped[str | None] = mapped_column(String(255))
    card_brand: Mapped[str] = mapped_column(String(32), default="")
    card_last4: Mapped[str] = mapped_column(String(4), default="")
    receipt_url: Mapped[str] = mapped_column(Text, default="")
    action_url: Mapped[str] = mapped_column(Text, default="")  # where to confirm with the bank (3-D Secure)
    access_token: Mapped[str] = mapped_column(String(64))  # unguessable id for this top-up's public pages
    failure_code: Mapped[str] = mapped_column(String(64), default="")
    failure_message: Mapped[str] = mapped_column(String(500), default="")
    grant_id: Mapped[int | None]
    refunded_cents: Mapped[int] = mapped_column(default=0)
    reversed_nanos: Mapped[int] = mapped_column(default=0)  # credits a refund took back
    refund_spent_nanos: Mapped[int] = mapped_column(default=0)  # refunded credits already used up
    dispute_id: Mapped[str | None] = mapped_column(String(255))
    dispute_status: Mapped[str] = mapped_column(String(8), default="")
    frozen_nanos: Mapped[int] = mapped_column(default=0)  # credits held back while a dispute is open
    # What the purchase had paid off a negative balance and a refund or lost dispute put back.
    debt_restored_nanos: Mapped[int] = mapped_column(default=0)
    note: Mapped[str] = mapped_column(String(1000), default="")
    created_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    paid_at: Mapped[datetime | None]
    credited_at: Mapped[datetime | None]


class PaymentCustomer(Base):
    """The payment provider's customer for an account (created on the first top-up)."""

    __tablename__ = "payment_customers"

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    provider: Mapped[str] = mapped_column(String(16), primary_key=True)
    customer_id: Mapped[str | None] = mapped_column(String(255))  # None while being created
    created_at: Mapped[datetime]


class PaymentCard(Base):
    """A card the customer saved for later purchases and auto-recharge (the provider keeps the number)."""

    __tablename__ = "payment_cards"
    __table_args__ = (Index("ix_payment_cards_account", "account_id"), _account_keyed("id"))

    __mapper_args__ = ACCOUNT_KEYED

    id: Mapped[str] = mapped_column(String(255))  # the provider's payment method id
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    provider: Mapped[str] = mapped_column(String(16))
    customer_id: Mapped[str] = mapped_column(String(255))
    brand: Mapped[str] = mapped_column(String(32), default="")
    last4: Mapped[str] = mapped_column(String(4), default="")
    exp_month: Mapped[int | None]
    exp_year: Mapped[int | None]
    created_at: Mapped[datetime]
    removed_at: Mapped[datetime | None]


PAYMENT_FACT_KINDS = ("paid", "refunded", "dispute", "credit_anyway")


class PaymentFact(Base):
    """One thing the provider (or support) said about a top-up's payment, merged across repeats.

    One row per ``(top_up_id, kind, object_id)``: the success of a payment (``object_id`` its
    PaymentIntent), the refunded total of a payment (the larger total wins), each dispute by
    its id (the newest version wins, by the provider's ``as_of``), and support's decision to
    credit a payment that did not match. ``core.payments.position`` derives the top-up's
    ledger position from these; they are written only under the top-up's lock.
    """

    __tablename__ = "payment_facts"
    __table_args__ = (
        CheckConstraint(f"kind IN {PAYMENT_FACT_KINDS!r}", name="kind_known"),
        CheckConstraint("amount_cents >= 0", name="amount_non_negative"),
        UniqueConstraint("top_up_id", "kind", "object_id", "account_id"),
        _account_keyed("id"),
        _same_account("top_up_id", "top_ups"),
    )

    __mapper_args__ = ACCOUNT_KEYED

    id: Mapped[int] = mapped_column(autoincrement=True)
    account_id: Mapped[str] = mapped_column(String(64))  # the top-up's (migration 0020)
    top_up_id: Mapped[int]
    kind: Mapped[str] = mapped_column(String(16))
    object_id: Mapped[str] = mapped_column(String(255))  # payment intent, dispute, or submission id
    amount_cents: Mapped[int] = mapped_column(default=0)
    currency: Mapped[str] = mapped_column(String(3), default="")
    status: Mapped[str] = mapped_column(String(40), default="")
    as_of: Mapped[int] = mapped_column(default=0)  # provider time of this version (unix seconds)
    source: Mapped[str] = mapped_column(String(255), default="")  # "webhook evt_…", "reconciliation", …
    recorded_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class PaymentAlert(Base):
    """A condition of a top-up that support must look at, raised once and resolved once.

    ``alert`` names the condition (``amount_mismatch``, ``grant_refused``, ``dispute:<id>``,
    ``refund_of_spent_credits``, …): a reconciliation pass that finds the same condition
    again raises nothing new.
    """

    __tablename__ = "payment_alerts"
    __table_args__ = (
        Index("ix_payment_alerts_open", "resolved_at", "account_id"),
        _account_keyed("top_up_id", "alert"),
        _same_account("top_up_id", "top_ups"),
    )
    __mapper_args__ = {"primary_key": ["top_up_id", "alert"]}

    top_up_id: Mapped[int]
    alert: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text, default="")
    raised_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    resolution: Mapped[str] = mapped_column(String(500), default="")


class PaymentEvent(Base):
    """A webhook event received from the provider, recorded once by its id."""

    __tablename__ = "payment_events"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    provider: Mapped[str] = mapped_column(String(16))
    type: Mapped[str] = mapped_column(String(100))
    top_up_id: Mapped[int | None]
    received_at: Mapped[datetime]
    processed_at: Mapped[datetime | None]
    outcome: Mapped[str] = mapped_column(String(500), default="")


RECHARGE_MODES = ("fixed", "target")


class AutoRecharge(Base):
    """An account's standing order: when the balance falls below a threshold, buy a fixed amount
    (mode ``fixed``: ``amount_cents``) or what brings the balance back to ``target_nanos`` (mode
    ``target``: one charge, within the top-up limits and the monthly maximum)."""

    __tablename__ = "auto_recharges"
    __table_args__ = (
        CheckConstraint("threshold_nanos >= 0", name="threshold_non_negative"),
        CheckConstraint(f"mode IN {RECHARGE_MODES!r}", name="mode_known"),
        CheckConstraint(
            "mode <> 'target' OR (target_nanos IS NOT NULL AND target_nanos > threshold_nanos)",
            name="target_above_threshold",
        ),
        CheckConstraint("amount_cents > 0", name="amount_positive"),
        CheckConstraint("monthly_max_cents >= amount_cents", name="monthly_max_covers_amount"),
        CheckConstraint("failures >= 0", name="failures_non_negative"),
        _same_account("in_flight_top_up_id", "top_ups"),
    )

    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    enabled: Mapped[bool] = mapped_column(default=False)
    threshold_nanos: Mapped[int]
    amount_cents: Mapped[int]
    mode: Mapped[str] = mapped_column(String(8), default="fixed", server_default="fixed")
    target_nanos: Mapped[int | None]  # mode "target": the balance a recharge brings the account back to
    monthly_max_cents: Mapped[int]
    card_id: Mapped[str | None] = mapped_column(String(255))
    in_flight_top_up_id: Mapped[int | None]
    failures: Mapped[int] = mapped_column(default=0)  # declines in a row
    next_attempt_at: Mapped[datetime | None]  # backoff after a decline
    last_decision: Mapped[str] = mapped_column(String(500), default="")  # why it did (not) recharge
    last_decision_code: Mapped[str] = mapped_column(String(20), default="")  # recharge_policy.Decision.code
    last_decision_at: Mapped[datetime | None]
    updated_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class PaymentSandboxObject(Base):
    """The sandbox payment provider's own records (customers, cards, payments, checkout sessions).

    Only the sandbox (Stripe test mode without Stripe) reads and writes these: they stand
    for what Stripe would keep on its side.
    """

    __tablename__ = "payment_sandbox_objects"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


# --- support console (core.support) ---

APPROVAL_STATES = ("pending", "approved", "rejected")


class SupportApproval(Base):
    """A support grant above the agent's limit, waiting for a second agent (who is never the requester)."""

    __tablename__ = "support_approvals"
    __table_args__ = (
        CheckConstraint("state IN ('pending', 'approved', 'rejected')", name="state_known"),
        CheckConstraint("amount_nanos > 0", name="amount_positive"),
        Index("ix_support_approvals_state", "state", "id"),
        Index("ix_support_approvals_account", "account_id", "id"),
        _account_keyed("id"),
        _same_account("grant_id", "credit_grants"),
    )

    __mapper_args__ = ACCOUNT_KEYED

    id: Mapped[int] = mapped_column(autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    action: Mapped[str] = mapped_column(String(64))  # "grant_credits"
    source: Mapped[str] = mapped_column(String(20))  # goodwill | promotional
    amount_nanos: Mapped[int]
    expires_at: Mapped[datetime | None]
    reason: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    requested_by: Mapped[str] = mapped_column(String(320))
    requested_at: Mapped[datetime]
    decided_by: Mapped[str | None] = mapped_column(String(320))
    decided_at: Mapped[datetime | None]
    decision_reason: Mapped[str] = mapped_column(Text, default="")
    grant_id: Mapped[int | None]


class SupportSubmission(Base):
    """One submission of a console form: its id is made when the form is drawn, so a retry or a double
    click of the same submission finds this row and gets the first one's result (``core.support.once``)."""

    __tablename__ = "support_submissions"
    __table_args__ = (
        CheckConstraint("state IN ('started', 'done')", name="state_known"),
        Index("ix_support_submissions_target", "target", "state"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the form's submission id
    agent: Mapped[str] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(64))
    account_id: Mapped[str | None] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(100), default="")  # "top_up:12" while a refund is open
    fields_hash: Mapped[str] = mapped_column(String(64))  # sha-256 of the submitted fields
    fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[str] = mapped_column(String(16), default="started")
    before: Mapped[dict[str, Any] | None]  # what the action saw first (a refund's starting point)
    result: Mapped[dict[str, Any] | None]  # the first submission's answer
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]


# --- customer API keys (issue 17): an account's own keys for the Usage & Cost API ---

CUSTOMER_KEY_SCOPES = ("usage:read", "balance:read", "spend:write")


class CustomerApiKey(Base):
    """A key an account made for its own tools ("customer API key"; not the ``api_key`` usage
    dimension, not the company's server token). Only the SHA-256 of the secret is stored, with a
    short visible ``prefix`` to recognise it (``core.customer_keys``)."""

    __tablename__ = "customer_api_keys"
    __table_args__ = (
        Index("ix_customer_api_keys_account", "account_id", "id"),
        _account_keyed("id"),
        # Led by the digest: a request's key is found by its secret alone.
        UniqueConstraint("secret_sha256", "account_id"),
        UniqueConstraint("submission_id", "account_id"),
    )

    __mapper_args__ = ACCOUNT_KEYED

    id: Mapped[int] = mapped_column(autoincrement=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(32))  # "ml_live_3f9a2c": shown, never enough to use
    secret_sha256: Mapped[str] = mapped_column(String(64))  # hex digest of the secret
    scopes: Mapped[list[str]] = mapped_column(default=list)
    created_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]  # written at most once a minute per key
    revoked_at: Mapped[datetime | None]
    revoked_by: Mapped[str | None] = mapped_column(String(320))
    # The page's form submission that made it: a repeated submit finds this key instead of making another.
    submission_id: Mapped[str | None] = mapped_column(String(64))


# The support search finds an account by an API key prefix: the daily rollup holds each key once a day.
Index("ix_usage_rollup_daily_api_key", UsageRollupDaily.api_key, UsageRollupDaily.account_id)


# --- Portal sessions (issue 21): the portal inside the company's own product ---------------------

PORTAL_ROLES = ("admin", "billing", "viewer")  # member roles a portal session may carry (never owner)
PORTAL_PAGES = ("overview", "usage", "balance", "buy_credits", "alerts", "limits")


class PortalSession(Base):
    """A session the company's backend minted for one account (``core.portal_sessions``).

    Its start link carries a signed token used once; only the token's SHA-256 is stored. The
    browser session it starts lasts until ``expires_at`` at the latest, or until ``ended_at``.
    """

    __tablename__ = "portal_sessions"
    __table_args__ = (
        CheckConstraint(f"role IN {PORTAL_ROLES!r}", name="role_known"),
        Index("ix_portal_sessions_account", "account_id", "created_at"),
        _account_keyed("id"),
        UniqueConstraint("token_hash", "account_id"),  # found by the token alone
    )

    __mapper_args__ = ACCOUNT_KEYED

    id: Mapped[str] = mapped_column(String(32))  # "ps_…", shown to the company
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    email: Mapped[str | None] = mapped_column(String(254))  # the person, lower-cased (optional)
    role: Mapped[str] = mapped_column(String(20))
    pages: Mapped[list[str]] = mapped_column(default=list)
    token_hash: Mapped[str] = mapped_column(String(64))  # sha-256 hex of the start token
    expires_at: Mapped[datetime]
    return_url: Mapped[str | None] = mapped_column(String(2000))
    used_at: Mapped[datetime | None]  # the start link was opened (once)
    ended_at: Mapped[datetime | None]  # ended early (DELETE /api/v1/portal-sessions/{id})
    created_at: Mapped[datetime]
