"""The sandbox provider: Stripe's test mode without Stripe (the default without ``STRIPE_API_KEY``).

It keeps Stripe-shaped objects (customers, cards, PaymentIntents, Checkout Sessions) in
``payment_sandbox_objects`` and answers like Stripe: the same idempotency keys return the
same objects, a Checkout Session has a page to pay on (``/payments/sandbox/checkout/<id>``,
served by ``core.api.sandbox_pages``), a card that asks for 3-D Secure sends the customer
to a confirmation page, and every change is announced as a webhook event signed with the
webhook secret and handed to the same handler as Stripe's (``deliver``).

Test cards, as in Stripe's test mode:

    4242 4242 4242 4242   succeeds
    4000 0000 0000 0341   is declined when charged
    4000 0025 0000 3155   asks for 3-D Secure (confirm or fail it on the next page)

No money moves. ``METERLINE_ENV=production`` never uses the sandbox (see ``config``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from copy import deepcopy
from typing import Any

import stripe
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError

from core.clock import Clock, system_clock
from core.db import unit_of_work
from core.db.models import PaymentSandboxObject, Setting
from core.errors import NotFound, ValidationError
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

SECRET_KEY = "payments.sandbox_webhook_secret"
CARD_SUCCEEDS = "4242424242424242"
CARD_DECLINED = "4000000000000341"
CARD_3DS = "4000002500003155"
TEST_CARDS: dict[str, str] = {
    CARD_SUCCEEDS: "succeeds",
    CARD_DECLINED: "is declined",
    CARD_3DS: "asks for 3-D Secure",
}
API_VERSION = "2026-10-28.sandbox"

# (payload, Stripe-Signature header): hands a signed event to the webhook handler.
Deliver = Callable[[bytes, str], None]


def sandbox_secret(engine: Engine) -> str:
    """The sandbox's webhook signing secret, made once and kept in ``settings``."""
    with unit_of_work(engine) as session:
        stored = session.scalar(select(Setting.value).where(Setting.key == SECRET_KEY))
    if stored:
        return stored
    try:
        with unit_of_work(engine, write=True) as session:
            stored = session.scalar(select(Setting.value).where(Setting.key == SECRET_KEY))
            if stored:
                return stored
            secret = "whsec_sandbox_" + secrets.token_urlsafe(24)
            session.add(Setting(key=SECRET_KEY, value=secret))
        return secret
    except IntegrityError:
        with unit_of_work(engine) as session:
            value = session.scalar(select(Setting.value).where(Setting.key == SECRET_KEY))
        assert value is not None
        return value


