"""Events partitioned by month (PostgreSQL) and the dedupe window (both databases).

Duplicates are recognised across partitions and after an upgrade that moved the stored
events; an exact resend of an event older than the window is still a duplicate; key months
past the window are dropped; partitions are made ahead (idempotently, moving rows that wait
in the default partition); the turn of the month cannot let a key through twice.
"""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import Engine, func, select, text

from core.db import unit_of_work
from core.db.migrate import alembic_config, upgrade
from core.db.models import UsageEvent, UsageEventKey
from core.jobs import run_due_jobs
from core.ledger import check_ledger
from core.metering import IngestResult, ingest_events
from core.metering import dedupe as dedupe_module
from core.metering.dedupe import CommitTooLate
from core.metering.partitions import (
    drop_event_month,
    ensure_event_partitions,
    ensure_key_partitions,
    event_partition_name,
    event_partitions,
    is_partitioned,
    key_partitions,
    prune_event_keys,
)
from tests.core.metering.catalog_setup import event, seed_catalog

LONG = timedelta(days=120)


@pytest.fixture
def catalog(engine: Engine, now: datetime) -> Engine:
    seed_catalog(engine, now - timedelta(days=200))
    return engine


def ingest(engine: Engine, events: list, at: datetime, lateness: timedelta | None = None) -> IngestResult:
    with unit_of_work(engine, write=True) as session:
        return ingest_events(session, events, at=at, lateness=lateness)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def count_events(engine: Engine, event_id: str | None = None) -> int:
    query = select(func.count()).select_from(UsageEvent)
    if event_id is not None:
        query = query.where(UsageEvent.event_id == event_id)
    with unit_of_work(engine) as session:
        return int(session.scalar(query) or 0)


def assert_ledger_ok(engine: Engine) -> None:
    with unit_of_work(engine) as session:
        report = check_ledger(session)
    assert report.ok, report.problems


def test_postgres_events_and_keys_are_partitioned_sqlite_plain(engine: Engine) -> None:
    with unit_of_work(engine) as session:
        partitioned = is_partitioned(session)
        months = event_partitions(session)
        if engine.dialect.name == "postgresql":
            parents = set(
                session.scalars(
                    text(
                        "SELECT c.relname FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid"
                    )
                )
            )
            defaults = set(
                session.scalars(
                    text(
                        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                        "WHERE c.relname LIKE '%\\_default'"
                    )
                )
            )
    if engine.dialect.name == "sqlite":
        assert (partitioned, months) == (False, [])
        return
    assert partitioned
    assert {"usage_events", "usage_event_keys"} <= parents
    assert {"usage_events_default", "usage_event_keys_default"} <= defaults
    this_month = datetime.now(UTC).date().replace(day=1)
    assert this_month in months  # the migration made the months around now


def test_resends_across_month_partitions_count_once(catalog: Engine, now: datetime) -> None:
    october = now - timedelta(days=30)  # Oct 21: another partition than Nov 20
    batch = [
        event("oct", timestamp=stamp(october)),
        event("nov", timestamp=stamp(now - timedelta(hours=1))),
    ]
    first = ingest(catalog, batch, now)
    again = ingest(catalog, list(reversed(batch)), now + timedelta(days=3))
    october_alone = ingest(catalog, [event("oct", timestamp=stamp(october))], now + timedelta(days=4))
    changed = ingest(catalog, [event("oct", timestamp=stamp(october), quantity=7)], now + timedelta(days=4))

    assert first.accepted == 2
    assert (again.accepted, sorted(again.duplicates)) == (0, ["nov", "oct"])
    assert (october_alone.accepted, october_alone.duplicates) == (0, ["oct"])
    assert [r.code for r in changed.rejected] == ["conflict"]
    assert count_events(catalog) == 2
    assert_ledger_ok(catalog)


def test_resend_in_the_next_month_is_a_duplicate(catalog: Engine, now: datetime) -> None:
    """Its key was filed under November; December's batch reads November's keys."""
    ingest(catalog, [event("e1")], now)
    december = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    again = ingest(catalog, [event("e1"), event("e2", timestamp=stamp(december))], december)

    assert (again.accepted, again.duplicates) == (1, ["e1"])
    assert count_events(catalog, "e1") == 1


