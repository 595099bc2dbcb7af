"""``ingest_events``: validate, rate, store, roll up and debit one batch of usage events.

Everything happens in the caller's write transaction, so a crash leaves the batch wholly
in or wholly out (DESIGN invariant 5) and the client can resend it.

Two paths, one outcome:

- **Lock first** (SQLite, whose write transaction holds the database lock anyway; and the
  fallback on PostgreSQL): the batch's accounts are locked (``lock_accounts``), then the
  batch's keys already filed in ``usage_event_keys`` within the dedupe window are read in one
  query; under the lock no other writer can add them, so each new event is inserted exactly
  once (invariant 2), and its key filed with it.
- **Lock late** (PostgreSQL): the keys go in first through ``INSERT … ON CONFLICT DO
  NOTHING`` into ``usage_event_keys`` (its primary key counts each once; ``usage_events``,
  partitioned by month, has no unique event id), then the new events, and the accounts are
  locked only for what must be serial: the rollup sums, late usage, the ledger debit and the
  commit. Batches of the same accounts then overlap in everything else. What decides money
  is read again under the lock (the clock, pricing, the rate book revision, tier volumes);
  anything this path does not handle falls back to its savepoint and the lock-first path.

Duplicates are recognised within the dedupe window (``core.metering.dedupe``: lateness +
2 days after an id was received, and the month boundary); an event dated before it (a
backfill with more lateness) is also looked up among the raw rows, exact resends only.

Either way the moment a batch burns grants is read once its accounts are locked
(invariant 9), and no total can overflow (``core.metering.limits``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.clock import Clock, fixed_clock
from core.db import is_postgres
from core.db.models import Account, IngestBatch, Meter
from core.errors import ValidationError
from core.ledger import UsageGrants, deficit_of, load_usage_grants, lock_accounts, post_usage_batch
from core.metering import store
from core.metering.dedupe import KeyMonths, commit_by, probe_events_before
from core.metering.limits import StoredTotals, over_ceilings
from core.metering.model import IngestResult, Rejection, ValidEvent
from core.metering.plan import BatchPlan, account_sums, build_plan, event_keys, event_rows
from core.metering.rater import current_rate_book, rate_events, rate_events_tiered
from core.metering.settings import MAX_EVENT_AMOUNT_NANOS, MAX_EVENTS_PER_CALL, max_lateness
from core.metering.validation import MeterInfo, Window, validate_events
from core.text import is_clean_text

SOURCES = ("api", "cli", "seed")
_UTC_NAMES = {"UTC", "Etc/UTC", "GMT", "Etc/GMT", "Z"}


def _load_meters(session: Session) -> dict[str, MeterInfo]:
    return {
        name: MeterInfo(meter_id, name, frozenset(dimensions or ()))
        for meter_id, name, dimensions in session.execute(select(Meter.id, Meter.name, Meter.dimensions))
    }


def _candidate_account_ids(raw_events: Sequence[object]) -> set[str]:
    ids = set()
    for raw in raw_events:
        if isinstance(raw, dict):
            account_id = raw.get("account_id")
            if isinstance(account_id, str):
                ids.add(account_id)
    # A batch repeats few accounts: check each distinct one once.
    return {a for a in ids if 0 < len(a) <= 64 and is_clean_text(a)}


def _existing_accounts(session: Session, candidates: set[str]) -> dict[str, Account]:
    """The accounts among ``candidates``, as they are now (not locked: the lock comes later)."""
    if not candidates:
        return {}
    return {a.id: a for a in session.scalars(select(Account).where(Account.id.in_(sorted(candidates))))}


def _split_known(
    events: Sequence[ValidEvent], stored: dict[tuple[str, str], str]
) -> tuple[list[ValidEvent], list[str], list[Rejection]]:
    """New events, duplicate ids and conflicts, whether the twin is stored or earlier in the batch."""
    new: list[ValidEvent] = []
    duplicates: list[str] = []
    conflicts: list[Rejection] = []
    seen: dict[tuple[str, str], str] = {}
    for event in events:
        key = (event.account_id, event.event_id)
        known = stored.get(key) or seen.get(key)
        if known is None:
            seen[key] = event.content_hash
            new.append(event)
        elif known == event.content_hash:
            duplicates.append(event.event_id)
        else:
            conflicts.append(
                Rejection(
                    event.index,
                    event.event_id,
                    "event_id",
                    "conflict",
                    f"event {event.event_id!r} was already received with different content; "
                    "use a new event_id for a new event",
                )
            )
    return new, duplicates, conflicts


def _stored_hashes(
    session: Session, events: Sequence[ValidEvent], since: date, now: datetime
) -> dict[tuple[str, str], str]:
    """Content hashes of the events already received: their keys in the dedupe window, and for
    events dated before it (a backfill), an exact resend among the raw rows."""
    stored = store.stored_hashes(session, ((e.account_id, e.event_id) for e in events), since=since)
    return stored | _stored_old_events(session, events, now, skip=stored)


def _stored_old_events(
    session: Session, events: Sequence[ValidEvent], now: datetime, *, skip: dict[tuple[str, str], str]
) -> dict[tuple[str, str], str]:
    """Hashes of events dated before the dedupe window that are stored as they are (exact resends)."""
    before = probe_events_before(now)
    old = [
        (e.account_id, e.occurred_at, e.event_id)
        for e in events
        if e.occurred_at < before and (e.account_id, e.event_id) not in skip
    ]
    return store.stored_event_hashes(session, old) if old else {}


def _zones(accounts: dict[str, Account]) -> dict[str, ZoneInfo | None]:
    """Each account's time zone (None for UTC, the common case, which needs no conversion)."""
    return {
        account_id: None if account.timezone in _UTC_NAMES else ZoneInfo(account.timezone)
        for account_id, account in accounts.items()
    }


