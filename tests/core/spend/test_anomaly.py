"""The weekday-aware spike detector, pure: quiet weekends raise no Monday alarm, a doubled busy
weekday is flagged, each day is judged from the days before it only, short history falls back
(or is not judged), and the flag reads as a sentence."""

from __future__ import annotations

import random
from datetime import date, timedelta

from core.money import NANOS_PER_CREDIT
from core.spend.anomaly import (
    FALLBACK_DAYS,
    baseline,
    explain,
    flag_days,
    format_ratio,
    old_rule_baseline,
)

CREDIT = NANOS_PER_CREDIT
MONDAY = date(2026, 1, 5)


def series(weeks: int, week: tuple[float, ...], *, noise: float = 0.15, seed: int = 1) -> list[int]:
    """``weeks`` weeks from a Monday: each day ``week[weekday]`` credits × lognormal noise."""
    rng = random.Random(seed)
    return [
        round(week[day % 7] * rng.lognormvariate(0, noise) * CREDIT)
        if noise
        else round(week[day % 7] * CREDIT)
        for day in range(7 * weeks)
    ]


CLOSED_AT_WEEKENDS = (300, 300, 300, 300, 300, 4, 2)


def test_a_business_quiet_at_weekends_gets_no_monday_flags() -> None:
    amounts = series(26, CLOSED_AT_WEEKENDS)
    new_mondays = [f.day for f in flag_days(MONDAY, amounts, 150) if f.day.weekday() == 0]
    assert new_mondays == []
    # The old rule (K × the last 7 days' mean, which the weekend pulls down) cries on Mondays.
    old_mondays = [
        index
        for index in range(56, len(amounts), 7)  # every Monday after eight weeks
        if amounts[index] >= old_rule_baseline(amounts[index - 56 : index], 150).threshold_nanos  # type: ignore[union-attr]
    ]
    assert len(old_mondays) >= 3


def test_a_doubled_busy_weekday_is_flagged_and_explained() -> None:
    amounts = series(12, CLOSED_AT_WEEKENDS, noise=0)
    tuesday = 7 * 10 + 1
    amounts[tuesday] *= 2
    flags = flag_days(MONDAY, amounts, 150)
    assert [f.day for f in flags] == [MONDAY + timedelta(days=tuesday)]
    assert (
        flags[0].explain()
        == "Tuesday's spend, 600.00 credits, is 2.0 times a usual Tuesday's (300.00 credits)"
    )
    # The old rule with a K set high enough to spare the Mondays (3) misses it: 600 < 3 × 215.71.
    old = old_rule_baseline(amounts[tuesday - 56 : tuesday], 300)
    assert old is not None and amounts[tuesday] < old.threshold_nanos


def test_a_batch_job_weekday_is_usual_for_its_weekday() -> None:
    amounts = series(20, (100, 300, 100, 100, 100, 50, 50), noise=0.1)
    assert flag_days(MONDAY, amounts, 200) == []


def test_growth_is_followed_not_flagged() -> None:
    rng = random.Random(4)
    amounts = [round(100 * 1.01**day * rng.lognormvariate(0, 0.1) * CREDIT) for day in range(140)]
    late = [f for f in flag_days(MONDAY, amounts, 150) if f.day >= MONDAY + timedelta(days=56)]
    assert late == []  # +1% a day: doubling in 10 weeks, compared with the last fortnight's level


def test_each_day_is_judged_only_from_the_days_before_it() -> None:
    amounts = series(16, CLOSED_AT_WEEKENDS, seed=7)
    amounts[80] *= 3
    cut = 90
    whole = [f for f in flag_days(MONDAY, amounts, 200) if f.day < MONDAY + timedelta(days=cut)]
    changed_future = amounts[:cut] + [amount * 50 for amount in amounts[cut:]]
    assert flag_days(MONDAY, amounts[:cut], 200) == whole
    assert [
        f for f in flag_days(MONDAY, changed_future, 200) if f.day < MONDAY + timedelta(days=cut)
    ] == whole
    assert MONDAY + timedelta(days=80) in [f.day for f in whole]


def test_short_history_compares_with_the_same_weekday_then_is_not_judged() -> None:
    week = [10 * CREDIT] * 7
    assert baseline(week[: FALLBACK_DAYS - 1], 200) is None  # under a week: nothing to compare with
    short = baseline(week * 3, 200)  # three weeks: the same weekday three times, no noise estimate
    assert short is not None and short.weeks == 3
    assert (short.usual_nanos, short.threshold_nanos) == (10 * CREDIT, 20 * CREDIT)
    assert baseline([0] * 28, 200) is None  # nothing spent: nothing is usual
    seasonal = baseline(week * 4, 200)
    assert seasonal is not None and seasonal.weeks == 4
    days = [10 * CREDIT] * 10 + [25 * CREDIT]
    (flag,) = flag_days(MONDAY, days, 200)
    assert flag.explain() == "Thursday's spend, 25.00 credits, is 2.5 times last Thursday's (10.00 credits)"
    # A quiet-weekend business in its first weeks: Mondays are compared with Mondays.
    first_weeks = series(4, CLOSED_AT_WEEKENDS, seed=3)
    assert [f.day for f in flag_days(MONDAY, first_weeks, 150) if f.day.weekday() == 0] == []


def test_the_threshold_is_whole_nanos_and_needs_k() -> None:
    amounts = series(8, CLOSED_AT_WEEKENDS, noise=0)
    judged = baseline(amounts, 250)
    assert judged is not None and isinstance(judged.threshold_nanos, int)
    assert judged.threshold_nanos == 750 * CREDIT  # K × a usual Monday, not × the 7-day mean
    assert baseline(amounts, 101).threshold_nanos < judged.threshold_nanos  # type: ignore[union-attr]


def test_huge_amounts_stay_integers() -> None:
    amounts = [10**18] * 56
    judged = baseline(amounts, 100_000)
    assert judged is not None and judged.threshold_nanos == 10**21


def test_explanations_in_words() -> None:
    tuesday = date(2026, 11, 17)
    assert explain(tuesday, 412 * CREDIT, 133 * CREDIT) == (
        "Tuesday's spend, 412.00 credits, is 3.1 times a usual Tuesday's (133.00 credits)"
    )
    assert format_ratio(1, 0) == "many"
    assert format_ratio(25 * CREDIT, 10 * CREDIT) == "2.5"
