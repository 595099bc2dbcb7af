"""Usage read views: built from the rollup tables only, never from raw events.

By day reads ``usage_rollup_daily`` (local days in the account's timezone); by hour
reads ``usage_rollup_hourly`` (UTC hours, shown in the account's timezone). Frames
keep exact integers (int64 quantities, nano-credit amounts, event counts): sums are
cast to BIGINT in SQL and frames are built from rows, never with ``read_sql`` (which
would turn PostgreSQL NUMERIC sums into float64).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import BigInteger, func, select
from sqlalchemy.orm import Session

from core.db.models import Account, Meter, UsageRollupDaily, UsageRollupHourly
from core.errors import NotFound, ValidationError
from core.usage.ranges import MAX_RANGE_DAYS, DateRange, billing_period

Granularity = Literal["day", "hour"]
GroupBy = Literal["meter", "model", "project", "api_key"]

GROUP_BY: dict[str, str] = {"meter": "Meter", "model": "Model", "project": "Project", "api_key": "API key"}
# The dimensions usage can be filtered by (each a column of the rollups), with their labels.
FILTER_DIMENSIONS: dict[str, str] = {"model": "Model", "project": "Project", "api_key": "API key"}
# What an empty dimension value is called in charts and tables.
NO_VALUE = "(none)"
# Values to filter by, per dimension: ``{"model": ("atlas-large",)}``; a missing or empty entry is no filter.
Filters = Mapping[str, Collection[str]]
MAX_FILTER_VALUES = 200  # a limit on everything: values of one filter read or applied

FRAME_COLUMNS = ("bucket", "group", "meter", "meter_key", "unit", "quantity", "amount_nanos", "events")
INT_COLUMNS = ("quantity", "amount_nanos", "events")


@dataclass(frozen=True)
class MeterTotal:
    meter: str  # display name
    unit: str  # singular, e.g. "token"
    quantity: int


@dataclass(frozen=True)
class UsageTotals:
    """Sums of a usage frame: spend, events, and quantity per meter (each in its own unit)."""

    amount_nanos: int
    events: int
    meters: tuple[MeterTotal, ...]


@dataclass(frozen=True)
class SpendSummary:
    """Spend in the billing period so far and today, in the account's timezone."""

    account_id: str
    timezone: str
    period: DateRange
    period_amount_nanos: int
    period_events: int
    today: date
    today_amount_nanos: int
    today_events: int
    as_of: datetime


def _account_timezone(session: Session, account_id: str) -> str:
    timezone = session.scalar(select(Account.timezone).where(Account.id == account_id))
    if timezone is None:
        raise NotFound(f"account {account_id!r} does not exist", field="account_id")
    return timezone


def _empty_frame() -> pd.DataFrame:
    frame = pd.DataFrame({column: pd.Series(dtype="int64") for column in FRAME_COLUMNS})
    frame["bucket"] = pd.Series(dtype="datetime64[us]")
    for column in ("group", "meter", "meter_key", "unit"):
        frame[column] = pd.Series(dtype="object")
    return frame


def _filter_clauses(table: type[UsageRollupDaily] | type[UsageRollupHourly], filters: Filters | None) -> list:
    """WHERE clauses for ``filters``; "(none)" stands for the empty value, as the frames show it."""
    clauses = []
    for dimension, values in (filters or {}).items():
        if dimension not in FILTER_DIMENSIONS:
            raise ValidationError(f"filter by one of {', '.join(FILTER_DIMENSIONS)}", field=dimension)
        wanted = sorted({str(value) for value in values})
        if not wanted:
            continue
        if len(wanted) > MAX_FILTER_VALUES:
            raise ValidationError(f"filter by at most {MAX_FILTER_VALUES} values", field=dimension)
        stored = ["" if value == NO_VALUE else value for value in wanted]
        clauses.append(getattr(table, dimension).in_(stored))
    return clauses