def test_exact_resend_older_than_the_window_is_still_a_duplicate(catalog: Engine, now: datetime) -> None:
    """A backfill (more lateness than the setting): its keys may be gone; the raw rows are probed."""
    old = stamp(now - timedelta(days=80))
    ingest(catalog, [event("b1", timestamp=old), event("b2", timestamp=old)], now, lateness=LONG)
    with unit_of_work(catalog, write=True) as session:  # months later: the keys are pruned
        prune_event_keys(session, now + timedelta(days=90))
        assert session.scalar(select(func.count()).select_from(UsageEventKey)) == 0

    later = now + timedelta(days=5)
    exact = ingest(catalog, [event("b1", timestamp=old)], later, lateness=LONG)
    changed = ingest(catalog, [event("b2", timestamp=old, quantity=5)], later, lateness=LONG)
    moved = ingest(catalog, [event("b2", timestamp=stamp(now - timedelta(days=81)))], later, lateness=LONG)

    assert (exact.accepted, exact.duplicates) == (0, ["b1"])
    assert [r.code for r in changed.rejected] == ["conflict"]
    # Beyond the window only exact resends are recognised: another time is another event.
    assert moved.accepted == 1
    assert count_events(catalog, "b2") == 2
    assert_ledger_ok(catalog)


def test_prune_drops_key_months_past_the_window_and_keeps_the_window(catalog: Engine, now: datetime) -> None:
    months = [date(2026, m, 1) for m in (7, 8, 9, 10, 11)]
    with unit_of_work(catalog, write=True) as session:
        ensure_key_partitions(session, months)
        for month in months:
            session.add(
                UsageEventKey(
                    account_id="acc_a",
                    event_id="e1",
                    received_month=month,
                    content_hash="0" * 32,
                    occurred_at=now,
                )
            )
    with unit_of_work(catalog, write=True) as session:
        # Nov 20 - (35 + 2) days = Oct 14: keys received from October on stay.
        prune_event_keys(session, now)
        kept = sorted(session.scalars(select(UsageEventKey.received_month)))
        partitions = key_partitions(session)
    assert kept == [date(2026, 10, 1), date(2026, 11, 1)]
    if catalog.dialect.name == "postgresql":
        assert not [m for m in partitions if m < date(2026, 10, 1)]
        assert {date(2026, 10, 1), date(2026, 11, 1)} <= set(partitions)


def test_ensure_event_partitions_is_idempotent_and_moves_waiting_rows(catalog: Engine, now: datetime) -> None:
    far = date(2031, 3, 1)
    waiting = datetime(2031, 3, 5, 12, 0, tzinfo=UTC)
    with unit_of_work(catalog, write=True) as session:
        # A row of a month without a partition of its own: it waits in the default partition.
        session.add(
            UsageEvent(
                account_id="acc_a",
                event_id="far",
                meter_id=1,
                quantity=1,
                occurred_at=waiting,
                usage_date=waiting.date(),
                dimensions={},
                amount_nanos=0,
                rate_card_version_id=None,
                content_hash="0" * 32,
                batch_id=0,
                received_at=waiting,
            )
        )
    with unit_of_work(catalog, write=True) as session:
        first = ensure_event_partitions(session, [far, far.replace(day=20)])
    with unit_of_work(catalog, write=True) as session:
        second = ensure_event_partitions(session, [far])
        months = event_partitions(session)
        holder = None
        if catalog.dialect.name == "postgresql":
            holder = session.scalar(
                text("SELECT tableoid::regclass::text FROM usage_events WHERE event_id = 'far'")
            )
    if catalog.dialect.name == "postgresql":
        assert (first, second) == ([far], [])
        assert far in months
        assert holder == event_partition_name(far)  # moved out of the default partition
    else:
        assert (first, second, months) == ([], [], [])
    with unit_of_work(catalog, write=True) as session:
        assert drop_event_month(session, far) == 1
        assert far not in event_partitions(session)
    assert count_events(catalog) == 0


