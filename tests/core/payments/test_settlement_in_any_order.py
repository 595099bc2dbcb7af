"""The settlement defects found in review, each as it reached production: events out of order, a
provider that does not answer, partial disputes, endive's dispute statuses, refunds of purchases
that paid off a negative balance, alerts raised on every pass, outages counted as declines."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select

from core.db import unit_of_work
from core.db.models import AuditLog, AutoRecharge, Notification, PaymentEvent, TopUp
from core.errors import ValidationError
from core.ledger import reasons
from core.money import credits_to_nanos
from core.payments import receive_webhook, start_checkout
from core.payments.config import PaymentConfig
from core.payments.provider import Payment, ProviderError
from core.payments.reconcile import RETRY_WINDOW, reconcile
from core.payments.runtime import Payments
from core.payments.sandbox import CARD_SUCCEEDS
from core.payments.settle import (
    NOT_SENT,
    PaymentReceived,
    apply_payment,
    apply_refund,
    credit_anyway,
    fail_top_up,
    fulfill_top_up,
)
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
    make_priced_account,
    paid_checkout_without_events,
    provider,
    sandbox,
    signed,
    spend,
    top_up_row,
)


class Unreachable:
    """The sandbox provider, except that asking it about a payment times out."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.name = inner.name

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def retrieve_payment(self, payment_intent_id: str) -> Payment:
        raise ProviderError("Stripe: the request timed out")


def _deliver(payments: Payments, event: dict[str, Any], via: Any = None) -> tuple[int, dict[str, Any]]:
    payload, signature = signed(event)
    reply = receive_webhook(
        payments.engine,
        via or payments.provider,
        payload=payload,
        signature=signature,
        secret=SECRET,
        clock=payments.clock,
    )
    return reply.status, reply.body


def _event(event_id: str, event_type: str, obj: dict[str, Any], created: int) -> dict[str, Any]:
    return {
        "id": event_id,
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": created,
        "type": event_type,
        "data": {"object": obj},
    }


def _refunded(event_id: str, intent: str, cents: int, created: int, metadata: dict[str, str] | None = None):
    charge = {
        "id": "ch_1",
        "object": "charge",
        "payment_intent": intent,
        "amount_refunded": cents,
        "currency": "usd",
        "metadata": metadata or {},
    }
    return _event(event_id, "charge.refunded", charge, created)


def _dispute(event_id: str, kind: str, intent: str, cents: int, status: str, created: int, dp: str = "dp_1"):
    dispute = {
        "id": dp,
        "object": "dispute",
        "payment_intent": intent,
        "amount": cents,
        "currency": "usd",
        "status": status,
        "reason": "fraudulent",
    }
    return _event(event_id, f"charge.dispute.{kind}", dispute, created)


def _success(session_id: str, top_up_id: int, intent: str, cents: int = 2_500) -> dict[str, Any]:
    return checkout_completed_event(
        event_id="evt_success",
        session_id=session_id,
        top_up_id=top_up_id,
        amount_cents=cents,
        intent_id=intent,
    )


def _processed(engine: Engine, event_id: str) -> bool:
    with unit_of_work(engine) as session:
        row = session.get(PaymentEvent, event_id)
        return row is not None and row.processed_at is not None


T0 = int(time.time())


def test_a_refund_before_the_success_with_the_provider_down_is_not_lost(
    engine: Engine, now: datetime
) -> None:
    payments, top_up_id, session_id, intent = paid_checkout_without_events(engine, now)
    # The charge names its top-up, so the handler does not need the provider to find it.
    refund = _refunded("evt_refund", intent, 2_500, T0, metadata={"top_up_id": str(top_up_id)})
    assert _deliver(payments, refund, via=Unreachable(payments.provider))[0] == 200
    assert balance(engine) == 0
    assert _deliver(payments, _success(session_id, top_up_id, intent))[0] == 200
    # Credited, then the refund already known took it back: the customer does not keep both.
    assert balance(engine) == 0
    row = top_up_row(engine, top_up_id)
    assert (row.state, row.refunded_cents, row.reversed_nanos) == ("refunded", 2_500, credits_to_nanos(25))
    assert entries_for(engine, reasons.GRANT_ISSUED) == 1
    ledger_ok(engine)