def _rollup_source(
    session: Session, account_id: str, start: date, end: date, granularity: str
) -> tuple[type[UsageRollupDaily] | type[UsageRollupHourly], Any, list[Any], ZoneInfo]:
    """The rollup table a view of local days ``start``..``end`` reads, its bucket column, the
    clauses that bound it, and the account's zone; the range and granularity checked first."""
    if granularity not in ("day", "hour"):
        raise ValidationError("granularity is day or hour", field="granularity")
    if start > end:
        raise ValidationError("the start date is after the end date", field="range")
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise ValidationError(f"read at most {MAX_RANGE_DAYS} days at once", field="range")
    timezone = _account_timezone(session, account_id)
    if granularity == "day":
        where = [UsageRollupDaily.usage_date >= start, UsageRollupDaily.usage_date <= end]
        return UsageRollupDaily, UsageRollupDaily.usage_date, where, ZoneInfo(timezone)
    lower, upper = DateRange(start, end, timezone).utc_bounds()
    where = [UsageRollupHourly.hour_start >= lower, UsageRollupHourly.hour_start < upper]
    return UsageRollupHourly, UsageRollupHourly.hour_start, where, ZoneInfo(timezone)


def _local_start(bucket: Any, granularity: str, zone: ZoneInfo) -> datetime:
    """A rollup bucket as the naive local start of its day or hour."""
    if granularity == "day":
        return datetime(bucket.year, bucket.month, bucket.day)
    return bucket.astimezone(zone).replace(tzinfo=None)


def usage_frame(
    session: Session,
    account_id: str,
    *,
    start: date,
    end: date,
    granularity: Granularity = "day",
    group_by: GroupBy = "meter",
    filters: Filters | None = None,
) -> pd.DataFrame:
    """Usage of ``account_id`` on local days ``start``..``end`` (inclusive), one row per
    bucket, group and meter, only what matches ``filters`` (model, project, API key).

    Columns: ``bucket`` (naive local start of the day or hour), ``group`` (the meter's
    display name, or the model/project/API key), ``meter`` (display name), ``meter_key``
    (its name, e.g. ``input_tokens``), ``unit``, and the exact int64 sums ``quantity``,
    ``amount_nanos`` and ``events``. Quantities of different meters are never added
    together (they may have different units): ``meter`` is always a key.
    """
    if group_by not in GROUP_BY:
        raise ValidationError(f"group by one of {', '.join(GROUP_BY)}", field="group_by")
    table, bucket_column, where, zone = _rollup_source(session, account_id, start, end, granularity)
    group_column = Meter.display_name if group_by == "meter" else getattr(table, group_by)

    stmt = (
        select(
            bucket_column,
            group_column,
            Meter.name,
            Meter.display_name,
            Meter.unit,
            func.sum(table.quantity).cast(BigInteger),
            func.sum(table.amount_nanos).cast(BigInteger),
            func.sum(table.event_count).cast(BigInteger),
        )
        .join(Meter, Meter.id == table.meter_id)
        .where(table.account_id == account_id, *where, *_filter_clauses(table, filters))
        .group_by(bucket_column, group_column, Meter.name, Meter.display_name, Meter.unit)
        .order_by(bucket_column, group_column, Meter.name)
    )
    rows = session.execute(stmt).all()
    if not rows:
        return _empty_frame()

    buckets: list[datetime] = []
    groups: list[str] = []
    meters: list[str] = []
    meter_keys: list[str] = []
    units: list[str] = []
    quantities: list[int] = []
    amounts: list[int] = []
    events: list[int] = []
    for bucket, group, meter_name, meter_display, unit, quantity, amount, count in rows:
        buckets.append(_local_start(bucket, granularity, zone))
        meter_label = meter_display or meter_name
        groups.append(meter_label if group_by == "meter" else (group or NO_VALUE))
        meters.append(meter_label)
        meter_keys.append(meter_name)
        units.append(unit)
        quantities.append(int(quantity))
        amounts.append(int(amount))
        events.append(int(count))
    frame = pd.DataFrame(
        {
            "bucket": pd.to_datetime(pd.Series(buckets)).astype("datetime64[us]"),
            "group": pd.Series(groups, dtype="object"),
            "meter": pd.Series(meters, dtype="object"),
            "meter_key": pd.Series(meter_keys, dtype="object"),
            "unit": pd.Series(units, dtype="object"),
            "quantity": pd.Series(quantities, dtype="int64"),
            "amount_nanos": pd.Series(amounts, dtype="int64"),
            "events": pd.Series(events, dtype="int64"),
        }
    )
    if granularity == "hour":
        # Two UTC hours can map onto one local hour when clocks go back: add them up.
        frame = frame.groupby(["bucket", "group", "meter", "meter_key", "unit"], as_index=False, sort=True)[
            list(INT_COLUMNS)
        ].sum()
    return frame


