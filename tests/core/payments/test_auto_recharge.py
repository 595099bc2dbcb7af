"""Auto-recharge: triggered by the ingestion that crosses the threshold, with every guardrail."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from starlette.applications import Starlette
from starlette.testclient import TestClient

from core.api import api_routes
from core.db import unit_of_work
from core.db.models import AutoRecharge, CreditGrant, Notification, PaymentCard, TopUp
from core.errors import PermissionDenied, ValidationError
from core.money import credits_to_nanos
from core.payments import Payments, RechargeTrigger, reconcile, run_auto_recharge, save_auto_recharge
from core.payments.sandbox import CARD_3DS, CARD_DECLINED, CARD_SUCCEEDS
from core.payments.top_ups import ensure_customer
from tests.core.payments.helpers import (
    ACCOUNT,
    OWNER,
    VIEWER,
    MovableClock,
    balance,
    ledger_ok,
    make_priced_account,
    provider,
    sandbox,
    spend,
    usage_events,
)

TOKEN = "test-token"


def _setup(
    engine: Engine, now: datetime, number: str = CARD_SUCCEEDS, **config: Any
) -> tuple[Payments, MovableClock]:
    """An account with a saved card and auto-recharge on: below 50 credits, buy $100, at most $250 a month."""
    make_priced_account(engine, now)
    clock = MovableClock(now)
    payments = sandbox(engine, clock, **config)
    customer = ensure_customer(engine, payments.provider, account_id=ACCOUNT, clock=clock)
    card_id = provider(payments).save_test_card(customer, number)
    with unit_of_work(engine, write=True) as session:
        session.add(
            PaymentCard(
                id=card_id,
                account_id=ACCOUNT,
                provider="sandbox",
                customer_id=customer,
                brand="visa",
                last4=number[-4:],
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
        amount_cents=10_000,
        monthly_max_cents=25_000,
        card_id=card_id,
    )
    return payments, clock


def _auto_top_ups(engine: Engine) -> list[TopUp]:
    with unit_of_work(engine) as session:
        return list(session.scalars(select(TopUp).where(TopUp.kind == "auto_recharge").order_by(TopUp.id)))


def _settings(engine: Engine) -> AutoRecharge:
    with unit_of_work(engine) as session:
        settings = session.get(AutoRecharge, ACCOUNT)
        assert settings is not None
        return settings


def _notes(engine: Engine) -> list[str]:
    with unit_of_work(engine) as session:
        return list(session.scalars(select(Notification.title).order_by(Notification.id)))


def test_ingestion_crossing_the_threshold_recharges_once(engine: Engine, now: datetime) -> None:
    payments, clock = _setup(engine, now)
    runs: list[str] = []
    trigger = RechargeTrigger(
        lambda: payments, run=lambda p, a: runs.append(a) or run_auto_recharge(p, account_id=a)
    )
    app = Starlette(
        routes=api_routes(lambda: engine, token_provider=lambda: TOKEN, clock=clock, after_ingest=trigger)
    )
    with TestClient(app) as client:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        # 0 credits: the first batch crosses (already below) -> one recharge of 100 credits.
        answer = client.post("/api/v1/events", json={"events": usage_events(10, now)}, headers=headers)
        assert answer.status_code == 200, answer.text
        assert balance(engine) == credits_to_nanos(90)
        # Above the threshold now: more usage that stays above does not recharge.
        client.post("/api/v1/events", json={"events": usage_events(30, now)}, headers=headers)
        assert balance(engine) == credits_to_nanos(60)
        # This batch crosses 50: one more recharge.
        client.post("/api/v1/events", json={"events": usage_events(20, now)}, headers=headers)
    assert balance(engine) == credits_to_nanos(140)
    assert runs == [ACCOUNT, ACCOUNT]
    top_ups = _auto_top_ups(engine)
    assert [(t.state, t.amount_cents) for t in top_ups] == [("credited", 10_000), ("credited", 10_000)]
    with unit_of_work(engine) as session:
        creators = set(
            session.scalars(select(CreditGrant.created_by).where(CreditGrant.source == "purchased"))
        )
    assert creators == {"auto-recharge"}
    assert _notes(engine).count("Auto-recharge: 100.00 credits added") == 2
    ledger_ok(engine)


def test_at_most_one_recharge_in_flight_when_two_workers_race(engine: Engine, now: datetime) -> None:
    payments, _ = _setup(engine, now, number=CARD_3DS)  # waits for the bank: stays in flight
    barrier = threading.Barrier(4)
    runs: list[Any] = []

    def run() -> None:
        barrier.wait()
        runs.append(run_auto_recharge(payments, account_id=ACCOUNT))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    started = [r for r in runs if r.top_up_id is not None]
    assert len(started) == 1
    assert {r.decision.code for r in runs if r.top_up_id is None} == {"in_flight"}
    (top_up,) = _auto_top_ups(engine)
    assert top_up.state == "pending_payment" and top_up.action_url.startswith(
        "/payments/sandbox/authenticate/"
    )
    assert _settings(engine).in_flight_top_up_id == top_up.id
    assert "Auto-recharge needs your confirmation" in _notes(engine)
    # The customer confirms with the bank: credited, and the slot is free again.
    provider(payments).authenticate(str(top_up.payment_intent_id), approve=True)
    assert _auto_top_ups(engine)[0].state == "credited"
    assert _settings(engine).in_flight_top_up_id is None


def test_never_more_than_the_monthly_maximum(engine: Engine, now: datetime) -> None:
    payments, clock = _setup(engine, now)
    for _ in range(3):
        run_auto_recharge(payments, account_id=ACCOUNT)
        spend(engine, credits_to_nanos(100), clock())
    runs = [t.amount_cents for t in _auto_top_ups(engine)]
    assert runs == [10_000, 10_000]  # a third would make $300 > $250
    run = run_auto_recharge(payments, account_id=ACCOUNT)
    assert run.decision.code == "monthly_max" and run.top_up_id is None
    assert "monthly maximum of $250.00" in _settings(engine).last_decision
    assert _notes(engine).count("Auto-recharge paused: monthly maximum reached") == 1
    run_auto_recharge(payments, account_id=ACCOUNT)
    assert _notes(engine).count("Auto-recharge paused: monthly maximum reached") == 1  # told once


def test_declines_back_off_exponentially_then_turn_it_off_and_tell_the_customer(
    engine: Engine, now: datetime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("METERLINE_RECHARGE_MAX_FAILURES", "3")
    payments, clock = _setup(engine, now, number=CARD_DECLINED, recharge_max_failures=3)
    first = run_auto_recharge(payments, account_id=ACCOUNT)
    assert first.state == "failed"
    settings = _settings(engine)
    assert (settings.failures, settings.next_attempt_at) == (1, now + timedelta(hours=1))
    assert (
        run_auto_recharge(payments, account_id=ACCOUNT).decision.code == "backoff"
    )  # not hammering the card
    clock.advance(timedelta(hours=1))
    assert run_auto_recharge(payments, account_id=ACCOUNT).state == "failed"
    assert _settings(engine).next_attempt_at == clock() + timedelta(hours=2)
    clock.advance(timedelta(minutes=119))
    assert run_auto_recharge(payments, account_id=ACCOUNT).decision.code == "backoff"
    clock.advance(timedelta(minutes=1))
    assert run_auto_recharge(payments, account_id=ACCOUNT).state == "failed"
    settings = _settings(engine)
    assert (settings.enabled, settings.failures) == (False, 3)
    assert run_auto_recharge(payments, account_id=ACCOUNT).decision.code == "off"
    assert len(_auto_top_ups(engine)) == 3
    assert _notes(engine) == ["Auto-recharge declined", "Auto-recharge declined", "Auto-recharge turned off"]
    assert balance(engine) == 0


def test_a_deep_negative_balance_does_not_start_a_recharge_loop(engine: Engine, now: datetime) -> None:
    payments, clock = _setup(engine, now)
    with unit_of_work(engine, write=True) as session:
        session.get(AutoRecharge, ACCOUNT).enabled = False  # type: ignore[union-attr]
    spend(engine, credits_to_nanos(200), clock())  # -200 credits
    with unit_of_work(engine, write=True) as session:
        session.get(AutoRecharge, ACCOUNT).enabled = True  # type: ignore[union-attr]
    run = run_auto_recharge(payments, account_id=ACCOUNT)
    assert run.decision.code == "too_small" and run.top_up_id is None
    assert _auto_top_ups(engine) == []


def test_settings_are_checked_and_only_payers_may_change_them(engine: Engine, now: datetime) -> None:
    payments, _ = _setup(engine, now)
    card = _settings(engine).card_id
    with pytest.raises(ValidationError) as refused:
        save_auto_recharge(
            payments,
            actor=OWNER,
            account_id=ACCOUNT,
            enabled=True,
            threshold_nanos=credits_to_nanos(100),
            amount_cents=5_000,
            monthly_max_cents=25_000,
            card_id=card,
        )
    assert refused.value.field == "threshold"
    with pytest.raises(PermissionDenied):
        save_auto_recharge(
            payments,
            actor=VIEWER,
            account_id=ACCOUNT,
            enabled=False,
            threshold_nanos=0,
            amount_cents=5_000,
            monthly_max_cents=25_000,
            card_id=card,
        )


def test_an_unconfirmed_off_session_payment_is_canceled_after_a_day_and_counts_as_a_failure(
    engine: Engine, now: datetime
) -> None:
    payments, clock = _setup(engine, now, number=CARD_3DS)
    run = run_auto_recharge(payments, account_id=ACCOUNT)
    assert run.state == "pending_payment"
    clock.advance(timedelta(hours=25))
    report = reconcile(payments)
    assert report.changed == [f"top-up #{run.top_up_id} ({ACCOUNT}): pending_payment -> canceled"]
    settings = _settings(engine)
    assert (settings.in_flight_top_up_id, settings.failures) == (None, 1)
    with unit_of_work(engine) as session:
        assert session.scalar(select(func.count()).select_from(TopUp).where(TopUp.state == "credited")) == 0


def test_a_persisting_deficit_is_told_once_not_once_per_batch(engine: Engine, now: datetime) -> None:
    payments, clock = _setup(engine, now)
    with unit_of_work(engine, write=True) as session:
        session.get(AutoRecharge, ACCOUNT).enabled = False  # type: ignore[union-attr]
    spend(engine, credits_to_nanos(200), clock())
    with unit_of_work(engine, write=True) as session:
        session.get(AutoRecharge, ACCOUNT).enabled = True  # type: ignore[union-attr]
    for _ in range(3):
        assert run_auto_recharge(payments, account_id=ACCOUNT).decision.code == "too_small"
        spend(engine, credits_to_nanos(1), clock())  # the balance (and the message) moves each batch
    assert _notes(engine).count("Auto-recharge cannot cover the balance") == 1
    assert (
        "-203.00 credits" in _settings(engine).last_decision
        or "-202.00 credits" in _settings(engine).last_decision
    )


def test_with_a_pool_the_request_thread_only_hands_over_the_batch(engine: Engine, now: datetime) -> None:
    from concurrent.futures import ThreadPoolExecutor

    payments, clock = _setup(engine, now)
    runs: list[str] = []
    threads: list[str] = []

    def run(p: Payments, account_id: str) -> None:
        threads.append(threading.current_thread().name)
        runs.append(account_id)
        run_auto_recharge(p, account_id=account_id)

    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="recharge-test") as pool:
        trigger = RechargeTrigger(lambda: payments, executor=pool, run=run)
        assert trigger(usage_events(1, clock())) == []  # returns at once
        assert trigger([{"no": "account"}, "not even an object"]) == []
    assert runs == [ACCOUNT]
    assert all(name.startswith("recharge-test") for name in threads)
    assert balance(engine) == credits_to_nanos(100)
