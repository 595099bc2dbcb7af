"""A payment credits once, whatever the mix of retried webhooks, return pages, workers and event order."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select

from core.db import unit_of_work
from core.db.models import LedgerEntry, PaymentEvent
from core.ledger import reasons
from core.money import credits_to_nanos
from core.payments import buy_with_saved_card, receive_webhook, refresh_top_up
from core.payments.sandbox import CARD_DECLINED
from tests.core.payments.helpers import (
    ACCOUNT,
    OWNER,
    PAGE_URL,
    SECRET,
    MovableClock,
    balance,
    checkout_completed_event,
    entries_for,
    ledger_ok,
    make_account,
    paid_checkout_without_events,
    provider,
    purchased_grants,
    sandbox,
    signed,
    top_up_row,
)

WORKERS = 5


def _deliver(payments: Any, payload: bytes, signature: str) -> int:
    reply = receive_webhook(
        payments.engine,
        payments.provider,
        payload=payload,
        signature=signature,
        secret=SECRET,
        clock=payments.clock,
    )
    return reply.status


def _grant_entries(engine: Engine) -> int:
    return entries_for(engine, reasons.GRANT_ISSUED)


def test_same_event_five_times_concurrently_and_with_the_return_page_credits_once(
    engine: Engine, now: datetime
) -> None:
    payments, top_up_id, session_id, intent_id = paid_checkout_without_events(engine, now)
    payload, signature = signed(
        checkout_completed_event(
            event_id="evt_same",
            session_id=session_id,
            top_up_id=top_up_id,
            amount_cents=2_500,
            intent_id=intent_id,
        )
    )
    barrier = threading.Barrier(WORKERS + 2)
    statuses: list[int] = []
    errors: list[BaseException] = []

    def webhook() -> None:
        try:
            barrier.wait()
            statuses.append(_deliver(payments, payload, signature))
        except BaseException as error:  # surfaced below
            errors.append(error)

    def return_page() -> None:
        try:
            barrier.wait()
            refresh_top_up(engine, payments.provider, top_up_id=top_up_id, clock=payments.clock)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=webhook) for _ in range(WORKERS)]
    threads += [threading.Thread(target=return_page) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert statuses == [200] * WORKERS
    assert balance(engine) == credits_to_nanos(25)
    assert [g.idempotency_key for g in purchased_grants(engine)] == [f"topup:{top_up_id}"]
    assert _grant_entries(engine) == 1
    with unit_of_work(engine) as session:
        events = session.scalars(select(PaymentEvent).where(PaymentEvent.id == "evt_same")).all()
    assert len(events) == 1 and events[0].processed_at is not None and events[0].top_up_id == top_up_id
    assert top_up_row(engine, top_up_id).state == "credited"
    ledger_ok(engine)


def test_a_redelivered_event_is_answered_as_a_duplicate(engine: Engine, now: datetime) -> None:
    payments, top_up_id, session_id, intent_id = paid_checkout_without_events(engine, now)
    payload, signature = signed(
        checkout_completed_event(
            event_id="evt_again",
            session_id=session_id,
            top_up_id=top_up_id,
            amount_cents=2_500,
            intent_id=intent_id,
        )
    )
    first = receive_webhook(engine, payments.provider, payload=payload, signature=signature, secret=SECRET)
    again = receive_webhook(engine, payments.provider, payload=payload, signature=signature, secret=SECRET)
    assert first.body["outcome"] == f"top-up {top_up_id}: credited"
    assert again.body["outcome"] == "duplicate: already processed"
    assert balance(engine) == credits_to_nanos(25)


def test_the_same_payment_in_two_different_events_credits_once(engine: Engine, now: datetime) -> None:
    """Stripe sends payment_intent.succeeded and checkout.session.completed for one payment."""
    payments, top_up_id, session_id, intent_id = paid_checkout_without_events(engine, now)
    intent = provider(payments).payment_intent(intent_id)
    public = {k: v for k, v in intent.items() if k != "_sandbox"}
    for event in (
        {"id": "evt_pi", "object": "event", "type": "payment_intent.succeeded", "data": {"object": public}},
        checkout_completed_event(
            event_id="evt_cs",
            session_id=session_id,
            top_up_id=top_up_id,
            amount_cents=2_500,
            intent_id=intent_id,
        ),
    ):
        assert _deliver(payments, *signed(event)) == 200
    assert balance(engine) == credits_to_nanos(25)
    assert _grant_entries(engine) == 1
    row = top_up_row(engine, top_up_id)
    assert (row.card_last4, row.receipt_url.startswith("/payments/sandbox/receipt/")) == ("4242", True)


def _saved_card(engine: Engine, payments: Any, number: str) -> str:
    """A card saved for the account on the sandbox (as a checkout with "save card" leaves one)."""
    from core.db.models import PaymentCard
    from core.payments.top_ups import ensure_customer

    customer = ensure_customer(engine, payments.provider, account_id=ACCOUNT, clock=payments.clock)
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
                created_at=payments.clock(),
            )
        )
    return card_id


def test_failure_event_after_success_changes_nothing_and_late_success_after_failure_credits(
    engine: Engine, now: datetime
) -> None:
    make_account(engine, now)
    payments = sandbox(engine, MovableClock(now), delivery="none")
    collected: list[tuple[bytes, str]] = []
    provider(payments).deliver = lambda payload, signature: collected.append((payload, signature))
    card = _saved_card(engine, payments, CARD_DECLINED)
    declined = buy_with_saved_card(
        engine,
        payments.provider,
        payments.config,
        actor=OWNER,
        account_id=ACCOUNT,
        amount_cents=1_000,
        card_id=card,
        request_key="declined",
        page_url=PAGE_URL,
        clock=payments.clock,
    )
    assert declined.state == "failed" and "declined" in declined.failure_message
    assert balance(engine) == 0

    # The bank answered late after all: a success for the same payment intent credits.
    intent_id = top_up_row(engine, declined.top_up_id).payment_intent_id
    intent = provider(payments).payment_intent(str(intent_id))
    success = {
        **{k: v for k, v in intent.items() if k != "_sandbox"},
        "status": "succeeded",
        "amount_received": 1_000,
    }
    assert (
        _deliver(
            payments,
            *signed({"id": "evt_late", "type": "payment_intent.succeeded", "data": {"object": success}}),
        )
        == 200
    )
    assert top_up_row(engine, declined.top_up_id).state == "credited"
    assert balance(engine) == credits_to_nanos(10)

    # ...and the failure event, delivered after it, changes nothing.
    failure = [payload for payload, _ in collected if b"payment_intent.payment_failed" in payload]
    assert failure
    from core.payments.sandbox import sign

    assert _deliver(payments, failure[0], sign(failure[0], SECRET)) == 200
    assert top_up_row(engine, declined.top_up_id).state == "credited"
    assert balance(engine) == credits_to_nanos(10)
    ledger_ok(engine)


def test_a_refund_event_before_the_success_event_credits_then_refunds(engine: Engine, now: datetime) -> None:
    payments, top_up_id, session_id, intent_id = paid_checkout_without_events(engine, now)
    collected: list[bytes] = []
    provider(payments).deliver = lambda payload, signature: collected.append(payload)
    provider(payments).refund(intent_id, 1_000)
    (refund_event,) = collected
    from core.payments.sandbox import sign

    # The refund arrives first: the payment is asked about, credited, then 10 of 25 credits reversed.
    assert _deliver(payments, refund_event, sign(refund_event, SECRET)) == 200
    row = top_up_row(engine, top_up_id)
    assert (row.state, row.refunded_cents, row.reversed_nanos) == ("credited", 1_000, credits_to_nanos(10))
    assert balance(engine) == credits_to_nanos(15)
    # The success event arrives last: nothing more.
    completed = checkout_completed_event(
        event_id="evt_late_cs",
        session_id=session_id,
        top_up_id=top_up_id,
        amount_cents=2_500,
        intent_id=intent_id,
    )
    assert _deliver(payments, *signed(completed)) == 200
    assert balance(engine) == credits_to_nanos(15)
    assert _grant_entries(engine) == 1
    ledger_ok(engine)


def test_an_expiry_after_the_payment_changes_nothing(engine: Engine, now: datetime) -> None:
    payments, top_up_id, session_id, _ = paid_checkout_without_events(engine, now)
    refresh_top_up(engine, payments.provider, top_up_id=top_up_id, clock=payments.clock)
    expired = {
        "id": "evt_exp",
        "type": "checkout.session.expired",
        "data": {"object": {"id": session_id, "metadata": {"top_up_id": str(top_up_id)}}},
    }
    assert _deliver(payments, *signed(expired)) == 200
    assert top_up_row(engine, top_up_id).state == "credited"
    assert balance(engine) == credits_to_nanos(25)


def test_an_amount_that_does_not_match_is_not_credited_and_alerts_support(
    engine: Engine, now: datetime
) -> None:
    payments, top_up_id, session_id, intent_id = paid_checkout_without_events(engine, now)
    wrong = checkout_completed_event(
        event_id="evt_wrong",
        session_id=session_id,
        top_up_id=top_up_id,
        amount_cents=100,
        intent_id=intent_id,
    )
    assert _deliver(payments, *signed(wrong)) == 200
    assert top_up_row(engine, top_up_id).state == "paid"
    assert balance(engine) == 0
    from core.db.models import AuditLog

    with unit_of_work(engine) as session:
        alerts = session.scalars(select(AuditLog.action).where(AuditLog.account_id == ACCOUNT)).all()
    assert "payments.alert.amount_mismatch" in alerts
    # Asking the provider (the return page, reconciliation) finds the real amount and credits it.
    refresh_top_up(engine, payments.provider, top_up_id=top_up_id, clock=payments.clock)
    assert balance(engine) == credits_to_nanos(25)
    with unit_of_work(engine) as session:
        assert (
            session.scalar(
                select(func.count())
                .select_from(LedgerEntry)
                .where(LedgerEntry.reason == reasons.GRANT_ISSUED)
            )
            == 1
        )