def test_an_event_needing_an_unanswered_question_is_503_and_processed_on_retry(
    engine: Engine, now: datetime
) -> None:
    payments, top_up_id, session_id, intent = paid_checkout_without_events(engine, now)
    refund = _refunded("evt_refund_anon", intent, 2_500, T0)  # no metadata: only the PaymentIntent says whose
    status, body = _deliver(payments, refund, via=Unreachable(payments.provider))
    assert status == 503 and body["error"]["code"] == "provider_unavailable"
    assert not _processed(engine, "evt_refund_anon")  # Stripe will deliver it again
    assert _deliver(payments, _success(session_id, top_up_id, intent))[0] == 200
    assert balance(engine) == credits_to_nanos(25)
    status, _ = _deliver(payments, refund)  # the retry, with the provider back
    assert status == 200 and _processed(engine, "evt_refund_anon")
    assert balance(engine) == 0
    assert top_up_row(engine, top_up_id).state == "refunded"


def test_a_dispute_of_a_checkout_payment_not_yet_linked_holds_the_credits(
    engine: Engine, now: datetime
) -> None:
    payments, top_up_id, session_id, intent = paid_checkout_without_events(engine, now)
    assert (
        top_up_row(engine, top_up_id).payment_intent_id is None
    )  # only the PaymentIntent's metadata links it
    status, body = _deliver(payments, _dispute("evt_dp", "created", intent, 2_500, "needs_response", T0))
    assert status == 200, body
    assert _deliver(payments, _success(session_id, top_up_id, intent))[0] == 200
    row = top_up_row(engine, top_up_id)
    assert (row.state, row.dispute_status, row.frozen_nanos) == ("credited", "open", credits_to_nanos(25))
    assert balance(engine) == 0
    ledger_ok(engine)


def _credited(engine: Engine, now: datetime) -> tuple[Payments, int, str]:
    payments, top_up_id, session_id, intent = paid_checkout_without_events(engine, now)
    assert _deliver(payments, _success(session_id, top_up_id, intent))[0] == 200
    assert balance(engine) == credits_to_nanos(25)
    return payments, top_up_id, intent


def test_a_partial_dispute_holds_and_takes_only_the_disputed_part(engine: Engine, now: datetime) -> None:
    payments, top_up_id, intent = _credited(engine, now)
    _deliver(payments, _dispute("evt_dp1", "created", intent, 1_000, "needs_response", T0))
    row = top_up_row(engine, top_up_id)
    assert (row.dispute_status, row.frozen_nanos) == ("open", credits_to_nanos(10))
    assert balance(engine) == credits_to_nanos(15)
    _deliver(payments, _dispute("evt_dp2", "closed", intent, 1_000, "lost", T0 + 5))
    row = top_up_row(engine, top_up_id)
    assert (row.dispute_status, row.frozen_nanos) == ("lost", 0)
    assert balance(engine) == credits_to_nanos(15)  # 10 removed for good, 15 stay
    ledger_ok(engine)


def test_a_dispute_closed_before_it_was_opened_ends_closed(engine: Engine, now: datetime) -> None:
    payments, top_up_id, intent = _credited(engine, now)
    _deliver(payments, _dispute("evt_won", "closed", intent, 2_500, "won", T0 + 10))
    _deliver(payments, _dispute("evt_new", "created", intent, 2_500, "needs_response", T0))
    row = top_up_row(engine, top_up_id)
    assert (row.dispute_status, row.frozen_nanos) == ("won", 0)
    assert balance(engine) == credits_to_nanos(25)


def test_a_lost_dispute_that_arrives_first_still_removes_the_credits(engine: Engine, now: datetime) -> None:
    payments, top_up_id, intent = _credited(engine, now)
    _deliver(payments, _dispute("evt_lost", "closed", intent, 2_500, "lost", T0 + 10))
    _deliver(payments, _dispute("evt_new", "created", intent, 2_500, "needs_response", T0))
    assert top_up_row(engine, top_up_id).dispute_status == "lost"
    assert balance(engine) == 0
    ledger_ok(engine)


