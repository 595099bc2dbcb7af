"""Cap periods, pure: the local day, the week from Monday and the month containing an instant,
with their resets across DST changes, weeks that span months and years, Dec 31 and Feb 29."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from core.spend.measure import cap_period, cap_period_on


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(
    ("kind", "today", "start", "end"),
    [
        ("day", date(2026, 11, 20), date(2026, 11, 20), date(2026, 11, 20)),
        ("week", date(2026, 11, 20), date(2026, 11, 16), date(2026, 11, 22)),  # Friday: from Monday
        ("week", date(2026, 11, 16), date(2026, 11, 16), date(2026, 11, 22)),  # a Monday starts its own
        ("week", date(2026, 11, 22), date(2026, 11, 16), date(2026, 11, 22)),  # a Sunday ends it
        ("week", date(2026, 11, 1), date(2026, 10, 26), date(2026, 11, 1)),  # spans two months
        ("week", date(2026, 12, 31), date(2026, 12, 28), date(2027, 1, 3)),  # spans two years
        ("week", date(2027, 1, 2), date(2026, 12, 28), date(2027, 1, 3)),
        ("month", date(2026, 12, 31), date(2026, 12, 1), date(2026, 12, 31)),
        ("month", date(2028, 2, 29), date(2028, 2, 1), date(2028, 2, 29)),  # leap year
        ("month", date(2027, 2, 14), date(2027, 2, 1), date(2027, 2, 28)),
        ("day", date(2028, 2, 29), date(2028, 2, 29), date(2028, 2, 29)),
    ],
)
def test_period_edges(kind: str, today: date, start: date, end: date) -> None:
    period = cap_period_on(kind, today, "UTC")
    assert (period.start, period.end, period.today) == (start, end, today)


def test_resets_at_is_local_midnight_after_the_period_in_utc() -> None:
    assert cap_period_on("day", date(2026, 12, 31), "UTC").resets_at == utc(2027, 1, 1)
    assert cap_period_on("month", date(2026, 12, 31), "Europe/Paris").resets_at == utc(2026, 12, 31, 23)
    assert cap_period_on("month", date(2028, 2, 29), "UTC").resets_at == utc(2028, 3, 1)
    assert cap_period_on("week", date(2026, 12, 31), "UTC").resets_at == utc(2027, 1, 4)


def test_days_across_dst_changes_are_23_or_25_hours() -> None:
    spring = cap_period_on("day", date(2026, 3, 8), "America/New_York")  # 02:00 EST → 03:00 EDT
    assert (spring.starts_at, spring.resets_at) == (utc(2026, 3, 8, 5), utc(2026, 3, 9, 4))
    autumn = cap_period_on("day", date(2026, 11, 1), "America/New_York")  # 02:00 EDT → 01:00 EST
    assert (autumn.starts_at, autumn.resets_at) == (utc(2026, 11, 1, 4), utc(2026, 11, 2, 5))
    # A week across the autumn change resets at Monday's midnight in winter time.
    week = cap_period_on("week", date(2026, 10, 28), "America/New_York")
    assert (week.starts_at, week.resets_at) == (utc(2026, 10, 26, 4), utc(2026, 11, 2, 5))


def test_a_midnight_skipped_by_dst_resets_at_the_first_instant_of_the_day() -> None:
    # Santiago springs forward at midnight: Sept 6, 2026 starts at 01:00 (-03), which is 04:00 UTC.
    saturday = cap_period_on("day", date(2026, 9, 5), "America/Santiago")
    sunday = cap_period_on("day", date(2026, 9, 6), "America/Santiago")
    assert saturday.resets_at == sunday.starts_at == utc(2026, 9, 6, 4)
    assert sunday.resets_at == utc(2026, 9, 7, 3)


def test_the_period_of_an_instant_is_read_in_the_account_zone() -> None:
    # 11:00 UTC on Dec 31 is already New Year's Day in Auckland (+13).
    assert cap_period("day", "Pacific/Auckland", utc(2026, 12, 31, 10, 59, 59)).start == date(2026, 12, 31)
    new_year = cap_period("day", "Pacific/Auckland", utc(2026, 12, 31, 11))
    assert (new_year.start, new_year.resets_at) == (date(2027, 1, 1), utc(2027, 1, 1, 11))
    week = cap_period("week", "Pacific/Auckland", utc(2026, 12, 31, 11))
    assert (week.start, week.end, week.resets_at) == (
        date(2026, 12, 28),
        date(2027, 1, 3),
        utc(2027, 1, 3, 11),
    )
    # Still Dec 31 in Los Angeles when it is Jan 1 in UTC.
    month = cap_period("month", "America/Los_Angeles", utc(2027, 1, 1, 5))
    assert (month.start, month.resets_at) == (date(2026, 12, 1), utc(2027, 1, 1, 8))
    with pytest.raises(ValueError):
        cap_period_on("year", date(2026, 1, 1), "UTC")