EXPORT_COLUMNS = (
    "bucket",
    "meter_key",
    "meter",
    "unit",
    *FILTER_DIMENSIONS,
    "quantity",
    "amount_nanos",
    "events",
)


def usage_export_frame(
    session: Session,
    account_id: str,
    *,
    start: date,
    end: date,
    granularity: Granularity = "day",
    filters: Filters | None = None,
) -> pd.DataFrame:
    """Usage of ``account_id`` on local days ``start``..``end``, one row per bucket, meter, model,
    project and API key (the stored values: an empty one stays ""), only what matches ``filters``:
    what a CSV download holds, so each row says what it is whatever the page stacked it by.

    Columns: ``EXPORT_COLUMNS``; ``bucket`` as in ``usage_frame``; exact int64 sums.
    """
    table, bucket_column, where, zone = _rollup_source(session, account_id, start, end, granularity)
    dimensions = [getattr(table, dimension) for dimension in FILTER_DIMENSIONS]
    rows = session.execute(
        select(
            bucket_column,
            Meter.name,
            Meter.display_name,
            Meter.unit,
            *dimensions,
            func.sum(table.quantity).cast(BigInteger),
            func.sum(table.amount_nanos).cast(BigInteger),
            func.sum(table.event_count).cast(BigInteger),
        )
        .join(Meter, Meter.id == table.meter_id)
        .where(table.account_id == account_id, *where, *_filter_clauses(table, filters))
        .group_by(bucket_column, Meter.name, Meter.display_name, Meter.unit, *dimensions)
        .order_by(bucket_column, Meter.name, *dimensions)
    ).all()
    records = []
    for bucket, name, display, unit, *rest in rows:
        values, (quantity, amount, count) = rest[: len(FILTER_DIMENSIONS)], rest[len(FILTER_DIMENSIONS) :]
        start_of = _local_start(bucket, granularity, zone)
        records.append(
            (
                start_of,
                name,
                display or name,
                unit,
                *(v or "" for v in values),
                int(quantity),
                int(amount),
                int(count),
            )
        )
    frame = pd.DataFrame.from_records(records, columns=list(EXPORT_COLUMNS))
    for column in INT_COLUMNS:
        frame[column] = pd.Series(frame[column].tolist(), dtype="int64")
    frame["bucket"] = pd.to_datetime(pd.Series(frame["bucket"].tolist(), dtype="object")).astype(
        "datetime64[us]"
    )
    if granularity == "hour" and not frame.empty:
        # Two UTC hours can map onto one local hour when clocks go back: add them up.
        keys = [column for column in EXPORT_COLUMNS if column not in INT_COLUMNS]
        frame = frame.groupby(keys, as_index=False, sort=True)[list(INT_COLUMNS)].sum()
    return frame


def values_used(session: Session, account_id: str) -> dict[str, list[str]]:
    """The meters (by name), models, projects and API keys ``account_id`` has ever had usage
    under, sorted, at most ``MAX_FILTER_VALUES`` each, empty values left out: the names a cap or
    an alert rule can watch and actually see spend on."""
    used: dict[str, list[str]] = {
        "meter": list(
            session.scalars(
                select(Meter.name)
                .join(UsageRollupDaily, UsageRollupDaily.meter_id == Meter.id)
                .where(UsageRollupDaily.account_id == account_id)
                .distinct()
                .order_by(Meter.name)
                .limit(MAX_FILTER_VALUES)
            )
        )
    }
    for dimension in FILTER_DIMENSIONS:
        column = getattr(UsageRollupDaily, dimension)
        used[dimension] = list(
            session.scalars(
                select(column)
                .where(UsageRollupDaily.account_id == account_id, column != "")
                .distinct()
                .order_by(column)
                .limit(MAX_FILTER_VALUES)
            )
        )
    return used


def dimension_values(session: Session, account_id: str, *, start: date, end: date) -> dict[str, list[str]]:
    """The models, projects and API keys ``account_id`` used on days ``start``..``end``, by name
    (an empty value as "(none)"): what the portal offers to filter by."""
    values: dict[str, list[str]] = {}
    for dimension in FILTER_DIMENSIONS:
        column = getattr(UsageRollupDaily, dimension)
        found = session.scalars(
            select(column)
            .where(
                UsageRollupDaily.account_id == account_id,
                UsageRollupDaily.usage_date >= start,
                UsageRollupDaily.usage_date <= end,
            )
            .distinct()
            .order_by(column)
            .limit(MAX_FILTER_VALUES)
        ).all()
        values[dimension] = [value or NO_VALUE for value in found]
    return values


