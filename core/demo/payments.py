"""The demo story's payments, made through the sandbox provider and the real fulfilment path.

Brightpath AI bought its starter pack by card on a (sandbox) checkout and saved the card;
its auto-recharge (below 250 credits, buy $500) then tops it up off-session whenever a
day ends under the threshold. Each purchase is a real top-up record, credited by the
webhook handler from the sandbox's signed events, so the Buy credits page and the
ledger show its history. Events are delivered at once (no background threads) and the
sandbox runs on the seed's simulated clock, so the seed stays deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select

from core.db import unit_of_work
from core.db.models import PaymentCard, TopUp
from core.money import credits_to_nanos
from core.payments import (
    Actor,
    Payments,
    run_auto_recharge,
    sandbox_payments,
    save_auto_recharge,
    start_checkout,
)
from core.payments.config import PaymentConfig
from core.payments.sandbox import CARD_SUCCEEDS, SandboxProvider

RECHARGE_BELOW_CREDITS = 250
RECHARGE_CENTS = 50_000
RECHARGE_MONTHLY_MAX_CENTS = 250_000
STARTER_PACK_CENTS = 100_000


@dataclass
class SeedClock:
    """The seed's simulated time, moved forward day by day."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now


def demo_payments(engine: Engine, clock: SeedClock) -> Payments:
    return sandbox_payments(engine, PaymentConfig(mode="sandbox"), clock=clock, delivery="sync")


def buy_starter_pack(payments: Payments, *, account_id: str, buyer: str, page_url: str) -> int:
    """The first purchase: a checkout paid with the Visa test card, "save card" ticked; the card id."""
    provider = payments.provider
    assert isinstance(provider, SandboxProvider)
    view = start_checkout(
        payments.engine,
        provider,
        payments.config,
        actor=Actor.member(buyer),
        account_id=account_id,
        amount_cents=STARTER_PACK_CENTS,
        save_card=True,
        request_key="demo:starter-pack",
        page_url=page_url,
        clock=payments.clock,
    )
    with unit_of_work(payments.engine) as session:
        top_up = session.get(TopUp, view.top_up_id)
        assert top_up is not None and top_up.checkout_session_id is not None
        session_id = top_up.checkout_session_id
    provider.pay_checkout(
        session_id, CARD_SUCCEEDS
    )  # the signed events credit it through the webhook handler
    with unit_of_work(payments.engine) as session:
        top_up = session.get(TopUp, view.top_up_id)
        assert top_up is not None and top_up.state == "credited", top_up and top_up.state
        return view.top_up_id


def turn_on_auto_recharge(payments: Payments, *, account_id: str, owner: str) -> None:
    with unit_of_work(payments.engine) as session:
        card_id = session.scalars(select(PaymentCard.id).where(PaymentCard.account_id == account_id)).one()
    save_auto_recharge(
        payments,
        actor=Actor.member(owner),
        account_id=account_id,
        enabled=True,
        threshold_nanos=credits_to_nanos(RECHARGE_BELOW_CREDITS),
        amount_cents=RECHARGE_CENTS,
        monthly_max_cents=RECHARGE_MONTHLY_MAX_CENTS,
        card_id=card_id,
    )


def recharge_if_due(payments: Payments, *, account_id: str) -> bool:
    """The day's end: auto-recharge if the balance fell under the threshold; True if it bought."""
    run = run_auto_recharge(payments, account_id=account_id, trigger="end of day")
    return run.top_up_id is not None and run.state == "credited"
