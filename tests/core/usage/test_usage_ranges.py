"""Ranges in the account's timezone: presets, the billing period, custom ranges, labels."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from core.errors import ValidationError
from core.usage import DateRange, billing_period, describe_dates, preset_range
from core.usage.ranges import zone_abbreviation

AT = datetime(2026, 11, 22, 3, 30, tzinfo=UTC)  # Nov 21 evening in New York


@pytest.mark.parametrize(
    ("preset", "start", "end"),
    [
        ("today", date(2026, 11, 22), date(2026, 11, 22)),
        ("7d", date(2026, 11, 16), date(2026, 11, 22)),
        ("30d", date(2026, 10, 24), date(2026, 11, 22)),
        ("90d", date(2026, 8, 25), date(2026, 11, 22)),
        ("period", date(2026, 11, 1), date(2026, 11, 22)),
    ],
)
def test_presets_end_today(preset: str, start: date, end: date) -> None:
    dates = preset_range(preset, timezone="UTC", at=AT)
    assert (dates.start, dates.end) == (start, end)


def test_today_is_the_accounts_today() -> None:
    assert preset_range("today", timezone="America/New_York", at=AT).start == date(2026, 11, 21)
    assert billing_period("Asia/Tokyo", datetime(2026, 11, 30, 16, tzinfo=UTC)).start == date(2026, 12, 1)


def test_custom_range_is_checked() -> None:
    assert (
        preset_range("custom", timezone="UTC", at=AT, custom=(date(2026, 1, 1), date(2026, 1, 31))).days == 31
    )
    with pytest.raises(ValidationError):
        preset_range("custom", timezone="UTC", at=AT, custom=(date(2026, 2, 1), date(2026, 1, 1)))
    with pytest.raises(ValidationError):
        preset_range("custom", timezone="UTC", at=AT, custom=(date(2024, 1, 1), date(2026, 1, 1)))
    with pytest.raises(ValidationError):
        preset_range("custom", timezone="UTC", at=AT)
    with pytest.raises(ValidationError):
        preset_range("fortnight", timezone="UTC", at=AT)


def test_utc_bounds_follow_the_timezone() -> None:
    lower, upper = DateRange(date(2026, 11, 1), date(2026, 11, 1), "America/New_York").utc_bounds()
    # Clocks go back on Nov 1, 2026 in New York: that local day is 25 hours long.
    assert lower == datetime(2026, 11, 1, 4, tzinfo=UTC)
    assert upper == datetime(2026, 11, 2, 5, tzinfo=UTC)


def test_labels() -> None:
    assert describe_dates(date(2026, 11, 1), date(2026, 11, 22)) == "Nov 1–22, 2026"
    assert describe_dates(date(2026, 10, 24), date(2026, 11, 22)) == "Oct 24 – Nov 22, 2026"
    assert describe_dates(date(2025, 12, 30), date(2026, 1, 5)) == "Dec 30, 2025 – Jan 5, 2026"
    assert (
        DateRange(date(2026, 11, 1), date(2026, 11, 22), "UTC").describe(with_year=False) == "Nov 1–22 (UTC)"
    )


def test_zone_abbreviation_for_short_labels() -> None:
    assert zone_abbreviation("UTC", AT) == "UTC"
    assert zone_abbreviation("America/Los_Angeles", AT) == "PST"
    dates = DateRange(date(2026, 11, 1), date(2026, 11, 22), "America/Los_Angeles")
    assert dates.describe(with_year=False, zone_label="PST") == "Nov 1–22 (PST)"