@dataclass(frozen=True)
class MeterInUse:
    name: str  # e.g. "input_tokens"
    display: str  # e.g. "Input tokens"
    unit: str  # singular, e.g. "token"


def meters_used(session: Session, account_id: str, *, start: date, end: date) -> list[MeterInUse]:
    """The meters ``account_id`` has usage on for days ``start``..``end``, by display name."""
    rows = session.execute(
        select(Meter.name, Meter.display_name, Meter.unit)
        .join(UsageRollupDaily, UsageRollupDaily.meter_id == Meter.id)
        .where(
            UsageRollupDaily.account_id == account_id,
            UsageRollupDaily.usage_date >= start,
            UsageRollupDaily.usage_date <= end,
        )
        .distinct()
    ).all()
    meters = [MeterInUse(name, display or name, unit) for name, display, unit in rows]
    return sorted(meters, key=lambda meter: meter.display)


def last_usage_day(session: Session, account_id: str) -> date | None:
    """The latest local day ``account_id`` has any usage on, or None if it never had any."""
    return session.scalar(
        select(func.max(UsageRollupDaily.usage_date)).where(UsageRollupDaily.account_id == account_id)
    )


def rank_groups(frame: pd.DataFrame, *, by: str = "amount_nanos") -> list[str]:
    """Groups of a frame, largest total ``by`` first (ties by name)."""
    if frame.empty:
        return []
    totals = frame.groupby("group", sort=False)[by].sum()
    return [str(group) for group, _ in sorted(totals.items(), key=lambda item: (-int(item[1]), str(item[0])))]


def fold_into_other(frame: pd.DataFrame, keep: Collection[str], *, label: str) -> pd.DataFrame:
    """The frame with every group outside ``keep`` renamed ``label`` and summed (exact int64)."""
    if frame.empty or set(frame["group"]) <= set(keep):
        return frame
    folded = frame.copy()
    folded.loc[~folded["group"].isin(list(keep)), "group"] = label
    return folded.groupby(["bucket", "group", "meter", "meter_key", "unit"], as_index=False, sort=True)[
        list(INT_COLUMNS)
    ].sum()


def usage_totals(frame: pd.DataFrame) -> UsageTotals:
    """Exact sums of a frame from ``usage_frame``."""
    if frame.empty:
        return UsageTotals(0, 0, ())
    per_meter = frame.groupby(["meter", "unit"], sort=True)["quantity"].sum()
    return UsageTotals(
        amount_nanos=int(frame["amount_nanos"].sum()),
        events=int(frame["events"].sum()),
        meters=tuple(MeterTotal(meter, unit, int(quantity)) for (meter, unit), quantity in per_meter.items()),
    )


def _daily_sums(session: Session, account_id: str, start: date, end: date) -> tuple[int, int]:
    amount, count = session.execute(
        select(
            func.coalesce(func.sum(UsageRollupDaily.amount_nanos), 0).cast(BigInteger),
            func.coalesce(func.sum(UsageRollupDaily.event_count), 0).cast(BigInteger),
        ).where(
            UsageRollupDaily.account_id == account_id,
            UsageRollupDaily.usage_date >= start,
            UsageRollupDaily.usage_date <= end,
        )
    ).one()
    return int(amount), int(count)


def spend_summary(session: Session, account_id: str, *, at: datetime) -> SpendSummary:
    """Spend this billing period (calendar month, local) up to today, and spend today."""
    timezone = _account_timezone(session, account_id)
    period = billing_period(timezone, at)
    period_amount, period_events = _daily_sums(session, account_id, period.start, period.end)
    today_amount, today_events = _daily_sums(session, account_id, period.end, period.end)
    return SpendSummary(
        account_id=account_id,
        timezone=timezone,
        period=period,
        period_amount_nanos=period_amount,
        period_events=period_events,
        today=period.end,
        today_amount_nanos=today_amount,
        today_events=today_events,
        as_of=at,
    )
