"""Auto-recharge guardrails (pure): every "no" says which guardrail held."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from core.errors import ValidationError
from core.money import credits_to_nanos
from core.payments.config import TopUpLimits
from core.payments.recharge_policy import RechargeSnapshot, backoff_delay, check_settings, decide

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
READY = RechargeSnapshot(
    enabled=True,
    threshold_nanos=credits_to_nanos(100),
    amount_cents=20_000,
    monthly_max_cents=100_000,
    has_card=True,
    in_flight=False,
    failures=0,
    next_attempt_at=None,
    balance_nanos=credits_to_nanos(99),
    month_spent_cents=0,
    max_failures=5,
)


def test_goes_when_every_guardrail_allows() -> None:
    decision = decide(READY, NOW)
    assert decision.go and decision.code == "recharge"
    assert "99.00 credits" in decision.message and "$200.00" in decision.message


@pytest.mark.parametrize(
    ("change", "code", "says"),
    [
        ({"enabled": False}, "off", "off"),
        ({"enabled": False, "failures": 5}, "off", "5 declined attempts"),
        ({"has_card": False}, "no_card", "No saved card"),
        ({"balance_nanos": credits_to_nanos(100)}, "above_threshold", "not below"),
        ({"in_flight": True}, "in_flight", "already in progress"),
        ({"failures": 2, "next_attempt_at": NOW + timedelta(minutes=5)}, "backoff", "attempt 3 of 5"),
        ({"month_spent_cents": 80_001}, "monthly_max", "monthly maximum of $1,000.00"),
        ({"balance_nanos": credits_to_nanos(-150)}, "too_small", "still below"),
    ],
)
def test_each_guardrail_says_why_not(change: dict[str, object], code: str, says: str) -> None:
    decision = decide(replace(READY, **change), NOW)  # type: ignore[arg-type]
    assert not decision.go
    assert decision.code == code
    assert says in decision.message


def test_after_the_backoff_it_tries_again() -> None:
    waited = replace(READY, failures=2, next_attempt_at=NOW - timedelta(seconds=1))
    assert decide(waited, NOW).go


def test_backoff_doubles_up_to_a_day() -> None:
    assert [backoff_delay(n) for n in (0, 1, 2, 3)] == [
        timedelta(0),
        timedelta(hours=1),
        timedelta(hours=2),
        timedelta(hours=4),
    ]
    assert backoff_delay(10) == timedelta(hours=24)


def test_settings_that_cannot_lift_the_balance_are_refused() -> None:
    limits = TopUpLimits()
    ok = {"threshold_nanos": credits_to_nanos(100), "amount_cents": 20_000, "monthly_max_cents": 50_000}
    check_settings(**ok, limits=limits, balance_nanos=0)  # type: ignore[arg-type]
    with pytest.raises(ValidationError) as low:
        check_settings(**{**ok, "amount_cents": 10_000}, limits=limits, balance_nanos=0)  # type: ignore[arg-type]
    assert (low.value.field, low.value.code) == ("threshold", "amount_below_threshold")
    with pytest.raises(ValidationError) as deficit:
        check_settings(**ok, limits=limits, balance_nanos=credits_to_nanos(-150))  # type: ignore[arg-type]
    assert (deficit.value.field, deficit.value.code) == ("amount", "amount_below_deficit")
    with pytest.raises(ValidationError) as cap:
        check_settings(**{**ok, "monthly_max_cents": 19_999}, limits=limits, balance_nanos=0)  # type: ignore[arg-type]
    assert cap.value.field == "monthly_max"
    with pytest.raises(ValidationError) as small:
        check_settings(**{**ok, "amount_cents": 100}, limits=limits, balance_nanos=0)  # type: ignore[arg-type]
    assert small.value.field == "amount"
