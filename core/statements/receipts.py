"""A paid top-up's receipt as plain data: who paid, when, what, with which card, to whom.

The payments model records no tax (a top-up's amount is what the card was charged, whole):
a receipt has no tax line.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from core.db.models import Account, TopUp
from core.errors import NotFound
from core.money import CENT, NANOS_PER_CREDIT, ROUNDING_MODE
from core.payments import states
from core.payments.notify import billing_contact

# A payment went through: there is something to receipt (a refund later does not undo the receipt).
RECEIPT_STATES = frozenset({states.PAID, states.CREDITED, states.REFUNDED})
RECEIPT_PREFIX = "ML"


def receipt_number(top_up_id: int) -> str:
    """A receipt's number, the same every time it is printed: "ML-00000042" for top-up #42."""
    return f"{RECEIPT_PREFIX}-{top_up_id:08d}"


@dataclass(frozen=True)
class Receipt:
    number: str
    top_up_id: int
    account_id: str
    account_name: str
    billing_email: str
    timezone: str
    paid_at: datetime
    amount_cents: int
    currency: str
    credits_nanos: int
    card_brand: str
    card_last4: str
    payment_id: str
    provider: str  # "stripe" | "sandbox"
    provider_receipt_url: str
    refunded_cents: int
    state: str

    @property
    def price_per_credit(self) -> Decimal:
        """Dollars per credit, to the cent (a top-up sells credits at $1.00 each)."""
        dollars = Decimal(self.amount_cents) / 100
        credits = Decimal(self.credits_nanos) / NANOS_PER_CREDIT
        return (dollars / credits).quantize(CENT, rounding=ROUNDING_MODE)

    @property
    def card_label(self) -> str:
        if not self.card_last4:
            return ""
        return f"{(self.card_brand or 'card').title()} ending in {self.card_last4}"


def receipt(session: Session, account_id: str, top_up_id: int) -> Receipt:
    """The receipt of top-up ``top_up_id`` of ``account_id``; another account's top-up, or one whose
    payment has not gone through, has none (``NotFound``)."""
    top_up = session.get(TopUp, top_up_id) if isinstance(top_up_id, int) and 0 < top_up_id < 2**63 else None
    if top_up is None or top_up.account_id != account_id or top_up.state not in RECEIPT_STATES:
        raise NotFound(f"top-up {top_up_id} has no receipt on this account", field="top_up_id")
    account = session.get(Account, account_id)
    assert account is not None
    return Receipt(
        number=receipt_number(top_up.id),
        top_up_id=top_up.id,
        account_id=account.id,
        account_name=account.name,
        billing_email=billing_contact(session, account_id),
        timezone=account.timezone,
        paid_at=top_up.paid_at or top_up.credited_at or top_up.created_at,
        amount_cents=top_up.amount_cents,
        currency=top_up.currency,
        credits_nanos=top_up.credits_nanos,
        card_brand=top_up.card_brand,
        card_last4=top_up.card_last4,
        payment_id=top_up.payment_intent_id or "",
        provider=top_up.provider,
        provider_receipt_url=top_up.receipt_url,
        refunded_cents=top_up.refunded_cents,
        state=top_up.state,
    )


def receipt_file_name(receipt_: Receipt) -> str:
    return f"receipt_{receipt_.number}.pdf"
