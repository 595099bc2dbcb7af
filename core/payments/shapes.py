"""Stripe-shaped objects (as dicts) to the provider answers Meterline uses. Pure.

The Stripe provider feeds this what the API returns (``obj.to_dict()``); the sandbox
keeps its objects in the same shape, so both are read by the same code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.payments.events import card_from_charge
from core.payments.provider import Card, Checkout, CheckoutStatus, Payment, PaymentAction, PaymentStatus


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _id(value: Any) -> str | None:
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def card_from_payment_method(method: Mapping[str, Any]) -> Card | None:
    card = method.get("card")
    method_id = _id(method)
    if not isinstance(card, Mapping) or method_id is None:
        return None
    return Card(
        payment_method_id=method_id,
        brand=str(card.get("brand") or ""),
        last4=str(card.get("last4") or "")[:4],
        exp_month=_int(card.get("exp_month")) or None,
        exp_year=_int(card.get("exp_year")) or None,
    )


def _needs_customer(intent: Mapping[str, Any]) -> bool:
    """Off-session and the bank wants the customer: Stripe leaves it ``requires_payment_method`` with
    ``authentication_required``; the customer can still confirm it on session (Stripe.js)."""
    error = intent.get("last_payment_error")
    return (
        intent.get("status") == "requires_payment_method"
        and isinstance(error, Mapping)
        and error.get("code") == "authentication_required"
    )


def _status(intent: Mapping[str, Any]) -> PaymentStatus:
    status = intent.get("status")
    if _needs_customer(intent):
        return "requires_action"
    if status == "succeeded":
        return "succeeded"
    if status in ("processing", "requires_capture"):
        return "processing"
    if status == "requires_action":
        return "requires_action"
    if status == "canceled":
        return "canceled"
    if status == "requires_payment_method" and intent.get("last_payment_error"):
        return "failed"
    return "open"


def _action(intent: Mapping[str, Any], method_id: str | None) -> PaymentAction | None:
    if intent.get("status") != "requires_action" and not _needs_customer(intent):
        return None
    action = intent.get("next_action")
    redirect = ""
    if isinstance(action, Mapping):
        target = action.get("redirect_to_url")
        if isinstance(target, Mapping) and isinstance(target.get("url"), str):
            redirect = target["url"]
    return PaymentAction(
        redirect_url=redirect,
        client_secret=str(intent.get("client_secret") or ""),
        payment_method_id=method_id or "",
        confirm=_needs_customer(intent),
    )


def payment_from_intent(intent: Mapping[str, Any]) -> Payment:
    """A PaymentIntent (``latest_charge`` and ``payment_method`` expanded or not)."""
    charge = intent.get("latest_charge")
    charge = charge if isinstance(charge, Mapping) else {}
    method = intent.get("payment_method")
    card = card_from_charge(charge)
    if card is None and isinstance(method, Mapping):
        card = card_from_payment_method(method)
    method_id = _id(method)
    status = _status(intent)
    error = intent.get("last_payment_error")
    error = error if isinstance(error, Mapping) else {}
    if not method_id and isinstance(error.get("payment_method"), Mapping):
        method_id = _id(error["payment_method"])
    metadata = intent.get("metadata")
    return Payment(
        payment_intent_id=_id(intent),
        status=status,
        # Stripe always sends amount_received; localstripe has no such field (captured = amount).
        amount_cents=_int(intent.get("amount_received", intent.get("amount")))
        if status == "succeeded"
        else _int(intent.get("amount")),
        currency=str(intent.get("currency") or "").lower(),
        customer_id=_id(intent.get("customer")),
        card=card,
        receipt_url=str(charge.get("receipt_url") or ""),
        refunded_cents=_int(charge.get("amount_refunded")),
        disputed=bool(charge.get("disputed")),
        failure_code=str(error.get("decline_code") or error.get("code") or "")[:64]
        if status == "failed"
        else "",
        failure_message=str(error.get("message") or "")[:500] if status == "failed" else "",
        action=_action(intent, method_id),
        metadata={str(k): str(v) for k, v in metadata.items()} if isinstance(metadata, Mapping) else {},
    )


def checkout_from_session(session: Mapping[str, Any]) -> Checkout:
    """A Checkout Session (``payment_intent`` expanded or not)."""
    raw_status = session.get("status")
    status: CheckoutStatus = raw_status if raw_status in ("open", "complete", "expired") else "open"
    intent = session.get("payment_intent")
    return Checkout(
        session_id=str(_id(session) or ""),
        status=status,
        paid=session.get("payment_status") == "paid",
        amount_cents=_int(session.get("amount_total")),
        currency=str(session.get("currency") or "").lower(),
        payment_intent_id=_id(intent),
        payment=payment_from_intent(intent) if isinstance(intent, Mapping) else None,
    )
