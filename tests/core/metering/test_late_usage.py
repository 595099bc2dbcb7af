"""Late usage (DESIGN invariant 6): counted on its own day, and recorded so the portal can say
which past days changed and when."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from sqlalchemy import Engine, select

from core.db import unit_of_work
from core.db.models import LateUsage
from core.metering import ingest_events
from core.usage import late_changes
from tests.core.metering.catalog_setup import (
    NEW_PER_MILLION_NANOS,
    OLD_PER_MILLION_NANOS,
    event,
    seed_catalog,
)


def _ingest(engine: Engine, events: list, at: datetime) -> None:
    with unit_of_work(engine, write=True) as session:
        result = ingest_events(session, events, at=at)
    assert not result.rejected, result.rejected


def _late_rows(engine: Engine) -> list[tuple[str, date, date, int, int]]:
    with unit_of_work(engine) as session:
        return [
            (r.account_id, r.usage_date, r.received_date, r.event_count, r.amount_nanos)
            for r in session.scalars(select(LateUsage).order_by(LateUsage.usage_date))
        ]


def test_events_for_past_days_are_recorded_as_late_and_counted_once(engine: Engine, now: datetime) -> None:
    seed_catalog(engine, now - timedelta(days=60))
    events = [
        event("today", timestamp="2026-11-20T09:00:00Z"),
        event("yesterday", timestamp="2026-11-19T23:59:59Z"),
        event("old", timestamp="2026-11-10T09:00:00Z"),  # before the price change: the old price
    ]
    _ingest(engine, events, now)
    _ingest(engine, events, now + timedelta(minutes=1))  # a resend adds nothing

    assert _late_rows(engine) == [
        ("acc_a", date(2026, 11, 10), date(2026, 11, 20), 1, OLD_PER_MILLION_NANOS),
        ("acc_a", date(2026, 11, 19), date(2026, 11, 20), 1, NEW_PER_MILLION_NANOS),
    ]
    with unit_of_work(engine) as session:
        change = late_changes(
            session, "acc_a", start=date(2026, 11, 1), end=date(2026, 11, 20), since=date(2026, 11, 14)
        )
        assert change is not None
        assert (change.first_day, change.last_day, change.days_changed, change.events) == (
            date(2026, 11, 10),
            date(2026, 11, 19),
            2,
            2,
        )
        assert change.amount_nanos == OLD_PER_MILLION_NANOS + NEW_PER_MILLION_NANOS
        assert change.last_received == date(2026, 11, 20)
        # Outside the range, or received before `since`: nothing to say.
        assert late_changes(session, "acc_a", start=now.date(), end=now.date(), since=now.date()) is None
        assert (
            late_changes(session, "acc_a", start=date(2026, 11, 1), end=now.date(), since=date(2026, 11, 21))
            is None
        )
        assert (
            late_changes(session, "acc_b", start=date(2026, 11, 1), end=now.date(), since=now.date()) is None
        )


def test_late_means_after_the_accounts_local_day_ended(engine: Engine, now: datetime) -> None:
    seed_catalog(engine, now - timedelta(days=60), timezone="America/New_York")
    # 03:00Z is 22:00 on Nov 19 in New York; at 04:30Z it is still Nov 19 there: not late.
    _ingest(
        engine,
        [event("evening", timestamp="2026-11-20T03:00:00Z")],
        datetime.fromisoformat("2026-11-20T04:30:00Z"),
    )
    assert _late_rows(engine) == []
    # At 06:00Z it is 01:00 on Nov 20 in New York: Nov 19 has ended, so this one is late.
    _ingest(
        engine,
        [event("night", timestamp="2026-11-20T03:30:00Z")],
        datetime.fromisoformat("2026-11-20T06:00:00Z"),
    )
    assert [(r[1], r[2], r[3]) for r in _late_rows(engine)] == [(date(2026, 11, 19), date(2026, 11, 20), 1)]
