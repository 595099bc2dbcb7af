"""The cached rate book is never stale: every load changes its revision, in any commit order.

Also: an event is rated at the version in force at its own timestamp, whenever the
version was loaded.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text

from core.db import unit_of_work
from core.db.models import RateCardVersion, Setting
from core.metering import IngestResult, ingest_events
from core.metering.rater import current_rate_book
from core.money import NANOS_PER_CREDIT
from core.rating import load_rate_card, rate_book_token
from core.rating.book import REVISION_KEY
from tests.core.metering.catalog_setup import NEW_PER_MILLION_NANOS, event, seed_catalog
from tests.lock_waits import wait_until_blocked_or_done

ONE_CREDIT_PER_MILLION_NANOS = NANOS_PER_CREDIT


@pytest.fixture
def catalog(engine: Engine, now: datetime) -> Engine:
    seed_catalog(engine, now - timedelta(days=60))
    return engine


def ingest(engine: Engine, events: list[dict[str, Any]], at: datetime) -> IngestResult:
    with unit_of_work(engine, write=True) as session:
        return ingest_events(session, events, at=at)


def stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def new_version(card_key: str, effective_from: datetime, price: str) -> dict[str, Any]:
    """A rate card document adding one version (input_tokens per million) to ``card_key``."""
    return {
        "card": {"key": card_key, "name": card_key},
        "versions": [
            {
                "effective_from": stamp(effective_from),
                "prices": [{"meter": "input_tokens", "per": 1_000_000, "price": price}],
            }
        ],
    }


def test_rating_after_a_load_uses_the_new_price_in_the_same_process(catalog: Engine, now: datetime) -> None:
    before = ingest(catalog, [event("e1", timestamp=stamp(now))], now)  # caches the book
    assert before.amount_nanos == NEW_PER_MILLION_NANOS
    with unit_of_work(catalog, write=True) as session:
        load_rate_card(session, new_version("standard", now + timedelta(hours=1), "1.00"), at=now)

    after = ingest(catalog, [event("e2", timestamp=stamp(now + timedelta(hours=2)))], now)

    assert after.amount_nanos == ONE_CREDIT_PER_MILLION_NANOS


def test_revision_changes_with_every_added_version_and_not_on_an_unchanged_reload(
    catalog: Engine, now: datetime
) -> None:
    document = new_version("standard", now + timedelta(hours=1), "1.00")
    with unit_of_work(catalog) as session:
        seeded = rate_book_token(session)
    with unit_of_work(catalog, write=True) as session:
        load_rate_card(session, document, at=now)
    with unit_of_work(catalog) as session:
        loaded = rate_book_token(session)
    with unit_of_work(catalog, write=True) as session:
        report = load_rate_card(session, document, at=now)
    with unit_of_work(catalog) as session:
        reloaded = rate_book_token(session)

    assert seeded and loaded and seeded != loaded
    assert report.versions_added == [] and reloaded == loaded


def test_event_is_rated_at_the_version_in_force_at_its_own_timestamp(catalog: Engine, now: datetime) -> None:
    change = now + timedelta(hours=6)
    with unit_of_work(catalog, write=True) as session:
        load_rate_card(session, new_version("standard", change, "1.00"), at=now)

    # Both arrive after the load; each is priced by its own timestamp, not its arrival.
    after = ingest(catalog, [event("after", timestamp=stamp(change + timedelta(minutes=1)))], now)
    before = ingest(catalog, [event("before", timestamp=stamp(change - timedelta(minutes=1)))], now)
    at_the_change = ingest(catalog, [event("at", timestamp=stamp(change))], now)

    assert after.amount_nanos == ONE_CREDIT_PER_MILLION_NANOS
    assert before.amount_nanos == NEW_PER_MILLION_NANOS
    assert at_the_change.amount_nanos == ONE_CREDIT_PER_MILLION_NANOS


def test_a_load_committing_after_a_later_one_is_not_missed_by_the_cache(
    catalog: Engine, db_url: str, now: datetime
) -> None:
    if db_url.startswith("sqlite"):
        pytest.skip(
            "SQLite has one writer at a time (BEGIN IMMEDIATE): two loads cannot overlap, "
            "so they cannot commit out of order"
        )
    errors: list[BaseException] = []

    def load_b() -> None:
        try:
            with unit_of_work(catalog, write=True) as session:
                load_rate_card(session, new_version("other", now + timedelta(hours=3), "8.00"), at=now)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    # Load A takes a version id and holds it uncommitted...
    with unit_of_work(catalog, write=True) as session_a:
        load_rate_card(session_a, new_version("standard", now + timedelta(hours=1), "1.00"), at=now)
        # ...while load B, of another card, takes a larger id and commits first (before this
        # change; now B waits for A's turn on the revision row instead).
        load_b_thread = threading.Thread(target=load_b)
        load_b_thread.start()
        wait_until_blocked_or_done(catalog, load_b_thread)
        # A rating in between caches the book without A's version.
        with unit_of_work(catalog) as session_c:
            current_rate_book(session_c)
    load_b_thread.join(timeout=30)
    assert not load_b_thread.is_alive() and errors == []

    # 1M tokens after A's version took effect: 1.00, not the 2.00 before it.
    result = ingest(catalog, [event("after-a", timestamp=stamp(now + timedelta(hours=2)))], now)

    assert result.amount_nanos == ONE_CREDIT_PER_MILLION_NANOS


def test_two_first_loads_at_once_both_succeed(engine: Engine, db_url: str, now: datetime) -> None:
    if db_url.startswith("sqlite"):
        pytest.skip("SQLite has one writer at a time (BEGIN IMMEDIATE): two loads cannot overlap")
    meters = [{"name": "input_tokens", "unit": "token"}]
    with unit_of_work(engine, write=True) as session:
        load_rate_card(
            session, {**new_version("first", now + timedelta(hours=1), "1.00"), "meters": meters}, at=now
        )
    with unit_of_work(engine, write=True) as session:
        session.execute(text("DELETE FROM settings"))  # as before any load had made the revision row
    errors: list[BaseException] = []

    def load_other() -> None:
        try:
            with unit_of_work(engine, write=True) as session:
                load_rate_card(session, new_version("second", now + timedelta(hours=1), "2.00"), at=now)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    with unit_of_work(engine, write=True) as session:
        load_rate_card(session, new_version("third", now + timedelta(hours=1), "3.00"), at=now)
        worker = threading.Thread(target=load_other)
        worker.start()
        wait_until_blocked_or_done(engine, worker)
    worker.join(timeout=30)

    assert not worker.is_alive() and errors == []
    with unit_of_work(engine) as session:
        revisions = session.scalar(select(func.count()).where(Setting.key == REVISION_KEY))
        versions = session.scalar(select(func.count()).select_from(RateCardVersion))
    assert (revisions, versions) == (1, 3)
