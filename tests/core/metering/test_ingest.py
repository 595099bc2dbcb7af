"""Ingestion on SQLite and PostgreSQL: idempotency, conflicts, partial batches, atomicity,
rollups and ledger agreeing, late events at their own price."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select

from core.db import unit_of_work
from core.db.models import Account, IngestBatch, LedgerEntry, UsageEvent, UsageRollupDaily, UsageRollupHourly
from core.ledger import check_ledger
from core.metering import IngestResult, ingest_events
from core.metering import store as metering_store
from core.money import NANOS_PER_CREDIT
from tests.core.metering.catalog_setup import (
    NEW_PER_MILLION_NANOS,
    OLD_PER_MILLION_NANOS,
    REQUEST_NANOS,
    event,
    seed_catalog,
)


@pytest.fixture
def catalog(engine: Engine, now: datetime) -> Engine:
    seed_catalog(engine, now - timedelta(days=60))
    return engine


def ingest(engine: Engine, events: list, at: datetime) -> IngestResult:
    with unit_of_work(engine, write=True) as session:
        return ingest_events(session, events, at=at)


def balance(engine: Engine, account_id: str = "acc_a") -> int:
    with unit_of_work(engine) as session:
        account = session.get(Account, account_id)
        assert account is not None
        return account.balance_nanos


def stored_events(engine: Engine) -> int:
    with unit_of_work(engine) as session:
        return int(session.scalar(select(func.count()).select_from(UsageEvent)) or 0)


def assert_ledger_ok(engine: Engine) -> None:
    with unit_of_work(engine) as session:
        report = check_ledger(session)
    assert report.ok, report.problems


def test_event_counted_once_when_redelivered(catalog: Engine, now: datetime) -> None:
    first = ingest(catalog, [event("e1"), event("e2")], now)
    again = ingest(catalog, [event("e1"), event("e2")], now + timedelta(minutes=5))

    assert (first.accepted, first.duplicates) == (2, [])
    assert (again.accepted, again.duplicates, again.batch_id) == (0, ["e1", "e2"], None)
    assert stored_events(catalog) == 2
    assert balance(catalog) == 100 * NANOS_PER_CREDIT - 2 * NEW_PER_MILLION_NANOS
    assert_ledger_ok(catalog)


def test_repeated_id_within_one_request_counts_once(catalog: Engine, now: datetime) -> None:
    result = ingest(catalog, [event("e1"), event("e1"), event("e1", quantity=1_000_000.0)], now)
    assert (result.accepted, result.duplicates, result.rejected) == (1, ["e1", "e1"], [])
    assert stored_events(catalog) == 1


def test_same_id_with_other_content_is_a_conflict(catalog: Engine, now: datetime) -> None:
    ingest(catalog, [event("e1", quantity=10)], now)
    result = ingest(catalog, [event("e1", quantity=11), event("e2")], now)

    assert result.accepted == 1
    [conflict] = result.rejected
    assert (conflict.index, conflict.event_id, conflict.field, conflict.code) == (
        0,
        "e1",
        "event_id",
        "conflict",
    )
    with unit_of_work(catalog) as session:
        quantity = session.scalar(select(UsageEvent.quantity).where(UsageEvent.event_id == "e1"))
    assert quantity == 10


def test_same_id_with_other_content_in_one_request_is_a_conflict(catalog: Engine, now: datetime) -> None:
    result = ingest(catalog, [event("e1", quantity=10), event("e1", quantity=12)], now)
    assert result.accepted == 1
    assert [(r.index, r.code) for r in result.rejected] == [(1, "conflict")]


def test_same_event_id_for_two_accounts_is_two_events(catalog: Engine, now: datetime) -> None:
    result = ingest(catalog, [event("e1", account_id="acc_a"), event("e1", account_id="acc_b")], now)
    assert result.accepted == 2
    assert_ledger_ok(catalog)


def test_mixed_batch_keeps_valid_events_and_reports_invalid_ones(catalog: Engine, now: datetime) -> None:
    events = [
        event("ok1"),
        event("bad-qty", quantity=-5),
        event("bad-meter", meter="gpu_hours"),
        event("ok2", account_id="acc_b"),
        event("bad-account", account_id="acc_ghost"),
        "not an event",
        event("bad-time", timestamp="2026-11-20 11:00:00"),
    ]
    result = ingest(catalog, events, now)

    assert result.accepted == 2 and result.batch_id is not None
    assert [(r.index, r.field, r.code) for r in result.rejected] == [
        (1, "quantity", "must_be_non_negative"),
        (2, "meter", "unknown_meter"),
        (4, "account_id", "unknown_account"),
        (5, "event", "not_an_object"),
        (6, "timestamp", "missing_offset"),
    ]
    with unit_of_work(catalog) as session:
        batch = session.get(IngestBatch, result.batch_id)
        assert batch is not None
        assert (batch.accepted_count, batch.duplicate_count, batch.rejected_count) == (2, 0, 5)
        stored = set(session.scalars(select(UsageEvent.event_id)))
    assert stored == {"ok1", "ok2"}
    assert_ledger_ok(catalog)


def test_all_rejected_stores_no_batch(catalog: Engine, now: datetime) -> None:
    result = ingest(catalog, [event("x", quantity=1.5)], now)
    assert (result.batch_id, result.accepted, len(result.rejected)) == (None, 0, 1)
    with unit_of_work(catalog) as session:
        assert session.scalar(select(func.count()).select_from(IngestBatch)) == 0


def test_crash_mid_batch_leaves_nothing_and_resend_works(
    catalog: Engine, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = [event(f"e{i}", quantity=1000 + i) for i in range(50)]

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("power cut while rolling up")

    monkeypatch.setattr(metering_store, "upsert_rollups", crash)  # SQLite; PostgreSQL's lock-first path
    monkeypatch.setattr(metering_store, "roll_up_incoming_pg", crash)  # PostgreSQL's lock-late path
    with pytest.raises(RuntimeError, match="power cut"):
        ingest(catalog, events, now)
    monkeypatch.undo()

    with unit_of_work(catalog) as session:
        for model in (UsageEvent, IngestBatch, UsageRollupHourly, UsageRollupDaily):
            assert session.scalar(select(func.count()).select_from(model)) == 0, model.__name__
        assert (
            session.scalar(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.reason == "usage"))
            == 0
        )
    assert balance(catalog) == 100 * NANOS_PER_CREDIT

    resent = ingest(catalog, events, now)
    assert (resent.accepted, resent.duplicates) == (50, [])
    assert stored_events(catalog) == 50
    assert_ledger_ok(catalog)


def test_rollups_and_ledger_agree_with_raw_events(catalog: Engine, now: datetime) -> None:
    events = []
    for i in range(300):
        events.append(
            event(
                f"e{i}",
                account_id=("acc_a", "acc_b")[i % 2],
                meter=("input_tokens", "requests", "unpriced")[i % 3],
                quantity=1000 * (i % 7),
                timestamp=(now - timedelta(hours=i % 50, minutes=i % 60)).isoformat(),
                dimensions={"model": ("atlas", "atlas-mini")[i % 2], "project": f"p{i % 4}", "api_key": "k1"},
            )
        )
    first = ingest(catalog, events[:200], now)
    second = ingest(catalog, events[150:], now)
    assert (first.accepted, second.accepted, len(second.duplicates)) == (200, 100, 50)
    assert_ledger_ok(catalog)
    with unit_of_work(catalog) as session:
        debited = -int(
            session.scalar(select(func.sum(LedgerEntry.amount_nanos)).where(LedgerEntry.reason == "usage"))
            or 0
        )
        rated = int(session.scalar(select(func.sum(UsageEvent.amount_nanos))) or 0)
        hourly_rows = session.scalar(select(func.count()).select_from(UsageRollupHourly))
    assert debited == rated == first.amount_nanos + second.amount_nanos > 0
    assert hourly_rows


def test_late_event_is_rated_with_the_version_of_its_timestamp(catalog: Engine, now: datetime) -> None:
    # The card changed on Nov 15 from 3.00 to 2.00 per million: an event from Nov 10 sent now pays 3.00.
    result = ingest(
        catalog,
        [event("late", timestamp="2026-11-10T09:00:00Z"), event("fresh", timestamp="2026-11-20T09:00:00Z")],
        now,
    )
    assert result.accepted == 2
    with unit_of_work(catalog) as session:
        amounts = dict(session.execute(select(UsageEvent.event_id, UsageEvent.amount_nanos)).all())
        versions = dict(session.execute(select(UsageEvent.event_id, UsageEvent.rate_card_version_id)).all())
    assert amounts == {"late": OLD_PER_MILLION_NANOS, "fresh": NEW_PER_MILLION_NANOS}
    assert versions["late"] != versions["fresh"]


def test_dimension_price_applies_and_unpriced_meter_is_kept_unbilled(catalog: Engine, now: datetime) -> None:
    result = ingest(
        catalog,
        [
            event("mini", timestamp="2026-11-10T09:00:00Z", dimensions={"model": "atlas-mini"}),
            event("req", meter="requests", quantity=3),
            event("free", meter="unpriced", quantity=99),
        ],
        now,
    )
    assert result.accepted == 3
    with unit_of_work(catalog) as session:
        rows = {
            e: (a, v)
            for e, a, v in session.execute(
                select(UsageEvent.event_id, UsageEvent.amount_nanos, UsageEvent.rate_card_version_id)
            )
        }
    assert rows["mini"][0] == NANOS_PER_CREDIT // 2
    assert rows["req"][0] == 3 * REQUEST_NANOS
    assert rows["free"] == (0, None)
    assert result.amount_nanos == NANOS_PER_CREDIT // 2 + 3 * REQUEST_NANOS


def test_usage_date_follows_the_account_timezone(engine: Engine, now: datetime) -> None:
    seed_catalog(engine, now - timedelta(days=60), accounts=("acc_tokyo",), timezone="Asia/Tokyo")
    # 20:00 UTC on Nov 19 is 05:00 on Nov 20 in Tokyo.
    ingest(engine, [event("t1", account_id="acc_tokyo", timestamp="2026-11-19T20:30:00Z")], now)
    with unit_of_work(engine) as session:
        usage_date = session.scalar(select(UsageEvent.usage_date))
        hour = session.scalar(select(UsageRollupHourly.hour_start))
        daily = session.scalar(select(UsageRollupDaily.usage_date))
    assert usage_date == daily == date(2026, 11, 20)
    assert hour == datetime(2026, 11, 19, 20, tzinfo=UTC)


def test_usage_beyond_the_grants_drives_the_balance_negative(engine: Engine, now: datetime) -> None:
    seed_catalog(engine, now - timedelta(days=60), grant_credits_each=1)
    ingest(engine, [event("big", quantity=2_000_000)], now)  # 4.00 credits against a 1-credit grant
    assert balance(engine) == NANOS_PER_CREDIT - 2 * NEW_PER_MILLION_NANOS
    assert_ledger_ok(engine)


def test_lateness_window_setting_is_read_from_the_environment(
    catalog: Engine, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("METERLINE_MAX_LATENESS_DAYS", "3")
    result = ingest(catalog, [event("old", timestamp="2026-11-16T11:00:00Z")], now)
    assert [(r.field, r.code) for r in result.rejected] == [("timestamp", "too_late")]


TIERED_CARD = """
[[meters]]
name = "calls"
unit = "call"

