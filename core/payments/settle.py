"""Settling a top-up from what the provider says: credit once, fail, refund, dispute.

Every function here runs inside the caller's write unit of work and starts by locking the
top-up row (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite's write transaction holds the
database lock), then re-reads its state: two workers, a retried webhook and the return
page may all arrive at once, and whoever comes second finds the work done.
``fulfill_top_up`` is the one way credits are granted for a payment, and the grant's
idempotency key (``topup:<id>``) makes a second grant impossible even past the lock.

Order of locks: the top-up row, then the account's auto-recharge settings, then the
account (inside ``core.ledger``). Nothing takes them the other way round: starting an
auto-recharge locks the settings and only inserts a top-up, never locking the account.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.models import AutoRecharge, PaymentCard, TopUp
from core.errors import NotFound, ValidationError
from core.ledger import grant_credits, reasons, restore_credits, take_back_credits
from core.money import cents_to_nanos, format_credits
from core.payments import states
from core.payments.config import format_cents, payment_config
from core.payments.notify import alert_support, audit, notify_customer
from core.payments.provider import Card, Payment
from core.payments.recharge_policy import backoff_delay

AUTO = "auto_recharge"
MAX_FAILURES_DEFAULT = 5

Outcome = Literal["credited", "already_credited", "paid_not_credited", "pending", "failed", "ignored"]


@dataclass(frozen=True)
class PaymentReceived:
    """A payment the provider says succeeded (from a signed event or from asking it)."""

    amount_cents: int
    currency: str
    payment_intent_id: str | None = None
    card: Card | None = None
    receipt_url: str = ""
    via: str = ""  # "webhook evt_…", "return page", "reconciliation", …


def lock_top_up(session: Session, top_up_id: int) -> TopUp:
    """The top-up, locked for this transaction and read as it is now."""
    stmt = select(TopUp).where(TopUp.id == top_up_id)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    top_up = session.scalars(stmt.execution_options(populate_existing=True)).first()
    if top_up is None:
        raise NotFound(f"top-up {top_up_id} does not exist", field="top_up_id")
    return top_up


def lock_recharge_settings(session: Session, account_id: str) -> AutoRecharge | None:
    """The account's auto-recharge settings, locked (after the top-up, before the account)."""
    stmt = select(AutoRecharge).where(AutoRecharge.account_id == account_id)
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update()
    return session.scalars(stmt.execution_options(populate_existing=True)).first()


def _set_state(top_up: TopUp, target: str, at: datetime) -> None:
    top_up.state = states.move(top_up.state, target)
    top_up.updated_at = at


def _card_details(top_up: TopUp, card: Card | None, receipt_url: str) -> None:
    if card is not None:
        top_up.payment_method_id = top_up.payment_method_id or card.payment_method_id
        top_up.card_brand = top_up.card_brand or card.brand[:32]
        top_up.card_last4 = top_up.card_last4 or card.last4[:4]
    if receipt_url and not top_up.receipt_url:
        top_up.receipt_url = receipt_url


def _save_card(session: Session, top_up: TopUp, card: Card | None, at: datetime) -> None:
    """Keep the card the customer asked to save (brand, last 4, expiry: never the number)."""
    if not top_up.save_card or card is None or not top_up.customer_id:
        return
    if session.get(PaymentCard, card.payment_method_id) is not None:
        return
    session.add(
        PaymentCard(
            id=card.payment_method_id,
            account_id=top_up.account_id,
            provider=top_up.provider,
            customer_id=top_up.customer_id,
            brand=card.brand[:32],
            last4=card.last4[:4],
            exp_month=card.exp_month,
            exp_year=card.exp_year,
            created_at=at,
            removed_at=None,
        )
    )


def _label(top_up: TopUp) -> str:
    return f"{format_credits(top_up.credits_nanos)} for {format_cents(top_up.amount_cents)}"


