"""Receiving the provider's webhook events: verify, record once, settle the top-up.

``receive_webhook`` is what ``POST /api/webhooks/stripe`` runs (and what the sandbox hands
its events to). Replies:

- 400 for a missing, wrong or stale signature (Stripe's default tolerance, 300 s), a body
  that is not a JSON event, or an event not shaped like its type;
- 413 for a body over 1 MiB; 503 when no webhook secret is configured (Stripe retries);
- 503 when the event cannot be finished without asking the provider and the provider did
  not answer (a refund or dispute about a payment whose top-up only the PaymentIntent's
  metadata names): the event is not marked processed, and Stripe delivers it again;
- 200 for everything else, including event types it does not handle and events about
  payments that are not top-ups (recorded, ignored), and repeats of an event already
  processed (recorded once by id: ``payment_events``).

Processing never trusts ordering: each event is recorded as a payment fact and the top-up
settled from all its facts (``core.payments.settle``), so a refund before the success, a
dispute closed before it was opened, or a repeat, ends where the events in order would.
A refund or dispute about a payment not yet credited also asks the provider whether the
payment succeeded (to credit it now rather than at the success event; not needed for
correctness, so an unanswered question there does not hold the event back).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

import stripe
from sqlalchemy import Engine, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from core.clock import Clock, system_clock
from core.db import unit_of_work
from core.db.models import PaymentEvent, TopUp
from core.display import format_credits
from core.errors import BillingError, NotFound
from core.payments import states
from core.payments.config import format_cents
from core.payments.events import EventFacts, MalformedEvent, read_event
from core.payments.position import DisputeFact
from core.payments.provider import Payment, PaymentProvider
from core.payments.settle import (
    PaymentReceived,
    apply_dispute,
    apply_payment,
    apply_refund,
    fail_top_up,
    fulfill_top_up,
    mark_pending,
)
from core.sizes import format_bytes

log = logging.getLogger("meterline.payments")

TOLERANCE_S = 300  # Stripe's default: older signatures are refused (replays)
MAX_BODY_BYTES = 1024 * 1024


@dataclass(frozen=True)
class WebhookReply:
    status: int
    body: dict[str, Any] = field(default_factory=dict)


def _error(status: int, code: str, message: str) -> WebhookReply:
    return WebhookReply(status, {"error": {"code": code, "message": message, "field": None}})


def verify(payload: bytes, signature: str | None, secret: str) -> dict[str, Any]:
    """The event, if ``signature`` is the provider's over ``payload`` and recent; else ValueError."""
    try:
        event = stripe.Webhook.construct_event(payload, signature, secret, tolerance=TOLERANCE_S)
    except stripe.SignatureVerificationError as error:
        raise PermissionError(str(error).split(". ")[0]) from None
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"the body is not a JSON event: {error}") from None
    except Exception as error:  # a JSON document of another shape
        raise ValueError(f"the body is not a Stripe event: {type(error).__name__}") from None
    data = event.to_dict()
    if not isinstance(data, dict):
        raise ValueError("the body is not a Stripe event")
    return data


def receive_webhook(
    engine: Engine,
    provider: PaymentProvider,
    *,
    payload: bytes,
    signature: str | None,
    secret: str,
    clock: Clock = system_clock,
) -> WebhookReply:
    """Verify one delivery and process it (see the module doc for the replies)."""
    if not secret:
        return _error(
            503, "not_configured", "no webhook signing secret is configured (STRIPE_WEBHOOK_SECRET)"
        )
    if len(payload) > MAX_BODY_BYTES:
        return _error(413, "too_large", f"the body is over {format_bytes(MAX_BODY_BYTES)}")
    if not signature:
        return _error(400, "unsigned", "the Stripe-Signature header is missing")
    try:
        event = verify(payload, signature, secret)
    except PermissionError as error:
        return _error(400, "bad_signature", f"the signature does not verify: {error}")
    except ValueError as error:
        return _error(400, "bad_payload", str(error))
    try:
        facts = read_event(event)
    except MalformedEvent as error:
        return _error(400, "malformed_event", f"the event is not shaped like its type: {error}")
    try:
        outcome = process_event(engine, provider, facts, clock=clock)
    except EventDeferred as error:
        return _error(503, "provider_unavailable", str(error))
    return WebhookReply(200, {"received": True, "event": facts.event_id, "outcome": outcome})


