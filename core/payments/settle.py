"""Settling a top-up from what the provider says: record the fact, then let one poster settle.

Every function here runs inside the caller's write unit of work and starts by locking the
top-up row (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite's write transaction holds the
database lock), then re-reads its state: two workers, a retried webhook and the return
page may all arrive at once, and whoever comes second finds the work done.

The handlers (``fulfill_top_up``, ``apply_refund``, ``apply_dispute``, ``credit_anyway``)
only record a payment fact (``core.payments.facts``) and call ``settle_top_up``, the one
poster: it grants the purchase once (idempotency key ``topup:<id>``), derives the target
position of its grant from all the facts (``core.payments.position``, pure) and posts the
difference. So a refund that arrives before the success, a dispute closed before it was
opened, or any repeat, ends in the same ledger as the same facts in order (DESIGN
invariant 10). Support alerts are raised once per condition (``payment_alerts``).

Order of locks: the top-up row, then the account's auto-recharge settings, then the
account (inside ``core.ledger``). Nothing takes them the other way round: starting an
auto-recharge locks the settings and only inserts a top-up, never locking the account.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.models import Account, AutoRecharge, CreditGrant, PaymentAlert, PaymentCard, TopUp
from core.display import format_credits, format_datetime, purchase_text
from core.errors import NotFound, ValidationError
from core.ledger import GrantMove, grant_credits, grant_entry_sums, lock_accounts, move_grant_credits, reasons
from core.payments import states
from core.payments.config import format_cents, payment_config
from core.payments.facts import load_facts, record_credit_anyway, record_dispute, record_paid, record_refunded
from core.payments.notify import alert_support, audit, notify_customer
from core.payments.position import (
    DisputeFact,
    PaymentFacts,
    Position,
    Target,
    Terms,
    dispute_outcome,
    should_grant,
    target_position,
)
from core.payments.provider import Card, Payment
from core.payments.recharge_policy import backoff_delay

AUTO = "auto_recharge"
NOT_SENT = "not_sent"  # failure code of a charge that never reached the provider

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
    asked: bool = False  # read from the provider's payment object now, not carried by an event


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
    """ "$20.00 → 20.00 credits": where the card payment meets the ledger."""
    return purchase_text(top_up.amount_cents, top_up.credits_nanos)


def _alert_once(
    session: Session,
    top_up: TopUp,
    *,
    alert: str,
    reason: str,
    at: datetime,
    details: dict[str, Any],
    condition: str = "",
) -> bool:
    """Raise a support alert about the top-up unless the same condition was raised before.

    ``condition`` (default: the alert's name) is what makes it the same: a dispute's id and
    outcome, a second payment's id.
    """
    condition = (condition or alert)[:64]
    if session.get(PaymentAlert, (top_up.id, condition)) is not None:
        return False
    session.add(
        PaymentAlert(
            top_up_id=top_up.id,
            alert=condition,
            account_id=top_up.account_id,
            reason=reason,
            raised_at=at,
            resolved_at=None,
            resolution="",
        )
    )
    alert_support(
        session,
        account_id=top_up.account_id,
        alert=alert,
        reason=reason,
        at=at,
        details={"top_up_id": top_up.id, **details},
    )
    return True


def _resolve_alerts(
    session: Session, top_up: TopUp, alerts: tuple[str, ...], resolution: str, at: datetime
) -> None:
    for row in session.scalars(
        select(PaymentAlert).where(
            PaymentAlert.top_up_id == top_up.id,
            PaymentAlert.alert.in_(alerts),
            PaymentAlert.resolved_at.is_(None),
        )
    ):
        row.resolved_at = at
        row.resolution = resolution[:500]


def fulfill_top_up(session: Session, *, top_up_id: int, payment: PaymentReceived, at: datetime) -> Outcome:
    """Record that the top-up's payment succeeded and settle: credits granted exactly once.

    Only a payment of the top-up's exact amount and currency is credited; anything else
    stays ``paid`` and alerts support once. A second, different payment for the same top-up
    is flagged for a refund, never credited again.
    """
    top_up = lock_top_up(session, top_up_id)
    if payment.payment_intent_id:
        if top_up.payment_intent_id is None:
            top_up.payment_intent_id = payment.payment_intent_id
        elif top_up.payment_intent_id != payment.payment_intent_id:
            _alert_once(
                session,
                top_up,
                alert="second_payment",
                condition=f"second_payment:{payment.payment_intent_id}",
                reason=f"Top-up #{top_up.id} was paid by {payment.payment_intent_id} as well as by "
                f"{top_up.payment_intent_id}; it is credited once. Refund the second payment.",
                at=at,
                details={"payment_intent": payment.payment_intent_id},
            )
            return "ignored"
    _card_details(top_up, payment.card, payment.receipt_url)
    record_paid(
        session,
        top_up,
        payment_id=top_up.payment_intent_id or "",
        amount_cents=payment.amount_cents,
        currency=payment.currency,
        source=payment.via,
        at=at,
        asked=payment.asked,
    )
    outcome = settle_top_up(session, top_up_id=top_up_id, at=at)
    if top_up.state in states.SETTLED_STATES:
        _save_card(session, top_up, payment.card, at)
    return outcome


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
        # A decline (or a bank's 3-D Secure nobody answered) counts toward turning auto-recharge
        # off; a charge that never reached the provider (an outage) only frees the slot.
        _recharge_settled(session, top_up, result="not_charged" if code == NOT_SENT else "declined", at=at)
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
        if payment.refunded_cents:  # recorded first: one settlement then sees both facts
            top_up = lock_top_up(session, top_up_id)
            if top_up.payment_intent_id in (None, payment.payment_intent_id):
                top_up.payment_intent_id = payment.payment_intent_id
                record_refunded(
                    session,
                    top_up,
                    payment_id=payment.payment_intent_id or "",
                    refunded_cents_total=payment.refunded_cents,
                    source=via,
                    at=at,
                )
        return fulfill_top_up(
            session,
            top_up_id=top_up_id,
            payment=PaymentReceived(
                amount_cents=payment.amount_cents,
                currency=payment.currency,
                payment_intent_id=payment.payment_intent_id,
                card=payment.card,
                receipt_url=payment.receipt_url,
                via=via,
                asked=True,
            ),
            at=at,
        )
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
    reversed_nanos: int  # credits taken back from the grant
    spent_nanos: int  # refunded credits that had been used already (not taken back)
    debt_restored_nanos: int = 0  # of those, what had paid off a negative balance and is owed again


def apply_refund(
    session: Session,
    *,
    top_up_id: int,
    refunded_cents_total: int,
    at: datetime,
    payment_intent_id: str | None = None,
    via: str = "",
) -> RefundResult | None:
    """Record the payment's refunded total so far (cumulative) and settle; None if it was known.

    Events carry the running total, so a repeated or out-of-order event refunds nothing
    twice; a refund that arrives before the payment's success is kept and taken into
    account when the success arrives.
    """
    top_up = lock_top_up(session, top_up_id)
    if payment_intent_id and top_up.payment_intent_id is None:
        top_up.payment_intent_id = payment_intent_id
    if payment_intent_id and payment_intent_id != top_up.payment_intent_id:
        return None  # a refund of a second payment: it never bought credits
    before = (
        top_up.refunded_cents,
        top_up.reversed_nanos,
        top_up.refund_spent_nanos,
        top_up.debt_restored_nanos,
    )
    news = record_refunded(
        session,
        top_up,
        payment_id=top_up.payment_intent_id or "",
        refunded_cents_total=refunded_cents_total,
        source=via,
        at=at,
    )
    if not news:
        return None
    settle_top_up(session, top_up_id=top_up_id, at=at)
    return RefundResult(
        top_up.refunded_cents - before[0],
        top_up.reversed_nanos - before[1],
        top_up.refund_spent_nanos - before[2],
        top_up.debt_restored_nanos - before[3],
    )


def apply_dispute(
    session: Session,
    *,
    top_up_id: int,
    dispute: DisputeFact,
    at: datetime,
    payment_intent_id: str | None = None,
    via: str = "",
) -> bool:
    """Record a version of a dispute of the top-up's payment and settle; False if it was not news."""
    top_up = lock_top_up(session, top_up_id)
    if payment_intent_id and top_up.payment_intent_id is None:
        top_up.payment_intent_id = payment_intent_id
    if payment_intent_id and payment_intent_id != top_up.payment_intent_id:
        return False  # a dispute of a second payment: it never bought credits
    if not record_dispute(session, top_up, dispute=dispute, source=via, at=at):
        return False
    settle_top_up(session, top_up_id=top_up_id, at=at)
    return True


def credit_anyway(session: Session, *, top_up_id: int, decided_by: str, at: datetime) -> Outcome:
    """Support's decision to credit a paid top-up whose payment did not match (then settle)."""
    top_up = lock_top_up(session, top_up_id)
    if top_up.state != states.PAID:
        raise ValidationError(
            f"top-up #{top_up_id} is {states.LABELS[top_up.state].lower()}: only a paid top-up whose "
            "credits are pending can be credited by hand",
            field="top_up",
        )
    record_credit_anyway(session, top_up, decided_by=decided_by, at=at)
    return settle_top_up(session, top_up_id=top_up_id, at=at)


def _position(session: Session, top_up: TopUp) -> Position:
    """The top-up's grant as the ledger has it now (the caller holds the account lock)."""
    assert top_up.grant_id is not None
    grant = session.get(CreditGrant, top_up.grant_id, populate_existing=True)
    assert grant is not None
    sums = grant_entry_sums(session, grant.id)

    def on_grant(*reasons_: str) -> int:
        return -sum(sums.get((reason, True), 0) for reason in reasons_)

    return Position(
        remaining_nanos=grant.remaining_nanos,
        refunded_nanos=on_grant(reasons.GRANT_REFUNDED),
        lost_nanos=on_grant(reasons.DISPUTE_LOST, reasons.DISPUTE_APPEAL_WON),
        held_nanos=on_grant(reasons.GRANT_FROZEN, reasons.GRANT_UNFROZEN),
        debt_repaid_nanos=sums.get((reasons.DEFICIT_REPAID, False), 0),
        debt_reclaimed_nanos=-sums.get((reasons.DEBT_RESTORED, False), 0),
    )


def _moves(top_up: TopUp, now: Position, target: Target) -> list[GrantMove]:
    """Releases first (so a take never finds the grant short), then what is taken back."""
    label = f"top-up #{top_up.id}"
    moves = []
    if target.held_nanos < now.held_nanos:
        moves.append(
            GrantMove(
                now.held_nanos - target.held_nanos,
                reasons.GRANT_UNFROZEN,
                f"Dispute of {label} closed: held credits released",
            )
        )
    if target.lost_nanos < now.lost_nanos:
        moves.append(
            GrantMove(
                now.lost_nanos - target.lost_nanos,
                reasons.DISPUTE_APPEAL_WON,
                f"Dispute of {label} won on appeal",
            )
        )
    if target.refunded_nanos > now.refunded_nanos:
        moves.append(
            GrantMove(
                now.refunded_nanos - target.refunded_nanos,
                reasons.GRANT_REFUNDED,
                f"Payment for {label} refunded",
            )
        )
    if target.lost_nanos > now.lost_nanos:
        moves.append(
            GrantMove(
                now.lost_nanos - target.lost_nanos,
                reasons.DISPUTE_LOST,
                f"Dispute of the payment for {label} lost",
            )
        )
    if target.held_nanos > now.held_nanos:
        moves.append(
            GrantMove(
                now.held_nanos - target.held_nanos,
                reasons.GRANT_FROZEN,
                f"Payment for {label} disputed: credits on hold",
            )
        )
    if target.debt_reclaimed_nanos != now.debt_reclaimed_nanos:
        moves.append(
            GrantMove(
                now.debt_reclaimed_nanos - target.debt_reclaimed_nanos,
                reasons.DEBT_RESTORED,
                f"{label} had paid off usage; its payment was taken back",
                on_deficit=True,
            )
        )
    return moves


def _dispute_summary(facts: PaymentFacts) -> tuple[str | None, str]:
    """The ``dispute_id`` and ``dispute_status`` columns: the latest dispute, the worst outcome."""
    if not facts.disputes:
        return None, ""
    latest = max(facts.disputes, key=lambda d: (d.as_of, d.dispute_id))
    outcomes = {dispute_outcome(d.status) for d in facts.disputes}
    status = "open" if "open" in outcomes else "lost" if "lost" in outcomes else "won"
    return latest.dispute_id, status


def _grant(session: Session, top_up: TopUp, at: datetime) -> Outcome:
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
        _alert_once(session, top_up, alert="grant_refused", reason=top_up.note, at=at, details={})
        return "paid_not_credited"
    _set_state(top_up, states.CREDITED, at)
    top_up.grant_id = grant.grant_id
    top_up.credited_at = at
    top_up.action_url = ""
    top_up.failure_code = ""
    top_up.failure_message = ""
    _resolve_alerts(session, top_up, ("grant_refused", "amount_mismatch"), "credited", at)
    if top_up.kind == AUTO:
        _recharge_settled(session, top_up, result="succeeded", at=at)
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


def _mismatch(session: Session, top_up: TopUp, facts: PaymentFacts, at: datetime) -> None:
    top_up.note = (
        f"Paid {facts.paid_cents} {facts.paid_currency} instead of {top_up.amount_cents} "
        f"{top_up.currency}: not credited; support will sort it out."
    )
    _alert_once(
        session,
        top_up,
        alert="amount_mismatch",
        reason=f"Top-up #{top_up.id}: {top_up.note} Credit it or refund it from the support console.",
        at=at,
        details={"paid_cents": facts.paid_cents, "currency": facts.paid_currency},
    )


def settle_top_up(session: Session, *, top_up_id: int, at: datetime) -> Outcome:
    """Move the top-up and its grant to where its recorded facts say they belong (the one poster).

    Under the top-up's lock (then the auto-recharge settings, then the account): grant the
    credits once the payment succeeded, then post the difference between the target
    position (``core.payments.position``) and the ledger's. Running it again, or with the
    same facts recorded in another order, posts nothing more.
    """
    top_up = lock_top_up(session, top_up_id)
    if top_up.kind == AUTO:
        lock_recharge_settings(session, top_up.account_id)  # lock order: top-up, settings, account
    facts = load_facts(session, top_up)
    terms = Terms(top_up.amount_cents, top_up.currency, top_up.credits_nanos)
    top_up.dispute_id, top_up.dispute_status = _dispute_summary(facts)
    if facts.paid_cents is None:
        top_up.refunded_cents = min(facts.refunded_cents, top_up.amount_cents)
        top_up.updated_at = at
        return "pending"
    outcome: Outcome = "already_credited"
    if top_up.state not in (states.PAID, *states.SETTLED_STATES):
        _set_state(top_up, states.PAID, at)
        top_up.paid_at = at
    if top_up.grant_id is None:
        if should_grant(terms, facts):
            outcome = _grant(session, top_up, at)
        else:
            _mismatch(session, top_up, facts, at)
            outcome = "paid_not_credited"
    if top_up.grant_id is not None:
        lock_accounts(session, [top_up.account_id])
        now = _position(session, top_up)
        # What comes back is in proportion to what was paid (the price, unless support credited a
        # payment that did not match it).
        paid = Terms(facts.paid_cents or top_up.amount_cents, top_up.currency, top_up.credits_nanos)
        target = target_position(paid, facts, now)
        if moves := _moves(top_up, now, target):
            move_grant_credits(session, grant_id=top_up.grant_id, moves=moves, at=at)
        _tell(session, top_up, facts, now, target, at)
        top_up.reversed_nanos = target.refunded_nanos
        top_up.frozen_nanos = target.held_nanos
        top_up.refund_spent_nanos = target.spent_nanos
        top_up.debt_restored_nanos = target.debt_reclaimed_nanos
    top_up.refunded_cents = min(facts.refunded_cents, top_up.amount_cents)
    refunded_in_full = facts.refunded_cents >= (facts.paid_cents or top_up.amount_cents)
    if refunded_in_full and top_up.state in (states.PAID, states.CREDITED):
        _set_state(top_up, states.REFUNDED, at)
        _resolve_alerts(session, top_up, ("grant_refused", "amount_mismatch"), "refunded in full", at)
    top_up.updated_at = at
    return outcome


def _tell(
    session: Session, top_up: TopUp, facts: PaymentFacts, now: Position, target: Target, at: datetime
) -> None:
    """Tell the customer and support what this pass changed (each change happens once)."""
    refunded = target.refunded_nanos - now.refunded_nanos
    restored = target.debt_reclaimed_nanos - now.debt_reclaimed_nanos
    spent_more = target.spent_nanos - top_up.refund_spent_nanos
    refunded_cents = min(facts.refunded_cents, top_up.amount_cents)
    if refunded or (restored > 0 and refunded_cents):
        said = (
            f"{format_cents(refunded_cents)} of the payment for top-up #{top_up.id} has been refunded: "
            f"{format_credits(refunded)} removed."
        )
        if restored > 0:
            said += (
                f" It had paid off {format_credits(restored)} of usage from before the purchase; that "
                "usage is owed again, so your balance is lower by that much."
            )
        if spent_more > 0:
            said += (
                f" {format_credits(spent_more)} of these credits had already been used, so they stay used "
                "and nothing else was taken from your balance."
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
            refunded_cents_total=top_up.amount_cents
            if facts.refunded_cents > top_up.amount_cents
            else facts.refunded_cents,
            reversed_nanos=refunded,
            debt_restored_nanos=restored,
            spent_nanos=target.spent_nanos,
        )
    if spent_more > 0:
        _alert_once(
            session,
            top_up,
            alert="refund_of_spent_credits",
            condition=f"refund_of_spent_credits:{target.spent_nanos}",
            reason=f"Top-up #{top_up.id}: {format_credits(target.spent_nanos)} refunded or lost in a dispute "
            "had already been used; the customer keeps that usage for free unless you recover it.",
            at=at,
            details={"spent_nanos": target.spent_nanos},
        )
    for dispute in facts.disputes:
        outcome = dispute_outcome(dispute.status)
        key = f"dispute:{dispute.dispute_id}:{outcome}"
        if session.get(PaymentAlert, (top_up.id, key[:64])) is not None:
            continue
        held = format_credits(target.held_nanos)
        if outcome == "open":
            reason = (
                f"Top-up #{top_up.id} ({_label(top_up)}): {format_cents(dispute.amount_cents)} disputed "
                f"({dispute.status}); {held} of its credits are on hold. Answer the dispute in Stripe."
            )
            title = "Payment disputed: credits on hold"
            body = (
                f"Your bank disputed {format_cents(dispute.amount_cents)} of the payment for top-up "
                f"#{top_up.id}. {held} are on hold until the dispute is resolved. Contact support if this "
                "is a mistake."
            )
        elif outcome == "won":
            reason = f"Dispute {dispute.dispute_id} of top-up #{top_up.id} closed ({dispute.status})."
            title = "Dispute closed"
            body = (
                f"The dispute of the payment for top-up #{top_up.id} is closed in your favour: "
                "its credits are released."
            )
        else:
            reason = (
                f"Dispute {dispute.dispute_id} of top-up #{top_up.id} lost: "
                f"{format_cents(dispute.amount_cents)} went back to the bank; "
                f"{format_credits(target.lost_nanos)} stay removed."
            )
            title = "Dispute closed"
            body = (
                f"The dispute of the payment for top-up #{top_up.id} was decided for the bank: "
                f"{format_credits(target.lost_nanos)} stay removed."
            )
        _alert_once(
            session,
            top_up,
            alert="dispute_opened" if outcome == "open" else "dispute_closed",
            condition=key,
            reason=reason,
            at=at,
            details={
                "dispute_id": dispute.dispute_id,
                "status": dispute.status,
                "held_nanos": target.held_nanos,
                "lost_nanos": target.lost_nanos,
            },
        )
        if outcome != "open":
            _resolve_alerts(session, top_up, (f"dispute:{dispute.dispute_id}:open"[:64],), dispute.status, at)
        top_up.note = body
        notify_customer(session, account_id=top_up.account_id, title=title, body=body, at=at)


RechargeResult = Literal["succeeded", "declined", "not_charged"]


def _recharge_settled(session: Session, top_up: TopUp, *, result: RechargeResult, at: datetime) -> None:
    """An auto-recharge ended: free the slot; count a decline, back off, turn off after too many.

    Only a decline counts: a charge canceled because it never reached the provider (an
    outage) is not the card's fault, and turning auto-recharge off for it would leave the
    customer without credits for the provider's bad hour.
    """
    settings = lock_recharge_settings(session, top_up.account_id)
    if settings is None:
        return
    if settings.in_flight_top_up_id == top_up.id:
        settings.in_flight_top_up_id = None
    settings.updated_at = at
    if result == "succeeded":
        settings.failures = 0
        settings.next_attempt_at = None
        settings.last_decision = f"Recharged {format_cents(top_up.amount_cents)} (top-up #{top_up.id})."
        settings.last_decision_code = "recharged"
        settings.last_decision_at = at
        return
    if result == "not_charged":
        settings.last_decision = (
            f"Top-up #{top_up.id} was not charged ({top_up.failure_message or 'canceled'})."
        )
        settings.last_decision_code = "not_charged"
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
        account = session.get(Account, top_up.account_id)
        next_at = format_datetime(settings.next_attempt_at, account.timezone if account else "UTC")
        settings.last_decision = f"Declined ({why}); next attempt not before {next_at}."
        title = "Auto-recharge declined"
        body = (
            f"The auto-recharge of {format_cents(top_up.amount_cents)} did not go through: {why} We will "
            f"try again after {next_at} "
            f"(attempt {settings.failures + 1} of {limit})."
        )
    settings.last_decision_code = "declined" if settings.enabled else "off"
    settings.last_decision_at = at
    notify_customer(session, account_id=top_up.account_id, title=title, body=body, at=at)
