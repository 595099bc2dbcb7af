"""Recording what the provider said about a top-up's payment, once each, merged by commutative rules.

Every function here runs under the top-up's lock (``core.payments.settle.lock_top_up``), so a
read-merge-write of a fact row cannot race another writer of the same top-up. A repeat of a
fact changes nothing; an older version of a dispute (by the provider's own clock) loses to
a newer one; a smaller refunded total loses to a larger one. ``load_facts`` turns the rows
into the ``PaymentFacts`` that ``core.payments.position`` derives the ledger target from.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db.models import PaymentFact, TopUp
from core.payments.position import DisputeFact, PaymentFacts, merge_dispute, merge_disputes

PAID = "paid"
REFUNDED = "refunded"
DISPUTE = "dispute"
CREDIT_ANYWAY = "credit_anyway"


def _row(session: Session, top_up_id: int, kind: str, object_id: str) -> PaymentFact | None:
    return session.scalar(
        select(PaymentFact).where(
            PaymentFact.top_up_id == top_up_id, PaymentFact.kind == kind, PaymentFact.object_id == object_id
        )
    )


def _new(top_up: TopUp, kind: str, object_id: str, source: str, at: datetime) -> PaymentFact:
    return PaymentFact(
        account_id=top_up.account_id,
        top_up_id=top_up.id,
        kind=kind,
        object_id=object_id[:255],
        amount_cents=0,
        currency="",
        status="",
        as_of=0,
        source=source[:255],
        recorded_at=at,
        updated_at=at,
    )


ASKED = 1  # ``as_of`` of a paid fact read from the provider's own object (not from an event)


def record_paid(
    session: Session,
    top_up: TopUp,
    *,
    payment_id: str,
    amount_cents: int,
    currency: str,
    source: str,
    at: datetime,
    asked: bool = False,
) -> bool:
    """The payment ``payment_id`` succeeded with this amount; True if it was news.

    What the provider answers when asked about the payment (``asked``) wins over what an
    event carried (a Checkout Session's total may differ from what the PaymentIntent
    received); otherwise the first word stands. Either way the result does not depend on
    the order the two arrive in.
    """
    fact = _row(session, top_up.id, PAID, payment_id)
    if fact is not None and (fact.as_of == ASKED or not asked):
        return False
    if fact is None:
        fact = _new(top_up, PAID, payment_id, source, at)
        session.add(fact)
    fact.amount_cents = amount_cents
    fact.currency = currency.lower()[:3]
    fact.as_of = ASKED if asked else 0
    fact.source = source[:255]
    fact.updated_at = at
    session.flush()
    return True


def record_refunded(
    session: Session, top_up: TopUp, *, payment_id: str, refunded_cents_total: int, source: str, at: datetime
) -> bool:
    """The payment has been refunded ``refunded_cents_total`` so far; True if that is more than known."""
    fact = _row(session, top_up.id, REFUNDED, payment_id)
    if fact is not None and fact.amount_cents >= refunded_cents_total:
        return False
    if fact is None:
        fact = _new(top_up, REFUNDED, payment_id, source, at)
        session.add(fact)
    fact.amount_cents = refunded_cents_total
    fact.source = source[:255]
    fact.updated_at = at
    session.flush()
    return True


def record_dispute(
    session: Session, top_up: TopUp, *, dispute: DisputeFact, source: str, at: datetime
) -> bool:
    """A version of a dispute; True if it is newer than the one known."""
    fact = _row(session, top_up.id, DISPUTE, dispute.dispute_id)
    known = None if fact is None else DisputeFact(fact.object_id, fact.amount_cents, fact.status, fact.as_of)
    if merge_dispute(known, dispute) == known:
        return False
    if fact is None:
        fact = _new(top_up, DISPUTE, dispute.dispute_id, source, at)
        session.add(fact)
    fact.amount_cents = dispute.amount_cents
    fact.status = dispute.status[:40]
    fact.as_of = dispute.as_of
    fact.source = source[:255]
    fact.updated_at = at
    session.flush()
    return True


def record_credit_anyway(session: Session, top_up: TopUp, *, decided_by: str, at: datetime) -> bool:
    """Support decided to credit a payment that did not match the price; True if it was news."""
    if _row(session, top_up.id, CREDIT_ANYWAY, "support") is not None:
        return False
    session.add(_new(top_up, CREDIT_ANYWAY, "support", decided_by, at))
    session.flush()
    return True


def load_facts(session: Session, top_up: TopUp) -> PaymentFacts:
    """The merged facts of the top-up's own payment (a second payment's facts are not its own)."""
    rows = session.scalars(
        select(PaymentFact).where(PaymentFact.top_up_id == top_up.id).order_by(PaymentFact.id)
    ).all()
    payment_id = top_up.payment_intent_id or ""
    paid = next((r for r in rows if r.kind == PAID and r.object_id == payment_id), None)
    refunded = max(
        (r.amount_cents for r in rows if r.kind == REFUNDED and r.object_id == payment_id), default=0
    )
    disputes = merge_disputes(
        DisputeFact(r.object_id, r.amount_cents, r.status, r.as_of) for r in rows if r.kind == DISPUTE
    )
    return PaymentFacts(
        paid_cents=None if paid is None else paid.amount_cents,
        paid_currency="" if paid is None else paid.currency,
        refunded_cents=refunded,
        disputes=disputes,
        credit_anyway=any(r.kind == CREDIT_ANYWAY for r in rows),
    )
