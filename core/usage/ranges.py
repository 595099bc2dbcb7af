"""Date ranges in an account's timezone: today, the last N days, the billing period, custom.

Every range is a pair of *local* calendar days (both inclusive) in the account's
timezone, because the daily rollup is kept per local day. The billing period is the
calendar month that contains "today" in that timezone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from core.display import format_date_range
from core.errors import ValidationError

# Longest range the portal reads (a limit on everything: a year of days, ~8,800 hours).
MAX_RANGE_DAYS = 366

RANGE_PRESETS: dict[str, str] = {
    "today": "Today",
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    "90d": "Last 90 days",
    "period": "This billing period",
    "custom": "Custom range",
}


@dataclass(frozen=True)
class DateRange:
    """Local days ``start``..``end`` (inclusive) in ``timezone``."""

    start: date
    end: date
    timezone: str

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def utc_bounds(self) -> tuple[datetime, datetime]:
        """The half-open UTC interval [start 00:00 local, day after end 00:00 local)."""
        zone = ZoneInfo(self.timezone)
        lower = datetime.combine(self.start, time.min, zone).astimezone(UTC)
        upper = datetime.combine(self.end + timedelta(days=1), time.min, zone).astimezone(UTC)
        return lower, upper

    def describe(self, *, with_year: bool = True, zone_label: str | None = None) -> str:
        """Words next to every number read over this range: "Nov 1–22, 2026 (UTC)".

        ``zone_label`` replaces the IANA name where space is short (e.g. "PST", see ``zone_abbreviation``).
        """
        text = describe_dates(self.start, self.end)
        if not with_year and self.start.year == self.end.year:
            text = text.removesuffix(f", {self.end.year}")
        return f"{text} ({zone_label or self.timezone})"


def describe_dates(start: date, end: date) -> str:
    """Dates for people: "Nov 22, 2026", "Nov 1–22, 2026", "Oct 25 – Nov 22, 2026" (``core.display``)."""
    return format_date_range(start, end)


def zone_abbreviation(timezone: str, at: datetime) -> str:
    """The short name of ``timezone`` at ``at``: "UTC", "PST", "CET" (or "+0530" where there is none)."""
    return at.astimezone(ZoneInfo(timezone)).strftime("%Z")


def account_today(timezone: str, at: datetime) -> date:
    """The calendar day it is at ``at`` in ``timezone``."""
    if at.tzinfo is None:
        raise ValueError("account_today needs an aware datetime")
    return at.astimezone(ZoneInfo(timezone)).date()


def billing_period(timezone: str, at: datetime) -> DateRange:
    """The billing period so far: the calendar month of ``at`` (local), from its 1st to today."""
    today = account_today(timezone, at)
    return DateRange(today.replace(day=1), today, timezone)


def preset_range(
    preset: str, *, timezone: str, at: datetime, custom: tuple[date, date] | None = None
) -> DateRange:
    """The range a preset names (see ``RANGE_PRESETS``), ending today in the account's timezone."""
    today = account_today(timezone, at)
    if preset == "today":
        return DateRange(today, today, timezone)
    if preset in ("7d", "30d", "90d"):
        days = int(preset.removesuffix("d"))
        return DateRange(today - timedelta(days=days - 1), today, timezone)
    if preset == "period":
        return billing_period(timezone, at)
    if preset == "custom":
        if custom is None:
            raise ValidationError("pick a start and an end date", field="range")
        start, end = custom
        if start > end:
            raise ValidationError("the start date is after the end date: swap them", field="range")
        if (end - start).days + 1 > MAX_RANGE_DAYS:
            raise ValidationError(f"pick at most {MAX_RANGE_DAYS} days", field="range")
        return DateRange(start, end, timezone)
    raise ValidationError(f"unknown range {preset!r}; use one of {', '.join(RANGE_PRESETS)}", field="range")
