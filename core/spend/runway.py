"""Runway: when the balance runs out, and how much of each expiring grant gets used first. Pure.

Expected daily spend (from ``core.spend.projection``) is burned through the account's open
grants in the ledger's own burn order (``core.ledger.engine.plan_usage_burn``: priority,
soonest expiry, oldest), day by day in the account's time zone; a grant that reaches its expiry
loses what is left of it. The balance runs out on the first day that spend meets no grant.
Within a day, spend is spread evenly over the day's hours (today: over the hours left), so a
grant expiring at noon gets half of that day's spend. Amounts are integer nanos throughout;
the one division rounds with ``core.money.div_round_half_even``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from core.display import format_date
from core.ledger.engine import GrantBalance, plan_usage_burn
from core.money import div_round_half_even

RUNWAY_HORIZON_DAYS = 90  # beyond this, "more than 90 days"


@dataclass(frozen=True)
class GrantOutlook:
    """What the expected spend does to one grant before it expires (or within the horizon)."""

    grant_id: int
    remaining_nanos: int  # now
    expires_at: datetime | None
    expected_use_nanos: int  # used before it expires (or within the horizon when it never does)
    expected_lost_nanos: int  # left when it expires: lost


@dataclass(frozen=True)
class Runway:
    """When the balance runs out at the expected pace, if within ``horizon_days``."""

    balance_nanos: int
    runs_out_on: date | None  # None: not within the horizon (or nothing is being spent)
    days: int | None  # days from today (0 = today)
    horizon_days: int
    already_out: bool  # the balance is zero or negative now
    grants: tuple[GrantOutlook, ...]

    def describe(self) -> str:
        """Words for the runway: "runs out in 12 days, on Dec 2, 2026", "more than 90 days"."""
        if self.already_out:
            return "no credits left: the balance has run out"
        if self.runs_out_on is None or self.days is None:
            return f"more than {self.horizon_days} days at the current pace"
        when = format_date(self.runs_out_on)
        if self.days == 0:
            return f"runs out today, {when}"
        return f"runs out in {self.days} day{'s' if self.days != 1 else ''}, on {when}"


def _day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time.min, zone).astimezone(UTC)
    return start, end


def project_runway(
    *,
    balance_nanos: int,
    grants: Sequence[GrantBalance],
    expected_daily_nanos: Sequence[int],
    today: date,
    now: datetime,
    timezone: str,
    spent_today_nanos: int = 0,
) -> Runway:
    """Burn ``expected_daily_nanos`` (today first) through ``grants`` from ``now``.

    Today's expected spend less what is already spent today is what remains of today. The
    horizon is the length of ``expected_daily_nanos``.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    zone = ZoneInfo(timezone)
    horizon = len(expected_daily_nanos)
    live = {g.grant_id: g for g in grants if g.remaining_nanos > 0}
    used = dict.fromkeys(live, 0)
    lost = dict.fromkeys(live, 0)
    closed: set[int] = set()
    runs_out_on: date | None = None
    already_out = balance_nanos <= 0

    def expire_until(moment: datetime) -> None:
        for grant in list(live.values()):
            if grant.expires_at is not None and grant.expires_at <= moment and grant.grant_id not in closed:
                lost[grant.grant_id] = grant.remaining_nanos
                closed.add(grant.grant_id)
                del live[grant.grant_id]

    for offset, expected in enumerate(expected_daily_nanos):
        day = today + timedelta(days=offset)
        day_start, day_end = _day_bounds(day, zone)
        start = max(day_start, now) if offset == 0 else day_start
        amount = max(0, expected - spent_today_nanos) if offset == 0 else expected
        if start >= day_end:
            continue
        # Cut the day at each expiry inside it; spend is spread evenly over the day's time left.
        cuts = sorted(
            {
                g.expires_at
                for g in live.values()
                if g.expires_at is not None and start < g.expires_at < day_end
            }
        )
        total_seconds = int((day_end - start).total_seconds())
        cursor, burned = start, 0
        for edge in [*cuts, day_end]:
            expire_until(cursor)
            seconds = int((edge - cursor).total_seconds())
            share = (
                amount - burned
                if edge == day_end
                else div_round_half_even(amount * seconds, max(total_seconds, 1))
            )
            burned += share
            if share > 0:
                for posting in plan_usage_burn(live.values(), share, cursor):
                    if posting.grant_id is None:
                        if runs_out_on is None and not already_out:
                            runs_out_on = day
                        continue
                    grant = live[posting.grant_id]
                    used[grant.grant_id] += -posting.amount_nanos
                    left = grant.remaining_nanos + posting.amount_nanos
                    live[grant.grant_id] = replace(grant, remaining_nanos=left)
            cursor = edge
        expire_until(day_end)
    outlooks = tuple(
        GrantOutlook(
            grant_id=g.grant_id,
            remaining_nanos=g.remaining_nanos,
            expires_at=g.expires_at,
            expected_use_nanos=used[g.grant_id],
            expected_lost_nanos=lost[g.grant_id],
        )
        for g in grants
        if g.grant_id in used
    )
    days = None if runs_out_on is None else (runs_out_on - today).days
    return Runway(
        balance_nanos=balance_nanos,
        runs_out_on=today if already_out else runs_out_on,
        days=0 if already_out else days,
        horizon_days=horizon,
        already_out=already_out,
        grants=outlooks,
    )
