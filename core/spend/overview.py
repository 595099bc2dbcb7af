"""The Overview page's read view: balance and runway, this period's spend and projection, expiring
credits, per-project and per-meter projections, active alerts and caps. One function, one frozen
dataclass; the page only draws it.

Daily spend comes from the daily rollup (``usage_rollup_daily``, local days in the account's
time zone; exact integer sums, cast to BIGINT in SQL), once for the account and split by project
and by meter in Python, then goes through the pure engines: ``core.spend.projection`` (where
spend is heading, with its band) and ``core.spend.runway`` (when the balance runs out, what each
expiring grant gets used for). Every amount is integer nano-credits.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import BigInteger, func, select
from sqlalchemy.orm import Session

from core.db.models import Account, Meter, UsageRollupDaily
from core.display import format_credits, format_datetime
from core.errors import NotFound
from core.ledger.engine import GrantBalance
from core.ledger.reasons import SOURCE_LABELS
from core.ledger.views import balance_view
from core.spend.projection import (
    DEFAULT_BAND_PERCENT,
    HISTORY_DAYS,
    PeriodProjection,
    daily_history,
    forecast_spend,
    project_period,
)
from core.spend.runway import RUNWAY_HORIZON_DAYS, Runway, project_runway
from core.usage.ranges import account_today
from core.usage.views import last_usage_day

EXPIRING_WITHIN_DAYS = 14  # grants expiring sooner than this get a sentence on the Overview
NO_PROJECT = "(no project)"


@dataclass(frozen=True)
class ScopeProjection:
    """This period's spend and its projection for one project or one meter."""

    kind: str  # "project" | "meter"
    name: str  # the project, or the meter's display name
    spent_nanos: int
    projected_nanos: int
    low_nanos: int
    high_nanos: int


@dataclass(frozen=True)
class ExpiringCredits:
    """A grant that expires soon, and how much of it the expected spend uses before then."""

    grant_id: int
    source: str
    description: str
    remaining_nanos: int
    expires_at: datetime
    expected_use_nanos: int
    expected_lost_nanos: int

    def days_left(self, at: datetime) -> int:
        return max(0, (self.expires_at - at).days)

    def sentence(self, at: datetime, timezone: str) -> str:
        """ "746.00 credits of promotional grant #11 expire in 4 days (Nov 30, 2026, 01:00 CET); at
        your pace you will use 150.00 credits of them, and 596.00 credits will expire unused." """
        label = SOURCE_LABELS.get(self.source, self.source).lower()
        days = self.days_left(at)
        when = "within a day" if days == 0 else f"in {days} day{'s' if days != 1 else ''}"
        stamp = format_datetime(self.expires_at, timezone)
        use = format_credits(min(self.expected_use_nanos, self.remaining_nanos))
        text = (
            f"{format_credits(self.remaining_nanos)} of {label} grant #{self.grant_id} expire {when} "
            f"({stamp}); at your pace you will use {use} of them"
        )
        if self.expected_lost_nanos > 0:
            return f"{text}, and {format_credits(self.expected_lost_nanos)} will expire unused."
        return f"{text}: none should go to waste."


@dataclass(frozen=True)
class ChartDay:
    """One day of the period: cumulative spend so far, or projected (with its band) from today on."""

    day: date
    actual_nanos: int | None  # cumulative spend through this day; None after today
    projected_nanos: int | None  # cumulative projection; None before today
    low_nanos: int | None
    high_nanos: int | None


@dataclass(frozen=True)
class AlertLine:
    name: str
    condition: str
    firing: bool
    paused: bool


@dataclass(frozen=True)
class CapLine:
    scope: str  # "the whole account", "project copilot", ...
    mode: str  # soft | hard
    limit_nanos: int
    spent_nanos: int  # over the cap's own period
    reached: bool
    period: str = "month"  # day | week | month


@dataclass(frozen=True)
class LimitsSummary:
    """Alert rules and caps of the account, from ``core.spend.alerts`` and ``core.spend.caps``."""

    alerts: tuple[AlertLine, ...]
    caps: tuple[CapLine, ...]

    @property
    def firing(self) -> tuple[AlertLine, ...]:
        return tuple(alert for alert in self.alerts if alert.firing and not alert.paused)

    @property
    def account_cap(self) -> CapLine | None:
        """The account-wide monthly cap (the lowest, if there are several): drawn on the month's chart."""
        caps = [cap for cap in self.caps if cap.scope == "the whole account" and cap.period == "month"]
        return min(caps, key=lambda cap: cap.limit_nanos) if caps else None