def test_endive_dispute_statuses_are_read_as_what_they_mean(engine: Engine, now: datetime) -> None:
    payments, top_up_id, intent = _credited(engine, now)
    _deliver(payments, _dispute("evt_a", "created", intent, 2_500, "needs_response", T0))
    _deliver(payments, _dispute("evt_b", "updated", intent, 2_500, "appeal_needs_response", T0 + 1))
    assert top_up_row(engine, top_up_id).dispute_status == "open"  # an appeal is not a loss
    assert balance(engine) == 0
    _deliver(payments, _dispute("evt_c", "updated", intent, 2_500, "appeal_under_review", T0 + 2))
    assert balance(engine) == 0
    _deliver(payments, _dispute("evt_d", "closed", intent, 2_500, "prevented", T0 + 3))
    row = top_up_row(engine, top_up_id)
    assert (row.dispute_status, row.frozen_nanos) == ("won", 0)  # prevented: no money lost
    assert balance(engine) == credits_to_nanos(25)


def test_a_refund_of_a_purchase_that_paid_off_debt_restores_the_debt(engine: Engine, now: datetime) -> None:
    make_priced_account(engine, now)
    spend(engine, credits_to_nanos(55), now)
    assert balance(engine) == -credits_to_nanos(55)
    payments = sandbox(engine, MovableClock(now + timedelta(minutes=1)))
    view = start_checkout(
        engine,
        payments.provider,
        payments.config,
        actor=OWNER,
        account_id=ACCOUNT,
        amount_cents=10_000,
        save_card=False,
        request_key="k100",
        page_url=PAGE_URL,
        clock=payments.clock,
    )
    session_id = str(top_up_row(engine, view.top_up_id).checkout_session_id)
    paid = provider(payments).pay_checkout(session_id, CARD_SUCCEEDS)
    assert balance(engine) == credits_to_nanos(45)
    provider(payments).refund(str(paid["payment_intent"]))
    # The $100 paid for $55 of usage before it; refunded, that usage is owed again.
    assert balance(engine) == -credits_to_nanos(55)
    row = top_up_row(engine, view.top_up_id)
    assert (row.state, row.reversed_nanos, row.debt_restored_nanos) == (
        "refunded",
        credits_to_nanos(45),
        credits_to_nanos(55),
    )
    assert entries_for(engine, reasons.DEBT_RESTORED) == 1
    with unit_of_work(engine) as session:
        bodies = session.scalars(
            select(Notification.body).where(Notification.title == "Refund processed")
        ).all()
    assert any("owed again" in body for body in bodies)
    ledger_ok(engine)


def _mismatched(engine: Engine, now: datetime) -> tuple[Payments, int]:
    payments, top_up_id, _session_id, intent = paid_checkout_without_events(engine, now)
    wrong = Payment(payment_intent_id=intent, status="succeeded", amount_cents=100, currency="usd")
    with unit_of_work(engine, write=True) as session:
        apply_payment(session, top_up_id=top_up_id, payment=wrong, at=now, via="reconciliation")
    return payments, top_up_id


def _alerts(engine: Engine, action: str) -> int:
    with unit_of_work(engine) as session:
        return int(session.scalar(select(func.count()).where(AuditLog.action == action)) or 0)


def test_a_paid_top_up_that_cannot_be_credited_alerts_support_once(engine: Engine, now: datetime) -> None:
    _payments, top_up_id = _mismatched(engine, now)
    for minutes in (10, 20, 30):  # reconciliation passes that find it the same way
        wrong = Payment(
            payment_intent_id=top_up_row(engine, top_up_id).payment_intent_id,
            status="succeeded",
            amount_cents=100,
            currency="usd",
        )
        with unit_of_work(engine, write=True) as session:
            apply_payment(
                session,
                top_up_id=top_up_id,
                payment=wrong,
                at=now + timedelta(minutes=minutes),
                via="reconciliation",
            )
    assert top_up_row(engine, top_up_id).state == "paid"
    assert _alerts(engine, "payments.alert.amount_mismatch") == 1


def test_support_credits_a_mismatched_payment_once(engine: Engine, now: datetime) -> None:
    _payments, top_up_id = _mismatched(engine, now)
    with unit_of_work(engine, write=True) as session:
        assert credit_anyway(session, top_up_id=top_up_id, decided_by="sam@support", at=now) == "credited"
    with unit_of_work(engine, write=True) as session:  # a second click: it is credited already
        try:
            credit_anyway(session, top_up_id=top_up_id, decided_by="sam@support", at=now)
        except ValidationError as error:
            assert error.field == "top_up"
    assert balance(engine) == credits_to_nanos(25)
    assert entries_for(engine, reasons.GRANT_ISSUED) == 1


