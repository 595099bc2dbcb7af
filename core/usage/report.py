"""The Usage & Cost API's one engine: an account's usage in UTC buckets, split by groups.

``usage`` and ``costs`` read the same sums and differ in how they split them:

- **usage**: one result per meter (always: quantities of different meters have different units
  and are never added) and per value of each ``group_by`` dimension, with ``quantity`` (an
  integer, in the meter's ``unit``), ``events``, and the rated ``amount``;
- **costs**: one result per value of the ``group_by`` dimensions only (none: one result, the
  bucket's total), with the ``amount``; no quantity, since it would add different units.

Where each page is read (each bucket is UTC, ``[start, end)``):

- ``1m``: raw ``usage_events`` (index on account and time), at most 1,440 minutes a page; a page
  in a month whose raw events were archived (``core.usage.archive``) is refused, saying so (422
  ``minute_detail_archived``), rather than shown as zeros;
- ``1h``: ``usage_rollup_hourly`` (UTC hours);
- ``1d``: ``usage_rollup_daily`` when the account's time zone is UTC (its local days are UTC
  days), else the hourly rollup summed into UTC days (the daily rollup keeps local days).

The rollups are proven equal to the raw events (``meterline ledger check``), so every bucket
size gives the same totals over the same range, and they are the numbers the portal's Usage page
shows (``core.usage.views.usage_frame`` reads the same rollups). Sums are cast to BIGINT in SQL
and stay Python ints: no float anywhere.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, func, select
from sqlalchemy.orm import Session

from core.db.models import Account, Meter, UsageEvent, UsageRollupDaily, UsageRollupHourly
from core.errors import NotFound, ValidationError
from core.usage.archive import archived_months
from core.usage.report_query import ReportQuery

# Time zones whose local day is always the UTC day: the daily rollup then holds UTC days.
UTC_ZONES = frozenset(
    {"UTC", "Etc/UTC", "Etc/UCT", "UCT", "Etc/Universal", "Universal", "Etc/Zulu", "Zulu", "GMT", "Etc/GMT"}
)
DIMENSIONS = ("model", "project", "api_key")


@dataclass(frozen=True)
class ReportResult:
    """One group's sums in one bucket. ``groups`` maps each grouping (``meter`` included for usage)
    to its value; an empty dimension value is None. ``meter``/``unit``/``quantity``/``events`` are
    None in a costs result."""

    groups: tuple[tuple[str, str | None], ...]
    amount_nanos: int
    quantity: int | None = None
    unit: str | None = None
    events: int | None = None


@dataclass(frozen=True)
class ReportBucket:
    start: datetime
    end: datetime
    results: tuple[ReportResult, ...]


@dataclass(frozen=True)
class Report:
    query: ReportQuery
    account_id: str
    buckets: tuple[ReportBucket, ...]
    next_page: str | None


def _floor_day(moment: datetime) -> datetime:
    return datetime.combine(moment.date(), time.min, UTC)


def _as_utc(value: Any) -> datetime:
    """A bucket key from the database: an aware datetime, SQLite's text, or a date."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime.combine(value, time.min, UTC)
    return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)


def _minute_of(session: Session) -> ColumnElement[Any]:
    if session.get_bind().dialect.name == "postgresql":
        return func.date_trunc("minute", func.timezone("UTC", UsageEvent.occurred_at))
    return func.strftime("%Y-%m-%d %H:%M:00", UsageEvent.occurred_at)  # stored as naive UTC text


def _source(
    session: Session, query: ReportQuery, timezone: str
) -> tuple[Any, ColumnElement[Any], list[Any], bool]:
    """(table, bucket column, time filters, fold hours into days) for this page."""
    first, last = query.first(), query.page_end()
    if query.bucket == "1m":
        column = UsageEvent.occurred_at
        return UsageEvent, _minute_of(session), [column >= first, column < last], False
    if query.bucket == "1d" and timezone in UTC_ZONES:
        day = UsageRollupDaily.usage_date
        return UsageRollupDaily, day, [day >= first.date(), day < last.date()], False
    hour = UsageRollupHourly.hour_start
    return UsageRollupHourly, hour, [hour >= first, hour < last], query.bucket == "1d"


def read_report(session: Session, query: ReportQuery) -> Report:
    """The page of ``query`` (resolved to its account: ``ReportQuery.resolved``); NotFound naming
    ``account_id`` for an account that does not exist."""
    account_id = query.account_id
    if account_id is None or query.page_start is None:
        raise ValueError("read_report needs a query resolved to its account")
    timezone = session.scalar(select(Account.timezone).where(Account.id == account_id))
    if timezone is None:
        raise NotFound(f"account {account_id!r} does not exist", field="account_id")
    if query.bucket == "1m":
        archived = archived_months(session, query.first(), query.page_end())
        if archived:
            raise ValidationError(
                f"minute detail of {archived[0]:%Y-%m} was archived with its raw events (older than the "
                "retention period): use bucket=1h or 1d, which read the hourly and daily totals kept",
                code="minute_detail_archived",
                field="bucket",
            )
    table, bucket_column, time_filters, fold_days = _source(session, query, timezone)
    by_meter = query.kind == "usage" or "meter" in query.group_by
    dimensions = [name for name in DIMENSIONS if name in query.group_by]

    columns: list[Any] = [bucket_column.label("bucket")]
    if by_meter:
        columns += [Meter.name, Meter.unit]
    columns += [getattr(table, name) for name in dimensions]
    group_columns = list(columns)
    count_column = func.count() if table is UsageEvent else func.sum(table.event_count)
    stmt = select(
        *columns,
        func.sum(table.quantity).cast(BigInteger),
        func.sum(table.amount_nanos).cast(BigInteger),
        count_column.cast(BigInteger),
    ).where(table.account_id == account_id, *time_filters)
    if by_meter:
        stmt = stmt.join(Meter, Meter.id == table.meter_id)
    stmt = stmt.group_by(*group_columns)

    # (bucket start, group key) -> [quantity, amount, events]; unit per meter
    sums: dict[tuple[datetime, tuple[str | None, ...]], list[int]] = defaultdict(lambda: [0, 0, 0])
    units: dict[str, str] = {}
    for row in session.execute(stmt):
        values = list(row)
        start = _as_utc(values.pop(0))
        if fold_days:
            start = _floor_day(start)
        key: list[str | None] = []
        if by_meter:
            meter, unit = values.pop(0), values.pop(0)
            units[meter] = unit
            key.append(meter)
        for _ in dimensions:
            key.append(values.pop(0) or None)
        quantity, amount, events = (int(value or 0) for value in values)
        total = sums[(start, tuple(key))]
        total[0] += quantity
        total[1] += amount
        total[2] += events

    names = (["meter"] if by_meter else []) + dimensions
    per_bucket: dict[datetime, list[ReportResult]] = defaultdict(list)
    for (start, key), (quantity, amount, events) in sorted(
        sums.items(), key=lambda item: (item[0][0], tuple(value or "" for value in item[0][1]))
    ):
        groups = tuple(zip(names, key, strict=True))
        if query.kind == "usage":
            meter = key[0]
            result = ReportResult(groups, amount, quantity, units.get(meter or ""), events)
        else:
            result = ReportResult(groups, amount)
        per_bucket[start].append(result)
    buckets = tuple(
        ReportBucket(start, start + query.width, tuple(per_bucket.get(start, ())))
        for start in query.bucket_starts()
    )
    return Report(query, account_id, buckets, query.next_page(account_id))
