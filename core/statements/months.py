"""Statement months: calendar months on the account's clock, as UTC instants."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from core.errors import ValidationError

MONTH_PATTERN = re.compile(r"(\d{4})-(\d{2})")
MAX_MONTHS = 120  # statements offered: this month and up to ten years before it
FIRST_YEAR = 1970


@dataclass(frozen=True)
class StatementMonth:
    """One calendar month in ``timezone``: local days ``first_day``..``last_day``, UTC ``[start, end)``."""

    key: str  # "2026-11"
    timezone: str
    first_day: date
    last_day: date
    start: datetime
    end: datetime

    @property
    def label(self) -> str:
        """ "November 2026"."""
        return f"{self.first_day:%B %Y}"

    def is_closed(self, at: datetime) -> bool:
        """True once the month has ended on the account's clock (its statement is final)."""
        return at >= self.end


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)


def _next_month(day: date) -> date:
    return date(day.year + 1, 1, 1) if day.month == 12 else date(day.year, day.month + 1, 1)


def month_of(first_day: date, timezone: str) -> StatementMonth:
    zone = ZoneInfo(timezone)
    following = _next_month(first_day)
    return StatementMonth(
        key=f"{first_day.year:04d}-{first_day.month:02d}",
        timezone=timezone,
        first_day=first_day,
        last_day=following - timedelta(days=1),
        start=_local_midnight(first_day, zone),
        end=_local_midnight(following, zone),
    )


def statement_month(key: object, timezone: str, *, at: datetime) -> StatementMonth:
    """The month ``key`` ("2026-11") on the account's clock; one that has not begun is refused."""
    text = key if isinstance(key, str) else ""
    found = MONTH_PATTERN.fullmatch(text) if text.isascii() else None
    if found is None:
        raise ValidationError("a month reads YYYY-MM, like 2026-11", field="month")
    year, number = int(found.group(1)), int(found.group(2))
    if not 1 <= number <= 12:
        raise ValidationError(f"month {text}: months run from 01 to 12", field="month")
    if year < FIRST_YEAR:
        raise ValidationError(f"month {text}: there are no statements before {FIRST_YEAR}", field="month")
    today = at.astimezone(ZoneInfo(timezone)).date()
    if (year, number) > (today.year, today.month):
        raise ValidationError(f"month {text} has not begun yet", field="month")
    return month_of(date(year, number, 1), timezone)


def statement_months(timezone: str, *, since: datetime, at: datetime) -> list[StatementMonth]:
    """Every month from the one holding ``since`` to this one (month to date), newest first."""
    zone = ZoneInfo(timezone)
    first = since.astimezone(zone).date().replace(day=1)
    current = at.astimezone(zone).date().replace(day=1)
    months: list[StatementMonth] = []
    day = current
    while day >= first and len(months) < MAX_MONTHS:
        months.append(month_of(day, timezone))
        day = (day - timedelta(days=1)).replace(day=1)
    return months
