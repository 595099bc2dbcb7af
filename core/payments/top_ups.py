"""Buying credits: start a top-up, send the customer to pay, and read back what really happened.

These commands take the engine rather than a session: each one is a few short
transactions around calls to the payment provider, because no database lock may be held
while waiting on the network (on SQLite that would stall every writer). The top-up row is
written first, so the provider is always asked with an idempotency key derived from its
id (``topup:<id>:checkout``, ``topup:<id>:payment``), and a click repeated, a page reloaded
or a request retried after a timeout finds the same top-up (``request_key``) and gets the
same Checkout Session or PaymentIntent back.

The return page never credits on the customer's word: ``refresh_top_up`` asks the
provider and settles through ``core.payments.settle``, the same code the webhook uses.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy import Engine, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.accounts.permissions import CREDITS_BUY, Actor, require_permission
from core.clock import Clock, system_clock
from core.db import unit_of_work
from core.db.models import Account, PaymentCard, PaymentCustomer, TopUp
from core.display import format_credits
from core.errors import Conflict, NotFound, ValidationError
from core.money import cents_to_nanos
from core.payments import states
from core.payments.config import PaymentConfig, PaymentsNotConfigured, format_cents
from core.payments.notify import billing_contact
from core.payments.provider import ChargeRequest, Checkout, CheckoutRequest, Payment, PaymentProvider
from core.payments.settle import PaymentReceived, apply_payment, fail_top_up, fulfill_top_up, lock_top_up
from core.payments.views import TopUpView, top_up_view

# A Checkout Session left unpaid expires this long after its top-up was started. Stripe wants
# 30 min to 24 h from the session's creation: a first attempt that failed may be sent again
# (same key, same expiry) only while more than CHECKOUT_LIFETIME_MIN of it is left.
CHECKOUT_LIFETIME = timedelta(minutes=60)
CHECKOUT_LIFETIME_MIN = timedelta(minutes=31)
CURRENCY = "usd"


def _require_payer(session: Session, actor: Actor, account_id: str) -> None:
    """Owners, admins and billing members buy; a customer view (support) does not."""
    require_permission(session, actor, account_id=account_id, permission=CREDITS_BUY)


def _check_mode(config: PaymentConfig) -> None:
    if config.mode == "disabled":
        raise PaymentsNotConfigured(
            "buying credits is not set up: set STRIPE_API_KEY and STRIPE_WEBHOOK_SECRET "
            "(the sandbox is off in production)",
            field="STRIPE_API_KEY",
        )


def return_url(base: str, top_up_id: int, *, canceled: bool = False) -> str:
    """The portal page the customer comes back to (``base`` is the Buy credits page's address)."""
    return f"{base}{'&' if '?' in base else '?'}top_up={top_up_id}" + ("&canceled=1" if canceled else "")


def _open_top_up(
    session: Session,
    *,
    actor: Actor,
    account_id: str,
    kind: str,
    provider: str,
    amount_cents: int,
    request_key: str,
    config: PaymentConfig,
    save_card: bool = False,
    card: PaymentCard | None = None,
    at_clock: Clock,
) -> TopUp:
    """The top-up for this ``request_key`` (one per click on "Pay"), created on first use."""
    _require_payer(session, actor, account_id)
    config.limits.check(amount_cents)
    if not request_key or len(request_key) > 100:
        raise ValidationError("a purchase needs a request key of 1 to 100 characters", field="request_key")
    existing = session.scalar(
        select(TopUp).where(TopUp.account_id == account_id, TopUp.request_key == request_key)
    )
    if existing is not None:
        same = (
            existing.kind == kind
            and existing.amount_cents == amount_cents
            and existing.save_card == save_card
            and existing.payment_method_id == (card.id if card else existing.payment_method_id)
        )
        if not same:
            raise Conflict("this purchase was already started with other details", field="request_key")
        return existing
    at = at_clock()
    top_up = TopUp(
        account_id=account_id,
        kind=kind,
        provider=provider,
        state=states.CREATED,
        amount_cents=amount_cents,
        currency=CURRENCY,
        credits_nanos=cents_to_nanos(amount_cents),
        request_key=request_key,
        save_card=save_card,
        customer_id=card.customer_id if card else None,
        payment_method_id=card.id if card else None,
        card_brand=card.brand if card else "",
        card_last4=card.last4 if card else "",
        access_token=secrets.token_urlsafe(24),
        created_by=actor.email,
        created_at=at,
        updated_at=at,
    )
    session.add(top_up)
    session.flush()
    return top_up


def ensure_customer(engine: Engine, provider: PaymentProvider, *, account_id: str, clock: Clock) -> str:
    """The provider's customer for the account, created on first use.

    The idempotency key is per account (not per top-up), so two first purchases racing
    each other get the same customer from the provider. Its name and email come from the
    account as stored (its name, ``billing_contact``), not from the member who clicked: the
    same key with another email would be refused (``idempotency_error``).
    """
    with unit_of_work(engine) as session:
        row = session.get(PaymentCustomer, (account_id, provider.name))
        if row is not None and row.customer_id:
            return row.customer_id
        account = session.get(Account, account_id)
        if account is None:
            raise NotFound(f"account {account_id!r} does not exist", field="account_id")
        name = account.name
        email = billing_contact(session, account_id)
    customer_id = provider.create_customer(
        account_id=account_id, name=name, email=email, idempotency_key=f"account:{account_id}:customer"
    )
    with unit_of_work(engine, write=True) as session:
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        # Two first purchases at once: one row wins, and the provider gave both the same customer.
        session.execute(
            insert(PaymentCustomer)
            .values(
                account_id=account_id, provider=provider.name, customer_id=customer_id, created_at=clock()
            )
            .on_conflict_do_nothing(index_elements=["account_id", "provider"])
        )
        row = session.get(PaymentCustomer, (account_id, provider.name), populate_existing=True)
        assert row is not None
        if not row.customer_id:
            row.customer_id = customer_id
        return row.customer_id or customer_id


T = TypeVar("T")


def _write_once(engine: Engine, work: Callable[[Session], T]) -> T:
    """``work`` in a write transaction; once more if a twin request (same request key) committed first."""
    try:
        with unit_of_work(engine, write=True) as session:
            return work(session)
    except IntegrityError:
        with unit_of_work(engine, write=True) as session:
            return work(session)  # now it finds the twin's top-up


def _view(engine: Engine, top_up_id: int) -> TopUpView:
    with unit_of_work(engine) as session:
        return top_up_view(session, top_up_id)


def start_checkout(
    engine: Engine,
    provider: PaymentProvider,
    config: PaymentConfig,
    *,
    actor: Actor,
    account_id: str,
    amount_cents: int,
    save_card: bool,
    request_key: str,
    page_url: str,
    clock: Clock = system_clock,
) -> TopUpView:
    """A top-up paid on the provider's checkout page (a new card); its ``checkout_url`` is where to go."""
    _check_mode(config)

    def open_it(session: Session) -> tuple[int, str, str, datetime]:
        top_up = _open_top_up(
            session,
            actor=actor,
            account_id=account_id,
            kind="checkout",
            provider=provider.name,
            amount_cents=amount_cents,
            request_key=request_key,
            config=config,
            save_card=save_card,
            at_clock=clock,
        )
        return top_up.id, top_up.state, top_up.checkout_url, top_up.created_at

    top_up_id, state, url, created_at = _write_once(engine, open_it)
    if state != states.CREATED or url:
        return _view(engine, top_up_id)  # the same click again: the same checkout
    # From the stored top-up, not the clock: a retry sends the same request with the same key.
    expires_at = created_at + CHECKOUT_LIFETIME
    if expires_at - clock() < CHECKOUT_LIFETIME_MIN:
        raise Conflict(
            f"top-up #{top_up_id} was started too long ago for its checkout to open now: "
            "start a new purchase (nothing was charged)",
            code="checkout_too_late",
            field="request_key",
        )
    customer_id = ensure_customer(engine, provider, account_id=account_id, clock=clock)
    credits = format_credits(cents_to_nanos(amount_cents))
    session_made = provider.create_checkout_session(
        CheckoutRequest(
            top_up_id=top_up_id,
            account_id=account_id,
            customer_id=customer_id,
            amount_cents=amount_cents,
            currency=CURRENCY,
            product_name=f"Meterline credits: {credits}",
            description=f"{credits} for account {account_id} (1 credit = $1.00); top-up #{top_up_id}",
            save_card=save_card,
            success_url=return_url(page_url, top_up_id),
            cancel_url=return_url(page_url, top_up_id, canceled=True),
            expires_at=expires_at,
            idempotency_key=f"topup:{top_up_id}:checkout",
        )
    )
    with unit_of_work(engine, write=True) as session:
        top_up = lock_top_up(session, top_up_id)
        if top_up.state == states.CREATED:
            top_up.customer_id = customer_id
            top_up.checkout_session_id = session_made.id
            top_up.checkout_url = session_made.url
            top_up.state = states.move(top_up.state, states.PENDING_PAYMENT)
            top_up.updated_at = clock()
    return _view(engine, top_up_id)


def buy_with_saved_card(
    engine: Engine,
    provider: PaymentProvider,
    config: PaymentConfig,
    *,
    actor: Actor,
    account_id: str,
    amount_cents: int,
    card_id: str,
    request_key: str,
    page_url: str,
    clock: Clock = system_clock,
) -> TopUpView:
    """One click: a PaymentIntent on a saved card, confirmed from the server, settled on the answer.

    When the bank asks for 3-D Secure the top-up waits (``action_url`` says where the
    customer confirms); a decline fails it, and nothing is credited until the payment
    succeeded.
    """
    _check_mode(config)

    def open_it(session: Session) -> tuple[int, str, ChargeRequest]:
        _require_payer(session, actor, account_id)  # before the card: a refusal says nothing about it
        card = session.get(PaymentCard, card_id)
        if card is None or card.account_id != account_id or card.removed_at is not None:
            raise NotFound("that card is not saved for this account", field="card")
        if card.provider != provider.name:
            raise ValidationError("that card was saved with another payment provider", field="card")
        top_up = _open_top_up(
            session,
            actor=actor,
            account_id=account_id,
            kind="saved_card",
            provider=provider.name,
            amount_cents=amount_cents,
            request_key=request_key,
            config=config,
            card=card,
            at_clock=clock,
        )
        request = ChargeRequest(
            top_up_id=top_up.id,
            account_id=account_id,
            customer_id=card.customer_id,
            payment_method_id=card.id,
            amount_cents=amount_cents,
            currency=CURRENCY,
            off_session=False,
            return_url=return_url(page_url, top_up.id),
            idempotency_key=f"topup:{top_up.id}:payment",
        )
        return top_up.id, top_up.state, request

    top_up_id, state, request = _write_once(engine, open_it)
    if state != states.CREATED:
        return refresh_top_up(engine, provider, top_up_id=top_up_id, clock=clock)
    payment = provider.charge_saved_card(request)
    with unit_of_work(engine, write=True) as session:
        apply_payment(session, top_up_id=top_up_id, payment=payment, at=clock(), via="confirmation")
    return _view(engine, top_up_id)


def _received(checkout: Checkout, payment: Payment | None) -> PaymentReceived:
    return PaymentReceived(
        amount_cents=checkout.amount_cents,
        currency=checkout.currency,
        payment_intent_id=checkout.payment_intent_id,
        card=payment.card if payment else None,
        receipt_url=payment.receipt_url if payment else "",
        via="checkout session",
    )


def refresh_top_up(
    engine: Engine,
    provider: PaymentProvider,
    *,
    top_up_id: int,
    account_id: str | None = None,
    clock: Clock = system_clock,
    via: str = "return page",
) -> TopUpView:
    """Ask the provider about an open top-up and settle it (the return page, reconciliation).

    Credits only when the provider says the payment succeeded; a settled top-up is left
    as it is (a missing card or receipt is filled in when the provider knows them).
    """
    with unit_of_work(engine) as session:
        view = top_up_view(session, top_up_id, account_id=account_id)
        top_up = session.get(TopUp, top_up_id)
        assert top_up is not None
        session_id, intent_id = top_up.checkout_session_id, top_up.payment_intent_id
    if view.provider != provider.name:
        return view
    if view.state in states.SETTLED_STATES:
        if intent_id and (not view.card_last4 or not view.receipt_url):
            payment = provider.retrieve_payment(intent_id)
            if payment.status == "succeeded":
                with unit_of_work(engine, write=True) as session:
                    apply_payment(session, top_up_id=top_up_id, payment=payment, at=clock(), via=via)
        return _view(engine, top_up_id)
    if view.state == states.PAID and intent_id:
        payment = provider.retrieve_payment(intent_id)
        with unit_of_work(engine, write=True) as session:
            apply_payment(session, top_up_id=top_up_id, payment=payment, at=clock(), via=via)
    elif session_id:
        checkout = provider.retrieve_checkout_session(session_id)
        _settle_checkout(engine, provider, top_up_id, checkout, clock=clock, via=via)
    elif intent_id:
        payment = provider.retrieve_payment(intent_id)
        with unit_of_work(engine, write=True) as session:
            apply_payment(session, top_up_id=top_up_id, payment=payment, at=clock(), via=via)
    return _view(engine, top_up_id)


def _settle_checkout(
    engine: Engine, provider: PaymentProvider, top_up_id: int, checkout: Checkout, *, clock: Clock, via: str
) -> None:
    payment = checkout.payment
    if checkout.paid and payment is None and checkout.payment_intent_id:
        payment = provider.retrieve_payment(checkout.payment_intent_id)
    with unit_of_work(engine, write=True) as session:
        if checkout.paid:
            fulfill_top_up(session, top_up_id=top_up_id, payment=_received(checkout, payment), at=clock())
            if payment is not None and payment.refunded_cents:
                apply_payment(session, top_up_id=top_up_id, payment=payment, at=clock(), via=via)
        elif checkout.status == "expired":
            fail_top_up(
                session,
                top_up_id=top_up_id,
                code="checkout_expired",
                message="The checkout was left without paying; nothing was charged.",
                at=clock(),
                canceled=True,
            )


def cancel_checkout(
    engine: Engine,
    provider: PaymentProvider,
    *,
    actor: Actor,
    account_id: str,
    top_up_id: int,
    clock: Clock = system_clock,
) -> TopUpView:
    """The customer came back with "cancel": close the checkout unless it was paid after all
    (those who may buy may cancel)."""
    with unit_of_work(engine) as session:
        _require_payer(session, actor, account_id)
        view = top_up_view(session, top_up_id, account_id=account_id)
        session_id = session.scalar(select(TopUp.checkout_session_id).where(TopUp.id == top_up_id))
    if view.state != states.PENDING_PAYMENT or not session_id or view.provider != provider.name:
        return view
    checkout = provider.expire_checkout_session(session_id, idempotency_key=f"topup:{top_up_id}:expire")
    _settle_checkout(engine, provider, top_up_id, checkout, clock=clock, via="checkout canceled")
    return _view(engine, top_up_id)


def describe(view: TopUpView) -> str:
    """One sentence on where a top-up stands, for the return page."""
    what = f"{format_credits(view.credits_nanos)} for {format_cents(view.amount_cents)}"
    if view.state == states.CREDITED:
        return f"Payment received: {what} added to your balance (top-up #{view.top_up_id})."
    if view.state == states.REFUNDED:
        return f"Top-up #{view.top_up_id} ({what}) was refunded."
    if view.state == states.FAILED:
        return f"The payment for {what} did not go through: {view.failure_message or 'no reason given'}"
    if view.state == states.CANCELED:
        return f"Top-up #{view.top_up_id} was canceled; nothing was charged."
    if view.needs_action:
        return f"Your bank asks you to confirm the payment for {what} (3-D Secure)."
    if view.state == states.PAID:
        return f"Payment received for {what}; the credits are being added."
    return f"Waiting for the payment of {what} to be confirmed…"
