"""Shared set-up for the payment tests: an account with members of every role, and sandbox payments."""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select

from core.accounts import add_member, create_account
from core.clock import Clock, fixed_clock
from core.db import unit_of_work
from core.db.models import Account, CreditGrant, LedgerEntry, TopUp
from core.ledger import check_ledger
from core.metering import ingest_events
from core.payments import Actor, Payments, start_checkout
from core.payments.config import PaymentConfig
from core.payments.runtime import sandbox_payments
from core.payments.sandbox import CARD_SUCCEEDS, SandboxProvider, sign
from core.rating import load_rate_card

ACCOUNT = "acc_pay"
OWNER = Actor("olga@pay.test")
BILLING = Actor("bill@pay.test")
VIEWER = Actor("vera@pay.test")
OUTSIDER = Actor("eve@elsewhere.test")
PAGE_URL = "http://portal.test/buy_credits"
SECRET = "whsec_test_secret_0123456789"


@dataclass
class MovableClock:
    """A clock tests can move forward."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def make_account(engine: Engine, at: datetime, *, account_id: str = ACCOUNT) -> None:
    with unit_of_work(engine, write=True) as session:
        create_account(session, account_id=account_id, name="Paying Co", at=at)
        add_member(session, account_id=account_id, email=OWNER.email, role="owner", at=at)
        add_member(session, account_id=account_id, email=BILLING.email, role="billing", at=at)
        add_member(session, account_id=account_id, email=VIEWER.email, role="viewer", at=at)


def sandbox(engine: Engine, clock: Clock, *, delivery: str = "sync", **config: Any) -> Payments:
    return sandbox_payments(
        engine, PaymentConfig(mode="sandbox", **config), clock=clock, delivery=delivery, secret=SECRET
    )  # type: ignore[arg-type]


def provider(payments: Payments) -> SandboxProvider:
    assert isinstance(payments.provider, SandboxProvider)
    return payments.provider


def balance(engine: Engine, account_id: str = ACCOUNT) -> int:
    with unit_of_work(engine) as session:
        return int(session.scalar(select(Account.balance_nanos).where(Account.id == account_id)) or 0)


def purchased_grants(engine: Engine, account_id: str = ACCOUNT) -> list[CreditGrant]:
    with unit_of_work(engine) as session:
        return list(
            session.scalars(
                select(CreditGrant).where(
                    CreditGrant.account_id == account_id, CreditGrant.source == "purchased"
                )
            )
        )


def ledger_ok(engine: Engine) -> None:
    with unit_of_work(engine) as session:
        report = check_ledger(session)
    assert report.ok, report.problems


def entries_for(engine: Engine, reason: str, account_id: str = ACCOUNT) -> int:
    with unit_of_work(engine) as session:
        return int(
            session.scalar(
                select(func.count()).where(LedgerEntry.account_id == account_id, LedgerEntry.reason == reason)
            )
            or 0
        )


PRICES = {
    "meters": [{"name": "units", "unit": "unit", "dimensions": []}],
    "card": {"key": "payments-test", "name": "One credit a unit"},
    "versions": [{"effective_from": "2026-01-01T00:00:00Z", "prices": [{"meter": "units", "price": "1.00"}]}],
}
_SPENT = itertools.count()


def make_priced_account(engine: Engine, at: datetime, *, account_id: str = ACCOUNT) -> None:
    """``make_account`` on a card where one unit costs one credit (so usage can be sent)."""
    with unit_of_work(engine, write=True) as session:
        load_rate_card(session, PRICES, at=at, allow_backdated=True)
        create_account(session, account_id=account_id, name="Paying Co", at=at, rate_card_key="payments-test")
        add_member(session, account_id=account_id, email=OWNER.email, role="owner", at=at)
        add_member(session, account_id=account_id, email=BILLING.email, role="billing", at=at)
        add_member(session, account_id=account_id, email=VIEWER.email, role="viewer", at=at)


def usage_events(credits: int, at: datetime, account_id: str = ACCOUNT) -> list[dict[str, Any]]:
    """One event of ``credits`` units (one credit each), as a company's backend sends it."""
    return [
        {
            "event_id": f"use-{next(_SPENT)}",
            "account_id": account_id,
            "meter": "units",
            "quantity": credits,
            "timestamp": at.isoformat().replace("+00:00", "Z"),
        }
    ]


def spend(engine: Engine, credits_nanos: int, at: datetime, account_id: str = ACCOUNT) -> None:
    """Usage worth ``credits_nanos`` on the account, ingested as real traffic (needs make_priced_account)."""
    assert credits_nanos % 10**9 == 0
    with unit_of_work(engine, write=True) as session:
        result = ingest_events(
            session, usage_events(credits_nanos // 10**9, at, account_id), clock=fixed_clock(at)
        )
    assert result.accepted == 1, result.rejected


def paid_checkout_without_events(
    engine: Engine, now: datetime, *, cents: int = 2_500, delivery: str = "none"
) -> tuple[Payments, int, str, str]:
    """A checkout paid on the sandbox whose events were not delivered (with ``delivery="sync"``:
    were delivered at once), on an account usage can be sent to (payments, top-up id, session
    id, payment intent id)."""
    make_priced_account(engine, now)
    payments = sandbox(engine, MovableClock(now), delivery=delivery)
    view = start_checkout(
        engine,
        payments.provider,
        payments.config,
        actor=OWNER,
        account_id=ACCOUNT,
        amount_cents=cents,
        save_card=False,
        request_key="k",
        page_url=PAGE_URL,
        clock=payments.clock,
    )
    session_id = top_up_row(engine, view.top_up_id).checkout_session_id
    assert session_id is not None
    paid = provider(payments).pay_checkout(session_id, CARD_SUCCEEDS)
    return payments, view.top_up_id, session_id, str(paid["payment_intent"])


def top_up_row(engine: Engine, top_up_id: int) -> TopUp:
    with unit_of_work(engine) as session:
        row = session.get(TopUp, top_up_id)
        assert row is not None
        return row


def signed(event: dict[str, Any], *, secret: str = SECRET, timestamp: int | None = None) -> tuple[bytes, str]:
    """A JSON payload and its Stripe-Signature header."""
    payload = json.dumps(event).encode()
    return payload, sign(payload, secret, timestamp=int(time.time()) if timestamp is None else timestamp)


def checkout_completed_event(
    *, event_id: str, session_id: str, top_up_id: int, amount_cents: int, intent_id: str = "pi_test_1"
) -> dict[str, Any]:
    """A ``checkout.session.completed`` event as Stripe sends it (payment_intent not expanded)."""
    return {
        "id": event_id,
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": int(time.time()),
        "livemode": False,
        "type": "checkout.session.completed",
        "data": {
            "object": {
                "id": session_id,
                "object": "checkout.session",
                "mode": "payment",
                "status": "complete",
                "payment_status": "paid",
                "amount_total": amount_cents,
                "currency": "usd",
                "client_reference_id": str(top_up_id),
                "metadata": {"top_up_id": str(top_up_id), "account_id": ACCOUNT},
                "payment_intent": intent_id,
            }
        },
    }