@dataclass(frozen=True)
class Overview:
    account_id: str
    timezone: str
    as_of: datetime
    today: date
    balance_nanos: int
    deficit_nanos: int  # zero or negative: usage no grant covered
    projection: PeriodProjection
    runway: Runway
    expiring: tuple[ExpiringCredits, ...]
    chart: tuple[ChartDay, ...]
    by_project: tuple[ScopeProjection, ...]
    by_meter: tuple[ScopeProjection, ...]
    limits: LimitsSummary
    has_usage: bool  # any spend in the history the projection reads
    last_usage_day: date | None = None  # the latest local day with any usage (None: never)

    @property
    def owed_nanos(self) -> int:
        """Usage not covered by credits (positive), 0 when the balance is not negative."""
        return max(0, -min(self.balance_nanos, self.deficit_nanos))


@dataclass(frozen=True)
class DailySpend:
    """Local daily spend of an account: in total, per project and per meter (days without spend absent)."""

    total: dict[date, int]
    by_project: dict[str, dict[date, int]]
    by_meter: dict[str, dict[date, int]]  # meter display name


def daily_spend(session: Session, account_id: str, *, start: date, end: date) -> DailySpend:
    """Spend per local day ``start``..``end`` (inclusive), split by project and by meter, exact ints."""
    rows = session.execute(
        select(
            UsageRollupDaily.usage_date,
            UsageRollupDaily.project,
            Meter.name,
            Meter.display_name,
            func.sum(UsageRollupDaily.amount_nanos).cast(BigInteger),
        )
        .join(Meter, Meter.id == UsageRollupDaily.meter_id)
        .where(
            UsageRollupDaily.account_id == account_id,
            UsageRollupDaily.usage_date >= start,
            UsageRollupDaily.usage_date <= end,
        )
        .group_by(UsageRollupDaily.usage_date, UsageRollupDaily.project, Meter.name, Meter.display_name)
    ).all()
    total: dict[date, int] = defaultdict(int)
    by_project: dict[str, dict[date, int]] = defaultdict(lambda: defaultdict(int))
    by_meter: dict[str, dict[date, int]] = defaultdict(lambda: defaultdict(int))
    for day, project, meter_name, meter_display, amount in rows:
        value = int(amount)
        total[day] += value
        by_project[project or NO_PROJECT][day] += value
        by_meter[meter_display or meter_name][day] += value
    return DailySpend(
        dict(total),
        {name: dict(days) for name, days in by_project.items()},
        {name: dict(days) for name, days in by_meter.items()},
    )


def _scope_projections(
    kind: str, series: Mapping[str, Mapping[date, int]], today: date, band_percent: int
) -> tuple[ScopeProjection, ...]:
    out = []
    for name, daily in series.items():
        projection = project_period(daily, today=today, band_percent=band_percent)
        if projection.spent_nanos == 0 and projection.projected_nanos == 0:
            continue
        out.append(
            ScopeProjection(
                kind,
                name,
                projection.spent_nanos,
                projection.projected_nanos,
                projection.low_nanos,
                projection.high_nanos,
            )
        )
    return tuple(sorted(out, key=lambda scope: (-scope.projected_nanos, scope.name)))


