"""The real provider: Stripe, through the official SDK (``stripe.StripeClient``, v1 namespace).

It speaks the API version the installed SDK pins (``stripe._api_version._ApiVersion.CURRENT``,
sent as ``Stripe-Version``; 2026-10-28.endive for stripe 16), and sends only parameters that
version's request types (``stripe.params``) name: the test suite checks every request against
them. ``STRIPE_API_BASE`` points the SDK at another Stripe-compatible server (localstripe in the
tests). Calls that create something carry the caller's idempotency key, and the SDK
retries network failures with the same key (``max_network_retries``), so a retry never
charges twice; every parameter of such a call comes from stored state, so a retry is the
same request. Checkout Sessions and PaymentIntents take cards only
(``allowed_payment_method_types=["card"]``: endive refuses the older ``payment_method_types``):
a PaymentIntent is confirmed from the server without a ``return_url``, so a bank that asks
for 3-D Secure answers ``requires_action`` with ``use_stripe_sdk`` and the customer
completes it on Meterline's page with Stripe.js.

A refund also carries its idempotency key in its metadata (``meterline_key``) and is looked
up by it before a new one is made: Stripe forgets idempotency keys after 24 hours, and a
retry from the same state a day later must still not refund twice.

Detaching a saved card that Stripe no longer has (``resource_missing``, or 404) or that is no
longer attached (Stripe answers an ``invalid_request_error``; the card as it is then says
``customer: null``) counts as done: the customer's wish, a card that cannot be charged, holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import stripe

from core.errors import NotFound
from core.payments.provider import (
    ChargeRequest,
    Checkout,
    CheckoutRequest,
    CheckoutSession,
    Payment,
    ProviderError,
    ReceiptSent,
    RefundMade,
)
from core.payments.shapes import checkout_from_session, payment_from_intent

# Cards only; a filter on the payment methods Stripe would offer (endive has no payment_method_types).
_CARDS_ONLY = ["card"]
_PAYMENT_EXPAND = ["latest_charge", "payment_method"]
_REFUND_KEY = "meterline_key"  # refund metadata: the idempotency key it was made with
_SESSION_EXPAND = ["payment_intent", "payment_intent.latest_charge", "payment_intent.payment_method"]


def _dict(obj: Any) -> dict[str, Any]:
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def _provider_error(error: stripe.StripeError) -> ProviderError:
    message = error.user_message or str(error) or "the payment provider refused the request"
    return ProviderError(f"Stripe: {message}")


class StripeProvider:
    """``PaymentProvider`` on Stripe's API."""

    name = "stripe"

    def __init__(
        self,
        api_key: str,
        *,
        api_base: str = "",
        http_client: stripe.HTTPClient | None = None,
        max_network_retries: int = 2,
    ) -> None:
        if not api_key:
            raise ValueError("STRIPE_API_KEY is empty")
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base} if api_base else None,  # type: ignore[typeddict-item]
            http_client=http_client,
            max_network_retries=max_network_retries,
        )

    def create_customer(self, *, account_id: str, name: str, email: str, idempotency_key: str) -> str:
        params: dict[str, Any] = {"name": name, "metadata": {"account_id": account_id}}
        if email:
            params["email"] = email
        try:
            customer = self._client.v1.customers.create(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as error:
            raise _provider_error(error) from error
        return str(customer.id)

    def create_checkout_session(self, request: CheckoutRequest) -> CheckoutSession:
        metadata = {"top_up_id": str(request.top_up_id), "account_id": request.account_id}
        intent_data: dict[str, Any] = {"metadata": metadata, "description": request.description}
        if request.save_card:
            intent_data["setup_future_usage"] = "off_session"
        params: dict[str, Any] = {
            "mode": "payment",
            "customer": request.customer_id,
            "client_reference_id": str(request.top_up_id),
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": request.currency,
                        "unit_amount": request.amount_cents,
                        "product_data": {"name": request.product_name, "description": request.description},
                    },
                }
            ],
            "allowed_payment_method_types": _CARDS_ONLY,
            "payment_intent_data": intent_data,
            "metadata": metadata,
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
            "expires_at": int(request.expires_at.timestamp()),
        }
        try:
            session = self._client.v1.checkout.sessions.create(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": request.idempotency_key},
            )
        except stripe.StripeError as error:
            raise _provider_error(error) from error
        data = _dict(session)
        return CheckoutSession(
            id=str(data["id"]), url=str(data.get("url") or ""), payment_intent_id=data.get("payment_intent")
        )

    def retrieve_checkout_session(self, session_id: str) -> Checkout:
        try:
            session = self._client.v1.checkout.sessions.retrieve(
                session_id, params={"expand": _SESSION_EXPAND}
            )
        except stripe.StripeError as error:
            raise _provider_error(error) from error
        return checkout_from_session(_dict(session))

    def expire_checkout_session(self, session_id: str, *, idempotency_key: str) -> Checkout:
        try:
            self._client.v1.checkout.sessions.expire(session_id, options={"idempotency_key": idempotency_key})
        except stripe.InvalidRequestError:
            pass  # already complete or expired: the session as it is now says which
        except stripe.StripeError as error:
            raise _provider_error(error) from error
        return self.retrieve_checkout_session(session_id)

    def charge_saved_card(self, request: ChargeRequest) -> Payment:
        params: dict[str, Any] = {
            "amount": request.amount_cents,
            "currency": request.currency,
            "customer": request.customer_id,
            "payment_method": request.payment_method_id,
            "allowed_payment_method_types": _CARDS_ONLY,
            "confirm": True,
            "metadata": {"top_up_id": str(request.top_up_id), "account_id": request.account_id},
            "expand": _PAYMENT_EXPAND,
        }
        if request.off_session:
            params["off_session"] = True
        try:
            intent = self._client.v1.payment_intents.create(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": request.idempotency_key},
            )
        except stripe.CardError as error:
            return self._declined(error, request)
        except stripe.StripeError as error:
            raise _provider_error(error) from error
        return payment_from_intent(_dict(intent))

    def _declined(self, error: stripe.CardError, request: ChargeRequest) -> Payment:
        """A card error: the PaymentIntent it names as it is now, else the decline as Stripe said it."""
        code = str(error.code or "card_declined")
        detail = getattr(error.error, "decline_code", None) if error.error is not None else None
        message = error.user_message or "The card was declined."
        intent_obj = getattr(error.error, "payment_intent", None) if error.error is not None else None
        intent: Mapping[str, Any] | None = _dict(intent_obj) if intent_obj is not None else None
        if intent is not None:  # authentication_required reads as requires_action (see shapes)
            payment = payment_from_intent(intent)
            if payment.status in ("failed", "requires_action"):
                return payment
        return Payment(
            payment_intent_id=(intent or {}).get("id"),
            status="failed",
            amount_cents=request.amount_cents,
            currency=request.currency,
            customer_id=request.customer_id,
            failure_code=str(detail or code)[:64],
            failure_message=message[:500],
        )

    def retrieve_payment(self, payment_intent_id: str) -> Payment:
        try:
            intent = self._client.v1.payment_intents.retrieve(
                payment_intent_id, params={"expand": _PAYMENT_EXPAND}
            )
        except stripe.InvalidRequestError as error:
            if error.code == "resource_missing" or error.http_status == 404:
                raise NotFound(
                    f"Stripe has no payment {payment_intent_id}",
                    code="resource_missing",
                    field="payment_intent",
                ) from error
            raise _provider_error(error) from error
        except stripe.StripeError as error:
            raise _provider_error(error) from error
        return payment_from_intent(_dict(intent))

    def find_payment(self, *, customer_id: str, top_up_id: int) -> Payment | None:
        """The customer's PaymentIntent whose metadata names the top-up (newest first)."""
        try:
            intents = self._client.v1.payment_intents.list(params={"customer": customer_id, "limit": 100})
            for intent in intents.auto_paging_iter():
                data = _dict(intent)
                if (data.get("metadata") or {}).get("top_up_id") == str(top_up_id):
                    return self.retrieve_payment(str(data["id"]))
        except stripe.StripeError as error:
            raise _provider_error(error) from error
        return None

    def cancel_payment(self, payment_intent_id: str, *, idempotency_key: str) -> Payment:
        try:
            self._client.v1.payment_intents.cancel(
                payment_intent_id, options={"idempotency_key": idempotency_key}
            )
        except stripe.InvalidRequestError:
            pass  # it succeeded or was canceled meanwhile: retrieve says which
        except stripe.StripeError as error:
            raise _provider_error(error) from error
        return self.retrieve_payment(payment_intent_id)

    def _latest_charge(self, payment_intent_id: str) -> dict[str, Any]:
        intent = _dict(
            self._client.v1.payment_intents.retrieve(payment_intent_id, params={"expand": ["latest_charge"]})
        )
        charge = intent.get("latest_charge")
        if not isinstance(charge, dict):
            raise ProviderError(f"Stripe: payment {payment_intent_id} has no charge (it did not succeed)")
        return charge

    def _refund_made_with(self, payment_intent_id: str, idempotency_key: str) -> str | None:
        """The id of the payment's refund made with this key, if there is one."""
        refunds = self._client.v1.refunds.list(params={"payment_intent": payment_intent_id, "limit": 100})
        for refund in refunds.auto_paging_iter():
            if (_dict(refund).get("metadata") or {}).get(_REFUND_KEY) == idempotency_key:
                return str(refund.id)
        return None

    def refund_payment(
        self, payment_intent_id: str, *, amount_cents: int | None, idempotency_key: str
    ) -> RefundMade:
        params: dict[str, Any] = {
            "payment_intent": payment_intent_id,
            "metadata": {_REFUND_KEY: idempotency_key},
        }
        if amount_cents is not None:
            params["amount"] = amount_cents
        try:
            refund_id = self._refund_made_with(payment_intent_id, idempotency_key)
            if refund_id is None:
                refund = self._client.v1.refunds.create(
                    params=params,  # type: ignore[arg-type]
                    options={"idempotency_key": idempotency_key},
                )
                refund_id = str(refund.id)
            charge = self._latest_charge(payment_intent_id)
        except stripe.StripeError as error:
            raise _provider_error(error) from error
        return RefundMade(refund_id, int(charge.get("amount_refunded") or 0))

    def send_receipt(self, payment_intent_id: str, *, email: str, idempotency_key: str) -> ReceiptSent:
        try:
            charge = self._latest_charge(payment_intent_id)
            updated = self._client.v1.charges.update(
                str(charge["id"]),
                params={"receipt_email": email},
                options={"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as error:
            raise _provider_error(error) from error
        data = _dict(updated)
        return ReceiptSent(
            email=str(data.get("receipt_email") or email),
            receipt_url=str(data.get("receipt_url") or ""),
            emailed_by_provider=True,
        )

    def detach_payment_method(self, payment_method_id: str, *, idempotency_key: str) -> bool:
        try:
            self._client.v1.payment_methods.detach(
                payment_method_id, options={"idempotency_key": idempotency_key}
            )
        except stripe.InvalidRequestError as error:
            if error.code == "resource_missing" or error.http_status == 404:
                return False
            if self._detached_already(payment_method_id):
                return False  # detached before: Stripe refuses to detach it twice
            raise _provider_error(error) from error
        except stripe.StripeError as error:
            raise _provider_error(error) from error
        return True

    def _detached_already(self, payment_method_id: str) -> bool:
        try:
            method = _dict(self._client.v1.payment_methods.retrieve(payment_method_id))
        except stripe.InvalidRequestError as error:
            return error.code == "resource_missing" or error.http_status == 404
        except stripe.StripeError:
            return False
        return not method.get("customer")