def test_drop_event_month_without_a_partition_deletes_from_the_default(
    catalog: Engine, now: datetime
) -> None:
    old = now - timedelta(days=80)  # Sep 1: a partition of its own (PG), deleted like the rest
    ingest(catalog, [event("a", timestamp=stamp(old)), event("b")], now, lateness=LONG)
    with unit_of_work(catalog, write=True) as session:
        removed = drop_event_month(session, date(2026, 9, 1))
        none_there = drop_event_month(session, date(2019, 5, 1))
    assert (removed, none_there) == (1, 0)
    assert count_events(catalog) == 1


def test_jobs_make_the_coming_months_and_prune_keys(catalog: Engine, now: datetime) -> None:
    later = datetime(2027, 3, 10, 12, 0, tzinfo=UTC)
    ingest(catalog, [event("k1")], now)  # its key is filed under November 2026
    try:
        first = run_due_jobs(catalog, clock=lambda: later)
        second = run_due_jobs(catalog, clock=lambda: later)
        with unit_of_work(catalog) as session:
            months = event_partitions(session)
            keys = session.scalar(select(func.count()).select_from(UsageEventKey))
        if catalog.dialect.name == "postgresql":
            assert {date(2027, 3, 1), date(2027, 4, 1), date(2027, 5, 1)} <= set(months)
            assert first.partitions_created >= 1
            assert second.partitions_created == 0  # a no-op once done
        assert keys == 0  # November's keys are past the window in March
    finally:
        with unit_of_work(catalog, write=True) as session:  # the worker's database is shared
            ensure_key_partitions(
                session, [date(2026, 10, 1), date(2026, 11, 1), date(2026, 12, 1), date(2027, 1, 1)]
            )


# -- the turn of the month (PostgreSQL: SQLite's write lock serialises batches) ----------------

NOV_END = datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC)
DEC_START = datetime(2026, 12, 1, 0, 0, 1, tzinfo=UTC)


class FakeClock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def _waiting_for_a_lock(engine: Engine, pids: set[int]) -> bool:
    with engine.connect() as connection:
        return bool(
            connection.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND pid = ANY(:pids)"
                ),
                {"pids": list(pids)},
            )
        )


def _race(
    engine: Engine, *, first_commits_at: datetime, second_at: datetime
) -> tuple[IngestResult | BaseException, IngestResult | BaseException]:
    """Batch one files key K at Nov 30 23:59:59 and holds its transaction open; batch two sends K
    at ``second_at``; then batch one commits with its clock at ``first_commits_at``."""
    raw = [event("K", timestamp=stamp(NOV_END - timedelta(minutes=1)))]
    clock = FakeClock(NOV_END)
    outcomes: dict[str, IngestResult | BaseException] = {}
    pids: set[int] = set()
    started = threading.Event()

    def second() -> None:
        try:
            with unit_of_work(engine, write=True) as session:
                pids.add(int(session.scalar(text("SELECT pg_backend_pid()")) or 0))
                started.set()
                outcomes["second"] = ingest_events(session, raw, clock=FakeClock(second_at))
        except BaseException as error:  # reported below
            started.set()
            outcomes["second"] = error

    thread = threading.Thread(target=second)
    try:
        with unit_of_work(engine, write=True) as session:
            outcomes["first"] = ingest_events(session, raw, clock=clock)
            thread.start()
            started.wait(10)
            # Until batch two is blocked on batch one's key, or done (it did not meet it).
            for _ in range(400):
                if "second" in outcomes or _waiting_for_a_lock(engine, pids):
                    break
                threading.Event().wait(0.025)
            clock.at = first_commits_at
    except BaseException as error:
        outcomes["first"] = error
    thread.join(30)
    return outcomes["first"], outcomes["second"]


@pytest.fixture
def postgres_catalog(catalog: Engine) -> Engine:
    if catalog.dialect.name != "postgresql":
        pytest.skip("SQLite's write lock serialises batches: no two are open at once")
    return catalog