[card]
key = "tiered"
name = "Tiered"

[[versions]]
effective_from = "2026-10-01T00:00:00Z"
[[versions.prices]]
meter = "calls"
tiers = [{ up_to = 100, price = "0.10" }, { price = "0.05" }]
"""


def test_tiered_price_follows_the_monthly_volume_across_batches(engine: Engine, now: datetime) -> None:
    import tomllib

    from core.accounts import create_account
    from core.rating import load_rate_card

    with unit_of_work(engine, write=True) as session:
        load_rate_card(session, tomllib.loads(TIERED_CARD), at=now, allow_backdated=True)
        create_account(session, account_id="acc_t", name="T", at=now, rate_card_key="tiered")
    tenth = NANOS_PER_CREDIT // 10
    first = ingest(engine, [event("c1", account_id="acc_t", meter="calls", quantity=60)], now)
    # Sent out of order: rated in timestamp order, so c2 (earlier) crosses the tier boundary.
    second = ingest(
        engine,
        [
            event("c3", account_id="acc_t", meter="calls", quantity=10, timestamp="2026-11-20T11:30:00Z"),
            event("c2", account_id="acc_t", meter="calls", quantity=60, timestamp="2026-11-20T11:10:00Z"),
        ],
        now,
    )
    # An event of last month starts from that month's volume (none).
    october = ingest(
        engine,
        [event("c0", account_id="acc_t", meter="calls", quantity=10, timestamp="2026-10-31T23:00:00Z")],
        now,
    )
    assert first.amount_nanos == 60 * tenth
    with unit_of_work(engine) as session:
        amounts = dict(session.execute(select(UsageEvent.event_id, UsageEvent.amount_nanos)).all())
    assert amounts["c2"] == 40 * tenth + 20 * tenth // 2
    assert amounts["c3"] == 10 * tenth // 2
    assert second.amount_nanos == amounts["c2"] + amounts["c3"]
    assert october.amount_nanos == 10 * tenth
    assert_ledger_ok(engine)


def test_awkward_strings_are_stored_exactly(catalog: Engine, now: datetime) -> None:
    odd_id = 'tab\there\\back"quote\nline\rcr é ☃'
    dims = {"model": "m\\1\t", "project": 'p"q', "api_key": "k\n", "note": "\\N"}
    result = ingest(catalog, [event(odd_id, dimensions=dims)], now)
    assert result.accepted == 1
    again = ingest(catalog, [event(odd_id, dimensions=dims)], now)
    assert again.duplicates == [odd_id]
    with unit_of_work(catalog) as session:
        row = session.execute(select(UsageEvent.event_id, UsageEvent.model, UsageEvent.dimensions)).one()
    assert row == (odd_id, "m\\1\t", dims)
    assert_ledger_ok(catalog)