def test_a_mismatched_payment_refunded_in_full_leaves_the_open_states(engine: Engine, now: datetime) -> None:
    _payments, top_up_id = _mismatched(engine, now)
    with unit_of_work(engine, write=True) as session:
        apply_refund(
            session, top_up_id=top_up_id, refunded_cents_total=100, at=now
        )  # from Stripe's dashboard
    row = top_up_row(engine, top_up_id)
    assert row.state == "refunded"  # was "paid": reconciliation would have asked about it forever
    assert balance(engine) == 0


@dataclass
class LostAnswers:
    """A provider whose answer to a saved-card charge was lost; asked later, it finds the payment."""

    found: Payment | None
    down: bool = False
    name: str = "sandbox"
    asked: list[int] = field(default_factory=list)

    def find_payment(self, *, customer_id: str, top_up_id: int) -> Payment | None:
        self.asked.append(top_up_id)
        if self.down:
            raise ProviderError("Stripe: the request timed out")
        return self.found


def _unanswered_charge(engine: Engine, now: datetime, kind: str = "saved_card") -> int:
    make_account(engine, now)
    with unit_of_work(engine, write=True) as session:
        top_up = TopUp(
            account_id=ACCOUNT,
            kind=kind,
            provider="sandbox",
            state="created",
            amount_cents=2_500,
            currency="usd",
            credits_nanos=credits_to_nanos(25),
            request_key="lost",
            customer_id="cus_1",
            payment_method_id="pm_1",
            access_token="t",
            created_by=OWNER.email,
            created_at=now,
            updated_at=now,
        )
        session.add(top_up)
        session.flush()
        return top_up.id


def test_reconciliation_asks_before_cancelling_a_charge_whose_answer_was_lost(
    engine: Engine, now: datetime
) -> None:
    top_up_id = _unanswered_charge(engine, now)
    later = MovableClock(now + RETRY_WINDOW + timedelta(hours=1))
    down = LostAnswers(found=None, down=True)
    report = reconcile(Payments(engine, PaymentConfig(mode="sandbox"), down, later))  # type: ignore[arg-type]
    assert report.errors and top_up_row(engine, top_up_id).state == "created"  # not canceled in an outage
    found = Payment(payment_intent_id="pi_found", status="succeeded", amount_cents=2_500, currency="usd")
    up = LostAnswers(found=found)
    reconcile(Payments(engine, PaymentConfig(mode="sandbox"), up, later))  # type: ignore[arg-type]
    assert up.asked == [top_up_id]
    assert top_up_row(engine, top_up_id).state == "credited"  # the charge had gone through
    assert balance(engine) == credits_to_nanos(25)


def test_an_auto_recharge_that_never_reached_the_provider_is_not_a_decline(
    engine: Engine, now: datetime
) -> None:
    top_up_id = _unanswered_charge(engine, now, kind="auto_recharge")
    with unit_of_work(engine, write=True) as session:
        session.add(
            AutoRecharge(
                account_id=ACCOUNT,
                enabled=True,
                threshold_nanos=credits_to_nanos(5),
                amount_cents=2_500,
                monthly_max_cents=10_000,
                card_id=None,
                in_flight_top_up_id=top_up_id,
                failures=0,
                updated_by=OWNER.email,
                created_at=now,
                updated_at=now,
            )
        )
    with unit_of_work(engine, write=True) as session:
        fail_top_up(session, top_up_id=top_up_id, code=NOT_SENT, message="never sent", at=now, canceled=True)
    with unit_of_work(engine) as session:
        settings = session.get(AutoRecharge, ACCOUNT)
        assert settings is not None
        assert (settings.enabled, settings.failures, settings.in_flight_top_up_id) == (True, 0, None)


def test_a_second_payment_for_one_top_up_alerts_once_and_credits_nothing(
    engine: Engine, now: datetime
) -> None:
    _payments, top_up_id, _intent = _credited(engine, now)
    for _ in range(2):
        with unit_of_work(engine, write=True) as session:
            outcome = fulfill_top_up(
                session,
                top_up_id=top_up_id,
                payment=PaymentReceived(2_500, "usd", "pi_other", via="webhook"),
                at=now,
            )
        assert outcome == "ignored"
    assert balance(engine) == credits_to_nanos(25)
    assert _alerts(engine, "payments.alert.second_payment") == 1
