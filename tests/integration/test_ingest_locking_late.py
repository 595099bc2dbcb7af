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

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from core.db import unit_of_work
from core.db.models import Account, LateUsage, RateCard, UsageEvent, UsageRollupDaily, UsageRollupHourly
from core.ledger import check_ledger
from core.metering import IngestResult, ingest_events
from core.metering import ingest as ingest_module
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


def test_rollups_add_the_amounts_rated_again_under_the_lock(
    engine: Engine, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The lock-late path sums the rollups in the database from the rows it inserted: when a
    # batch that committed meanwhile moved a tier, the amounts rated again must be the ones summed.
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite takes the database lock first: no batch can commit in between")
    seed_catalog(engine, now - timedelta(days=60), accounts=("acc_a",))
    with unit_of_work(engine, write=True) as session:
        load_rate_card(session, tomllib.loads(TIERED), at=now - timedelta(days=50), allow_backdated=True)
        account = session.get(Account, "acc_a")
        assert account is not None
        account.rate_card_id = session.scalar(select(RateCard.id).where(RateCard.key == "tiered"))

    real_lock_accounts = ingest_module.lock_accounts
    calls: list[set[str]] = []

    def another_batch_commits_first(session: Session, account_ids: set[str]) -> object:
        calls.append(account_ids)
        if len(calls) == 1:  # 800 images at 1.00, committed before the late batch takes its lock
            with unit_of_work(engine, write=True) as other:
                batch = [event(f"first-{i}", meter="images", quantity=100) for i in range(8)]
                assert ingest_events(other, batch, at=now).accepted == 8
        return real_lock_accounts(session, account_ids)

    monkeypatch.setattr(ingest_module, "lock_accounts", another_batch_commits_first)
    late = [
        event(f"late-{i}", meter="images", quantity=100, timestamp="2026-11-18T11:00:00Z") for i in range(4)
    ]
    with unit_of_work(engine, write=True) as session:
        result = ingest_events(session, late, at=now)

    # Rated before the lock at 400 x 1.00; under it, after the first 800: 200 x 1.00 + 200 x 0.10.
    assert result.amount_nanos == 220 * NANOS_PER_CREDIT
    with unit_of_work(engine) as session:
        events_total = session.scalar(select(func.sum(UsageEvent.amount_nanos)))
        hourly_total = session.scalar(select(func.sum(UsageRollupHourly.amount_nanos)))
        daily_total = session.scalar(select(func.sum(UsageRollupDaily.amount_nanos)))
        late_total = session.scalar(select(func.sum(LateUsage.amount_nanos)))
        report = check_ledger(session)
    assert events_total == hourly_total == daily_total == 1_020 * NANOS_PER_CREDIT
    assert late_total == 220 * NANOS_PER_CREDIT
    assert report.ok, report.problems