class EventDeferred(Exception):
    """The event needs an answer from the provider that did not come: not processed, retry it."""


_LOOKUP_KINDS = ("refunded", "dispute_opened", "dispute_updated", "dispute_closed")


def _top_up_named_by_payment(provider: PaymentProvider, facts: EventFacts) -> EventFacts:
    """The event with the top-up its PaymentIntent's metadata names (refund and dispute objects
    carry none), asked of the provider; ``EventDeferred`` if it does not answer."""
    assert facts.payment_intent_id
    try:
        payment = provider.retrieve_payment(facts.payment_intent_id)
    except NotFound:  # a definite answer: no such payment here, so it is not a top-up
        return facts
    except BillingError as error:
        raise EventDeferred(
            f"could not ask the provider which top-up payment {facts.payment_intent_id} belongs to "
            f"({error.message}); deliver the event again"
        ) from None
    named = payment.metadata.get("top_up_id", "")
    if named.isascii() and named.isdigit() and len(named) <= 18:
        return replace(facts, top_up_id=int(named))
    return facts


def _record(session: Session, facts: EventFacts, provider: str, clock: Clock) -> PaymentEvent | None:
    """Record the event id once; the row, or None if it was processed before."""
    values = {
        "id": facts.event_id,
        "provider": provider,
        "type": facts.type,
        "received_at": clock(),
        "outcome": "",
    }
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(insert(PaymentEvent).values(**values).on_conflict_do_nothing(index_elements=["id"]))
    stmt = select(PaymentEvent).where(PaymentEvent.id == facts.event_id)
    if dialect == "postgresql":
        stmt = stmt.with_for_update()
    row = session.scalars(stmt.execution_options(populate_existing=True)).one()
    return None if row.processed_at is not None else row


def _find_top_up(session: Session, facts: EventFacts) -> TopUp | None:
    conditions = []
    if facts.payment_intent_id:
        conditions.append(TopUp.payment_intent_id == facts.payment_intent_id)
    if facts.checkout_session_id:
        conditions.append(TopUp.checkout_session_id == facts.checkout_session_id)
    if conditions:
        found = session.scalar(select(TopUp).where(or_(*conditions)))
        if found is not None:
            return found
    if facts.top_up_id is None:
        return None
    top_up = session.get(TopUp, facts.top_up_id)
    if top_up is None:
        return None
    # Our metadata names the top-up; a session or payment id it already has must agree.
    if facts.checkout_session_id and top_up.checkout_session_id not in (None, facts.checkout_session_id):
        return None
    if facts.payment_intent_id and top_up.payment_intent_id not in (None, facts.payment_intent_id):
        return None
    return top_up


def _ask(provider: PaymentProvider, intent_id: str | None) -> Payment | None:
    """The payment as the provider sees it now; None if it cannot say (the event still counts)."""
    if not intent_id:
        return None
    try:
        return provider.retrieve_payment(intent_id)
    except BillingError:  # unreachable, or it does not know the id: the signed event still counts
        log.warning("could not fetch payment %s for its card details", intent_id)
        return None


def _as_seen(top_up: TopUp) -> tuple[int, str, str, bool]:
    """What processing needs of the top-up once its transaction is over: id, state, kind, and
    whether its card and receipt are known."""
    return top_up.id, top_up.state, top_up.kind, bool(top_up.card_last4 and top_up.receipt_url)