def fulfill_top_up(session: Session, *, top_up_id: int, payment: PaymentReceived, at: datetime) -> Outcome:
    """Grant the credits of a paid top-up, exactly once, whoever calls and however often.

    Only a payment of the top-up's exact amount and currency is credited; anything else
    stays ``paid`` and alerts support. A second, different payment for a top-up already
    credited is flagged for a refund, never credited again.
    """
    top_up = lock_top_up(session, top_up_id)
    if payment.payment_intent_id:
        if top_up.payment_intent_id is None:
            top_up.payment_intent_id = payment.payment_intent_id
        elif top_up.payment_intent_id != payment.payment_intent_id:
            alert_support(
                session,
                account_id=top_up.account_id,
                alert="second_payment",
                reason=f"Top-up #{top_up.id} was paid by {payment.payment_intent_id} as well as by "
                f"{top_up.payment_intent_id}; it is credited once. Refund the second payment.",
                at=at,
                details={"top_up_id": top_up.id, "payment_intent": payment.payment_intent_id},
            )
            return "ignored"
    _card_details(top_up, payment.card, payment.receipt_url)
    if top_up.state in states.SETTLED_STATES:
        _save_card(session, top_up, payment.card, at)
        top_up.updated_at = at
        return "already_credited"
    if payment.amount_cents != top_up.amount_cents or payment.currency != top_up.currency:
        if top_up.state != states.PAID:
            _set_state(top_up, states.PAID, at)
            top_up.paid_at = at
        top_up.note = (
            f"Paid {payment.amount_cents} {payment.currency} instead of {top_up.amount_cents} "
            f"{top_up.currency}: not credited; support will sort it out."
        )
        alert_support(
            session,
            account_id=top_up.account_id,
            alert="amount_mismatch",
            reason=f"Top-up #{top_up.id}: {top_up.note}",
            at=at,
            details={
                "top_up_id": top_up.id,
                "paid_cents": payment.amount_cents,
                "currency": payment.currency,
            },
        )
        return "paid_not_credited"
    if top_up.state != states.PAID:
        _set_state(top_up, states.PAID, at)
        top_up.paid_at = at
    if top_up.kind == AUTO:
        lock_recharge_settings(session, top_up.account_id)  # lock order: top-up, settings, account
    try:
        grant = grant_credits(
            session,
            account_id=top_up.account_id,
            amount_nanos=top_up.credits_nanos,
            source="purchased",
            at=at,
            cost_basis_cents=top_up.amount_cents,
            description=f"Top-up #{top_up.id}" + (" (auto-recharge)" if top_up.kind == AUTO else ""),
            idempotency_key=f"topup:{top_up.id}",
            created_by="auto-recharge" if top_up.kind == AUTO else top_up.created_by,
        )
    except ValidationError as error:  # e.g. the balance ceiling: the money is in, a person must look
        top_up.note = f"Paid, but the credits could not be granted: {error.message}."
        alert_support(
            session,
            account_id=top_up.account_id,
            alert="grant_refused",
            reason=top_up.note,
            at=at,
            details={"top_up_id": top_up.id},
        )
        return "paid_not_credited"
    _set_state(top_up, states.CREDITED, at)
    top_up.grant_id = grant.grant_id
    top_up.credited_at = at
    top_up.action_url = ""
    top_up.failure_code = ""
    top_up.failure_message = ""
    _save_card(session, top_up, payment.card, at)
    if top_up.kind == AUTO:
        _recharge_settled(session, top_up, succeeded=True, at=at)
    notify_customer(
        session,
        account_id=top_up.account_id,
        title=("Auto-recharge: " if top_up.kind == AUTO else "")
        + f"{format_credits(top_up.credits_nanos)} added",
        body=f"Your payment of {format_cents(top_up.amount_cents)} went through and "
        f"{format_credits(top_up.credits_nanos)} were added to your balance (top-up #{top_up.id}).",
        at=at,
    )
    return "credited"


