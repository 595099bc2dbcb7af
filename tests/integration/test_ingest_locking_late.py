"""Concurrent batches on PostgreSQL, where events are written before the accounts are locked.

Batches sharing events in opposite orders count each event once and never deadlock;
tiered prices come out as if the batches had run one after the other; a batch that waited
for the lock while a rate card was loaded is rated at the version now in force. Run on
SQLite too, where the same calls take the database lock first.
"""

from __future__ import annotations

import threading
import tomllib
from datetime import datetime, timedelta

from sqlalchemy import Engine, func, select

from core.db import unit_of_work
from core.db.models import Account, RateCard, UsageEvent
from core.ledger import check_ledger
from core.metering import IngestResult, ingest_events
from core.money import NANOS_PER_CREDIT
from core.rating import load_rate_card
from tests.core.metering.catalog_setup import event, seed_catalog

THREADS = 4


def _concurrently(engine: Engine, batches: list[list[dict]], now: datetime) -> list[IngestResult]:
    results: list[IngestResult] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(batches))

    def send(batch: list[dict]) -> None:
        try:
            barrier.wait(10)
            with unit_of_work(engine, write=True) as session:
                results.append(ingest_events(session, batch, at=now))
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=send, args=(batch,)) for batch in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    return results


def test_batches_sharing_events_in_opposite_orders_count_each_once(engine: Engine, now: datetime) -> None:
    seed_catalog(engine, now - timedelta(days=60))
    shared = [event(f"e{i:03d}", quantity=1_000 + i) for i in range(120)]
    batches = [shared if n % 2 == 0 else list(reversed(shared)) for n in range(THREADS)]

    for _ in range(3):  # the same events again: all duplicates
        results = _concurrently(engine, batches, now)
        assert sum(r.accepted for r in results) + sum(len(r.duplicates) for r in results) == THREADS * 120

    with unit_of_work(engine) as session:
        assert session.scalar(select(func.count()).select_from(UsageEvent)) == 120
        report = check_ledger(session)
    assert report.ok, report.problems


TIERED = """
[[meters]]
name = "images"
unit = "image"

[card]
key = "tiered"
name = "Tiered"

[[versions]]
effective_from = "2026-10-01T00:00:00Z"
[[versions.prices]]
meter = "images"
tiers = [{ up_to = 1000, price = "1.00" }, { price = "0.10" }]
"""


def test_tiered_prices_come_out_as_if_batches_ran_one_after_another(engine: Engine, now: datetime) -> None:
    seed_catalog(engine, now - timedelta(days=60), accounts=("acc_a",))
    with unit_of_work(engine, write=True) as session:
        load_rate_card(session, tomllib.loads(TIERED), at=now - timedelta(days=50), allow_backdated=True)
        account = session.get(Account, "acc_a")
        assert account is not None
        account.rate_card_id = session.scalar(select(RateCard.id).where(RateCard.key == "tiered"))

    # 4 batches of 400 images each: 1,000 at 1.00 and 600 at 0.10 in whatever order they run.
    batches = [[event(f"b{n}-{i}", meter="images", quantity=100) for i in range(4)] for n in range(THREADS)]
    _concurrently(engine, batches, now)

    with unit_of_work(engine) as session:
        total = session.scalar(select(func.sum(UsageEvent.amount_nanos)))
        report = check_ledger(session)
    assert report.ok, report.problems
    assert total == 1_000 * NANOS_PER_CREDIT + 600 * NANOS_PER_CREDIT // 10
