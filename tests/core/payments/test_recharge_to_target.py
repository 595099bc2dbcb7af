"""Auto-recharge "bring the balance back to Y": the amount (pure), the settings it refuses, and the
end-to-end charge with the sandbox provider, once under concurrent workers (both databases)."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, select

from core.db import unit_of_work
from core.db.models import AutoRecharge, Notification, PaymentCard, TopUp
from core.errors import ValidationError
from core.money import credits_to_nanos
from core.payments import Payments, run_auto_recharge, save_auto_recharge
from core.payments.config import TopUpLimits
from core.payments.recharge_policy import RechargeSnapshot, check_settings, decide, target_charge_cents
from core.payments.sandbox import CARD_SUCCEEDS
from core.payments.top_ups import ensure_customer
from tests.core.payments.helpers import (
    ACCOUNT,
    OWNER,
    MovableClock,
    balance,
    ledger_ok,
    make_priced_account,
    provider,
    sandbox,
    spend,
)

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
LIMITS = TopUpLimits(min_cents=500, max_cents=100_000)  # $5.00 to $1,000.00 a charge


def charge(balance: str, target: str, *, room_cents: int = 10**9) -> int | None:
    return target_charge_cents(
        balance_nanos=credits_to_nanos(balance),
        target_nanos=credits_to_nanos(target),
        min_cents=LIMITS.min_cents,
        max_cents=LIMITS.max_cents,
        room_cents=room_cents,
    )


# --- The amount (pure) -----------------------------------------------------------------------------


def test_the_charge_is_the_shortfall() -> None:
    assert charge("20", "100") == 8_000


def test_the_charge_rounds_up_to_the_next_cent() -> None:
    assert charge("20.001", "100") == 8_000  # 79.999 credits short: $80.00
    assert charge("19.999999999", "100") == 8_001  # 80.000000001 short: never below the target
    assert charge("-0.005", "10") == 1_001


def test_below_the_minimum_buys_the_minimum() -> None:
    assert charge("98", "100") == 500  # $2 short: the smallest top-up is $5


def test_above_the_maximum_buys_the_maximum() -> None:
    assert charge("0", "5000") == 100_000


def test_the_monthly_room_caps_the_charge() -> None:
    assert charge("0", "100", room_cents=3_000) == 3_000


def test_a_room_below_the_minimum_charges_nothing() -> None:
    assert charge("0", "100", room_cents=499) is None
    assert charge("0", "100", room_cents=-100) is None
    assert charge("0", "100", room_cents=500) == 500


READY = RechargeSnapshot(
    enabled=True,
    threshold_nanos=credits_to_nanos(20),
    amount_cents=500,
    monthly_max_cents=50_000,
    has_card=True,
    in_flight=False,
    failures=0,
    next_attempt_at=None,
    balance_nanos=credits_to_nanos("12.345"),
    month_spent_cents=0,
    max_failures=5,
    mode="target",
    target_nanos=credits_to_nanos(100),
    limits=LIMITS,
)


def test_decide_buys_what_brings_the_balance_back() -> None:
    decision = decide(READY, NOW)
    assert decision.go and decision.amount_cents == 8_766  # 87.655 credits short, rounded up
    assert "$87.66" in decision.message and "back to 100.00 credits" in decision.message


def test_decide_says_when_the_monthly_room_is_below_the_minimum() -> None:
    decision = decide(replace(READY, month_spent_cents=49_600), NOW)
    assert not decision.go and decision.code == "monthly_max"
    assert "$4.00 left" in decision.message and "smallest top-up ($5.00)" in decision.message


def test_decide_charges_only_the_monthly_room() -> None:
    decision = decide(replace(READY, month_spent_cents=47_000), NOW)
    assert decision.go and decision.amount_cents == 3_000
    assert "the balance reaches 42.34 credits" in decision.message


def test_decide_refuses_a_charge_that_would_not_lift_the_balance() -> None:
    deep = replace(READY, balance_nanos=credits_to_nanos(-2_000))
    decision = decide(deep, NOW)
    assert not decision.go and decision.code == "too_small"


def test_a_fixed_amount_still_buys_the_fixed_amount() -> None:
    decision = decide(replace(READY, mode="fixed", amount_cents=2_500), NOW)
    assert decision.go and decision.amount_cents == 2_500


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"target_nanos": credits_to_nanos(20)}, "target"),  # must be greater than the threshold
        ({"target_nanos": credits_to_nanos(5)}, "target"),
        ({"target_nanos": None}, "target"),
        ({"target_nanos": credits_to_nanos(10**9)}, "target"),
        ({"monthly_max_cents": 499}, "monthly_max"),
        ({"mode": "sometimes"}, "mode"),
        ({"balance_nanos": credits_to_nanos(-10_000)}, "threshold"),
    ],
)
def test_target_settings_that_cannot_work_name_the_field(change: dict[str, Any], field: str) -> None:
    settings: dict[str, Any] = {
        "threshold_nanos": credits_to_nanos(20),
        "amount_cents": 1,  # the fixed amount is not used "back to a target"
        "monthly_max_cents": 50_000,
        "limits": LIMITS,
        "balance_nanos": 0,
        "mode": "target",
        "target_nanos": credits_to_nanos(100),
    }
    check_settings(**settings)
    with pytest.raises(ValidationError) as refused:
        check_settings(**{**settings, **change})
    assert refused.value.field == field


# --- End to end, with the sandbox provider ---------------------------------------------------------


def _setup(engine: Engine, now: datetime, *, target: str = "120.37") -> Payments:
    """A saved card; auto-recharge on: below 50 credits, back to ``target`` credits, at most $250 a month."""
    make_priced_account(engine, now)
    payments = sandbox(engine, MovableClock(now))
    customer = ensure_customer(engine, payments.provider, account_id=ACCOUNT, clock=payments.clock)
    card_id = provider(payments).save_test_card(customer, CARD_SUCCEEDS)
    with unit_of_work(engine, write=True) as session:
        session.add(
            PaymentCard(
                id=card_id,
                account_id=ACCOUNT,
                provider="sandbox",
                customer_id=customer,
                brand="visa",
                last4=CARD_SUCCEEDS[-4:],
                exp_month=12,
                exp_year=2030,
                created_at=now,
            )
        )
    save_auto_recharge(
        payments,
        actor=OWNER,
        account_id=ACCOUNT,
        enabled=True,
        threshold_nanos=credits_to_nanos(50),
        amount_cents=0,  # not used "back to a target"
        monthly_max_cents=25_000,
        card_id=card_id,
        mode="target",
        target_nanos=credits_to_nanos(target),
    )
    return payments


def _auto_top_ups(engine: Engine) -> list[tuple[str, int]]:
    with unit_of_work(engine) as session:
        rows = session.scalars(select(TopUp).where(TopUp.kind == "auto_recharge").order_by(TopUp.id))
        return [(t.state, t.amount_cents) for t in rows]


def test_the_settings_are_stored(engine: Engine, now: datetime) -> None:
    _setup(engine, now)
    with unit_of_work(engine) as session:
        settings = session.get(AutoRecharge, ACCOUNT)
        assert settings is not None
        assert (settings.mode, settings.target_nanos) == ("target", credits_to_nanos("120.37"))
        assert settings.amount_cents == 500  # the smallest top-up stands in for the unused fixed amount


def test_a_target_not_above_the_threshold_is_refused(engine: Engine, now: datetime) -> None:
    payments = _setup(engine, now)
    with pytest.raises(ValidationError) as refused:
        save_auto_recharge(
            payments,
            actor=OWNER,
            account_id=ACCOUNT,
            enabled=False,
            threshold_nanos=credits_to_nanos(50),
            amount_cents=500,
            monthly_max_cents=25_000,
            card_id=None,
            mode="target",
            target_nanos=credits_to_nanos(50),
        )
    assert refused.value.field == "target"


def test_concurrent_workers_charge_once_back_to_the_target(engine: Engine, now: datetime) -> None:
    payments = _setup(engine, now)  # balance 0: 120.37 credits short
    barrier = threading.Barrier(4)
    runs: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            runs.append(run_auto_recharge(payments, account_id=ACCOUNT))
        except BaseException as error:  # surfaced below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    assert len([r for r in runs if r.top_up_id is not None]) == 1
    assert {r.decision.code for r in runs if r.top_up_id is None} <= {"in_flight", "above_threshold"}
    assert _auto_top_ups(engine) == [("credited", 12_037)]
    assert balance(engine) == credits_to_nanos("120.37")
    ledger_ok(engine)


def test_the_next_recharge_reads_the_balance_then(engine: Engine, now: datetime) -> None:
    payments = _setup(engine, now, target="100")
    run_auto_recharge(payments, account_id=ACCOUNT)  # 0 -> 100
    spend(engine, credits_to_nanos(63), now)  # 37 left: below 50
    run_auto_recharge(payments, account_id=ACCOUNT)
    assert _auto_top_ups(engine) == [("credited", 10_000), ("credited", 6_300)]
    assert balance(engine) == credits_to_nanos(100)
    spend(engine, credits_to_nanos(99), now)  # 1 left; $163 of $250 used: $87 of room, $99 short
    run = run_auto_recharge(payments, account_id=ACCOUNT)
    assert run.decision.amount_cents == 8_700
    assert balance(engine) == credits_to_nanos(88)
    spend(engine, credits_to_nanos(80), now)  # 8 left; the month's room is gone
    run = run_auto_recharge(payments, account_id=ACCOUNT)
    assert run.decision.code == "monthly_max" and run.top_up_id is None
    with unit_of_work(engine) as session:
        titles = list(session.scalars(select(Notification.title)))
    assert titles.count("Auto-recharge paused: monthly maximum reached") == 1
