"""``meterline demo seed --accounts N``: synthetic accounts through the real commands, found by search."""

from __future__ import annotations

import gc
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select

from core.db import unit_of_work
from core.db.models import Account, LateUsage, LedgerEntry, Meter, UsageEvent, UsageRollupDaily
from core.demo import synthetic
from core.demo.synthetic import api_key, seed_synthetic_accounts
from core.ledger import check_ledger
from core.support import search_accounts


def test_synthetic_accounts_have_members_grants_and_usage_and_a_second_run_adds_more(
    engine: Engine, now: datetime
) -> None:
    first = seed_synthetic_accounts(engine, count=3, now=now, days=2)
    second = seed_synthetic_accounts(engine, count=2, now=now, days=2)
    assert (first.accounts, second.accounts) == (3, 2)
    with unit_of_work(engine) as session:
        assert session.scalar(select(func.count()).select_from(Account)) == 5
        assert session.scalar(select(func.count()).select_from(UsageEvent)) == first.events + second.events
        # Every account has usage on each day: one to three events a day.
        days = session.execute(
            select(UsageEvent.account_id, func.count(func.distinct(UsageEvent.usage_date))).group_by(
                UsageEvent.account_id
            )
        ).all()
        assert sorted(n for _, n in days) == [2] * 5
        assert 5 * 2 <= first.events + second.events <= 5 * 2 * 3
        assert check_ledger(session).ok
        by_key = search_accounts(session, api_key(4, 1)[:-2])
        by_email = search_accounts(session, "owner@syn000001")
    assert [(h.account_id, h.matched) for h in by_key] == [("acc_syn_000004", "API key")]
    assert [(h.account_id, h.matched) for h in by_email] == [("acc_syn_000001", "email")]


def test_each_day_arrives_that_day_in_batches_of_whole_accounts(
    engine: Engine, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(synthetic, "CHUNK_EVENTS", 4)  # several batches a day, each of whole accounts
    gc_was_enabled = gc.isenabled()
    run = seed_synthetic_accounts(engine, count=6, now=now, days=3)
    assert gc.isenabled() == gc_was_enabled
    with unit_of_work(engine) as session:
        # One usage debit per account and day: an account's day is never split between batches.
        debits = session.scalar(
            select(func.count()).select_from(LedgerEntry).where(LedgerEntry.reason == "usage")
        )
        assert debits == 6 * 3
        assert session.scalar(select(func.count()).select_from(LateUsage)) == 0  # nothing late
        days = set(session.scalars(select(UsageEvent.usage_date).distinct()))
        assert days == {(now - timedelta(days=n)).date() for n in (1, 2, 3)}
        meters = set(
            session.scalars(
                select(Meter.name).join(UsageRollupDaily, UsageRollupDaily.meter_id == Meter.id).distinct()
            )
        )
        assert meters == {"input_tokens", "output_tokens", "images"}  # chat, embeddings and images
        assert session.scalar(select(func.count()).select_from(UsageEvent)) == run.events


def test_the_same_index_gives_the_same_account_and_days() -> None:
    day = datetime(2026, 11, 2, tzinfo=UTC)
    one = synthetic._profile(42)
    two = synthetic._profile(42)
    first = [list(synthetic._day_events(one, day + timedelta(days=n), n / 9)) for n in range(10)]
    again = [list(synthetic._day_events(two, day + timedelta(days=n), n / 9)) for n in range(10)]
    assert first == again
    assert len({str(e["dimensions"]) for events in first for e in events}) > 1  # keys and projects vary