def _local_date(moment: datetime, zone: ZoneInfo | None) -> date:
    return (moment if zone is None else moment.astimezone(zone)).date()


def _local_dates(events: Sequence[ValidEvent], zones: dict[str, ZoneInfo | None]) -> list[date]:
    return [_local_date(event.occurred_at, zones[event.account_id]) for event in events]


def ingest_events(
    session: Session,
    raw_events: Sequence[object],
    *,
    at: datetime | None = None,
    clock: Clock | None = None,
    source: str = "api",
    lateness: timedelta | None = None,
) -> IngestResult:
    """Ingest a batch in the caller's write transaction (``unit_of_work(engine, write=True)``).

    Valid events are kept and invalid ones reported (index, field, code); duplicates of
    stored or earlier events are counted once; each account with rated usage gets one
    ledger debit referencing the batch. ``lateness`` defaults to the setting
    ``METERLINE_MAX_LATENESS_DAYS`` (35 days).

    Pass ``clock`` (live traffic) or a fixed ``at`` (history, tests). The clock is read
    again once the accounts are locked: that moment, not the request's arrival, is when
    the batch burns grants (DESIGN invariant 9), so a grant committed while this batch
    waited for the lock is in effect for it.
    """
    if (at is None) == (clock is None):
        raise ValueError("ingest_events needs exactly one of at= and clock=")
    read_clock = clock if clock is not None else fixed_clock(at)  # type: ignore[arg-type]
    arrived_at = read_clock()
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}")
    if not isinstance(raw_events, (list, tuple)):
        raise ValidationError("events must be a list", code="not_a_list", field="events")
    if len(raw_events) > MAX_EVENTS_PER_CALL:
        raise ValidationError(
            f"at most {MAX_EVENTS_PER_CALL:,} events per call; send smaller batches",
            code="too_many_events",
            field="events",
        )
    window = Window.around(arrived_at, max_lateness() if lateness is None else lateness)
    meters = _load_meters(session)
    known_accounts = _existing_accounts(session, _candidate_account_ids(raw_events))

    valid, rejected = validate_events(raw_events, meters=meters, account_ids=known_accounts, window=window)

    if valid and is_postgres(session):
        optimistic = _ingest_locking_late(
            session,
            valid,
            rejected,
            known_accounts,
            read_clock=read_clock,
            arrived_at=arrived_at,
            source=source,
        )
        if optimistic is not None:
            return optimistic

    # Validation ran before taking the lock (it needs none): the critical section of two
    # writers for the same account is only what follows.
    accounts = lock_accounts(session, {e.account_id for e in valid})
    now = read_clock()  # under the lock: the moment this batch burns and expires grants
    if now.tzinfo is None:
        raise ValueError("ingest_events needs an aware clock")
    postgres = is_postgres(session)
    months = KeyMonths(now, postgres=postgres)
    new, duplicates, conflicts = _split_known(valid, _stored_hashes(session, valid, months.since, now))
    rejected.extend(conflicts)
    file_under = (months.grace_month, months.file_under) if months.grace_month else (months.file_under,)
    zones = _zones(accounts)
    # The account-local day of arrival: events dated before it change numbers already shown.
    arrival_dates = {account_id: _local_date(now, zone) for account_id, zone in zones.items()}
    grants = load_usage_grants(session, {e.account_id for e in new}, now)
    deficits = {account_id: deficit_of(accounts[account_id], held) for account_id, held in grants.items()}
    book = current_rate_book(session)

    stored_totals: StoredTotals | None = None
    batch_id: int | None = None
    plan = BatchPlan()
    while new:
        usage_dates = _local_dates(new, zones)
        rated = rate_events(session, new, usage_dates, accounts, book)
        plan = build_plan(new, usage_dates, rated, arrival_dates, received_at=now)
        if stored_totals is not None or not plan.fits(deficits):
            # Some total is large: find the events that pass a ceiling, in request order, drop
            # them and rate the rest again (a dropped event changes later tier volumes).
            keys = event_keys(new, usage_dates, arrival_dates)
            amounts = [amount for amount, _ in rated]
            over = over_ceilings(new, amounts, keys, deficits=deficits, stored=stored_totals)
            if over:
                rejected.extend(over)
                dropped = {r.index for r in over}
                new = [event for event in new if event.index not in dropped]
                continue
        if stored_totals is not None:
            # Checked against the exact stored totals under the lock: this write cannot fail.
            batch_id = _write(session, plan, source, now, len(duplicates), len(rejected), file_under)
            break
        try:
            with session.begin_nested():
                batch_id = _write(session, plan, source, now, len(duplicates), len(rejected), file_under)
            break
        except Exception as error:
            if not store.is_ceiling_error(error):
                raise
            # A stored total would pass its ceiling: read them all (only now) and check exactly.
            stored_totals = store.stored_totals(session, event_keys(new, usage_dates, arrival_dates))
    rejected.sort(key=lambda r: r.index)
    if batch_id is None:
        return IngestResult(batch_id=None, accepted=0, duplicates=duplicates, rejected=rejected)
    if postgres:
        commit_by(session, read_clock, months.file_under)  # core.metering.dedupe: the month boundary
    _debit(session, accounts, new, plan, batch_id=batch_id, at=now, grants=grants)
    return IngestResult(
        batch_id=batch_id,
        accepted=len(new),
        duplicates=duplicates,
        rejected=rejected,
        amount_nanos=sum(plan.per_account.values()),
    )


