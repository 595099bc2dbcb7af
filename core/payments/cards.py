"""Saved cards: remove one (the provider forgets it, the portal stops offering it).

``remove_saved_card`` detaches the card at the provider first, outside any transaction (no
lock is held while waiting on the network), then, in one write transaction, marks the
card's rows removed, turns auto-recharge off when it paid with that card (saying why, for
the Buy credits page) and writes the audit entry. Detaching first makes a retry safe: if
the write is lost, the next attempt finds the card still saved, the provider answers
"already detached", and the write happens then. Removing a card that is not saved (a
second click, another tab) changes nothing and says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.accounts.permissions import CARDS_REMOVE, Actor, require_permission
from core.db import unit_of_work
from core.db.models import PaymentCard
from core.payments.config import PaymentsNotConfigured
from core.payments.notify import audit
from core.payments.provider import Card
from core.payments.runtime import Payments
from core.payments.settle import lock_recharge_settings

ACTION = "payments.remove_card"
CARD_REMOVED = "card_removed"  # AutoRecharge.last_decision_code once removing its card turned it off
NOTHING_SAVED = "There is no saved card to remove."


@dataclass(frozen=True)
class CardRemoval:
    """What ``remove_saved_card`` did: the cards removed now (none: there was no saved card)."""

    removed: tuple[Card, ...]
    auto_recharge_turned_off: bool
    message: str


def _card(row: PaymentCard) -> Card:
    return Card(row.id, row.brand, row.last4, row.exp_month, row.exp_year)


def _require_payer(session: Session, actor: Actor, account_id: str) -> None:
    require_permission(session, actor, account_id=account_id, permission=CARDS_REMOVE)


def _label(card: Card) -> str:
    return f"{card.brand.title() or 'Card'} •••• {card.last4}" if card.last4 else card.label


def remove_saved_card(
    payments: Payments, *, actor: Actor, account_id: str, card_id: str | None = None
) -> CardRemoval:
    """Remove the account's saved card ``card_id`` (with the same card saved again under other ids),
    or every saved card when ``card_id`` is None; owners, admins and billing members only.

    A provider error raises ``ProviderError`` and changes nothing here.
    """
    provider = payments.provider
    if provider is None:
        raise PaymentsNotConfigured("payments are not set up on this server", field="STRIPE_API_KEY")
    with unit_of_work(payments.engine) as session:
        _require_payer(session, actor, account_id)
        rows = list(
            session.scalars(
                select(PaymentCard)
                .where(
                    PaymentCard.account_id == account_id,
                    PaymentCard.provider == provider.name,
                    PaymentCard.removed_at.is_(None),
                )
                .order_by(PaymentCard.created_at, PaymentCard.id)
            )
        )
        if card_id is not None:
            chosen = next((r for r in rows if r.id == card_id), None)
            same = (chosen.brand, chosen.last4, chosen.exp_month, chosen.exp_year) if chosen else None
            rows = [r for r in rows if (r.brand, r.last4, r.exp_month, r.exp_year) == same]
        ids = [row.id for row in rows]
    if not ids:
        return CardRemoval((), False, NOTHING_SAVED)
    for payment_method_id in ids:  # detached (or already gone) at the provider before the portal forgets it
        provider.detach_payment_method(payment_method_id, idempotency_key=f"card:{payment_method_id}:detach")

    at = payments.clock()
    with unit_of_work(payments.engine, write=True) as session:
        _require_payer(session, actor, account_id)
        settings = lock_recharge_settings(session, account_id)
        stmt = select(PaymentCard).where(PaymentCard.id.in_(ids), PaymentCard.removed_at.is_(None))
        if session.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        rows = list(session.scalars(stmt.order_by(PaymentCard.created_at, PaymentCard.id)))
        if not rows:  # another tab removed it meanwhile
            return CardRemoval((), False, NOTHING_SAVED)
        removed = tuple(_card(row) for row in rows)
        for row in rows:
            row.removed_at = at
        names = " and ".join(dict.fromkeys(_label(card) for card in removed))  # one card saved twice: once
        before = None
        if settings is not None:
            before = {"enabled": settings.enabled, "card_id": settings.card_id}
        turned_off = False
        if settings is not None and settings.card_id in ids:
            turned_off = settings.enabled
            settings.card_id = None
            settings.updated_by = actor.email
            settings.updated_at = at
            if turned_off:
                settings.enabled = False
                settings.last_decision = (
                    f"Auto-recharge was turned off because the card it paid with ({names}) was removed "
                    f"by {actor.email}. Choose another card to turn it on again."
                )
                settings.last_decision_code = CARD_REMOVED
                settings.last_decision_at = at
        after = None if settings is None else {"enabled": settings.enabled, "card_id": settings.card_id}
        audit(
            session,
            actor=actor.email,
            action=ACTION,
            account_id=account_id,
            reason=f"removed the saved card {names}" + (", auto-recharge off" if turned_off else ""),
            at=at,
            before={
                "cards": [{"id": c.payment_method_id, "brand": c.brand, "last4": c.last4} for c in removed],
                "auto_recharge": before,
            },
            after={"cards": [], "auto_recharge": after},  # none of those cards is saved any more
        )
    labels = dict.fromkeys(_label(card) for card in removed)
    verb = "was" if len(labels) == 1 else "were"
    message = f"{names} {verb} removed: no longer saved, and the portal cannot charge it again."
    if turned_off:
        message += " Auto-recharge was turned off because it paid with this card."
    return CardRemoval(removed, turned_off, message)
