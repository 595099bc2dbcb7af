"""Runway, pure: the day the balance runs out, and what expiring grants are used for before they expire."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from core.ledger.engine import GrantBalance
from core.money import NANOS_PER_CREDIT
from core.spend.runway import project_runway

CREDIT = NANOS_PER_CREDIT
NOW = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)  # local midnight in UTC: today is a whole day
TODAY = date(2026, 11, 20)
LONG_AGO = NOW - timedelta(days=30)


def grant(
    grant_id: int, credits: int, *, expires_in_days: float | None = None, priority: int = 100
) -> GrantBalance:
    expires = None if expires_in_days is None else NOW + timedelta(days=expires_in_days)
    return GrantBalance(grant_id, priority, LONG_AGO, expires, credits * CREDIT)


def test_balance_runs_out_on_the_day_spend_meets_no_grant() -> None:
    runway = project_runway(
        balance_nanos=100 * CREDIT,
        grants=[grant(1, 100)],
        expected_daily_nanos=[30 * CREDIT] * 30,
        today=TODAY,
        now=NOW,
        timezone="UTC",
    )
    # 30 a day: 90 used by the end of day 3, the rest of 100 gone during day 4 (Nov 23).
    assert runway.runs_out_on == date(2026, 11, 23) and runway.days == 3
    assert runway.describe() == "runs out in 3 days, on Nov 23, 2026"


def test_expiring_credits_are_used_first_and_the_rest_is_lost() -> None:
    runway = project_runway(
        balance_nanos=1_100 * CREDIT,
        grants=[grant(1, 1_000), grant(2, 100, expires_in_days=2)],  # the promotion burns first
        expected_daily_nanos=[30 * CREDIT] * 90,
        today=TODAY,
        now=NOW,
        timezone="UTC",
    )
    promo = next(outlook for outlook in runway.grants if outlook.grant_id == 2)
    assert promo.expected_use_nanos == 60 * CREDIT and promo.expected_lost_nanos == 40 * CREDIT
    # 1,000 left after the promotion expires, 30 a day: the balance lasts 2 + 33.3 days, not 36.7.
    assert runway.days == 35


def test_an_expiry_in_the_middle_of_a_day_gets_that_day_s_spend_before_it() -> None:
    runway = project_runway(
        balance_nanos=200 * CREDIT,
        grants=[grant(1, 100), grant(2, 100, expires_in_days=1.5)],
        expected_daily_nanos=[40 * CREDIT] * 10,
        today=TODAY,
        now=NOW,
        timezone="UTC",
    )
    promo = next(outlook for outlook in runway.grants if outlook.grant_id == 2)
    assert promo.expected_use_nanos == 60 * CREDIT  # a whole day and half the next


def test_what_is_spent_today_already_counts() -> None:
    midday = NOW + timedelta(hours=12)
    runway = project_runway(
        balance_nanos=50 * CREDIT,
        grants=[grant(1, 50)],
        expected_daily_nanos=[40 * CREDIT] * 10,
        today=TODAY,
        now=midday,
        timezone="UTC",
        spent_today_nanos=35 * CREDIT,  # 5 more expected today, then 40 a day
    )
    assert runway.runs_out_on == date(2026, 11, 22)


def test_a_negative_balance_has_already_run_out() -> None:
    runway = project_runway(
        balance_nanos=-5 * CREDIT,
        grants=[],
        expected_daily_nanos=[CREDIT] * 10,
        today=TODAY,
        now=NOW,
        timezone="UTC",
    )
    assert runway.already_out and runway.runs_out_on == TODAY and runway.days == 0
    assert "run out" in runway.describe()


def test_no_spend_means_more_than_the_horizon() -> None:
    runway = project_runway(
        balance_nanos=10 * CREDIT,
        grants=[grant(1, 10)],
        expected_daily_nanos=[0] * 90,
        today=TODAY,
        now=NOW,
        timezone="UTC",
    )
    assert runway.runs_out_on is None and runway.describe() == "more than 90 days at the current pace"


def test_local_days_follow_the_account_s_time_zone() -> None:
    # 23:00 UTC on Nov 19 is already Nov 20 in Berlin: the whole of "today" is left there.
    late = datetime(2026, 11, 19, 23, 0, tzinfo=UTC)
    runway = project_runway(
        balance_nanos=45 * CREDIT,
        grants=[grant(1, 45)],
        expected_daily_nanos=[10 * CREDIT] * 10,
        today=TODAY,
        now=late,
        timezone="Europe/Berlin",
    )
    assert runway.runs_out_on == date(2026, 11, 24)