def fail_top_up(
    session: Session,
    *,
    top_up_id: int,
    code: str,
    message: str,
    at: datetime,
    canceled: bool = False,
) -> bool:
    """Mark a top-up that is still open as failed (or canceled); False if it was already settled."""
    top_up = lock_top_up(session, top_up_id)
    target = states.CANCELED if canceled else states.FAILED
    if top_up.state not in (states.CREATED, states.PENDING_PAYMENT):
        return False
    _set_state(top_up, target, at)
    top_up.failure_code = code[:64]
    top_up.failure_message = message[:500]
    top_up.action_url = ""
    if top_up.kind == AUTO:
        _recharge_settled(session, top_up, succeeded=False, at=at)
    elif not canceled:
        notify_customer(
            session,
            account_id=top_up.account_id,
            title=f"Payment of {format_cents(top_up.amount_cents)} failed",
            body=f"Top-up #{top_up.id} ({_label(top_up)}) did not go through: {message} Nothing was charged.",
            at=at,
        )
    return True


def mark_pending(
    session: Session, *, top_up_id: int, payment_intent_id: str | None, action_url: str | None, at: datetime
) -> bool:
    """The provider has the payment and is waiting (for the bank, or for the customer's 3-D Secure).

    ``action_url`` None leaves the one the top-up has (an event that knows no more than "waiting").
    """
    top_up = lock_top_up(session, top_up_id)
    if top_up.state not in (states.CREATED, states.PENDING_PAYMENT):
        return False
    if top_up.state == states.CREATED:
        _set_state(top_up, states.PENDING_PAYMENT, at)
    if payment_intent_id and top_up.payment_intent_id is None:
        top_up.payment_intent_id = payment_intent_id
    if action_url is None:
        action_url = top_up.action_url
    asked_now = bool(action_url) and top_up.action_url != action_url
    top_up.action_url = action_url
    top_up.updated_at = at
    if asked_now and top_up.kind == AUTO:
        notify_customer(
            session,
            account_id=top_up.account_id,
            title="Auto-recharge needs your confirmation",
            body=f"Your bank asks you to confirm the auto-recharge of {format_cents(top_up.amount_cents)} "
            "(3-D Secure). Open Buy credits in the portal and confirm it; until then no other recharge runs.",
            at=at,
        )
    return True


def action_url_for(top_up: TopUp, payment: Payment) -> str:
    """Where the customer confirms with their bank: the provider's page, or ours with Stripe.js."""
    if payment.action is not None and payment.action.redirect_url:
        return payment.action.redirect_url
    return f"/payments/authenticate/{top_up.access_token}"


def apply_payment(session: Session, *, top_up_id: int, payment: Payment, at: datetime, via: str) -> Outcome:
    """Move a top-up to what the provider says about its payment now (asked, not assumed)."""
    if payment.status == "succeeded":
        outcome = fulfill_top_up(
            session,
            top_up_id=top_up_id,
            payment=PaymentReceived(
                amount_cents=payment.amount_cents,
                currency=payment.currency,
                payment_intent_id=payment.payment_intent_id,
                card=payment.card,
                receipt_url=payment.receipt_url,
                via=via,
            ),
            at=at,
        )
        if payment.refunded_cents:
            apply_refund(session, top_up_id=top_up_id, refunded_cents_total=payment.refunded_cents, at=at)
        return outcome
    if payment.status in ("processing", "open", "requires_action"):
        top_up = lock_top_up(session, top_up_id)
        url = action_url_for(top_up, payment) if payment.status == "requires_action" else ""
        mark_pending(
            session, top_up_id=top_up_id, payment_intent_id=payment.payment_intent_id, action_url=url, at=at
        )
        return "pending"
    top_up = lock_top_up(session, top_up_id)
    if payment.payment_intent_id and top_up.payment_intent_id is None:
        top_up.payment_intent_id = payment.payment_intent_id
    _card_details(top_up, payment.card, "")
    failed = fail_top_up(
        session,
        top_up_id=top_up_id,
        code=payment.failure_code or payment.status,
        message=payment.failure_message
        or ("The payment was canceled." if payment.status == "canceled" else ""),
        at=at,
        canceled=payment.status == "canceled",
    )
    return "failed" if failed else "ignored"