def test_a_key_sent_on_both_sides_of_midnight_counts_once(postgres_catalog: Engine) -> None:
    first, second = _race(postgres_catalog, first_commits_at=DEC_START, second_at=DEC_START)

    assert isinstance(first, IngestResult) and first.accepted == 1
    # Batch two filed K under November too (the grace): it waited for batch one, then saw it.
    assert isinstance(second, IngestResult) and (second.accepted, second.duplicates) == (0, ["K"])
    assert count_events(postgres_catalog, "K") == 1
    assert_ledger_ok(postgres_catalog)


def test_without_the_grace_the_turn_of_the_month_would_let_a_key_through_twice(
    postgres_catalog: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the grace is for: without it both batches store K."""
    monkeypatch.setattr(dedupe_module, "GRACE", timedelta(0))
    _race(postgres_catalog, first_commits_at=NOV_END, second_at=DEC_START)

    assert count_events(postgres_catalog, "K") == 2


def test_a_batch_open_past_the_grace_is_rolled_back(postgres_catalog: Engine) -> None:
    after_grace = datetime(2026, 12, 1, 1, 0, 0, tzinfo=UTC)
    first, second = _race(postgres_catalog, first_commits_at=after_grace, second_at=after_grace)

    # Batch two, past the grace, files K under December only and does not wait; batch one
    # would commit too late for it to have been seen, so its commit fails and nothing is stored.
    assert isinstance(first, CommitTooLate)
    assert isinstance(second, IngestResult) and second.accepted == 1
    assert count_events(postgres_catalog, "K") == 1
    assert_ledger_ok(postgres_catalog)


# -- the migration ----------------------------------------------------------------------------


def test_upgrade_keeps_every_event_and_the_dedupe(db_url: str, catalog: Engine) -> None:
    # The migration fills the keys by its own clock, the wall clock: so do these batches.
    now = datetime.now(UTC).replace(microsecond=0)
    events = [event(f"e{i}", timestamp=stamp(now - timedelta(days=i * 9, hours=1))) for i in range(10)]
    ingest(catalog, events[:5], now - timedelta(days=40), lateness=LONG)
    ingest(catalog, events, now, lateness=LONG)
    with unit_of_work(catalog) as session:
        before = sorted(session.execute(select(UsageEvent.id, UsageEvent.event_id, UsageEvent.amount_nanos)))

    command.downgrade(alembic_config(db_url), "0017")
    with catalog.connect() as connection:
        restored = connection.scalar(text("SELECT count(*) FROM usage_events"))
    upgrade(db_url)

    with unit_of_work(catalog) as session:
        after = sorted(session.execute(select(UsageEvent.id, UsageEvent.event_id, UsageEvent.amount_nanos)))
        keys = set(session.scalars(select(UsageEventKey.event_id)))
        partitioned = is_partitioned(session)
    assert restored == len(before) == 10
    assert after == before
    assert partitioned == (catalog.dialect.name == "postgresql")
    # Every event was received within the window (the first five twice): a resend is a
    # duplicate, a new id gets a new row id.
    again = ingest(catalog, [*events, event("fresh")], now + timedelta(hours=1), lateness=LONG)
    assert (again.accepted, len(again.duplicates)) == (1, 10)
    with unit_of_work(catalog) as session:
        fresh_id = session.scalar(select(UsageEvent.id).where(UsageEvent.event_id == "fresh"))
    assert fresh_id is not None and fresh_id > max(row[0] for row in before)
    assert keys == {e["event_id"] for e in events}
    assert_ledger_ok(catalog)


def test_downgrade_refuses_when_an_id_was_stored_twice(db_url: str, catalog: Engine, now: datetime) -> None:
    old = now - timedelta(days=80)
    ingest(catalog, [event("x", timestamp=stamp(old))], now, lateness=LONG)
    with unit_of_work(catalog, write=True) as session:
        prune_event_keys(session, now + timedelta(days=90))
    ingest(catalog, [event("x", timestamp=stamp(old - timedelta(hours=1)))], now, lateness=LONG)
    assert count_events(catalog, "x") == 2

    with pytest.raises(RuntimeError, match="stored more than once"):
        command.downgrade(alembic_config(db_url), "0017")
    upgrade(db_url)  # whatever state the failed downgrade left: back at head
