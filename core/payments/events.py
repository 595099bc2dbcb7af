"""Read a provider event (a verified Stripe webhook payload) into the facts Meterline acts on. Pure.

Only what the handled event types carry is read, field by field, with its type checked:
a payload that does not have the shape Stripe documents is ``MalformedEvent`` (the
webhook answers 400), never a crash. Unknown event types become ``kind="ignored"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from core.payments.provider import Card

EventKind = Literal[
    "payment_succeeded",  # checkout.session.completed (paid), payment_intent.succeeded, …
    "payment_pending",  # checkout.session.completed with the payment still on its way (async methods)
    "payment_failed",  # payment_intent.payment_failed, checkout.session.async_payment_failed
    "checkout_expired",  # checkout.session.expired
    "refunded",  # charge.refunded (cumulative amount refunded)
    "dispute_opened",  # charge.dispute.created
    "dispute_updated",  # charge.dispute.updated (a new status, an appeal)
    "dispute_closed",  # charge.dispute.closed
    "ignored",
]

HANDLED_TYPES = (
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.async_payment_failed",
    "checkout.session.expired",
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "charge.refunded",
    "charge.dispute.created",
    "charge.dispute.updated",
    "charge.dispute.closed",
)
DISPUTE_KINDS = {
    "charge.dispute.created": "dispute_opened",
    "charge.dispute.updated": "dispute_updated",
    "charge.dispute.closed": "dispute_closed",
}


class MalformedEvent(ValueError):
    """A signed payload that is not shaped like the event it claims to be."""


@dataclass(frozen=True)
class EventFacts:
    event_id: str
    type: str
    kind: EventKind
    created: int = 0
    top_up_id: int | None = None  # from metadata.top_up_id / client_reference_id
    checkout_session_id: str | None = None
    payment_intent_id: str | None = None
    amount_cents: int | None = None  # received (success), refunded so far (refund), disputed (dispute)
    currency: str = ""
    card: Card | None = None
    receipt_url: str = ""
    failure_code: str = ""
    failure_message: str = ""
    dispute_id: str = ""
    dispute_status: str = ""


def _str(data: Mapping[str, Any], key: str, *, required: bool = False) -> str:
    value = data.get(key)
    if value is None or value == "":
        if required:
            raise MalformedEvent(f"{key} is missing")
        return ""
    if isinstance(value, Mapping):  # an expanded object: its id
        value = value.get("id")
    if not isinstance(value, str):
        raise MalformedEvent(f"{key} is not a string")
    return value


def _cents(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MalformedEvent(f"{key} is not a whole number of cents")
    return value


def _top_up_id(data: Mapping[str, Any]) -> int | None:
    metadata = data.get("metadata")
    candidates = [metadata.get("top_up_id") if isinstance(metadata, Mapping) else None]
    candidates.append(data.get("client_reference_id"))
    for value in candidates:
        if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 18:
            return int(value)
    return None


def card_from_charge(charge: Mapping[str, Any]) -> Card | None:
    """The card of a charge (``payment_method_details.card``), if the payload has it."""
    details = charge.get("payment_method_details")
    card = details.get("card") if isinstance(details, Mapping) else None
    method = charge.get("payment_method")
    if not isinstance(card, Mapping) or not isinstance(method, str):
        return None
    month, year = card.get("exp_month"), card.get("exp_year")
    return Card(
        payment_method_id=method,
        brand=str(card.get("brand") or ""),
        last4=str(card.get("last4") or "")[:4],
        exp_month=month if isinstance(month, int) else None,
        exp_year=year if isinstance(year, int) else None,
    )


def _error(data: Mapping[str, Any]) -> tuple[str, str]:
    error = data.get("last_payment_error")
    if not isinstance(error, Mapping):
        return "payment_failed", "The payment failed."
    code = error.get("decline_code") or error.get("code") or "payment_failed"
    message = error.get("message") or "The payment failed."
    return str(code)[:64], str(message)[:500]


def read_event(event: Mapping[str, Any]) -> EventFacts:
    """The facts of one event (``{"id", "type", "created", "data": {"object": {...}}}``)."""
    event_id = _str(event, "id", required=True)
    event_type = _str(event, "type", required=True)
    created = event.get("created")
    created = created if isinstance(created, int) and not isinstance(created, bool) else 0
    if len(event_id) > 255 or len(event_type) > 100:
        raise MalformedEvent("the event id or type is too long")
    if event_type not in HANDLED_TYPES:
        return EventFacts(event_id, event_type, "ignored", created)
    data = event.get("data")
    obj = data.get("object") if isinstance(data, Mapping) else None
    if not isinstance(obj, Mapping):
        raise MalformedEvent("data.object is missing")
    base = {"event_id": event_id, "type": event_type, "created": created, "top_up_id": _top_up_id(obj)}

    if event_type.startswith("checkout.session."):
        session_id = _str(obj, "id", required=True)
        intent = _str(obj, "payment_intent") or None
        common = {**base, "checkout_session_id": session_id, "payment_intent_id": intent}
        if event_type == "checkout.session.expired":
            return EventFacts(**common, kind="checkout_expired")
        if event_type == "checkout.session.async_payment_failed":
            return EventFacts(
                **common,
                kind="payment_failed",
                failure_code="async_payment_failed",
                failure_message="The bank did not complete the payment.",
            )
        paid = obj.get("payment_status") == "paid"
        if not paid:
            return EventFacts(**common, kind="payment_pending")
        return EventFacts(
            **common,
            kind="payment_succeeded",
            amount_cents=_cents(obj, "amount_total"),
            currency=_str(obj, "currency", required=True).lower(),
        )

    if event_type.startswith("payment_intent."):
        intent = _str(obj, "id", required=True)
        common = {**base, "payment_intent_id": intent}
        if event_type == "payment_intent.payment_failed":
            code, message = _error(obj)
            error = obj.get("last_payment_error")
            if isinstance(error, Mapping) and error.get("code") == "authentication_required":
                # Off-session and the bank wants the customer: it can still be confirmed with them.
                return EventFacts(
                    **common, kind="payment_pending", failure_code=code, failure_message=message
                )
            return EventFacts(**common, kind="payment_failed", failure_code=code, failure_message=message)
        if obj.get("status") != "succeeded":
            raise MalformedEvent("payment_intent.succeeded with a status other than succeeded")
        charge = obj.get("latest_charge")
        charge = charge if isinstance(charge, Mapping) else {}
        return EventFacts(
            **common,
            kind="payment_succeeded",
            # Stripe always sends amount_received; localstripe has no such field (captured = amount).
            amount_cents=_cents(obj, "amount_received" if "amount_received" in obj else "amount"),
            currency=_str(obj, "currency", required=True).lower(),
            card=card_from_charge(charge),
            receipt_url=_str(charge, "receipt_url"),
        )

    if event_type == "charge.refunded":
        intent = _str(obj, "payment_intent") or None
        if intent is None:
            return EventFacts(event_id, event_type, "ignored", created)  # a charge made outside top-ups
        return EventFacts(
            **base,
            kind="refunded",
            payment_intent_id=intent,
            amount_cents=_cents(obj, "amount_refunded"),
            currency=_str(obj, "currency", required=True).lower(),
            receipt_url=_str(obj, "receipt_url"),
        )

    # charge.dispute.created / .updated / .closed
    intent = _str(obj, "payment_intent") or None
    if intent is None:
        return EventFacts(event_id, event_type, "ignored", created)
    return EventFacts(
        **base,
        kind=DISPUTE_KINDS[event_type],  # type: ignore[arg-type]
        payment_intent_id=intent,
        amount_cents=_cents(obj, "amount"),
        currency=_str(obj, "currency").lower(),
        dispute_id=_str(obj, "id", required=True),
        dispute_status=_str(obj, "status"),
        failure_message=_str(obj, "reason"),
    )