@dataclass(frozen=True)
class RefundResult:
    refunded_cents: int  # this refund
    reversed_nanos: int  # credits taken back
    spent_nanos: int  # refunded credits that had been used already (not taken back)


def apply_refund(
    session: Session, *, top_up_id: int, refunded_cents_total: int, at: datetime
) -> RefundResult | None:
    """Reverse the unspent credits of what was refunded so far (``refunded_cents_total``, cumulative).

    Events carry the running total, so a repeated or out-of-order event refunds nothing
    twice. Credits already burned by usage cannot come back: that part is reported to
    the customer and to support, not taken out of other grants.
    """
    top_up = lock_top_up(session, top_up_id)
    total = min(refunded_cents_total, top_up.amount_cents)
    if total <= top_up.refunded_cents:
        return None
    if top_up.state not in states.SETTLED_STATES or top_up.grant_id is None:
        top_up.note = f"Refunded {format_cents(total)} before any credits were granted."
        top_up.refunded_cents = total
        top_up.updated_at = at
        return RefundResult(total, 0, 0)
    delta_cents = total - top_up.refunded_cents
    delta_nanos = cents_to_nanos(delta_cents)
    taken = take_back_credits(
        session,
        grant_id=top_up.grant_id,
        amount_nanos=delta_nanos,
        reason=reasons.GRANT_REFUNDED,
        at=at,
        memo=f"Refund of {format_cents(delta_cents)} for top-up #{top_up.id}",
    )
    spent = delta_nanos - taken
    top_up.refunded_cents = total
    top_up.reversed_nanos += taken
    top_up.refund_spent_nanos += spent
    top_up.updated_at = at
    if total == top_up.amount_cents and top_up.state == states.CREDITED:
        _set_state(top_up, states.REFUNDED, at)
    said = (
        f"{format_cents(delta_cents)} of top-up #{top_up.id} was refunded: {format_credits(taken)} removed."
    )
    if spent:
        said += (
            f" {format_credits(spent)} of these credits had already been used, so they stay used and "
            "nothing else was taken from your balance."
        )
    top_up.note = said
    notify_customer(session, account_id=top_up.account_id, title="Refund processed", body=said, at=at)
    audit(
        session,
        actor="payments",
        action="payments.refund",
        account_id=top_up.account_id,
        reason=said,
        at=at,
        top_up_id=top_up.id,
        refunded_cents=delta_cents,
        reversed_nanos=taken,
        spent_nanos=spent,
    )
    if spent:
        alert_support(
            session,
            account_id=top_up.account_id,
            alert="refund_of_spent_credits",
            reason=f"Top-up #{top_up.id}: {format_credits(spent)} refunded had already been used; "
            "the customer keeps that usage for free unless you recover it.",
            at=at,
            details={"top_up_id": top_up.id, "spent_nanos": spent},
        )
    return RefundResult(delta_cents, taken, spent)


def open_dispute(session: Session, *, top_up_id: int, dispute_id: str, reason: str, at: datetime) -> bool:
    """The bank disputes the payment: hold back what is left of its credits and alert support."""
    top_up = lock_top_up(session, top_up_id)
    if top_up.dispute_id == dispute_id:
        return False
    top_up.dispute_id = dispute_id
    top_up.dispute_status = "open"
    top_up.updated_at = at
    frozen = 0
    if top_up.grant_id is not None and top_up.state in states.SETTLED_STATES:
        frozen = take_back_credits(
            session,
            grant_id=top_up.grant_id,
            amount_nanos=top_up.credits_nanos,
            reason=reasons.GRANT_FROZEN,
            at=at,
            memo=f"Payment for top-up #{top_up.id} disputed ({dispute_id})",
        )
    top_up.frozen_nanos += frozen
    top_up.note = (
        f"Payment disputed by the bank ({reason or 'no reason given'}): {format_credits(frozen)} on hold."
    )
    alert_support(
        session,
        account_id=top_up.account_id,
        alert="dispute_opened",
        reason=f"Top-up #{top_up.id} ({_label(top_up)}) is disputed ({reason or 'no reason'}); "
        f"{format_credits(frozen)} of its credits are on hold. Answer the dispute in Stripe.",
        at=at,
        details={"top_up_id": top_up.id, "dispute_id": dispute_id, "frozen_nanos": frozen},
    )
    notify_customer(
        session,
        account_id=top_up.account_id,
        title="Payment disputed: credits on hold",
        body=f"Your bank disputed the payment for top-up #{top_up.id}. {format_credits(frozen)} of its "
        "credits are on hold until the dispute is resolved. Contact support if this is a mistake.",
        at=at,
    )
    return True


