"""``ingest_events``: validate, rate, store, roll up and debit one batch of usage events.

Everything happens in the caller's write transaction, so a crash leaves the batch wholly
in or wholly out (DESIGN invariant 5) and the client can resend it. Idempotency
(invariant 2): the batch's accounts are locked first (``lock_accounts``), then the
``(account_id, event_id)`` pairs already stored are read in one query; under the lock no
other writer can add them, so each new event is inserted exactly once. The unique
constraint on ``(account_id, event_id)`` stays as the safety net.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.models import Account, IngestBatch, Meter
from core.errors import ValidationError
from core.ledger import lock_accounts, post_usage_batch
from core.metering import store
from core.metering.model import IngestResult, Rejection, ValidEvent
from core.metering.rater import current_rate_book, rate_events
from core.metering.settings import MAX_EVENTS_PER_CALL, max_lateness
from core.metering.validation import MeterInfo, Window, validate_event

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
            if isinstance(account_id, str) and 0 < len(account_id) <= 64:
                ids.add(account_id)
    return ids


def _existing_accounts(session: Session, candidates: set[str]) -> set[str]:
    if not candidates:
        return set()
    return set(session.scalars(select(Account.id).where(Account.id.in_(sorted(candidates)))))


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
    at: datetime,
    source: str = "api",
    lateness: timedelta | None = None,
) -> IngestResult:
    """Ingest a batch in the caller's write transaction (``unit_of_work(engine, write=True)``).

    Valid events are kept and invalid ones reported (index, field, code); duplicates of
    stored or earlier events are counted once; each account with rated usage gets one
    ledger debit referencing the batch. ``lateness`` defaults to the setting
    ``METERLINE_MAX_LATENESS_DAYS`` (35 days).
    """
    if at.tzinfo is None:
        raise ValueError("ingest_events needs an aware 'at'")
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
    window = Window.around(at, max_lateness() if lateness is None else lateness)
    meters = _load_meters(session)
    known_accounts = _existing_accounts(session, _candidate_account_ids(raw_events))

    valid: list[ValidEvent] = []
    rejected: list[Rejection] = []
    for index, raw in enumerate(raw_events):
        outcome = validate_event(index, raw, meters=meters, account_ids=known_accounts, window=window)
        if isinstance(outcome, Rejection):
            rejected.append(outcome)
        else:
            valid.append(outcome)

    # Validation ran before taking the lock (it needs none): the critical section of two
    # writers for the same account is only what follows.
    accounts = lock_accounts(session, {e.account_id for e in valid})
    new, duplicates, conflicts = _split_known(
        valid, store.stored_hashes(session, ((e.account_id, e.event_id) for e in valid))
    )
    if conflicts:
        rejected = sorted([*rejected, *conflicts], key=lambda r: r.index)
    if not new:
        return IngestResult(batch_id=None, accepted=0, duplicates=duplicates, rejected=rejected)

    zones = _zones(accounts)
    usage_dates = _local_dates(new, zones)
    # The account-local day of arrival: events dated before it change numbers already shown.
    arrival_dates = {account_id: _local_date(at, zone) for account_id, zone in zones.items()}
    rated = rate_events(session, new, usage_dates, accounts, current_rate_book(session))

    batch = IngestBatch(
        source=source,
        received_at=at,
        accepted_count=len(new),
        duplicate_count=len(duplicates),
        rejected_count=len(rejected),
    )
    session.add(batch)
    session.flush()
    batch_id = batch.id

    rows = []
    hourly: store.Rollup = {}
    daily: store.Rollup = {}
    per_account: dict[str, int] = {}
    late: dict[tuple[str, date, date], list[int]] = {}
    for event, usage_date, (amount, version_id) in zip(new, usage_dates, rated, strict=True):
        dims = event.dimensions
        model = dims.get("model", "")
        project = dims.get("project", "")
        api_key = dims.get("api_key", "")
        rows.append(
            (
                event.account_id,
                event.event_id,
                event.meter_id,
                event.quantity,
                event.occurred_at,
                usage_date,
                model,
                project,
                api_key,
                dims,
                amount,
                version_id,
                event.content_hash,
                batch_id,
                at,
            )
        )
        store.add_to_rollup(
            hourly,
            (
                event.account_id,
                event.occurred_at.replace(minute=0, second=0, microsecond=0),
                event.meter_id,
                model,
                project,
                api_key,
            ),
            event.quantity,
            amount,
        )
        store.add_to_rollup(
            daily,
            (event.account_id, usage_date, event.meter_id, model, project, api_key),
            event.quantity,
            amount,
        )
        per_account[event.account_id] = per_account.get(event.account_id, 0) + amount
        arrived_on = arrival_dates[event.account_id]
        if usage_date < arrived_on:
            sums = late.setdefault((event.account_id, usage_date, arrived_on), [0, 0])
            sums[0] += 1
            sums[1] += amount

    store.insert_events(session, rows)
    store.upsert_rollups(session, hourly, daily)
    store.record_late_usage(session, late)
    # One debit per account, all accounts' grants read in one query.
    post_usage_batch(session, accounts=accounts, amounts=per_account, at=at, reference=f"batch:{batch_id}")
    session.flush()
    return IngestResult(
        batch_id=batch_id,
        accepted=len(new),
        duplicates=duplicates,
        rejected=rejected,
        amount_nanos=sum(per_account.values()),
    )