def _chart(daily: Mapping[date, int], projection: PeriodProjection) -> tuple[ChartDay, ...]:
    """Cumulative actual spend to today; from today the projection, its band widening in proportion."""
    days: list[ChartDay] = []
    running = 0
    day = projection.period_start
    while day < projection.today:
        running += daily.get(day, 0)
        days.append(ChartDay(day, running, None, None, None))
        day += timedelta(days=1)
    before_today = running
    # Projected cumulative spend per day; the band's distance from it grows with the share projected.
    expected = list(projection.forecast.daily_nanos)
    total_expected = projection.projected_nanos - before_today
    below = projection.projected_nanos - projection.low_nanos
    above = projection.high_nanos - projection.projected_nanos
    cumulative = 0
    for offset in range(projection.days_left):
        day = projection.today + timedelta(days=offset)
        cumulative += expected[offset] if offset < len(expected) else 0
        if offset == 0:
            cumulative = max(cumulative, projection.spent_today_nanos)
        if offset == projection.days_left - 1:
            cumulative = total_expected  # the last day lands on the headline figure exactly
        share_num, share_den = min(cumulative, max(total_expected, 0)), max(total_expected, 1)
        point = before_today + cumulative
        days.append(
            ChartDay(
                day,
                before_today + projection.spent_today_nanos if offset == 0 else None,
                point,
                max(projection.spent_nanos, point - below * share_num // share_den),
                point + above * share_num // share_den,
            )
        )
    return tuple(days)


def limits_summary(session: Session, account_id: str, *, at: datetime) -> LimitsSummary:
    """Alert rules (firing or not) and caps with this period's spend, from the alerts and caps modules."""
    from core.spend.alerts import list_rules
    from core.spend.caps import cap_statuses

    alerts = tuple(
        AlertLine(rule.name, rule.condition, rule.state == "firing", rule.paused)
        for rule in list_rules(session, account_id)
    )
    caps = tuple(
        CapLine(
            status.cap.scope_label,
            status.cap.mode,
            status.cap.limit_nanos,
            status.spent_nanos,
            status.spent_nanos >= status.cap.limit_nanos,
            status.cap.period,
        )
        for status in cap_statuses(session, account_id, at=at)
    )
    return LimitsSummary(alerts, caps)


def account_runway(
    *,
    balance_nanos: int,
    grants: list[GrantBalance],
    daily: Mapping[date, int],
    today: date,
    at: datetime,
    timezone: str,
) -> Runway:
    """When the balance runs out: the projection engine's expected spend per day for
    ``RUNWAY_HORIZON_DAYS`` from today, burned through the grants in burn order. The one
    runway of the portal: the Overview page and the "runs out within N days" alert use it."""
    history = daily_history(daily, before=today)
    path = forecast_spend(history, RUNWAY_HORIZON_DAYS, first_day=today).daily_nanos
    return project_runway(
        balance_nanos=balance_nanos,
        grants=grants,
        expected_daily_nanos=path,
        today=today,
        now=at,
        timezone=timezone,
        spent_today_nanos=daily.get(today, 0),
    )


def overview(
    session: Session, account_id: str, *, at: datetime, band_percent: int = DEFAULT_BAND_PERCENT
) -> Overview:
    """Everything the Overview page shows for ``account_id`` at ``at``."""
    account = session.get(Account, account_id)
    if account is None:
        raise NotFound(f"account {account_id!r} does not exist", field="account_id")
    timezone = account.timezone
    today = account_today(timezone, at)
    spend = daily_spend(session, account_id, start=today - timedelta(days=HISTORY_DAYS), end=today)
    projection = project_period(spend.total, today=today, band_percent=band_percent)
    balance = balance_view(session, account_id, at=at)

    runway = account_runway(
        balance_nanos=balance.balance_nanos,
        grants=[
            GrantBalance(g.grant_id, g.priority, g.effective_at, g.expires_at, g.remaining_nanos)
            for g in balance.grants
        ],
        daily=spend.total,
        today=today,
        at=at,
        timezone=timezone,
    )
    outlook = {g.grant_id: g for g in runway.grants}
    expiring = tuple(
        ExpiringCredits(
            grant_id=g.grant_id,
            source=g.source,
            description=g.description,
            remaining_nanos=g.remaining_nanos,
            expires_at=g.expires_at,
            expected_use_nanos=outlook[g.grant_id].expected_use_nanos if g.grant_id in outlook else 0,
            expected_lost_nanos=outlook[g.grant_id].expected_lost_nanos if g.grant_id in outlook else 0,
        )
        for g in balance.grants
        if g.expires_at is not None and at < g.expires_at <= at + timedelta(days=EXPIRING_WITHIN_DAYS)
    )
    return Overview(
        account_id=account_id,
        timezone=timezone,
        as_of=at,
        today=today,
        balance_nanos=balance.balance_nanos,
        deficit_nanos=balance.deficit_nanos,
        projection=projection,
        runway=runway,
        expiring=expiring,
        chart=_chart(spend.total, projection),
        by_project=_scope_projections("project", spend.by_project, today, band_percent),
        by_meter=_scope_projections("meter", spend.by_meter, today, band_percent),
        limits=limits_summary(session, account_id, at=at),
        has_usage=any(amount for amount in spend.total.values()),
        last_usage_day=last_usage_day(session, account_id),
    )