def close_dispute(session: Session, *, top_up_id: int, dispute_id: str, status: str, at: datetime) -> bool:
    """The dispute is over: won gives the held credits back; lost keeps them removed."""
    top_up = lock_top_up(session, top_up_id)
    if top_up.dispute_status != "open" or top_up.dispute_id != dispute_id:
        return False
    won = status in ("won", "warning_closed")
    top_up.dispute_status = "won" if won else "lost"
    top_up.updated_at = at
    restored = 0
    if won and top_up.frozen_nanos and top_up.grant_id is not None:
        restored = restore_credits(
            session,
            grant_id=top_up.grant_id,
            amount_nanos=top_up.frozen_nanos,
            reason=reasons.GRANT_UNFROZEN,
            at=at,
            memo=f"Dispute {dispute_id} closed in your favour",
        )
        top_up.frozen_nanos -= restored
    top_up.note = (
        f"Dispute won: {format_credits(restored)} released."
        if won
        else f"Dispute lost: the payment went back to the bank; {format_credits(top_up.frozen_nanos)} "
        "stay removed."
    )
    audit(
        session,
        actor="payments",
        action="payments.dispute_closed",
        account_id=top_up.account_id,
        reason=top_up.note,
        at=at,
        top_up_id=top_up.id,
        dispute_id=dispute_id,
        status=status,
    )
    notify_customer(session, account_id=top_up.account_id, title="Dispute closed", body=top_up.note, at=at)
    return True


def _recharge_settled(session: Session, top_up: TopUp, *, succeeded: bool, at: datetime) -> None:
    """An auto-recharge ended: free the slot; count a decline, back off, turn off after too many."""
    settings = lock_recharge_settings(session, top_up.account_id)
    if settings is None:
        return
    if settings.in_flight_top_up_id == top_up.id:
        settings.in_flight_top_up_id = None
    settings.updated_at = at
    if succeeded:
        settings.failures = 0
        settings.next_attempt_at = None
        settings.last_decision = f"Recharged {format_cents(top_up.amount_cents)} (top-up #{top_up.id})."
        settings.last_decision_code = "recharged"
        settings.last_decision_at = at
        return
    limit = payment_config().recharge_max_failures
    settings.failures += 1
    why = top_up.failure_message or "the payment did not go through"
    if settings.failures >= limit:
        settings.enabled = False
        settings.next_attempt_at = None
        settings.last_decision = (
            f"Turned off after {settings.failures} declined attempts in a row (last: {why})."
        )
        title = "Auto-recharge turned off"
        body = (
            f"The auto-recharge of {format_cents(top_up.amount_cents)} was declined {settings.failures} "
            f"times in a row ({why}), so it is now off. Update the card on Buy credits and turn it on again."
        )
    else:
        settings.next_attempt_at = at + backoff_delay(settings.failures)
        settings.last_decision = (
            f"Declined ({why}); next attempt not before {settings.next_attempt_at:%b %d, %H:%M} UTC."
        )
        title = "Auto-recharge declined"
        body = (
            f"The auto-recharge of {format_cents(top_up.amount_cents)} did not go through: {why} We will "
            f"try again after {settings.next_attempt_at:%b %d, %H:%M} UTC "
            f"(attempt {settings.failures + 1} of {limit})."
        )
    settings.last_decision_code = "declined" if settings.enabled else "off"
    settings.last_decision_at = at
    notify_customer(session, account_id=top_up.account_id, title=title, body=body, at=at)
