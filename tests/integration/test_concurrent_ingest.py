"""Concurrent ingestion for one account never loses a debit (DESIGN: row locks on PostgreSQL,
the database write lock on SQLite)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from sqlalchemy import Engine, func, select
from starlette.testclient import TestClient

from core.api import create_api_app
from core.clock import fixed_clock
from core.db import unit_of_work
from core.db.models import Account, CreditGrant, LedgerEntry, UsageEvent
from core.ledger import check_ledger
from core.metering import ingest_events
from tests.core.metering.catalog_setup import event, seed_catalog

WORKERS = 6
BATCHES_PER_WORKER = 5
EVENTS_PER_BATCH = 40


def _events(worker: int, batch: int) -> list[dict]:
    return [
        event(f"w{worker}-b{batch}-e{i}", quantity=1_000 + 37 * i + worker, dimensions={"model": f"m{i % 3}"})
        for i in range(EVENTS_PER_BATCH)
    ]


def _assert_nothing_lost(engine: Engine) -> None:
    with unit_of_work(engine) as session:
        report = check_ledger(session)
        assert report.ok, report.problems
        account = session.get(Account, "acc_a")
        assert account is not None
        entries = int(
            session.scalar(
                select(func.sum(LedgerEntry.amount_nanos)).where(LedgerEntry.account_id == "acc_a")
            )
        )
        rated = int(
            session.scalar(select(func.sum(UsageEvent.amount_nanos)).where(UsageEvent.account_id == "acc_a"))
        )
        granted = int(
            session.scalar(
                select(func.sum(CreditGrant.amount_nanos)).where(CreditGrant.account_id == "acc_a")
            )
        )
        count = session.scalar(select(func.count()).select_from(UsageEvent))
    assert count == WORKERS * BATCHES_PER_WORKER * EVENTS_PER_BATCH
    assert account.balance_nanos == entries == granted - rated
    assert rated > 0


def _run(workers: list[threading.Thread]) -> None:
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert not worker.is_alive()


def test_parallel_ingest_for_one_account_loses_no_debit(engine: Engine, now: datetime) -> None:
    seed_catalog(engine, now - timedelta(days=60), grant_credits_each=1)
    errors: list[BaseException] = []
    start = threading.Barrier(WORKERS)

    def work(worker: int) -> None:
        try:
            start.wait()
            for batch in range(BATCHES_PER_WORKER):
                with unit_of_work(engine, write=True) as session:
                    result = ingest_events(session, _events(worker, batch), at=now)
                assert result.accepted == EVENTS_PER_BATCH
        except BaseException as exc:
            errors.append(exc)

    _run([threading.Thread(target=work, args=(w,)) for w in range(WORKERS)])
    assert not errors, errors
    _assert_nothing_lost(engine)


def test_parallel_posts_for_one_account_lose_no_debit(engine: Engine, now: datetime) -> None:
    seed_catalog(engine, now - timedelta(days=60), grant_credits_each=1)
    app = create_api_app(engine, "tok", clock=fixed_clock(now))
    errors: list[BaseException] = []
    start = threading.Barrier(WORKERS)

    def work(worker: int) -> None:
        try:
            with TestClient(app) as client:
                start.wait()
                for batch in range(BATCHES_PER_WORKER):
                    response = client.post(
                        "/api/v1/events",
                        json={"events": _events(worker, batch)},
                        headers={"Authorization": "Bearer tok"},
                    )
                    assert response.status_code == 200, response.text
                    assert response.json()["accepted"] == EVENTS_PER_BATCH
        except BaseException as exc:
            errors.append(exc)

    _run([threading.Thread(target=work, args=(w,)) for w in range(WORKERS)])
    assert not errors, errors
    _assert_nothing_lost(engine)
