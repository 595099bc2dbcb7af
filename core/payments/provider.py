"""The payment provider interface: what Meterline asks of Stripe (or of the sandbox).

Every call that creates or changes something carries an ``idempotency_key`` derived from
our top-up id (``topup:<id>:<step>``), so a retry after a timeout or a page reload gets
the same Checkout Session or PaymentIntent back instead of a second charge. Amounts are
integers in the currency's minor unit (US cents). Answers are plain frozen dataclasses;
a declined card is an answer (``status="failed"``), not an exception. What cannot be
answered (the provider is down, refuses the request) raises ``ProviderError``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from core.errors import BillingError

PaymentStatus = Literal["succeeded", "processing", "requires_action", "open", "failed", "canceled"]
CheckoutStatus = Literal["open", "complete", "expired"]


class ProviderError(BillingError):
    """The payment provider could not be reached or refused the request (nothing was charged twice)."""

    http_status = 502
    default_code = "payment_provider_error"


@dataclass(frozen=True)
class Card:
    """A card as the provider describes it (never the number)."""

    payment_method_id: str
    brand: str = ""
    last4: str = ""
    exp_month: int | None = None
    exp_year: int | None = None

    @property
    def label(self) -> str:
        if not self.last4:
            return self.brand.title() or "Card"
        expiry = ""
        if self.exp_month and self.exp_year:
            expiry = f", expires {self.exp_month:02d}/{self.exp_year % 100:02d}"
        return f"{self.brand.title() or 'Card'} •••• {self.last4}{expiry}"


@dataclass(frozen=True)
class CheckoutRequest:
    """A hosted checkout page for one top-up (a Stripe Checkout Session in ``payment`` mode)."""

    top_up_id: int
    account_id: str
    customer_id: str
    amount_cents: int
    currency: str
    product_name: str
    description: str
    save_card: bool
    success_url: str
    cancel_url: str
    expires_at: datetime
    idempotency_key: str


@dataclass(frozen=True)
class CheckoutSession:
    id: str
    url: str
    payment_intent_id: str | None = None


@dataclass(frozen=True)
class ChargeRequest:
    """Charge a saved card now: a PaymentIntent confirmed from the server."""

    top_up_id: int
    account_id: str
    customer_id: str
    payment_method_id: str
    amount_cents: int
    currency: str
    off_session: bool  # True for auto-recharge (the customer is not there)
    return_url: str  # where the customer lands after confirming with their bank
    idempotency_key: str


@dataclass(frozen=True)
class PaymentAction:
    """What the customer must do for the payment to go on (3-D Secure)."""

    redirect_url: str = ""  # send the browser here, or else
    client_secret: str = ""  # let Stripe.js handle the next action with this
    payment_method_id: str = ""
    confirm: bool = False  # Stripe.js confirms it again with the card (off-session, authentication_required)


@dataclass(frozen=True)
class Payment:
    """A payment (PaymentIntent) as the provider sees it right now."""

    payment_intent_id: str | None
    status: PaymentStatus
    amount_cents: int  # received when succeeded, else requested
    currency: str
    customer_id: str | None = None
    card: Card | None = None
    receipt_url: str = ""
    refunded_cents: int = 0
    disputed: bool = False
    failure_code: str = ""
    failure_message: str = ""
    action: PaymentAction | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Checkout:
    """A checkout session as the provider sees it right now."""

    session_id: str
    status: CheckoutStatus
    paid: bool
    amount_cents: int
    currency: str
    payment_intent_id: str | None
    payment: Payment | None = None


@dataclass(frozen=True)
class RefundMade:
    """A refund the provider made (or had made already with the same idempotency key)."""

    refund_id: str
    refunded_cents_total: int  # the payment's running refunded total, this refund included


@dataclass(frozen=True)
class ReceiptSent:
    """A payment's receipt, addressed again."""

    email: str
    receipt_url: str = ""
    emailed_by_provider: bool = False  # True: the provider emails it (Stripe); else the portal must
    repeated: bool = False  # True: this idempotency key was seen already, nothing new was sent


class PaymentProvider(Protocol):
    """Stripe, or the sandbox that behaves like Stripe's test mode."""

    name: str  # "stripe" | "sandbox": stored on each top-up

    def create_customer(self, *, account_id: str, name: str, email: str, idempotency_key: str) -> str:
        """A new customer id for the account."""
        ...

    def create_checkout_session(self, request: CheckoutRequest) -> CheckoutSession: ...

    def retrieve_checkout_session(self, session_id: str) -> Checkout: ...

    def expire_checkout_session(self, session_id: str, *, idempotency_key: str) -> Checkout:
        """Close an unpaid session (the customer left); a paid one stays as it is."""
        ...

    def charge_saved_card(self, request: ChargeRequest) -> Payment:
        """Create and confirm a PaymentIntent on a saved card; a decline is ``status="failed"``."""
        ...

    def retrieve_payment(self, payment_intent_id: str) -> Payment: ...

    def find_payment(self, *, customer_id: str, top_up_id: int) -> Payment | None:
        """The customer's payment made for this top-up (by its metadata), or None if none exists.

        Asked before giving up on a charge whose answer was lost for longer than the provider
        keeps idempotency keys: the charge may have gone through all the same.
        """
        ...

    def cancel_payment(self, payment_intent_id: str, *, idempotency_key: str) -> Payment: ...

    def refund_payment(
        self, payment_intent_id: str, *, amount_cents: int | None, idempotency_key: str
    ) -> RefundMade:
        """Refund ``amount_cents`` (None: all that is left) of a succeeded payment, once per key."""
        ...

    def send_receipt(self, payment_intent_id: str, *, email: str, idempotency_key: str) -> ReceiptSent:
        """Address the payment's receipt to ``email`` (Stripe emails it when the address is set)."""
        ...

    def detach_payment_method(self, payment_method_id: str, *, idempotency_key: str) -> bool:
        """Detach a saved card from its customer for good: True if detached now, False if it was
        detached (or gone) already, which counts as done."""
        ...
