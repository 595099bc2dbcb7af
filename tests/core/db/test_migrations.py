"""Migrations on both databases: the schema matches the models, and 0002 recomputes stored
content hashes over the canonical encoding (so a resent event stays a duplicate)."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, select, text

from core.db import unit_of_work
from core.db.base import Base
from core.db.migrate import alembic_config, upgrade
from core.db.models import UsageEvent
from core.db.schema import include_object_for
from core.metering import content_hash


def test_migrated_schema_matches_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"include_object": include_object_for(connection.dialect.name)}
        )
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_upgrade_rehashes_stored_events_canonically(db_url: str, engine: Engine) -> None:
    from alembic import command

    command.downgrade(alembic_config(db_url), "0001")
    occurred = datetime(2026, 11, 20, 11, 0, tzinfo=UTC)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO meters (id, name, display_name, unit, dimensions, created_at) "
                "VALUES (1, 'input_tokens', 'Input', 'token', '[]', :at)"
            ),
            {"at": occurred.replace(tzinfo=None) if engine.dialect.name == "sqlite" else occurred},
        )
    with unit_of_work(engine, write=True) as session:
        session.add(
            UsageEvent(
                account_id="acc_a",
                event_id="e1",
                meter_id=1,
                quantity=1200,
                occurred_at=occurred,
                usage_date=occurred.date(),
                model="atlas",
                dimensions={"model": "atlas", "project": "web"},
                amount_nanos=0,
                rate_card_version_id=None,
                content_hash="0" * 32,  # whatever the old encoding made
                batch_id=1,
                received_at=occurred,
            )
        )

    upgrade(db_url)

    with unit_of_work(engine) as session:
        stored = session.scalar(select(UsageEvent.content_hash))
    assert stored == content_hash(
        "acc_a", "input_tokens", 1200, occurred, {"project": "web", "model": "atlas"}
    )


def test_content_hash_tells_apart_values_that_contain_separators() -> None:
    at = datetime(2026, 11, 20, tzinfo=UTC)
    assert content_hash("a", "m", 1, at, {"model": "x\x1fproject\x1fy"}) != content_hash(
        "a", "m", 1, at, {"model": "x", "project": "y"}
    )
    assert content_hash("a\x1fm", "n", 1, at, {}) != content_hash("a", "m\x1fn", 1, at, {})
    # The order of the dimensions does not matter.
    assert content_hash("a", "m", 1, at, {"x": "1", "y": "2"}) == content_hash(
        "a", "m", 1, at, {"y": "2", "x": "1"}
    )
