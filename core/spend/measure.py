"""What alert rules and caps measure: spend in a scope this period, its projection, the runway, a spike.

Reads only the daily rollup (``usage_rollup_daily``, local days in the account's time zone)
and the account's cached balance, never raw events. The billing period is the calendar month in
the account's time zone (``core.usage.ranges.billing_period``); it resets at local midnight on
the 1st (``Period.resets_at``). A cap has its own period (``cap_period``): the local day, the
week from Monday, or the month, each ending at the local midnight that starts the next one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, func, select
from sqlalchemy.orm import Session

from core.db.models import Meter, UsageRollupDaily
from core.errors import ValidationError
from core.usage.ranges import account_today

RECENT_DAYS = 7  # the run rate: the last 7 complete days (a spike looks at its weekday instead)
HISTORY_DAYS = 56  # what a projection is given: eight weeks before today


@dataclass(frozen=True)
class Period:
    """The billing period (calendar month, local) that contains ``today``."""

    start: date
    today: date
    end: date  # last day of the month, inclusive
    timezone: str

    @property
    def resets_at(self) -> datetime:
        """Local midnight on the 1st of the next month, in UTC: when monthly caps start over."""
        first = self.end + timedelta(days=1)
        return datetime.combine(first, time.min, ZoneInfo(self.timezone)).astimezone(UTC)

    @property
    def days_left_after_today(self) -> int:
        return (self.end - self.today).days


def period_of(timezone: str, at: datetime) -> Period:
    today = account_today(timezone, at)
    start = today.replace(day=1)
    next_month = (start + timedelta(days=32)).replace(day=1)
    return Period(start, today, next_month - timedelta(days=1), timezone)


CAP_PERIOD_KINDS = ("day", "week", "month")


def local_midnight(day: date, timezone: str) -> datetime:
    """The first instant of local ``day`` in UTC. A midnight skipped by a DST change (Santiago,
    Beirut...) reads with the offset before the change, which is the day's first real instant;
    a repeated midnight is its first occurrence."""
    return datetime.combine(day, time.min, ZoneInfo(timezone)).astimezone(UTC)


@dataclass(frozen=True)
class CapPeriod:
    """The cap period (local day, week from Monday, or calendar month) containing ``today``."""

    kind: str  # day | week | month
    start: date
    today: date
    end: date  # inclusive
    timezone: str

    @property
    def starts_at(self) -> datetime:
        return local_midnight(self.start, self.timezone)

    @property
    def resets_at(self) -> datetime:
        """Local midnight after ``end``, in UTC: when the cap starts over."""
        return local_midnight(self.end + timedelta(days=1), self.timezone)


def cap_period_on(kind: str, today: date, timezone: str) -> CapPeriod:
    """The ``kind`` period containing local day ``today`` (pure; calendar arithmetic only)."""
    if kind == "day":
        return CapPeriod(kind, today, today, today, timezone)
    if kind == "week":
        start = today - timedelta(days=today.weekday())  # Monday
        return CapPeriod(kind, start, today, start + timedelta(days=6), timezone)
    if kind == "month":
        start = today.replace(day=1)
        following = date(start.year + 1, 1, 1) if start.month == 12 else date(start.year, start.month + 1, 1)
        return CapPeriod(kind, start, today, following - timedelta(days=1), timezone)
    raise ValueError(f"unknown cap period {kind!r}")


def cap_period(kind: str, timezone: str, at: datetime) -> CapPeriod:
    """The ``kind`` period containing the instant ``at`` in ``timezone`` (its start, end, reset)."""
    return cap_period_on(kind, account_today(timezone, at), timezone)


@dataclass(frozen=True)
class Scope:
    """Which usage counts: the whole account, or one project, meter or API key."""

    kind: str  # account | project | meter | api_key
    value: str = ""

    def describe(self) -> str:
        if self.kind == "account":
            return "the whole account"
        label = {"project": "project", "meter": "meter", "api_key": "API key"}[self.kind]
        return f"{label} {self.value}"


def meter_id_of(session: Session, name: str) -> int:
    meter_id = session.scalar(select(Meter.id).where(Meter.name == name))
    if meter_id is None:
        raise ValidationError(f"there is no meter {name!r}", code="unknown_meter", field="scope_value")
    return int(meter_id)


def _scope_conditions(session: Session, scope: Scope) -> list[object]:
    if scope.kind == "account":
        return []
    if scope.kind == "project":
        return [UsageRollupDaily.project == scope.value]
    if scope.kind == "api_key":
        return [UsageRollupDaily.api_key == scope.value]
    if scope.kind == "meter":
        meter_id = session.scalar(select(Meter.id).where(Meter.name == scope.value))
        return [UsageRollupDaily.meter_id == (-1 if meter_id is None else meter_id)]
    raise ValueError(f"unknown scope {scope.kind!r}")


def daily_spend(session: Session, account_id: str, scope: Scope, start: date, end: date) -> dict[date, int]:
    """Rated spend per local day ``start``..``end`` (inclusive) in ``scope``; days without usage absent."""
    rows = session.execute(
        select(UsageRollupDaily.usage_date, func.sum(UsageRollupDaily.amount_nanos).cast(BigInteger))
        .where(
            UsageRollupDaily.account_id == account_id,
            UsageRollupDaily.usage_date >= start,
            UsageRollupDaily.usage_date <= end,
            *_scope_conditions(session, scope),  # type: ignore[arg-type]
        )
        .group_by(UsageRollupDaily.usage_date)
    ).all()
    return {day: int(amount) for day, amount in rows}


def spend_between(session: Session, account_id: str, scope: Scope, start: date, end: date) -> int:
    total = session.scalar(
        select(func.coalesce(func.sum(UsageRollupDaily.amount_nanos), 0).cast(BigInteger)).where(
            UsageRollupDaily.account_id == account_id,
            UsageRollupDaily.usage_date >= start,
            UsageRollupDaily.usage_date <= end,
            *_scope_conditions(session, scope),  # type: ignore[arg-type]
        )
    )
    return int(total or 0)


# --- Pure figures from a daily series -------------------------------------------------------------


def recent_total(daily: Mapping[date, int], today: date, days: int = RECENT_DAYS) -> int:
    """Spend over the ``days`` complete days before ``today``."""
    return sum(daily.get(today - timedelta(days=offset), 0) for offset in range(1, days + 1))


def projected_period_spend(daily: Mapping[date, int], period: Period) -> int:
    """Spend at the end of ``period``, from the projection engine (``core.spend.projection``:
    weekly seasonality, a robust level chosen by backtest); the expected figure, not the band."""
    from core.spend.projection import project_period  # numpy: loaded only when a rule needs it

    projection = project_period(daily, today=period.today, period_start=period.start, period_end=period.end)
    return projection.projected_nanos


def run_rate_period_spend(daily: Mapping[date, int], period: Period) -> int:
    """The naive figure the projection must beat: spent so far plus the last 7 complete days' mean
    times the days left after today."""
    spent = sum(amount for day, amount in daily.items() if period.start <= day <= period.end)
    return spent + recent_total(daily, period.today) * period.days_left_after_today // RECENT_DAYS


def runway_days(balance_nanos: int, daily: Mapping[date, int], today: date) -> int | None:
    """Whole days until the balance runs out at the recent daily rate; None when nothing is spent.

    The naive figure; alerts and the Overview page use ``core.spend.overview.account_runway``.
    """
    if balance_nanos <= 0:
        return 0
    rate_total = recent_total(daily, today)
    if rate_total <= 0:
        return None
    return balance_nanos * RECENT_DAYS // rate_total
