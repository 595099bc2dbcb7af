"""No retroactive versions: a new version starts after every event already rated with its card.

Events are accepted up to 24 h ahead, so a version "in the future" may still precede usage
already rated at the old price; the load refuses it, with ``allow_backdated`` too.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from core.accounts import create_account
from core.db import unit_of_work
from core.db.models import RateCard, RateCardVersion
from core.errors import ValidationError
from core.metering import IngestResult, ingest_events
from core.money import NANOS_PER_CREDIT
from core.rating import load_rate_card
from tests.core.metering.catalog_setup import event, seed_catalog
from tests.lock_waits import wait_until_blocked_or_done

SKIP_ON_SQLITE = "SQLite has one writer at a time (BEGIN IMMEDIATE): an ingest and a load cannot overlap"


@pytest.fixture
def catalog(engine: Engine, now: datetime) -> Engine:
    seed_catalog(engine, now - timedelta(days=60))
    return engine


def ingest(engine: Engine, events: list[dict[str, Any]], at: datetime) -> IngestResult:
    with unit_of_work(engine, write=True) as session:
        return ingest_events(session, events, at=at)


def stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def new_version(
    effective_from: datetime, *, card_key: str = "standard", account: str | None = None
) -> dict[str, Any]:
    card: dict[str, Any] = {"key": card_key, "name": card_key}
    if account is not None:
        card["account"] = account
    return {
        "card": card,
        "versions": [
            {
                "effective_from": stamp(effective_from),
                "prices": [{"meter": "input_tokens", "per": 1_000_000, "price": "1.00"}],
            }
        ],
    }


def versions_of(engine: Engine, card_key: str = "standard") -> int:
    with unit_of_work(engine) as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(RateCardVersion)
                .join(RateCard, RateCard.id == RateCardVersion.rate_card_id)
                .where(RateCard.key == card_key)
            )
            or 0
        )


def test_a_version_before_usage_already_rated_is_refused(catalog: Engine, now: datetime) -> None:
    latest = now + timedelta(hours=20)
    assert ingest(catalog, [event("ahead", timestamp=stamp(latest))], now).accepted == 1

    with unit_of_work(catalog, write=True) as session, pytest.raises(ValidationError) as excinfo:
        load_rate_card(session, new_version(now + timedelta(hours=10)), at=now)

    assert excinfo.value.code == "before_rated_usage"
    assert excinfo.value.field == "versions[0].effective_from"
    assert f"pick an effective_from after {stamp(latest)}" in str(excinfo.value)
    assert versions_of(catalog) == 2


def test_a_version_at_the_latest_rated_event_is_refused(catalog: Engine, now: datetime) -> None:
    latest = now + timedelta(hours=20)
    ingest(catalog, [event("ahead", timestamp=stamp(latest))], now)

    with unit_of_work(catalog, write=True) as session, pytest.raises(ValidationError) as excinfo:
        load_rate_card(session, new_version(latest), at=now)

    assert excinfo.value.code == "before_rated_usage"


def test_a_version_after_the_latest_rated_event_loads(catalog: Engine, now: datetime) -> None:
    ingest(catalog, [event("ahead", timestamp=stamp(now + timedelta(hours=20)))], now)

    with unit_of_work(catalog, write=True) as session:
        report = load_rate_card(session, new_version(now + timedelta(hours=21)), at=now)

    assert report.versions_added == [3]


def test_a_backdated_version_is_refused_once_usage_after_its_date_was_rated(
    catalog: Engine, now: datetime
) -> None:
    ingest(catalog, [event("recent", timestamp=stamp(now - timedelta(hours=1)))], now)

    with unit_of_work(catalog, write=True) as session, pytest.raises(ValidationError) as excinfo:
        load_rate_card(session, new_version(now - timedelta(hours=2)), at=now, allow_backdated=True)
    assert excinfo.value.code == "before_rated_usage"

    # Back-dated past all the usage rated so far: fine (a back-fill before the first events).
    with unit_of_work(catalog, write=True) as session:
        report = load_rate_card(
            session, new_version(now - timedelta(minutes=30)), at=now, allow_backdated=True
        )
    assert report.versions_added == [3]


def test_only_usage_of_accounts_the_card_prices_counts(catalog: Engine, now: datetime) -> None:
    with unit_of_work(catalog, write=True) as session:
        create_account(session, account_id="acc_none", name="No card", at=now)
    ingest(
        catalog, [event("elsewhere", account_id="acc_none", timestamp=stamp(now + timedelta(hours=20)))], now
    )

    with unit_of_work(catalog, write=True) as session:
        report = load_rate_card(session, new_version(now + timedelta(hours=10)), at=now)

    assert report.versions_added == [3]


def test_an_override_card_counts_the_usage_of_the_account_it_is_for(catalog: Engine, now: datetime) -> None:
    ingest(catalog, [event("ahead", account_id="acc_b", timestamp=stamp(now + timedelta(hours=20)))], now)
    override = new_version(now + timedelta(hours=10), card_key="acc_b-override", account="acc_b")

    with unit_of_work(catalog, write=True) as session, pytest.raises(ValidationError) as excinfo:
        load_rate_card(session, override, at=now)

    assert excinfo.value.code == "before_rated_usage"
    assert versions_of(catalog, "acc_b-override") == 0


def test_a_load_waits_for_an_ingest_holding_its_accounts_then_sees_that_usage(
    catalog: Engine, db_url: str, now: datetime
) -> None:
    if db_url.startswith("sqlite"):
        pytest.skip(SKIP_ON_SQLITE)
    outcome: list[BaseException | None] = []

    def load() -> None:
        try:
            with unit_of_work(catalog, write=True) as session:
                load_rate_card(session, new_version(now + timedelta(hours=10)), at=now)
            outcome.append(None)
        except BaseException as exc:  # checked by the main thread
            outcome.append(exc)

    with unit_of_work(catalog, write=True) as session:
        ingest_events(session, [event("ahead", timestamp=stamp(now + timedelta(hours=20)))], at=now)
        worker = threading.Thread(target=load)
        worker.start()
        wait_until_blocked_or_done(catalog, worker)
    worker.join(timeout=30)

    assert not worker.is_alive()
    assert isinstance(outcome[0], ValidationError) and outcome[0].code == "before_rated_usage"


def test_an_ingest_waits_for_a_load_holding_its_accounts_then_rates_at_the_new_version(
    catalog: Engine, db_url: str, now: datetime
) -> None:
    if db_url.startswith("sqlite"):
        pytest.skip(SKIP_ON_SQLITE)
    outcome: list[IngestResult | BaseException] = []

    def send() -> None:
        try:
            outcome.append(ingest(catalog, [event("ahead", timestamp=stamp(now + timedelta(hours=20)))], now))
        except BaseException as exc:  # checked by the main thread
            outcome.append(exc)

    with unit_of_work(catalog, write=True) as session:
        load_rate_card(session, new_version(now + timedelta(hours=10)), at=now)
        worker = threading.Thread(target=send)
        worker.start()
        wait_until_blocked_or_done(catalog, worker)
    worker.join(timeout=30)

    assert not worker.is_alive()
    result = outcome[0]
    assert isinstance(result, IngestResult)
    assert result.amount_nanos == NANOS_PER_CREDIT  # 1M tokens at the new 1.00, not 2.00
