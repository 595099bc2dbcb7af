"""Reconciliation settles what a lost webhook left open, by asking the provider (and the command runs it)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from core.cli import main
from core.db import unit_of_work
from core.db.models import PaymentCard, TopUp
from core.money import credits_to_nanos
from core.payments import buy_with_saved_card, reconcile, start_checkout
from core.payments.provider import ChargeRequest, Payment, ProviderError
from core.payments.sandbox import CARD_SUCCEEDS, SandboxProvider
from core.payments.top_ups import ensure_customer
from tests.core.payments.helpers import (
    ACCOUNT,
    OWNER,
    PAGE_URL,
    MovableClock,
    balance,
    ledger_ok,
    make_account,
    provider,
    sandbox,
    top_up_row,
)


def _checkout(payments, key: str = "k"):  # type: ignore[no-untyped-def]
    return start_checkout(
        payments.engine,
        payments.provider,
        payments.config,
        actor=OWNER,
        account_id=ACCOUNT,
        amount_cents=2_500,
        save_card=False,
        request_key=key,
        page_url=PAGE_URL,
        clock=payments.clock,
    )


def test_a_paid_checkout_whose_webhook_never_came_is_credited(engine: Engine, now: datetime) -> None:
    make_account(engine, now)
    clock = MovableClock(now)
    payments = sandbox(engine, clock, delivery="none")  # Stripe's events are lost
    view = _checkout(payments)
    provider(payments).pay_checkout(
        str(top_up_row(engine, view.top_up_id).checkout_session_id), CARD_SUCCEEDS
    )
    assert top_up_row(engine, view.top_up_id).state == "pending_payment"
    assert reconcile(payments).changed == []  # too fresh to be called stuck
    clock.advance(timedelta(minutes=11))
    report = reconcile(payments)
    assert report.changed == [f"top-up #{view.top_up_id} ({ACCOUNT}): pending_payment -> credited"]
    assert balance(engine) == credits_to_nanos(25)
    clock.advance(timedelta(minutes=11))
    assert reconcile(payments).changed == []  # nothing left open; nothing credited twice
    assert balance(engine) == credits_to_nanos(25)
    ledger_ok(engine)


def test_an_abandoned_checkout_is_canceled_once_it_expires(engine: Engine, now: datetime) -> None:
    make_account(engine, now)
    clock = MovableClock(now)
    payments = sandbox(engine, clock, delivery="none")
    view = _checkout(payments)
    clock.advance(timedelta(minutes=30))
    assert reconcile(payments).still_open == 1
    clock.advance(timedelta(minutes=31))  # past the session's hour
    report = reconcile(payments)
    assert report.changed == [f"top-up #{view.top_up_id} ({ACCOUNT}): pending_payment -> canceled"]
    assert top_up_row(engine, view.top_up_id).failure_code == "checkout_expired"


class LosesFirstAnswer(SandboxProvider):
    """The sandbox, except the first charge's answer is lost on the way back (a timeout)."""

    lost = False

    def charge_saved_card(self, request: ChargeRequest) -> Payment:
        payment = super().charge_saved_card(request)
        if not self.lost:
            self.lost = True
            raise ProviderError("timed out waiting for Stripe")
        return payment


def test_a_charge_whose_answer_was_lost_is_asked_again_with_the_same_key_and_credited_once(
    engine: Engine, now: datetime
) -> None:
    make_account(engine, now)
    clock = MovableClock(now)
    payments = sandbox(engine, clock, delivery="none")
    flaky = LosesFirstAnswer(engine, secret=provider(payments).secret, clock=clock)
    payments.provider = flaky
    customer = ensure_customer(engine, flaky, account_id=ACCOUNT, clock=clock)
    card = flaky.save_test_card(customer, CARD_SUCCEEDS)
    with unit_of_work(engine, write=True) as session:
        session.add(
            PaymentCard(
                id=card,
                account_id=ACCOUNT,
                provider="sandbox",
                customer_id=customer,
                brand="visa",
                last4="4242",
                created_at=now,
            )
        )
    with pytest.raises(ProviderError):
        buy_with_saved_card(
            engine,
            flaky,
            payments.config,
            actor=OWNER,
            account_id=ACCOUNT,
            amount_cents=1_000,
            card_id=card,
            request_key="k",
            page_url=PAGE_URL,
            clock=clock,
        )
    with unit_of_work(engine) as session:
        top_up_id = session.scalars(select(TopUp.id)).one()
    assert top_up_row(engine, top_up_id).state == "created"  # we do not know yet; the customer was charged
    clock.advance(timedelta(minutes=11))
    report = reconcile(payments)
    assert report.changed == [f"top-up #{top_up_id} ({ACCOUNT}): created -> credited"]
    assert balance(engine) == credits_to_nanos(10)  # the same PaymentIntent (same key), not a second charge
    intent = flaky.payment_intent(str(top_up_row(engine, top_up_id).payment_intent_id))
    assert (intent["status"], intent["amount_received"]) == ("succeeded", 1_000)


def test_meterline_payments_reconcile_settles_a_top_up_whose_webhook_never_came(
    db_url: str,
    engine: Engine,
    now: datetime,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The command, on the sandbox this database is set up for, an hour after a lost webhook."""
    from core.clock import system_clock

    at = system_clock() - timedelta(hours=1)
    make_account(engine, at)
    payments = sandbox(engine, MovableClock(at), delivery="none")
    view = _checkout(payments)
    provider(payments).pay_checkout(
        str(top_up_row(engine, view.top_up_id).checkout_session_id), CARD_SUCCEEDS
    )
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.delenv("STRIPE_API_KEY", raising=False)
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", payments.webhook_secret)  # the sandbox signs with it
    monkeypatch.delenv("METERLINE_ENV", raising=False)
    assert main(["payments", "reconcile"]) == 0
    out = capsys.readouterr().out
    assert "checked 1 open top-up(s) with sandbox: 1 settled or changed, 0 still open" in out
    assert f"top-up #{view.top_up_id} ({ACCOUNT}): pending_payment -> credited" in out
    assert balance(engine) == credits_to_nanos(25)
    assert main(["payments", "alerts"]) == 0
    assert "no payment alerts" in capsys.readouterr().out
