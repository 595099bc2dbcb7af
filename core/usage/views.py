"""Usage read views: built from the rollup tables only, never from raw events.

By day reads ``usage_rollup_daily`` (local days in the account's timezone); by hour
reads ``usage_rollup_hourly`` (UTC hours, shown in the account's timezone). Frames
keep exact integers (int64 quantities, nano-credit amounts, event counts): sums are
cast to BIGINT in SQL and frames are built from rows, never with ``read_sql`` (which
would turn PostgreSQL NUMERIC sums into float64).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal
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
# What an empty dimension value is called in charts and tables.
NO_VALUE = "(none)"

FRAME_COLUMNS = ("bucket", "group", "meter", "unit", "quantity", "amount_nanos", "events")
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
    for column in ("group", "meter", "unit"):
        frame[column] = pd.Series(dtype="object")
    return frame


def usage_frame(
    session: Session,
    account_id: str,
    *,
    start: date,
    end: date,
    granularity: Granularity = "day",
    group_by: GroupBy = "meter",
) -> pd.DataFrame:
    """Usage of ``account_id`` on local days ``start``..``end`` (inclusive), one row per
    bucket, group and meter.

    Columns: ``bucket`` (naive local start of the day or hour), ``group`` (the meter's
    display name, or the model/project/API key), ``meter``, ``unit``, and the exact int64
    sums ``quantity``, ``amount_nanos`` and ``events``. Quantities of different meters are
    never added together (they may have different units): ``meter`` is always a key.
    """
    if group_by not in GROUP_BY:
        raise ValidationError(f"group by one of {', '.join(GROUP_BY)}", field="group_by")
    if granularity not in ("day", "hour"):
        raise ValidationError("granularity is day or hour", field="granularity")
    if start > end:
        raise ValidationError("the start date is after the end date", field="range")
    if (end - start).days + 1 > MAX_RANGE_DAYS:
        raise ValidationError(f"read at most {MAX_RANGE_DAYS} days at once", field="range")
    timezone = _account_timezone(session, account_id)

    table: type[UsageRollupDaily] | type[UsageRollupHourly]
    if granularity == "day":
        table = UsageRollupDaily
        bucket_column = UsageRollupDaily.usage_date
        where = [UsageRollupDaily.usage_date >= start, UsageRollupDaily.usage_date <= end]
    else:
        table = UsageRollupHourly
        bucket_column = UsageRollupHourly.hour_start
        lower, upper = DateRange(start, end, timezone).utc_bounds()
        where = [UsageRollupHourly.hour_start >= lower, UsageRollupHourly.hour_start < upper]
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
        .where(table.account_id == account_id, *where)
        .group_by(bucket_column, group_column, Meter.name, Meter.display_name, Meter.unit)
        .order_by(bucket_column, group_column, Meter.name)
    )
    rows = session.execute(stmt).all()
    if not rows:
        return _empty_frame()

    zone = ZoneInfo(timezone)
    buckets: list[datetime] = []
    groups: list[str] = []
    meters: list[str] = []
    units: list[str] = []
    quantities: list[int] = []
    amounts: list[int] = []
    events: list[int] = []
    for bucket, group, meter_name, meter_display, unit, quantity, amount, count in rows:
        if granularity == "day":
            buckets.append(datetime(bucket.year, bucket.month, bucket.day))
        else:
            buckets.append(bucket.astimezone(zone).replace(tzinfo=None))
        meter_label = meter_display or meter_name
        groups.append(meter_label if group_by == "meter" else (group or NO_VALUE))
        meters.append(meter_label)
        units.append(unit)
        quantities.append(int(quantity))
        amounts.append(int(amount))
        events.append(int(count))
    frame = pd.DataFrame(
        {
            "bucket": pd.to_datetime(pd.Series(buckets)).astype("datetime64[us]"),
            "group": pd.Series(groups, dtype="object"),
            "meter": pd.Series(meters, dtype="object"),
            "unit": pd.Series(units, dtype="object"),
            "quantity": pd.Series(quantities, dtype="int64"),
            "amount_nanos": pd.Series(amounts, dtype="int64"),
            "events": pd.Series(events, dtype="int64"),
        }
    )
    if granularity == "hour":
        # Two UTC hours can map onto one local hour when clocks go back: add them up.
        frame = frame.groupby(["bucket", "group", "meter", "unit"], as_index=False, sort=True)[
            list(INT_COLUMNS)
        ].sum()
    return frame


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
