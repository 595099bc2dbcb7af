"""Reading webhook events into facts (pure): the handled types, shapes refused, unknown types ignored."""

from __future__ import annotations

from typing import Any

import pytest

from core.payments.events import MalformedEvent, read_event


def _event(event_type: str, obj: dict[str, Any], event_id: str = "evt_1") -> dict[str, Any]:
    return {"id": event_id, "object": "event", "type": event_type, "created": 1, "data": {"object": obj}}


def test_checkout_completed_and_paid_is_a_success_of_its_amount() -> None:
    facts = read_event(
        _event(
            "checkout.session.completed",
            {
                "id": "cs_1",
                "payment_status": "paid",
                "amount_total": 2500,
                "currency": "USD",
                "payment_intent": "pi_1",
                "metadata": {"top_up_id": "7"},
            },
        )
    )
    assert (facts.kind, facts.top_up_id, facts.amount_cents, facts.currency) == (
        "payment_succeeded",
        7,
        2500,
        "usd",
    )
    assert (facts.checkout_session_id, facts.payment_intent_id) == ("cs_1", "pi_1")


def test_checkout_completed_but_unpaid_waits_for_the_async_outcome() -> None:
    facts = read_event(_event("checkout.session.completed", {"id": "cs_1", "payment_status": "unpaid"}))
    assert facts.kind == "payment_pending"
    failed = read_event(_event("checkout.session.async_payment_failed", {"id": "cs_1"}))
    assert failed.kind == "payment_failed"


def test_payment_intent_events_carry_card_and_decline() -> None:
    succeeded = read_event(
        _event(
            "payment_intent.succeeded",
            {
                "id": "pi_1",
                "status": "succeeded",
                "amount_received": 1000,
                "currency": "usd",
                "latest_charge": {
                    "receipt_url": "https://pay.stripe.com/receipts/x",
                    "payment_method": "pm_1",
                    "payment_method_details": {"card": {"brand": "visa", "last4": "4242"}},
                },
            },
        )
    )
    assert succeeded.card is not None and succeeded.card.last4 == "4242"
    assert succeeded.receipt_url == "https://pay.stripe.com/receipts/x"
    failed = read_event(
        _event(
            "payment_intent.payment_failed",
            {
                "id": "pi_1",
                "last_payment_error": {
                    "code": "card_declined",
                    "decline_code": "insufficient_funds",
                    "message": "Your card has insufficient funds.",
                },
            },
        )
    )
    assert (failed.kind, failed.failure_code) == ("payment_failed", "insufficient_funds")


def test_refund_and_dispute_events() -> None:
    refund = read_event(
        _event(
            "charge.refunded",
            {"id": "ch_1", "payment_intent": "pi_1", "amount_refunded": 700, "currency": "usd"},
        )
    )
    assert (refund.kind, refund.amount_cents, refund.payment_intent_id) == ("refunded", 700, "pi_1")
    dispute = read_event(
        _event(
            "charge.dispute.created",
            {
                "id": "dp_1",
                "payment_intent": "pi_1",
                "amount": 2500,
                "currency": "usd",
                "reason": "fraudulent",
            },
        )
    )
    assert (dispute.kind, dispute.dispute_id, dispute.failure_message) == (
        "dispute_opened",
        "dp_1",
        "fraudulent",
    )


def test_unknown_types_are_ignored_and_charges_outside_top_ups_too() -> None:
    assert read_event(_event("customer.created", {"id": "cus_1"})).kind == "ignored"
    assert read_event(_event("charge.refunded", {"id": "ch_1", "amount_refunded": 1})).kind == "ignored"


@pytest.mark.parametrize(
    "event",
    [
        {"type": "checkout.session.completed", "data": {"object": {}}},  # no id
        _event(
            "checkout.session.completed",
            {"id": "cs_1", "payment_status": "paid", "amount_total": 2.5, "currency": "usd"},
        ),
        _event(
            "checkout.session.completed",
            {"id": "cs_1", "payment_status": "paid", "amount_total": -1, "currency": "usd"},
        ),
        _event(
            "checkout.session.completed",
            {"id": "cs_1", "payment_status": "paid", "amount_total": True, "currency": "usd"},
        ),
        _event(
            "payment_intent.succeeded",
            {"id": "pi_1", "status": "processing", "amount_received": 5, "currency": "usd"},
        ),
        {"id": "evt_1", "type": "charge.refunded", "data": []},
        {"id": "x" * 300, "type": "charge.refunded", "data": {"object": {}}},
    ],
)
def test_malformed_events_are_refused(event: dict[str, Any]) -> None:
    with pytest.raises(MalformedEvent):
        read_event(event)


def test_a_top_up_id_must_be_a_plain_number() -> None:
    for value in ("12abc", "-1", "١٢", "9" * 30):
        facts = read_event(
            _event("checkout.session.expired", {"id": "cs_1", "metadata": {"top_up_id": value}})
        )
        assert facts.top_up_id is None


def test_off_session_authentication_required_waits_for_the_customer() -> None:
    """Off session, a bank that wants the customer: requires_payment_method + authentication_required."""
    from core.payments.shapes import payment_from_intent

    intent = {
        "id": "pi_1",
        "status": "requires_payment_method",
        "amount": 2000,
        "currency": "usd",
        "client_secret": "pi_1_secret_x",
        "last_payment_error": {
            "code": "authentication_required",
            "message": "Authentication required.",
            "payment_method": {"id": "pm_1"},
        },
    }
    payment = payment_from_intent(intent)
    assert payment.status == "requires_action"
    assert payment.action is not None
    assert (payment.action.client_secret, payment.action.payment_method_id, payment.action.confirm) == (
        "pi_1_secret_x",
        "pm_1",
        True,
    )
    event = read_event(_event("payment_intent.payment_failed", intent))
    assert (event.kind, event.failure_code) == ("payment_pending", "authentication_required")
    declined = payment_from_intent(
        {**intent, "last_payment_error": {"code": "card_declined", "message": "No."}}
    )
    assert declined.status == "failed" and declined.action is None