def process_event(engine: Engine, provider: PaymentProvider, facts: EventFacts, *, clock: Clock) -> str:
    """Apply one verified event; a short outcome for the reply and the ``payment_events`` row.

    ``EventDeferred`` when a question it needs the provider to answer went unanswered: the
    event stays unprocessed, so the provider's retry is processed in full.
    """
    with unit_of_work(engine, write=True) as session:
        row = _record(session, facts, provider.name, clock)
        if row is None:
            return "duplicate: already processed"
        top_up = None if facts.kind == "ignored" else _find_top_up(session, facts)
        lookup = (
            top_up is None
            and facts.kind in _LOOKUP_KINDS
            and bool(facts.payment_intent_id)
            and facts.top_up_id is None
        )
        if top_up is None and not lookup:
            outcome = (
                "ignored: event type not handled" if facts.kind == "ignored" else "ignored: not a top-up"
            )
            row.processed_at = clock()
            row.outcome = outcome
            return outcome
        seen = None if top_up is None else _as_seen(top_up)
    if seen is None:  # outside any transaction: never wait on the provider under a lock
        facts = _top_up_named_by_payment(provider, facts)
        with unit_of_work(engine, write=True) as session:
            top_up = _find_top_up(session, facts) if facts.top_up_id is not None else None
            if top_up is None:
                row = _record(session, facts, provider.name, clock)
                if row is not None:
                    row.processed_at = clock()
                    row.outcome = "ignored: not a top-up"
                return "ignored: not a top-up"
            seen = _as_seen(top_up)
    top_up_id, state, kind, has_details = seen
    # Outside any transaction: what the provider knows beyond the event (never held under a lock).
    payment: Payment | None = None
    needs_payment = facts.kind in _LOOKUP_KINDS and state not in states.SETTLED_STATES
    wants_details = facts.kind == "payment_succeeded" and not has_details and facts.card is None
    if needs_payment or wants_details:
        payment = _ask(provider, facts.payment_intent_id)
    with unit_of_work(engine, write=True) as session:
        outcome = _apply(session, facts, top_up_id, kind, payment, clock)
        row = _record(session, facts, provider.name, clock)
        if row is not None:
            row.top_up_id = top_up_id
            row.processed_at = clock()
            row.outcome = outcome[:500]
    return outcome


def _apply(
    session: Session, facts: EventFacts, top_up_id: int, kind: str, payment: Payment | None, clock: Clock
) -> str:
    at = clock()
    via = f"webhook {facts.event_id}"
    if facts.kind == "payment_succeeded":
        assert facts.amount_cents is not None
        card = facts.card or (payment.card if payment else None)
        receipt = facts.receipt_url or (payment.receipt_url if payment else "")
        received = PaymentReceived(
            facts.amount_cents, facts.currency, facts.payment_intent_id, card, receipt, via
        )
        return f"top-up {top_up_id}: {fulfill_top_up(session, top_up_id=top_up_id, payment=received, at=at)}"
    if facts.kind == "payment_pending":
        mark_pending(
            session, top_up_id=top_up_id, payment_intent_id=facts.payment_intent_id, action_url=None, at=at
        )
        return f"top-up {top_up_id}: pending"
    if facts.kind == "payment_failed":
        if kind == "checkout" and facts.type.startswith("payment_intent."):
            # The checkout page lets the customer try another card: only the session's end decides.
            return f"top-up {top_up_id}: attempt failed, checkout still open"
        failed = fail_top_up(
            session, top_up_id=top_up_id, code=facts.failure_code, message=facts.failure_message, at=at
        )
        return f"top-up {top_up_id}: {'failed' if failed else 'ignored (already settled)'}"
    if facts.kind == "checkout_expired":
        canceled = fail_top_up(
            session,
            top_up_id=top_up_id,
            code="checkout_expired",
            message="The checkout expired before payment; nothing was charged.",
            at=at,
            canceled=True,
        )
        return f"top-up {top_up_id}: {'canceled' if canceled else 'ignored (already settled)'}"
    if payment is not None and payment.status == "succeeded":
        apply_payment(session, top_up_id=top_up_id, payment=payment, at=at, via=via)  # credit first
    if facts.kind == "refunded":
        assert facts.amount_cents is not None
        result = apply_refund(
            session,
            top_up_id=top_up_id,
            refunded_cents_total=facts.amount_cents,
            at=at,
            payment_intent_id=facts.payment_intent_id,
            via=via,
        )
        if result is None:
            return f"top-up {top_up_id}: refund already applied"
        return (
            f"top-up {top_up_id}: refunded {format_cents(result.refunded_cents)}, "
            f"{format_credits(result.reversed_nanos)} reversed, "
            f"{format_credits(result.debt_restored_nanos)} of paid-off usage owed again, "
            f"{format_credits(result.spent_nanos)} already spent"
        )
    assert facts.amount_cents is not None
    dispute = DisputeFact(
        dispute_id=facts.dispute_id,
        amount_cents=facts.amount_cents,
        status=facts.dispute_status or ("needs_response" if facts.kind == "dispute_opened" else ""),
        as_of=facts.created,
    )
    news = apply_dispute(
        session,
        top_up_id=top_up_id,
        dispute=dispute,
        at=at,
        payment_intent_id=facts.payment_intent_id,
        via=via,
    )
    return f"top-up {top_up_id}: dispute {dispute.dispute_id} {dispute.status or 'unknown status'}" + (
        "" if news else " (already known)"
    )
