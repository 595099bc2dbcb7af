"""The projection engine, pure: weekly seasonality, zeros, short history, spikes, the band's coverage,
exact integer outputs, and the period view the Overview page shows."""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal

import pytest

from core.money import NANOS_PER_CREDIT
from core.spend.projection import (
    MIN_CALIBRATION_CUTS,
    backtest,
    forecast_spend,
    month_end,
    nanos_from_model,
    project_period,
)

CREDIT = NANOS_PER_CREDIT
MONDAY = date(2026, 6, 1)  # a Monday
WEEKLY = (1.0, 1.1, 1.1, 1.05, 0.95, 0.45, 0.35)  # Monday .. Sunday


def seasonal_series(
    days: int, *, level: float = 100.0, noise: float = 0.0, seed: int = 1, start: date = MONDAY
) -> list[int]:
    rng = random.Random(seed)
    out = []
    for offset in range(days):
        day = start + timedelta(days=offset)
        value = level * WEEKLY[day.weekday()] * (1 + rng.gauss(0, noise))
        out.append(max(0, round(value * 1000)) * CREDIT // 1000)
    return out


def run_rate(history: list[int], horizon: int) -> int:
    return sum(history[-7:]) * horizon // 7


def test_weekly_pattern_is_projected_into_a_partial_week() -> None:
    # Five whole weeks from a Monday: the next three days are Monday to Wednesday, the busy days.
    history = seasonal_series(35)
    forecast = forecast_spend(history, 3)
    truth = sum(100 * CREDIT * factor for factor in WEEKLY[:3])
    assert abs(forecast.expected_nanos - truth) < truth * 0.02
    # The run rate spreads the quiet weekend over them: 14% low.
    assert abs(run_rate(history, 3) - truth) > truth * 0.1
    assert forecast.daily_nanos[0] > forecast.daily_nanos[2] * 0.85  # Monday ≈ Wednesday
    assert len(forecast.daily_nanos) == 3


def test_a_quiet_weekend_is_projected_quiet() -> None:
    history = seasonal_series(56, noise=0.05)
    forecast = forecast_spend(history, 7)  # Monday .. Sunday
    saturday, sunday, monday = forecast.daily_nanos[5], forecast.daily_nanos[6], forecast.daily_nanos[0]
    assert saturday < monday * 0.6 and sunday < monday * 0.5


def test_weekday_only_spend_reads_the_weekday_level_not_a_diluted_one() -> None:
    # Closed at weekends (zeros): the level comes from the weekdays, the weekend stays at zero.
    history = [0 if (MONDAY + timedelta(days=d)).weekday() >= 5 else 70 * CREDIT for d in range(56)]
    forecast = forecast_spend(history, 7)
    assert forecast.daily_nanos[5] == forecast.daily_nanos[6] == 0
    assert abs(forecast.expected_nanos - 350 * CREDIT) < 5 * CREDIT


def test_no_spend_projects_zero_with_an_empty_band() -> None:
    forecast = forecast_spend([0] * 60, 10)
    assert (forecast.expected_nanos, forecast.low_nanos, forecast.high_nanos) == (0, 0, 0)
    empty = forecast_spend([], 5)
    assert empty.expected_nanos == 0 and empty.method == "none"


def test_leading_zeros_before_the_first_usage_are_not_a_quiet_history() -> None:
    # An account that started three weeks ago: the zeros before it must not drag the level down.
    started = [0] * 60 + [50 * CREDIT] * 21
    forecast = forecast_spend(started, 7)
    assert abs(forecast.expected_nanos - 350 * CREDIT) < 10 * CREDIT


def test_short_history_gives_a_projection_and_an_honestly_wide_band() -> None:
    history = seasonal_series(10, noise=0.1)
    forecast = forecast_spend(history, 14)
    assert not forecast.calibrated and forecast.calibration_cuts < MIN_CALIBRATION_CUTS
    assert forecast.low_nanos < forecast.expected_nanos < forecast.high_nanos
    truth = sum(100 * CREDIT * WEEKLY[(MONDAY + timedelta(days=10 + d)).weekday()] for d in range(14))
    assert forecast.low_nanos <= truth <= forecast.high_nanos
    # A single day of history: a projection, and a band far from zero width.
    one = forecast_spend([40 * CREDIT], 5)
    assert one.expected_nanos == 200 * CREDIT
    assert one.high_nanos - one.low_nanos > one.expected_nanos // 2


def test_one_spike_barely_moves_the_projection() -> None:
    history = seasonal_series(56, noise=0.05)
    calm = forecast_spend(history, 14)
    spiked = list(history)
    spiked[-1] += 1_000 * CREDIT  # a batch job yesterday: ten days' worth
    spiky = forecast_spend(spiked, 14)
    assert abs(spiky.expected_nanos - calm.expected_nanos) < calm.expected_nanos * 0.05
    # The run rate takes it at face value: +2,000 credits over two weeks.
    assert run_rate(spiked, 14) - run_rate(history, 14) == 2_000 * CREDIT


def test_outputs_are_exact_integer_nanos() -> None:
    forecast = forecast_spend(seasonal_series(70, noise=0.1), 9)
    assert all(
        isinstance(value, int) for value in (forecast.expected_nanos, forecast.low_nanos, forecast.high_nanos)
    )
    assert all(isinstance(value, int) for value in forecast.daily_nanos)
    assert forecast.low_nanos <= forecast.expected_nanos <= forecast.high_nanos
    assert nanos_from_model(2.0) == 2 * CREDIT
    assert nanos_from_model(1.23456789012) == 1_234_567_890  # to the nearest nano
    assert nanos_from_model(-3.0) == 0 and nanos_from_model(float("nan")) == 0


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        forecast_spend([CREDIT] * 30, 0)
    with pytest.raises(ValueError):
        forecast_spend([CREDIT] * 30, 7, band_percent=100)


def test_band_holds_about_its_share_of_outcomes_on_noisy_seasonal_series() -> None:
    coverages = []
    for seed in range(4):
        series = seasonal_series(200, noise=0.15, seed=seed)
        result = backtest(MONDAY, series, horizon_days=7)
        coverages.append(result.band_coverage)
    mean = sum(coverages) / len(coverages)
    assert Decimal("0.7") <= mean <= Decimal("0.95"), coverages


def test_backtest_beats_the_run_rate_on_seasonal_series_with_shifts_and_spikes() -> None:
    rng = random.Random(7)
    series = []
    for offset in range(240):
        day = MONDAY + timedelta(days=offset)
        level = 100 if offset < 120 else 160  # a new workload from day 120
        value = level * WEEKLY[day.weekday()] * rng.lognormvariate(0, 0.15)
        if rng.random() < 0.03:
            value *= 6  # a batch job now and then
        series.append(round(value * CREDIT))
    result = backtest(MONDAY, series)
    assert result.cuts > 150
    assert result.projection_mae_nanos < result.run_rate_mae_nanos * 0.9
    assert Decimal("0.6") <= result.band_coverage <= Decimal("0.97")


def test_backtest_counts_only_cuts_with_a_whole_outcome() -> None:
    series = [CREDIT] * 40  # June 1 .. July 10
    to_month_end = backtest(MONDAY, series)
    # Cuts from day 28 (June 29): June 29 and 30 reach the month's end; July's never do.
    assert to_month_end.cuts == 2
    fixed = backtest(MONDAY, series, horizon_days=5)
    assert fixed.cuts == 40 - 28 - 5 + 1
    assert fixed.projection_mae_nanos == 0 and fixed.run_rate_mae_nanos == 0  # a flat series is easy


def test_period_projection_adds_spend_so_far_and_keeps_the_band_above_it() -> None:
    today = date(2026, 6, 17)
    daily = {MONDAY + timedelta(days=d): amount for d, amount in enumerate(seasonal_series(16, noise=0.05))}
    daily = {day: amount for day, amount in daily.items() if day < today}
    daily[today] = 30 * CREDIT  # spent so far today
    projection = project_period(daily, today=today)
    spent = sum(amount for day, amount in daily.items() if day >= today.replace(day=1))
    assert projection.spent_nanos == spent
    assert projection.period_end == month_end(today) == date(2026, 6, 30)
    assert projection.days_left == 14
    assert spent <= projection.low_nanos <= projection.projected_nanos <= projection.high_nanos
    # About 14 days of ~85 credits a day (weekly pattern) on top of what is spent before today.
    before_today = spent - 30 * CREDIT
    assert 900 * CREDIT < projection.projected_nanos - before_today < 1_400 * CREDIT


def test_a_day_already_busier_than_expected_adds_its_surplus() -> None:
    today = date(2026, 6, 30)  # the period's last day
    daily = {today - timedelta(days=d): 10 * CREDIT for d in range(1, 40)}
    daily[today] = 500 * CREDIT
    projection = project_period(daily, today=today)
    assert projection.projected_nanos == projection.spent_nanos  # the day is already past its forecast
    assert (
        projection.high_nanos >= projection.projected_nanos >= projection.low_nanos >= projection.spent_nanos
    )
