"""The top-up state machine, pure: which state may follow which, and why.

    created ──▶ pending_payment ──▶ paid ──▶ credited ──▶ refunded
       │              │  ▲           │                       ▲
       │              │  │           └───────────────────────┘ (refunded in full, never credited)
       │              ▼  │ (a late success: the money was taken, so it is credited)
       └──────▶ failed / canceled

``created``: our record exists, the provider has not been asked yet (or the answer was
lost). ``pending_payment``: the provider has the payment (a Checkout Session or a
PaymentIntent), maybe waiting for the customer or their bank. ``paid``: the provider
says the money was taken; credits not granted yet (only seen when granting was refused,
e.g. an amount that does not match). ``credited``: the purchased grant exists.
``refunded``: the whole payment was given back (a partial refund leaves ``credited``); a
payment support never credited (``paid``: it did not match) leaves the open states this way
when it is refunded in full, from the console or from Stripe's dashboard.

``failed`` and ``canceled`` are not final: if the provider later reports that the same
payment succeeded after all (events out of order, a bank that answered late), the
top-up moves to ``paid`` and is credited. A credited top-up never goes back to failed.
"""

from __future__ import annotations

from typing import Final

CREATED: Final = "created"
PENDING_PAYMENT: Final = "pending_payment"
PAID: Final = "paid"
CREDITED: Final = "credited"
FAILED: Final = "failed"
CANCELED: Final = "canceled"
REFUNDED: Final = "refunded"

STATES: Final = (CREATED, PENDING_PAYMENT, PAID, CREDITED, FAILED, CANCELED, REFUNDED)

# Where the money may still be on its way: reconciliation asks the provider about these.
OPEN_STATES: Final = frozenset({CREATED, PENDING_PAYMENT, PAID})
# Credits were granted (a refund may have taken part of them back).
SETTLED_STATES: Final = frozenset({CREDITED, REFUNDED})

_NEXT: Final[dict[str, frozenset[str]]] = {
    CREATED: frozenset({PENDING_PAYMENT, PAID, FAILED, CANCELED}),
    PENDING_PAYMENT: frozenset({PAID, FAILED, CANCELED}),
    PAID: frozenset({CREDITED, REFUNDED}),
    CREDITED: frozenset({REFUNDED}),
    FAILED: frozenset({PAID}),
    CANCELED: frozenset({PAID}),
    REFUNDED: frozenset(),
}

LABELS: Final[dict[str, str]] = {
    CREATED: "Started",
    PENDING_PAYMENT: "Waiting for payment",
    PAID: "Paid, credits pending",
    CREDITED: "Credited",
    FAILED: "Failed",
    CANCELED: "Canceled",
    REFUNDED: "Refunded",
}


class InvalidTransition(Exception):
    """A state change the machine does not allow (a bug or an event that must be ignored)."""

    def __init__(self, current: str, target: str):
        super().__init__(f"a top-up cannot go from {current!r} to {target!r}")
        self.current = current
        self.target = target


def can_move(current: str, target: str) -> bool:
    """True when ``target`` may follow ``current``."""
    if current not in _NEXT or target not in _NEXT:
        raise ValueError(f"unknown top-up state: {current!r} -> {target!r}")
    return target in _NEXT[current]


def move(current: str, target: str) -> str:
    """``target`` if the machine allows it, else ``InvalidTransition``."""
    if not can_move(current, target):
        raise InvalidTransition(current, target)
    return target


def path_to_credited(current: str) -> list[str]:
    """The states a successful payment walks through from ``current`` (empty if already settled)."""
    if current in SETTLED_STATES:
        return []
    if current == PAID:
        return [CREDITED]
    return [move(current, PAID), move(PAID, CREDITED)]
