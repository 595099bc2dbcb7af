"""Reconciliation: settle top-ups stuck open by asking the provider, so a lost webhook loses nothing.

``meterline payments reconcile`` runs it by hand; the periodic jobs run it every minute
for top-ups untouched for ``STALE_AFTER`` (asking touches them: each open top-up is asked
about at most every ``STALE_AFTER``). For each open top-up:

- with a Checkout Session or a PaymentIntent: ask the provider and settle (credit once if
  paid, fail or cancel if not, wait if it is still on its way);
- waiting on 3-D Secure for more than a day: cancel the PaymentIntent (a success that
  raced the cancel is still credited);
- a saved-card or auto-recharge charge whose answer never came: send the same request
  again with the same idempotency key (the provider replays its answer, never charges
  twice), while the key is still kept (under a day); after that, ask the provider whether
  a payment for the top-up exists (by its metadata) and settle from it, and cancel the
  top-up only when the provider answers that none does (a provider that does not answer
  leaves it open for the next pass: an outage is not a decline);
- a checkout that never reached the provider: cancel it after an hour.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select

from core.db import unit_of_work
from core.db.models import TopUp
from core.errors import BillingError
from core.payments import states
from core.payments.provider import Payment
from core.payments.recharge import charge_request
from core.payments.runtime import Payments
from core.payments.settle import NOT_SENT, apply_payment, fail_top_up
from core.payments.top_ups import refresh_top_up

STALE_AFTER = timedelta(minutes=10)
ACTION_TIMEOUT = timedelta(hours=24)
RETRY_WINDOW = timedelta(hours=23)  # Stripe keeps idempotency keys for 24 hours
UNSENT_CHECKOUT_TIMEOUT = timedelta(hours=1)
BATCH_LIMIT = 500


@dataclass
class ReconcileReport:
    checked: int = 0
    changed: list[str] = field(default_factory=list)  # "top-up #12 (acc_x): pending_payment -> credited"
    still_open: int = 0
    errors: list[str] = field(default_factory=list)


def reconcile(
    payments: Payments, *, stale_after: timedelta = STALE_AFTER, account_id: str | None = None
) -> ReconcileReport:
    """Ask the provider about every top-up open for longer than ``stale_after`` and settle it
    (only ``account_id``'s when given: the support console re-runs it for one account)."""
    report = ReconcileReport()
    provider = payments.provider
    if provider is None:
        return report
    now = payments.clock()
    stmt = select(TopUp.id, TopUp.account_id, TopUp.state).where(
        TopUp.state.in_(sorted(states.OPEN_STATES)),
        TopUp.provider == provider.name,
        TopUp.updated_at <= now - stale_after,
    )
    if account_id is not None:
        stmt = stmt.where(TopUp.account_id == account_id)
    with unit_of_work(payments.engine) as session:
        rows = session.execute(stmt.order_by(TopUp.id).limit(BATCH_LIMIT)).all()
    for top_up_id, account_id, before in rows:
        report.checked += 1
        try:
            after = _settle(payments, top_up_id)
        except BillingError as error:  # unreachable, or it does not know an id we stored
            report.errors.append(f"top-up #{top_up_id} ({account_id}): {error.message}")
            continue
        if after != before:
            report.changed.append(f"top-up #{top_up_id} ({account_id}): {before} -> {after}")
        if after in states.OPEN_STATES:
            report.still_open += 1
    return report


def _settle(payments: Payments, top_up_id: int) -> str:
    provider = payments.provider
    assert provider is not None
    now = payments.clock()
    with unit_of_work(payments.engine) as session:
        top_up = session.get(TopUp, top_up_id)
        assert top_up is not None
        age = now - top_up.created_at
        unsent = top_up.checkout_session_id is None and top_up.payment_intent_id is None
        request = None
        if unsent and top_up.kind != "checkout" and top_up.payment_method_id and top_up.customer_id:
            request = charge_request(top_up, public_url=payments.config.public_url)
        kind, action_url, intent_id = top_up.kind, top_up.action_url, top_up.payment_intent_id
    if unsent:
        payment: Payment | None = None
        if request is not None and age < RETRY_WINDOW:
            payment = provider.charge_saved_card(request)  # same key: the first answer, or the charge now
        elif request is not None:
            payment = provider.find_payment(customer_id=request.customer_id, top_up_id=top_up_id)
        if payment is not None:
            with unit_of_work(payments.engine, write=True) as session:
                apply_payment(
                    session, top_up_id=top_up_id, payment=payment, at=payments.clock(), via="reconciliation"
                )
        elif kind != "checkout" or age >= UNSENT_CHECKOUT_TIMEOUT:
            with unit_of_work(payments.engine, write=True) as session:
                fail_top_up(
                    session,
                    top_up_id=top_up_id,
                    code=NOT_SENT,
                    message="The payment never reached the payment provider; nothing was charged.",
                    at=payments.clock(),
                    canceled=True,
                )
        return _state(payments, top_up_id)
    if action_url and intent_id and age >= ACTION_TIMEOUT:
        payment = provider.cancel_payment(intent_id, idempotency_key=f"topup:{top_up_id}:cancel")
        with unit_of_work(payments.engine, write=True) as session:
            apply_payment(
                session, top_up_id=top_up_id, payment=payment, at=payments.clock(), via="reconciliation"
            )
        return _state(payments, top_up_id)
    return refresh_top_up(
        payments.engine, provider, top_up_id=top_up_id, clock=payments.clock, via="reconciliation"
    ).state


def _state(payments: Payments, top_up_id: int) -> str:
    with unit_of_work(payments.engine) as session:
        state = session.scalar(select(TopUp.state).where(TopUp.id == top_up_id))
    assert state is not None
    return state