def sign(payload: bytes, secret: str, *, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header for ``payload``, made with the SDK's own scheme."""
    return stripe.WebhookSignature.generate_signature_header(
        payload.decode("utf-8"), secret, timestamp=int(time.time()) if timestamp is None else timestamp
    )


class SandboxProvider:
    """``PaymentProvider`` that keeps its objects in the database and pays with test cards."""

    name = "sandbox"

    def __init__(
        self,
        engine: Engine,
        *,
        secret: str | None = None,
        deliver: Deliver | None = None,
        clock: Clock = system_clock,
    ) -> None:
        self._engine = engine
        self._secret = secret
        self.deliver = deliver
        self.clock = clock

    # --- identity and storage ---

    @property
    def secret(self) -> str:
        if self._secret is None:
            self._secret = sandbox_secret(self._engine)
        return self._secret

    def _id(self, prefix: str, idempotency_key: str | None) -> str:
        """Like Stripe's: random, or (with an idempotency key) the same object on every retry."""
        if idempotency_key is None:
            return f"{prefix}_sbx_{secrets.token_hex(12)}"
        digest = hmac.new(self.secret.encode(), idempotency_key.encode(), hashlib.sha256).hexdigest()
        return f"{prefix}_sbx_{digest[:24]}"

    def _load(self, object_id: str, kind: str) -> dict[str, Any]:
        with unit_of_work(self._engine) as session:
            row = session.get(PaymentSandboxObject, object_id)
            data = None if row is None or row.kind != kind else deepcopy(row.data)
        if data is None:
            raise NotFound(f"no such {kind}: {object_id}", code="resource_missing", field="id")
        return data

    def _create(self, object_id: str, kind: str, data: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Store a new object unless one with this id exists; (the stored object, created now)."""
        now = self.clock()
        try:
            with unit_of_work(self._engine, write=True) as session:
                row = session.get(PaymentSandboxObject, object_id)
                if row is not None:
                    return deepcopy(row.data), False
                session.add(
                    PaymentSandboxObject(id=object_id, kind=kind, data=data, created_at=now, updated_at=now)
                )
        except IntegrityError:  # a concurrent retry with the same key made it first
            return self._load(object_id, kind), False
        return data, True

    def _update(
        self, object_id: str, kind: str, change: Callable[[dict[str, Any]], list[str]]
    ) -> dict[str, Any]:
        """Apply ``change`` to the stored object under the write lock; deliver the events it names."""
        with unit_of_work(self._engine, write=True) as session:
            stmt = select(PaymentSandboxObject).where(PaymentSandboxObject.id == object_id)
            if session.get_bind().dialect.name == "postgresql":
                stmt = stmt.with_for_update()
            row = session.scalars(stmt).first()
            if row is None or row.kind != kind:
                raise NotFound(f"no such {kind}: {object_id}", code="resource_missing", field="id")
            data = deepcopy(row.data)
            events = change(data)
            row.data = data
            row.updated_at = self.clock()
        self._announce(events, data)
        return data

    # --- events ---

    def _announce(self, types: list[str], data: dict[str, Any]) -> None:
        for event_type in types:
            self.emit(event_type, self._event_object(event_type, data))

    def _event_object(self, event_type: str, data: dict[str, Any]) -> dict[str, Any]:
        public = {k: v for k, v in data.items() if k != "_sandbox"}
        if event_type.startswith("charge.dispute."):
            return deepcopy(data["_sandbox"]["dispute"])
        if event_type.startswith("charge."):
            return deepcopy(public["latest_charge"])
        return public

    def emit(self, event_type: str, obj: dict[str, Any]) -> bytes:
        """Sign an event about ``obj`` and hand it to ``deliver``; return the payload."""
        event = {
            "id": self._id("evt", None),
            "object": "event",
            "api_version": API_VERSION,
            "created": int(self.clock().timestamp()),
            "livemode": False,
            "pending_webhooks": 1,
            "type": event_type,
            "data": {"object": obj},
        }
        payload = json.dumps(event, separators=(",", ":"), sort_keys=True).encode()
        if self.deliver is not None:
            self.deliver(payload, sign(payload, self.secret))
        return payload

    # --- PaymentProvider ---

    def create_customer(self, *, account_id: str, name: str, email: str, idempotency_key: str) -> str:
        object_id = self._id("cus", idempotency_key)
        data = {
            "id": object_id,
            "object": "customer",
            "name": name,
            "email": email,
            "metadata": {"account_id": account_id},
            "created": int(self.clock().timestamp()),
        }
        self._create(object_id, "customer", data)
        return object_id

    def create_checkout_session(self, request: CheckoutRequest) -> CheckoutSession:
        self._load(request.customer_id, "customer")
        object_id = self._id("cs", request.idempotency_key)
        metadata = {"top_up_id": str(request.top_up_id), "account_id": request.account_id}
        data: dict[str, Any] = {
            "id": object_id,
            "object": "checkout.session",
            "mode": "payment",
            "status": "open",
            "payment_status": "unpaid",
            "amount_total": request.amount_cents,
            "currency": request.currency,
            "customer": request.customer_id,
            "client_reference_id": str(request.top_up_id),
            "metadata": metadata,
            "payment_intent": None,
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
            "url": f"/payments/sandbox/checkout/{object_id}",
            "expires_at": int(request.expires_at.timestamp()),
            "_sandbox": {
                "product_name": request.product_name,
                "description": request.description,
                "save_card": request.save_card,
                "error": "",
            },
        }
        stored, _ = self._create(object_id, "checkout_session", data)
        return CheckoutSession(id=object_id, url=str(stored["url"]))

    def retrieve_checkout_session(self, session_id: str) -> Checkout:
        data = self._load(session_id, "checkout_session")
        self._expire_if_due(data)
        if data.get("payment_intent"):
            data["payment_intent"] = self._load(str(data["payment_intent"]), "payment_intent")
        return checkout_from_session(data)

    def _expire_if_due(self, data: dict[str, Any]) -> None:
        if data["status"] == "open" and data["expires_at"] <= int(self.clock().timestamp()):
            self.expire_checkout_session(data["id"], idempotency_key="expiry")
            data["status"] = "expired"

    def expire_checkout_session(self, session_id: str, *, idempotency_key: str) -> Checkout:
        def expire(data: dict[str, Any]) -> list[str]:
            if data["status"] != "open":
                return []
            data["status"] = "expired"
            return ["checkout.session.expired"]

        data = self._update(session_id, "checkout_session", expire)
        if data.get("payment_intent"):
            data["payment_intent"] = self._load(str(data["payment_intent"]), "payment_intent")
        return checkout_from_session(data)

    def charge_saved_card(self, request: ChargeRequest) -> Payment:
        method = self._load(request.payment_method_id, "payment_method")
        if method.get("customer") != request.customer_id:
            raise ProviderError("the card does not belong to this customer")
        object_id = self._id("pi", request.idempotency_key)
        intent = self._new_intent(
            object_id,
            amount_cents=request.amount_cents,
            currency=request.currency,
            customer_id=request.customer_id,
            metadata={"top_up_id": str(request.top_up_id), "account_id": request.account_id},
            return_url=request.return_url,
        )
        stored, created = self._create(object_id, "payment_intent", intent)
        if created:
            stored = self._update(object_id, "payment_intent", lambda data: self._attempt(data, method))
        return payment_from_intent(stored)

    def retrieve_payment(self, payment_intent_id: str) -> Payment:
        return payment_from_intent(self._load(payment_intent_id, "payment_intent"))

    def find_payment(self, *, customer_id: str, top_up_id: int) -> Payment | None:
        with unit_of_work(self._engine) as session:
            rows = session.scalars(
                select(PaymentSandboxObject)
                .where(PaymentSandboxObject.kind == "payment_intent")
                .order_by(PaymentSandboxObject.created_at)
            ).all()
            for row in rows:
                data = row.data
                if data.get("customer") == customer_id and (data.get("metadata") or {}).get(
                    "top_up_id"
                ) == str(top_up_id):
                    return payment_from_intent(deepcopy(data))
        return None

    def cancel_payment(self, payment_intent_id: str, *, idempotency_key: str) -> Payment:
        def cancel(data: dict[str, Any]) -> list[str]:
            if data["status"] in ("succeeded", "canceled"):
                return []
            data["status"] = "canceled"
            data["next_action"] = None
            return ["payment_intent.canceled"]

        return payment_from_intent(self._update(payment_intent_id, "payment_intent", cancel))

    def detach_payment_method(self, payment_method_id: str, *, idempotency_key: str) -> bool:
        """Detach the card from its customer (it cannot be charged again); False if it was already."""
        detached_now = False

        def detach(data: dict[str, Any]) -> list[str]:
            nonlocal detached_now
            if data.get("customer") is None:
                return []
            detached_now = True
            data["customer"] = None
            data["_sandbox"]["detached"] = {"key": idempotency_key, "at": int(self.clock().timestamp())}
            return ["payment_method.detached"]

        try:
            self._update(payment_method_id, "payment_method", detach)
        except NotFound:
            return False  # as Stripe's resource_missing: nothing left to detach
        return detached_now

    # --- what Stripe's pages and dashboard do (the sandbox pages and tests call these) ---

    def save_test_card(self, customer_id: str, number: str = CARD_SUCCEEDS, *, key: str | None = None) -> str:
        """Attach a test card to a customer (what Checkout does with "save card"); its id."""
        if number not in TEST_CARDS:
            raise ValidationError("use one of the sandbox test cards", field="card")
        self._load(customer_id, "customer")
        object_id = self._id("pm", key)
        now = self.clock()
        data = {
            "id": object_id,
            "object": "payment_method",
            "type": "card",
            "customer": customer_id,
            "card": {"brand": "visa", "last4": number[-4:], "exp_month": 12, "exp_year": now.year + 4},
            "_sandbox": {"number": number},
        }
        self._create(object_id, "payment_method", data)
        return object_id

    def checkout_session(self, session_id: str) -> dict[str, Any]:
        """The stored session (for the sandbox checkout page)."""
        data = self._load(session_id, "checkout_session")
        self._expire_if_due(data)
        return data

    def pay_checkout(self, session_id: str, number: str) -> dict[str, Any]:
        """Pay an open session with a test card; the session afterwards (``_sandbox.error`` says why not)."""
        if number not in TEST_CARDS:
            raise ValidationError("use one of the sandbox test cards", field="card")
        session = self.checkout_session(session_id)
        if session["status"] != "open":
            return session
        sandbox = session["_sandbox"]
        intent_id = str(session.get("payment_intent") or self._id("pi", f"{session_id}:intent"))
        method_id = self._id("pm", None)
        now = self.clock()
        method = {
            "id": method_id,
            "object": "payment_method",
            "type": "card",
            "customer": session["customer"] if sandbox["save_card"] else None,
            "card": {"brand": "visa", "last4": number[-4:], "exp_month": 12, "exp_year": now.year + 4},
            "_sandbox": {"number": number},
        }
        self._create(method_id, "payment_method", method)
        intent = self._new_intent(
            intent_id,
            amount_cents=int(session["amount_total"]),
            currency=str(session["currency"]),
            customer_id=str(session["customer"]),
            metadata=dict(session["metadata"]),
            return_url=str(session["success_url"]),
            session_id=session_id,
        )
        self._create(intent_id, "payment_intent", intent)

        def attach(data: dict[str, Any]) -> list[str]:
            data["payment_intent"] = intent_id
            data["_sandbox"]["error"] = ""
            return []

        self._update(session_id, "checkout_session", attach)
        paid = self._update(intent_id, "payment_intent", lambda data: self._attempt(data, method))
        if paid["status"] == "requires_payment_method":
            message = str((paid.get("last_payment_error") or {}).get("message") or "The card was declined.")

            def declined(data: dict[str, Any]) -> list[str]:
                data["_sandbox"]["error"] = message
                return []

            self._update(session_id, "checkout_session", declined)
        elif paid["status"] == "succeeded":
            self._complete_session(session_id, intent_id)
        return self.checkout_session(session_id)

    def authenticate(self, payment_intent_id: str, *, approve: bool) -> dict[str, Any]:
        """The customer confirms (or fails) 3-D Secure; the PaymentIntent afterwards."""

        def finish(data: dict[str, Any]) -> list[str]:
            if data["status"] != "requires_action":
                return []
            data["next_action"] = None
            if approve:
                return self._succeed(data)
            data["status"] = "requires_payment_method"
            data["last_payment_error"] = {
                "code": "payment_intent_authentication_failure",
                "message": "The bank could not confirm the card: authentication failed.",
                "payment_method": {"id": data["payment_method"]},
            }
            return ["payment_intent.payment_failed"]

        intent = self._update(payment_intent_id, "payment_intent", finish)
        session_id = intent["_sandbox"].get("session_id")
        if session_id and intent["status"] == "succeeded":
            self._complete_session(session_id, intent["id"])
        elif session_id and not approve:
            message = intent["last_payment_error"]["message"]

            def failed(data: dict[str, Any]) -> list[str]:
                data["_sandbox"]["error"] = message
                return []

            self._update(session_id, "checkout_session", failed)
        return intent

    def payment_intent(self, payment_intent_id: str) -> dict[str, Any]:
        return self._load(payment_intent_id, "payment_intent")

    def refund(self, payment_intent_id: str, amount_cents: int | None = None) -> dict[str, Any]:
        """Refund part or all of a succeeded payment (as from Stripe's dashboard): ``charge.refunded``."""
        return self._refund(payment_intent_id, amount_cents, None)

    def _refund(self, payment_intent_id: str, amount_cents: int | None, key: str | None) -> dict[str, Any]:
        """The refund itself; with ``key``, once per key (the same key again changes nothing)."""

        def refund(data: dict[str, Any]) -> list[str]:
            charge = data.get("latest_charge")
            if data["status"] != "succeeded" or not isinstance(charge, dict):
                raise ValidationError("only a succeeded payment can be refunded", field="payment_intent")
            made = data["_sandbox"].setdefault("refunds", {})
            if key is not None and key in made:
                return []
            left = int(charge["amount"]) - int(charge["amount_refunded"])
            amount = left if amount_cents is None else amount_cents
            if not 0 < amount <= left:
                raise ValidationError(f"refund between 1 and {left} cents", field="amount")
            charge["amount_refunded"] = int(charge["amount_refunded"]) + amount
            charge["refunded"] = charge["amount_refunded"] == charge["amount"]
            made[key or f"dashboard:{len(made)}"] = self._id("re", None if key is None else f"refund:{key}")
            return ["charge.refunded"]

        return self._update(payment_intent_id, "payment_intent", refund)

    def refund_payment(
        self, payment_intent_id: str, *, amount_cents: int | None, idempotency_key: str
    ) -> RefundMade:
        intent = self._refund(payment_intent_id, amount_cents, idempotency_key)
        return RefundMade(
            refund_id=str(intent["_sandbox"]["refunds"][idempotency_key]),
            refunded_cents_total=int(intent["latest_charge"]["amount_refunded"]),
        )

    def send_receipt(self, payment_intent_id: str, *, email: str, idempotency_key: str) -> ReceiptSent:
        """Record the receipt as addressed to ``email`` (the sandbox emails nothing: the portal does)."""
        repeated = False

        def address(data: dict[str, Any]) -> list[str]:
            nonlocal repeated
            charge = data.get("latest_charge")
            if data["status"] != "succeeded" or not isinstance(charge, dict):
                raise ValidationError("only a succeeded payment has a receipt", field="payment_intent")
            sent = data["_sandbox"].setdefault("receipts", [])
            repeated = any(item["key"] == idempotency_key for item in sent)
            if not repeated:
                sent.append({"email": email, "key": idempotency_key, "at": int(self.clock().timestamp())})
                charge["receipt_email"] = email
            return []

        intent = self._update(payment_intent_id, "payment_intent", address)
        return ReceiptSent(
            email=email, receipt_url=str(intent["latest_charge"].get("receipt_url") or ""), repeated=repeated
        )

    def dispute(self, payment_intent_id: str, *, close_as: str | None = None) -> dict[str, Any]:
        """Open a dispute on a payment (``charge.dispute.created``), or close it as ``won`` / ``lost``."""

        def dispute(data: dict[str, Any]) -> list[str]:
            charge = data.get("latest_charge")
            if data["status"] != "succeeded" or not isinstance(charge, dict):
                raise ValidationError("only a succeeded payment can be disputed", field="payment_intent")
            sandbox = data["_sandbox"]
            if close_as is None:
                charge["disputed"] = True
                sandbox["dispute"] = {
                    "id": self._id("dp", f"{data['id']}:dispute"),
                    "object": "dispute",
                    "amount": charge["amount"],
                    "currency": charge["currency"],
                    "charge": charge["id"],
                    "payment_intent": data["id"],
                    "reason": "fraudulent",
                    "status": "needs_response",
                }
                return ["charge.dispute.created"]
            if close_as not in ("won", "lost") or "dispute" not in sandbox:
                raise ValidationError("close an open dispute as won or lost", field="status")
            sandbox["dispute"]["status"] = close_as
            return ["charge.dispute.closed"]

        return self._update(payment_intent_id, "payment_intent", dispute)

    # --- the payment itself ---

    def _new_intent(
        self,
        object_id: str,
        *,
        amount_cents: int,
        currency: str,
        customer_id: str,
        metadata: dict[str, str],
        return_url: str,
        session_id: str | None = None,
    ) -> dict[str, Any]:
        return {
            "id": object_id,
            "object": "payment_intent",
            "amount": amount_cents,
            "amount_received": 0,
            "currency": currency,
            "customer": customer_id,
            "payment_method": None,
            "status": "requires_payment_method",
            "client_secret": f"{object_id}_secret_{secrets.token_hex(8)}",
            "latest_charge": None,
            "last_payment_error": None,
            "next_action": None,
            "metadata": metadata,
            "created": int(self.clock().timestamp()),
            "_sandbox": {"return_url": return_url, "session_id": session_id},
        }

    def _attempt(self, data: dict[str, Any], method: dict[str, Any]) -> list[str]:
        """Charge the card (on a PaymentIntent not yet succeeded); the events this makes."""
        if data["status"] == "succeeded":
            return []
        number = method["_sandbox"]["number"]
        data["payment_method"] = method["id"]
        data["_sandbox"]["card"] = {"id": method["id"], **method["card"]}
        data["last_payment_error"] = None
        if number == CARD_DECLINED:
            data["status"] = "requires_payment_method"
            data["last_payment_error"] = {
                "code": "card_declined",
                "decline_code": "generic_decline",
                "message": "Your card was declined.",
                "payment_method": {"id": method["id"]},
            }
            return ["payment_intent.payment_failed"]
        if number == CARD_3DS:
            data["status"] = "requires_action"
            data["next_action"] = {
                "type": "redirect_to_url",
                "redirect_to_url": {
                    "url": f"/payments/sandbox/authenticate/{data['id']}",
                    "return_url": data["_sandbox"]["return_url"],
                },
            }
            return ["payment_intent.requires_action"]
        return self._succeed(data)

    def _succeed(self, data: dict[str, Any]) -> list[str]:
        card = data["_sandbox"]["card"]
        data["status"] = "succeeded"
        data["amount_received"] = data["amount"]
        data["latest_charge"] = {
            "id": self._id("ch", f"{data['id']}:charge"),
            "object": "charge",
            "amount": data["amount"],
            "amount_refunded": 0,
            "currency": data["currency"],
            "customer": data["customer"],
            "paid": True,
            "status": "succeeded",
            "refunded": False,
            "disputed": False,
            "payment_intent": data["id"],
            "payment_method": card["id"],
            "payment_method_details": {
                "type": "card",
                "card": {k: card[k] for k in ("brand", "last4", "exp_month", "exp_year")},
            },
            "receipt_url": f"/payments/sandbox/receipt/{data['id']}",
            "metadata": data["metadata"],
        }
        return ["payment_intent.succeeded"]

    def _complete_session(self, session_id: str, intent_id: str) -> None:
        def complete(data: dict[str, Any]) -> list[str]:
            if data["status"] != "open":
                return []
            data["status"] = "complete"
            data["payment_status"] = "paid"
            data["payment_intent"] = intent_id
            return ["checkout.session.completed"]

        self._update(session_id, "checkout_session", complete)
