"""Month partitions of the raw events and of the dedupe keys (PostgreSQL), and their upkeep.

On PostgreSQL ``usage_events`` is range-partitioned on ``occurred_at``, one partition per UTC
calendar month (``usage_events_pYYYY_MM``) plus ``usage_events_default`` for months without
one (old history); ``usage_event_keys`` is partitioned the same way on ``received_month``
(``usage_event_keys_pYYYY_MM``, ``usage_event_keys_default``). SQLite keeps one plain table
of each, and the functions here do the same work with ``DELETE`` (or nothing).

``CREATE TABLE … PARTITION OF`` takes an ACCESS EXCLUSIVE lock on the parent table, so
partitions are created ahead of time by the periodic jobs (``maintain_partitions``: the
current month and the next two), with a short lock timeout, never on the ingestion path:
an event dated in a month without a partition lands in the default partition. Creating a
month whose rows already sit in the default partition moves them into the new partition
(same transaction). Key months entirely older than the dedupe window are dropped.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time

from sqlalchemy import delete, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from core.db.models import UsageEvent, UsageEventKey
from core.metering.settings import dedupe_window

log = logging.getLogger(__name__)

EVENTS = "usage_events"
KEYS = "usage_event_keys"
MONTHS_AHEAD = 2  # partitions exist from the current month through this many months ahead
# The jobs wait at most this long for the lock DDL needs; ingestion queues behind a waiting
# ACCESS EXCLUSIVE request, so better give up and try again on the next tick.
DDL_LOCK_TIMEOUT = "2s"
_MONTH_SUFFIX = re.compile(r"_p(\d{4})_(\d{2})$")


def month_of(moment: datetime | date) -> date:
    """The first day of the UTC calendar month of ``moment`` (a date is taken as it is)."""
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            raise ValueError("month_of needs an aware datetime")
        moment = moment.astimezone(UTC).date()
    return moment.replace(day=1)


def add_months(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def month_start(month: date) -> datetime:
    """``month`` (a first day) as the aware UTC instant it starts."""
    return datetime.combine(month, time(), tzinfo=UTC)


def month_bounds(month: date) -> tuple[datetime, datetime]:
    """``[start, end)`` of the UTC month holding ``month`` as aware datetimes."""
    first = month_of(month)
    return month_start(first), month_start(add_months(first, 1))


def event_partition_name(month: date) -> str:
    return f"{EVENTS}_p{month.year:04d}_{month.month:02d}"


def key_partition_name(month: date) -> str:
    return f"{KEYS}_p{month.year:04d}_{month.month:02d}"


def key_window_start(now: datetime) -> date:
    """The first ``received_month`` still inside the dedupe window at ``now``.

    Every key received within ``dedupe_window()`` before ``now`` has a month at least this
    one; older months may still be stored (until pruned) but are no longer consulted.
    """
    return month_of(now - dedupe_window())


def _is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def is_partitioned(session: Session) -> bool:
    """True when ``usage_events`` is a partitioned table (PostgreSQL after migration 0018)."""
    if not _is_postgres(session):
        return False
    return bool(
        session.scalar(
            text(
                "SELECT EXISTS (SELECT FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
                "WHERE c.relname = :name AND c.relnamespace = current_schema()::regnamespace)"
            ),
            {"name": EVENTS},
        )
    )


def _partitions(session: Session, parent: str) -> list[date]:
    """Months that have a partition of their own under ``parent`` (sorted; [] on SQLite)."""
    if not _is_postgres(session):
        return []
    names = session.scalars(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent "
            "WHERE p.relname = :parent AND p.relnamespace = current_schema()::regnamespace"
        ),
        {"parent": parent},
    ).all()
    months = []
    for name in names:
        found = _MONTH_SUFFIX.search(name)
        if found and name == f"{parent}_p{found.group(1)}_{found.group(2)}":
            months.append(date(int(found.group(1)), int(found.group(2)), 1))
    return sorted(months)


def event_partitions(session: Session) -> list[date]:
    """Months of ``usage_events`` with a partition of their own (sorted; [] on SQLite)."""
    return _partitions(session, EVENTS)


def key_partitions(session: Session) -> list[date]:
    """Months of ``usage_event_keys`` with a partition of their own (sorted; [] on SQLite)."""
    return _partitions(session, KEYS)


def _bound(parent: str, month: date) -> str:
    """A partition bound literal: a timestamptz for the events, a date for the keys."""
    if parent == EVENTS:
        return f"'{month.isoformat()} 00:00:00+00'"
    return f"'{month.isoformat()}'"


def _create_partition(session: Session, parent: str, month: date) -> int:
    """Create ``parent``'s partition for ``month``; return the rows moved in from the default partition.

    Rows of that month already in the default partition (the jobs did not run in time, or
    the month is history) would make ``PARTITION OF`` fail: the new table is then filled
    from them and attached (``ATTACH PARTITION`` takes a lighter lock on the parent).
    """
    column = "occurred_at" if parent == EVENTS else "received_month"
    name = f"{parent}_p{month.year:04d}_{month.month:02d}"
    low, high = _bound(parent, month), _bound(parent, add_months(month, 1))
    default = f"{parent}_default"
    in_range = f"{column} >= {low} AND {column} < {high}"
    waiting = session.scalar(text(f"SELECT EXISTS (SELECT FROM {default} WHERE {in_range})"))
    if not waiting:
        session.execute(
            text(f"CREATE TABLE {name} PARTITION OF {parent} FOR VALUES FROM ({low}) TO ({high})")
        )
        return 0
    session.execute(text(f"CREATE TABLE {name} (LIKE {parent} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"))
    moved = session.execute(
        text(
            f"WITH moved AS (DELETE FROM {default} WHERE {in_range} RETURNING *) "
            f"INSERT INTO {name} SELECT * FROM moved"
        )
    ).rowcount
    session.execute(text(f"ALTER TABLE {parent} ATTACH PARTITION {name} FOR VALUES FROM ({low}) TO ({high})"))
    log.info("created %s: moved %d rows of that month out of %s", name, moved, default)
    return moved


def _ensure(session: Session, parent: str, months: Iterable[date], existing: list[date]) -> list[date]:
    if not _is_postgres(session):
        return []
    have = set(existing)
    created = []
    for month in sorted({month_of(m) for m in months} - have):
        _create_partition(session, parent, month)
        created.append(month)
    return created


def ensure_event_partitions(session: Session, months: Iterable[date]) -> list[date]:
    """Create the ``usage_events`` partitions of ``months`` that do not exist; return those created.

    Idempotent; a no-op on SQLite. Takes a strong lock on ``usage_events`` for each one
    created: call it from the jobs, ahead of the months, not while ingesting.
    """
    months = list(months)
    return _ensure(session, EVENTS, months, event_partitions(session) if months else [])


def ensure_key_partitions(session: Session, months: Iterable[date]) -> list[date]:
    """Create the ``usage_event_keys`` partitions of ``months`` that do not exist; return those created."""
    months = list(months)
    return _ensure(session, KEYS, months, key_partitions(session) if months else [])


def drop_event_month(session: Session, month: date) -> int:
    """Remove every raw event with ``occurred_at`` in ``month``; return how many rows went.

    PostgreSQL: the month's partition is detached and dropped if it has one, else its rows
    are deleted from the default partition. SQLite: its rows are deleted. Rollups, batches
    and the ledger are untouched (the archive keeps the raw rows).
    """
    month = month_of(month)
    if _is_postgres(session) and month in event_partitions(session):
        name = event_partition_name(month)
        count = session.scalar(text(f"SELECT count(*) FROM {name}")) or 0
        session.execute(text(f"ALTER TABLE {EVENTS} DETACH PARTITION {name}"))
        session.execute(text(f"DROP TABLE {name}"))
        return int(count)
    low, high = month_bounds(month)
    result = session.execute(
        delete(UsageEvent).where(UsageEvent.occurred_at >= low, UsageEvent.occurred_at < high)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def prune_event_keys(session: Session, now: datetime) -> int:
    """Drop the dedupe keys of months entirely past the window; return the months (PG) or rows dropped.

    A key received in month M is kept until M ends plus ``dedupe_window()``: the months
    before ``key_window_start(now)`` go (PostgreSQL: their partitions are dropped, and their
    rows deleted from the default partition; SQLite: deleted).
    """
    first_kept = key_window_start(now)
    if not _is_postgres(session):
        result = session.execute(delete(UsageEventKey).where(UsageEventKey.received_month < first_kept))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
    dropped = 0
    for month in key_partitions(session):
        if month < first_kept:
            name = key_partition_name(month)
            session.execute(text(f"ALTER TABLE {KEYS} DETACH PARTITION {name}"))
            session.execute(text(f"DROP TABLE {name}"))
            dropped += 1
    session.execute(text(f"DELETE FROM {KEYS}_default WHERE received_month < :first"), {"first": first_kept})
    return dropped


@dataclass
class PartitionUpkeep:
    events_created: list[date] = field(default_factory=list)
    keys_created: list[date] = field(default_factory=list)
    key_months_dropped: int = 0
    skipped: list[str] = field(default_factory=list)  # what waited too long for its lock


def _step(session: Session, upkeep: PartitionUpkeep, what: str, action: object) -> object:
    """Run one DDL step in a savepoint; a lock timeout skips it until the next tick."""
    try:
        with session.begin_nested():
            return action()  # type: ignore[operator]
    except OperationalError as error:
        if "lock timeout" not in str(error) and "LockNotAvailable" not in type(error.orig).__name__:
            raise
        log.info("%s skipped: its table was busy for %s; the next run tries again", what, DDL_LOCK_TIMEOUT)
        upkeep.skipped.append(what)
        return None


def maintain_partitions(session: Session, now: datetime) -> PartitionUpkeep:
    """The jobs' monthly upkeep, cheap to run every tick: a no-op when nothing is due.

    Creates the partitions of the current month and the next ``MONTHS_AHEAD`` (events and
    keys) and drops key months past the dedupe window. On PostgreSQL each DDL step waits at
    most ``DDL_LOCK_TIMEOUT`` for its lock, else it is left to the next run.
    """
    upkeep = PartitionUpkeep()
    current = month_of(now)
    months = [add_months(current, n) for n in range(MONTHS_AHEAD + 1)]
    if not _is_postgres(session):
        upkeep.key_months_dropped = prune_event_keys(session, now)
        return upkeep
    session.execute(text(f"SET LOCAL lock_timeout = '{DDL_LOCK_TIMEOUT}'"))
    events_missing = sorted(set(months) - set(event_partitions(session)))
    keys = key_partitions(session)
    keys_missing = sorted(set(months) - set(keys))
    for month in events_missing:
        if (
            _step(
                session,
                upkeep,
                f"partition {event_partition_name(month)}",
                lambda m=month: _create_partition(session, EVENTS, m),
            )
            is not None
        ):
            upkeep.events_created.append(month)
    for month in keys_missing:
        if (
            _step(
                session,
                upkeep,
                f"partition {key_partition_name(month)}",
                lambda m=month: _create_partition(session, KEYS, m),
            )
            is not None
        ):
            upkeep.keys_created.append(month)
    first_kept = key_window_start(now)
    if any(month < first_kept for month in keys) or session.scalar(
        text(f"SELECT EXISTS (SELECT FROM {KEYS}_default WHERE received_month < :first)"),
        {"first": first_kept},
    ):
        dropped = _step(session, upkeep, "pruning dedupe keys", lambda: prune_event_keys(session, now))
        upkeep.key_months_dropped = int(dropped or 0)
    if upkeep.events_created or upkeep.keys_created or upkeep.key_months_dropped:
        log.info(
            "partitions: events %s, keys %s created; %d key months dropped",
            [m.isoformat()[:7] for m in upkeep.events_created],
            [m.isoformat()[:7] for m in upkeep.keys_created],
            upkeep.key_months_dropped,
        )
    return upkeep