def _debit(
    session: Session,
    accounts: dict[str, Account],
    events: Sequence[ValidEvent],
    plan: BatchPlan,
    *,
    batch_id: int,
    at: datetime,
    grants: UsageGrants,
) -> None:
    """One debit per account, on the grants read under the lock; stamp the accounts' data version."""
    for account_id in {event.account_id for event in events}:
        accounts[account_id].last_batch_id = batch_id  # the live pages' data version
    post_usage_batch(
        session,
        accounts=accounts,
        amounts=plan.per_account,
        at=at,
        reference=f"batch:{batch_id}",
        grants=grants,
    )
    session.flush()


def _pricing(accounts: dict[str, Account]) -> dict[str, tuple[object, ...]]:
    """What rating and dating depend on, per account (compared before and after the lock)."""
    return {a: (x.timezone, x.rate_card_id, x.override_rate_card_id) for a, x in accounts.items()}


def _ingest_locking_late(
    session: Session,
    valid: list[ValidEvent],
    rejected: list[Rejection],
    known_accounts: dict[str, Account],
    *,
    read_clock: Clock,
    arrived_at: datetime,
    source: str,
) -> IngestResult | None:
    """PostgreSQL: write the events first, lock the accounts only for the sums and the debit.

    Batches of the same accounts then overlap in everything but their critical section
    (rollups, late usage, ledger, commit) instead of queueing from the dedupe lookup on.
    The primary key of ``usage_event_keys`` makes each event count once within the dedupe
    window (a batch filing a key another is filing waits for it, then sees a duplicate; around
    a month's turn ``core.metering.dedupe``'s grace rules apply and the commit is checked).

    Under the lock, what decided money is read again: the clock (the batch burns then),
    the accounts' rate cards and time zones, and the rate book revision; tiered prices
    are rated again with the monthly volume as it is now. Amounts that changed are
    updated in place, before any sum is taken. Whatever this path does not handle (a
    ceiling, an account whose pricing changed) rolls back to its savepoint and returns
    None: the caller then runs the path that locks first, from scratch.
    """
    new, duplicates, conflicts = _split_known(valid, {})  # twins within the batch
    months = KeyMonths(arrived_at, postgres=True)
    old_stored = _stored_old_events(session, new, arrived_at, skip={})
    if old_stored:  # exact resends of events dated before the window (a backfill)
        new, old_duplicates, old_conflicts = _split_known(new, old_stored)
        duplicates.extend(old_duplicates)
        conflicts.extend(old_conflicts)
        if not new:
            return IngestResult(
                batch_id=None,
                accepted=0,
                duplicates=duplicates,
                rejected=sorted([*rejected, *conflicts], key=lambda r: r.index),
            )
    # As read before validation (``known_accounts``): pricing is read again under the lock.
    before = {account_id: known_accounts[account_id] for account_id in {event.account_id for event in new}}
    pricing_before = _pricing(before)
    zones = _zones(before)
    arrival_dates = {account_id: _local_date(arrived_at, zone) for account_id, zone in zones.items()}
    usage_dates = _local_dates(new, zones)
    book = current_rate_book(session)
    rated, tiered = rate_events_tiered(session, new, usage_dates, before, book)
    if max((amount for amount, _ in rated), default=0) > MAX_EVENT_AMOUNT_NANOS:
        return None  # an event's amount cannot be stored: rejected per event on the locked path
    rows = event_rows(new, usage_dates, rated, received_at=arrived_at)

    savepoint = session.begin_nested()
    try:
        batch = IngestBatch(
            source=source, received_at=arrived_at, accepted_count=0, duplicate_count=0, rejected_count=0
        )
        session.add(batch)
        session.flush()
        inserted = store.insert_new_events_pg(
            session,
            rows,
            batch_id=batch.id,
            month=months.file_under,
            since=months.since,
            grace_month=months.grace_month,
        )
        if len(inserted) < len(new):
            # Stored by someone else (committed: the insert waited for them): duplicate or conflict.
            keep = [i for i, e in enumerate(new) if (e.account_id, e.event_id) in inserted]
            missing = [e for e in new if (e.account_id, e.event_id) not in inserted]
            stored = store.stored_hashes(
                session, ((e.account_id, e.event_id) for e in missing), since=months.since
            )
            if len(stored) < len({(e.account_id, e.event_id) for e in missing}):
                savepoint.rollback()  # not inserted, yet not stored: leave it to the locked path
                return None
            _, known_duplicates, known_conflicts = _split_known(missing, stored)
            duplicates.extend(known_duplicates)
            conflicts.extend(known_conflicts)
            new = [new[i] for i in keep]
            usage_dates = [usage_dates[i] for i in keep]
            rated = [rated[i] for i in keep]
            rows = [rows[i] for i in keep]
        if not new:
            savepoint.rollback()  # no empty batch row
            return IngestResult(
                batch_id=None,
                accepted=0,
                duplicates=duplicates,
                rejected=sorted([*rejected, *conflicts], key=lambda r: r.index),
            )

        # The counts are final (what follows either succeeds or falls back): written before the
        # lock, so that the critical section has one statement less.
        all_rejected = sorted([*rejected, *conflicts], key=lambda r: r.index)
        batch.accepted_count = len(new)
        batch.duplicate_count = len(duplicates)
        batch.rejected_count = len(all_rejected)
        session.flush()

        accounts = lock_accounts(session, {event.account_id for event in new})
        now = read_clock()  # under the lock: the moment this batch burns and expires grants
        if now.tzinfo is None:
            raise ValueError("ingest_events needs an aware clock")
        pricing_now = _pricing(accounts)  # once: per account inside the any() made it quadratic
        if any(pricing_now[a] != pricing_before[a] for a in accounts):
            savepoint.rollback()
            return None
        book_now = current_rate_book(session)
        if tiered or book_now.token != book.token:
            rated_now = rate_events(session, new, usage_dates, accounts, book_now)
            if max((amount for amount, _ in rated_now), default=0) > MAX_EVENT_AMOUNT_NANOS:
                savepoint.rollback()  # a new price makes an amount unstorable: per event, locked path
                return None
            store.update_amounts(
                session,
                [
                    (e.account_id, e.event_id, e.occurred_at, *now_rated)
                    for e, was, now_rated in zip(new, rated, rated_now, strict=True)
                    if was != now_rated
                ],
                batch_id=batch.id,
            )
            rated = rated_now
        grants = load_usage_grants(session, {e.account_id for e in new}, now)
        deficits = {a: deficit_of(accounts[a], held) for a, held in grants.items()}
        # The rows as inserted (their amounts may have been updated since: the sums take ``rated``).
        plan = account_sums(new, rated, rows)
        if not plan.fits(deficits):
            savepoint.rollback()
            return None
        try:
            # The database sums the rollups and late usage from the rows it holds (one statement).
            rolled_up = store.roll_up_incoming_pg(session, arrival_dates)
        except Exception as error:
            if not store.is_ceiling_error(error):
                raise
            savepoint.rollback()
            return None
        assert rolled_up == len(new), (rolled_up, len(new))
        _debit(session, accounts, new, plan, batch_id=batch.id, at=now, grants=grants)
        savepoint.commit()
        commit_by(session, read_clock, months.file_under)  # core.metering.dedupe: the month boundary
    except BaseException:
        if savepoint.is_active:
            savepoint.rollback()
        raise
    return IngestResult(
        batch_id=batch.id,
        accepted=len(new),
        duplicates=duplicates,
        rejected=all_rejected,
        amount_nanos=sum(plan.per_account.values()),
    )


def _write(
    session: Session,
    plan: BatchPlan,
    source: str,
    received_at: datetime,
    duplicates: int,
    rejected: int,
    file_under: tuple[date, ...],
) -> int:
    """Write the batch row, its events and their keys (under ``file_under``), rollups and late-usage
    rows; return the batch id."""
    batch = IngestBatch(
        source=source,
        received_at=received_at,
        accepted_count=len(plan.rows),
        duplicate_count=duplicates,
        rejected_count=rejected,
    )
    session.add(batch)
    session.flush()
    batch_id = batch.id
    store.insert_events(session, plan.rows, batch_id=batch_id)
    store.insert_keys(session, plan.rows, file_under)
    store.upsert_rollups(session, plan.hourly, plan.daily)
    store.record_late_usage(session, plan.late)
    return batch_id
