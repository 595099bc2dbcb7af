"""Refunds reverse the unspent part (and say what was used already); disputes hold credits, alert support."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select

from core.db import unit_of_work
from core.db.models import AuditLog, Notification
from core.ledger import reasons
from core.money import credits_to_nanos
from tests.core.payments.helpers import (
    balance,
    entries_for,
    ledger_ok,
    paid_checkout_without_events,
    provider,
    spend,
    top_up_row,
)


def _bought(engine: Engine, now: datetime) -> tuple[Any, int, str]:
    """A $25 checkout paid on the sandbox, its events delivered: credited."""
    payments, top_up_id, _session_id, intent_id = paid_checkout_without_events(engine, now, delivery="sync")
    assert top_up_row(engine, top_up_id).state == "credited"
    return payments, top_up_id, intent_id


def _notes(engine: Engine) -> list[str]:
    with unit_of_work(engine) as session:
        return [
            f"{n.title}: {n.body}" for n in session.scalars(select(Notification).order_by(Notification.id))
        ]


def _alerts(engine: Engine) -> list[str]:
    with unit_of_work(engine) as session:
        return list(
            session.scalars(select(AuditLog.action).where(AuditLog.action.startswith("payments.alert.")))
        )


def test_refund_of_a_partly_spent_grant_reverses_what_is_left_and_says_the_rest_was_used(
    engine: Engine, now: datetime
) -> None:
    payments, top_up_id, intent_id = _bought(engine, now)
    spend(engine, credits_to_nanos(15), now + timedelta(minutes=1))
    assert balance(engine) == credits_to_nanos(10)

    provider(payments).refund(intent_id)  # all $25 back: charge.refunded -> the webhook

    row = top_up_row(engine, top_up_id)
    assert row.state == "refunded"
    assert (row.refunded_cents, row.reversed_nanos, row.refund_spent_nanos) == (
        2_500,
        credits_to_nanos(10),
        credits_to_nanos(15),
    )
    assert balance(engine) == 0  # the 10 unspent credits went back; the 15 used stay used
    assert entries_for(engine, reasons.GRANT_REFUNDED) == 1
    refund_note = [n for n in _notes(engine) if n.startswith("Refund processed")]
    assert refund_note and "15.00 credits of these credits had already been used" in refund_note[0]
    assert "payments.alert.refund_of_spent_credits" in _alerts(engine)
    ledger_ok(engine)


def test_partial_refunds_add_up_and_a_repeated_or_older_event_reverses_nothing(
    engine: Engine, now: datetime
) -> None:
    payments, top_up_id, intent_id = _bought(engine, now)
    sandbox_provider = provider(payments)
    delivered: list[bytes] = []
    deliver = sandbox_provider.deliver
    assert deliver is not None

    def keep(payload: bytes, signature: str) -> None:
        delivered.append(payload)
        deliver(payload, signature)

    sandbox_provider.deliver = keep
    sandbox_provider.refund(intent_id, 500)
    sandbox_provider.refund(intent_id, 700)
    assert balance(engine) == credits_to_nanos(13)
    row = top_up_row(engine, top_up_id)
    assert (row.state, row.refunded_cents, row.reversed_nanos) == ("credited", 1_200, credits_to_nanos(12))
    # The first refund's event again, late (its running total, 500, is behind): nothing moves.
    from core.payments import receive_webhook
    from core.payments.sandbox import sign

    first = delivered[0].replace(b'"id":"evt_', b'"id":"evt_redelivered_', 1)
    reply = receive_webhook(
        engine,
        payments.provider,
        payload=first,
        signature=sign(first, sandbox_provider.secret),
        secret=sandbox_provider.secret,
    )
    assert reply.status == 200 and "already applied" in reply.body["outcome"]
    assert balance(engine) == credits_to_nanos(13)
    assert entries_for(engine, reasons.GRANT_REFUNDED) == 2
    ledger_ok(engine)


def test_a_dispute_holds_the_credits_alerts_support_and_a_win_releases_them(
    engine: Engine, now: datetime
) -> None:
    payments, top_up_id, intent_id = _bought(engine, now)
    spend(engine, credits_to_nanos(5), now + timedelta(minutes=1))
    provider(payments).dispute(intent_id)
    row = top_up_row(engine, top_up_id)
    assert (row.dispute_status, row.frozen_nanos) == ("open", credits_to_nanos(20))
    assert balance(engine) == 0
    assert "payments.alert.dispute_opened" in _alerts(engine)
    assert any(n.startswith("Payment disputed: credits on hold") for n in _notes(engine))
    # Usage while the dispute is open burns no held credits: it goes negative instead.
    spend(engine, credits_to_nanos(2), now + timedelta(minutes=2))
    assert balance(engine) == credits_to_nanos(-2)

    provider(payments).dispute(intent_id, close_as="won")
    row = top_up_row(engine, top_up_id)
    assert (row.dispute_status, row.frozen_nanos) == ("won", 0)
    assert balance(engine) == credits_to_nanos(18)  # released, and the 2 owed paid off first
    assert entries_for(engine, reasons.GRANT_UNFROZEN) == 1
    ledger_ok(engine)


def test_a_lost_dispute_keeps_the_credits_removed(engine: Engine, now: datetime) -> None:
    payments, top_up_id, intent_id = _bought(engine, now)
    provider(payments).dispute(intent_id)
    provider(payments).dispute(intent_id, close_as="lost")
    row = top_up_row(engine, top_up_id)
    # The hold ends and the credits are removed for good (a lost dispute takes the payment back).
    assert (row.dispute_status, row.frozen_nanos) == ("lost", 0)
    assert balance(engine) == 0
    assert entries_for(engine, reasons.DISPUTE_LOST) == 1
    assert "decided for the bank" in row.note
    ledger_ok(engine)
