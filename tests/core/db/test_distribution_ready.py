"""The schema is ready to distribute by account with Citus (core.db.distribution, docs/scaling.md):
every table is classified, and no primary key, unique constraint or foreign key stands in the way."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import (
    Column,
    Engine,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    UniqueConstraint,
    text,
)
from sqlalchemy.exc import IntegrityError

from core.db import distribution
from core.db.base import Base
from core.db.distribution import distribution_problems, unclassified_tables
from core.db.migrate import alembic_config, upgrade


def test_every_table_is_classified() -> None:
    assert unclassified_tables(Base.metadata) == [], "add them to core/db/distribution.py"


def test_no_table_is_classified_twice_or_for_nothing() -> None:
    groups = [
        set(distribution.DISTRIBUTED_TABLES),
        set(distribution.REFERENCE_TABLES),
        set(distribution.LOCAL_TABLES),
    ]
    assert sum(len(group) for group in groups) == len(set().union(*groups))
    assert len(distribution.DISTRIBUTED_TABLES) == len(set(distribution.DISTRIBUTED_TABLES))
    stale = distribution.classified_tables() - set(Base.metadata.tables)
    assert stale == set()


def test_the_schema_is_ready_to_distribute() -> None:
    assert distribution_problems(Base.metadata) == []


def _toy_metadata() -> MetaData:
    metadata = MetaData()
    Table("accounts", metadata, Column("id", String(64), primary_key=True))
    Table("meters", metadata, Column("id", Integer, primary_key=True))
    Table("settings", metadata, Column("key", String(64), primary_key=True))
    Table(
        "credit_grants",
        metadata,
        Column("account_id", String(64), ForeignKey("accounts.id"), primary_key=True),
        Column("id", Integer, primary_key=True),
        Column("meter_id", Integer, ForeignKey("meters.id")),
    )
    return metadata


@pytest.fixture
def toy(monkeypatch: pytest.MonkeyPatch) -> MetaData:
    monkeypatch.setattr(
        distribution, "DISTRIBUTED_TABLES", ("accounts", "credit_grants", "ledger_entries", "top_ups")
    )
    monkeypatch.setattr(distribution, "REFERENCE_TABLES", {"meters": "catalogue"})
    monkeypatch.setattr(distribution, "LOCAL_TABLES", {"settings": "server-wide"})
    return _toy_metadata()


def test_a_well_keyed_toy_schema_passes(toy: MetaData) -> None:
    Table(
        "ledger_entries",
        toy,
        Column("account_id", String(64), ForeignKey("accounts.id"), nullable=False),
        Column("id", Integer, nullable=False),
        Column("grant_id", Integer),
        Column("reference", String(64)),
        PrimaryKeyConstraint("account_id", "id"),
        UniqueConstraint("reference", "account_id"),
        ForeignKeyConstraint(["account_id", "grant_id"], ["credit_grants.account_id", "credit_grants.id"]),
    )
    assert distribution_problems(toy) == []


def test_the_checker_names_each_kind_of_violation(toy: MetaData) -> None:
    ledger = Table(
        "ledger_entries",
        toy,
        Column("id", Integer, primary_key=True),  # primary key without account_id
        Column("account_id", String(64), ForeignKey("accounts.id"), nullable=False),
        Column("grant_id", Integer, ForeignKey("credit_grants.id")),  # on another key
        Column("reference", String(64), unique=True),  # unique without account_id
        Column("setting", String(64), ForeignKey("settings.key")),  # to a local table
    )
    Index("ix_ledger_entries_memo", ledger.c.reference, ledger.c.grant_id, unique=True)
    Table(
        "top_ups",
        toy,
        Column("account_id", String(64), primary_key=True),
        Column("id", Integer, primary_key=True),
        Column("grant_id", Integer),
        # account_id matched to the wrong column
        ForeignKeyConstraint(["account_id", "grant_id"], ["credit_grants.id", "credit_grants.account_id"]),
    )
    Table("stray", toy, Column("id", Integer, primary_key=True))
    Table(
        "meter_owners",
        toy,
        Column("meter_id", Integer, ForeignKey("meters.id"), primary_key=True),
        Column("account_id", String(64), ForeignKey("accounts.id")),
    )
    toy.tables["meters"].append_column(
        Column("grant_id", Integer)
    )  # a catalogue row pointing at an account's
    toy.tables["meters"].append_constraint(
        ForeignKeyConstraint(["grant_id"], ["credit_grants.id"], name="fk_meters_grant")
    )

    problems = distribution_problems(toy)

    def said(*words: str) -> bool:
        return any(all(word in problem for word in words) for problem in problems)

    assert said("stray", "not classified")
    assert said("meter_owners", "not classified")
    assert said("ledger_entries", "primary key (id)", "account_id")
    assert said("ledger_entries", "unique constraint (reference)")
    assert said("ledger_entries", "unique index ix_ledger_entries_memo")
    assert said("ledger_entries(grant_id) -> credit_grants(id)", "must match account_id")
    assert said("ledger_entries(setting) -> settings(key)", "local table")
    assert said("top_ups(account_id, grant_id) -> credit_grants(id, account_id)", "must match account_id")
    assert said("meters(grant_id) -> credit_grants(id)", "reference table may refer only to reference")
    assert len(problems) == 9, problems


def test_the_distribution_column_must_be_there_and_not_nullable(toy: MetaData) -> None:
    Table("ledger_entries", toy, Column("id", Integer, primary_key=True))
    Table(
        "top_ups",
        toy,
        Column("account_id", Integer, primary_key=True, nullable=True),
        Column("id", Integer, primary_key=True),
    )
    problems = distribution_problems(toy)
    assert "ledger_entries: distributed table without the distribution column account_id" in problems
    assert any(p.startswith("the distribution columns are not all of one type") for p in problems)


# --- The migration, with data: composite keys refuse another account's row, downgrade works ------


def _seed(engine: Engine) -> None:
    at = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    value = at.replace(tzinfo=None) if engine.dialect.name == "sqlite" else at
    with engine.begin() as connection:
        for account in ("acc_a", "acc_b"):
            connection.execute(
                text(
                    "INSERT INTO accounts (id, name, status, timezone, balance_nanos, created_at) "
                    "VALUES (:id, :id, 'active', 'UTC', 5, :at)"
                ),
                {"id": account, "at": value},
            )
        connection.execute(
            text(
                "INSERT INTO credit_grants (id, account_id, source, description, priority, amount_nanos, "
                "remaining_nanos, effective_at, expired, created_by, created_at) "
                "VALUES (7, 'acc_a', 'goodwill', '', 100, 5, 5, :at, false, 'system', :at)"
            ),
            {"at": value},
        )
        connection.execute(
            text(
                "INSERT INTO ledger_entries (id, account_id, grant_id, amount_nanos, balance_after_nanos, "
                "reason, reference, memo, effective_at, created_at) "
                "VALUES (1, 'acc_a', 7, 5, 5, 'grant_issued', 'grant:7', '', :at, :at)"
            ),
            {"at": value},
        )
        connection.execute(
            text(
                "INSERT INTO top_ups (id, account_id, kind, provider, state, amount_cents, currency, "
                "credits_nanos, request_key, save_card, checkout_url, card_brand, card_last4, receipt_url, "
                "action_url, access_token, failure_code, failure_message, grant_id, refunded_cents, "
                "reversed_nanos, refund_spent_nanos, dispute_status, frozen_nanos, debt_restored_nanos, "
                "note, "
                "created_by, created_at, updated_at) VALUES (3, 'acc_a', 'checkout', 'sandbox', 'credited', "
                "500, 'usd', 5, 'r1', false, '', '', '', '', '', 'tok', '', '', 7, 0, 0, 0, '', 0, 0, '', "
                "'ann', :at, :at)"
            ),
            {"at": value},
        )
        connection.execute(
            text(
                "INSERT INTO payment_facts (id, top_up_id, kind, object_id, amount_cents, currency, status, "
                "as_of, source, recorded_at, updated_at) "
                "VALUES (1, 3, 'paid', 'pi_1', 500, 'usd', 'succeeded', 1, 'webhook', :at, :at)"
            ),
            {"at": value},
        )


def test_the_migration_keeps_rows_and_keys_them_by_account(db_url: str, engine: Engine) -> None:
    command.downgrade(alembic_config(db_url), "0017")
    _seed(engine)

    upgrade(db_url)

    with engine.connect() as connection:
        fact = connection.execute(text("SELECT account_id, top_up_id FROM payment_facts")).one()
        entry = connection.execute(text("SELECT account_id, grant_id FROM ledger_entries")).one()
    assert tuple(fact) == ("acc_a", 3)
    assert tuple(entry) == ("acc_a", 7)
    # Grant 7 is acc_a's: acc_b's entry cannot point at it.
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO ledger_entries (id, account_id, grant_id, amount_nanos, balance_after_nanos, "
                "reason, reference, memo, effective_at, created_at) "
                "VALUES (2, 'acc_b', 7, -1, -1, 'usage', '', '', :at, :at)"
            ),
            {"at": datetime(2026, 11, 20, 13, 0)},
        )

    command.downgrade(alembic_config(db_url), "0017")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT grant_id FROM ledger_entries")).scalar_one() == 7
        assert connection.execute(text("SELECT count(*) FROM payment_facts")).scalar_one() == 1
    upgrade(db_url)
