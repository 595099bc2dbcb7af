"""The Stripe provider against localstripe: customers, saved cards, off-session PaymentIntents (a decline,
3-D Secure), refunds, and localstripe's own signed webhook deliveries into our route.

localstripe always writes /tmp/localstripe.pickle, so one instance runs at a time on this machine:
the module holds an exclusive file lock while its instance runs (``tests.localstripe_server``;
another xdist worker, or another test run, waits for it), and ``--dist loadscope`` keeps the module
on one worker. Data is flushed with ``DELETE /_config/data`` before each test. Our webhook route is
served by uvicorn on a free port, registered with ``POST /_config/webhooks/<id>``.

What these tests cannot show: localstripe speaks an API version older than the one the SDK pins
(2026-10-28.endive). It runs here taught the one endive change our requests meet
(``tests/localstripe_endive.py``: ``allowed_payment_method_types`` taken, ``payment_method_types``
refused as Stripe refuses it), but it does not know the rest of endive, has no Checkout Sessions,
ignores idempotency keys and sends no refund events. That Stripe accepts every field we send is
shown by the contract check every test runs under (``tests/stripe_contract.py``, against the SDK's
generated request types), not by localstripe answering 200.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import pytest
import stripe
import uvicorn
from sqlalchemy import Engine, select
from starlette.applications import Starlette

from core.api.payments import WEBHOOK_PATH, payment_routes
from core.clock import system_clock
from core.db import unit_of_work
from core.db.models import PaymentEvent
from core.money import credits_to_nanos
from core.payments import (
    Payments,
    buy_with_saved_card,
    remove_saved_card,
    run_auto_recharge,
    save_auto_recharge,
)
from core.payments.config import PaymentConfig
from core.payments.sandbox import sign
from core.payments.stripe_provider import StripeProvider
from tests.core.payments.helpers import ACCOUNT, OWNER, SECRET, balance, ledger_ok, make_account, top_up_row
from tests.localstripe_server import API_KEY, flush, free_port, run_localstripe, saved_card, sdk

PUBLISHABLE_KEY = "pk_test_meterline"
PAGE = "http://127.0.0.1/buy_credits?account=acc_pay"
DELIVERY_WAIT_S = 15

pytestmark = pytest.mark.xdist_group("localstripe")


@pytest.fixture(scope="module")
def localstripe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from run_localstripe(tmp_path_factory)


@dataclass
class Receiver:
    """Our webhook route (and 3-D Secure page), served for localstripe to call."""

    base_url: str
    payments: Payments | None = None
    seen: list[int] = field(default_factory=list)


@pytest.fixture(scope="module")
def receiver(localstripe: str) -> Iterator[Receiver]:
    port = free_port()
    holder = Receiver(f"http://127.0.0.1:{port}")

    def current() -> Payments:
        assert holder.payments is not None, "a delivery arrived between tests"
        return holder.payments

    app = Starlette(routes=payment_routes(current))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    answer = httpx.post(
        f"{localstripe}/_config/webhooks/meterline",
        data={"url": holder.base_url + WEBHOOK_PATH, "secret": SECRET},
    )
    assert answer.status_code == 200, answer.text
    yield holder
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def payments(engine: Engine, now: datetime, localstripe: str, receiver: Receiver) -> Iterator[Payments]:
    flush(localstripe)
    make_account(engine, system_clock())
    config = PaymentConfig(
        mode="stripe",
        api_key=API_KEY,
        webhook_secret=SECRET,
        api_base=localstripe,
        publishable_key=PUBLISHABLE_KEY,
        stripe_js_url=f"{localstripe}/js.stripe.com/v3/",
    )
    current = Payments(engine, config, StripeProvider(API_KEY, api_base=localstripe), system_clock, SECRET)
    receiver.payments = current
    yield current
    time.sleep(1.5)  # localstripe delivers about 1 s after an event: let this test's land in this test
    receiver.payments = None


def _sdk(localstripe: str) -> stripe.StripeClient:
    return sdk(localstripe)


def _saved_card(payments: Payments, localstripe: str, number: str) -> str:
    return saved_card(payments, localstripe, ACCOUNT, number)


def _buy(payments: Payments, card: str, cents: int = 2_500, key: str = "k") -> Any:
    return buy_with_saved_card(
        payments.engine,
        payments.provider,
        payments.config,
        actor=OWNER,
        account_id=ACCOUNT,
        amount_cents=cents,  # type: ignore[arg-type]
        card_id=card,
        request_key=key,
        page_url=PAGE,
        clock=payments.clock,
    )


def _events(engine: Engine, event_type: str) -> list[PaymentEvent]:
    with unit_of_work(engine) as session:
        return list(session.scalars(select(PaymentEvent).where(PaymentEvent.type == event_type)))


def _wait_for_event(engine: Engine, event_type: str, count: int = 1) -> list[PaymentEvent]:
    deadline = time.monotonic() + DELIVERY_WAIT_S
    while time.monotonic() < deadline:
        rows = [r for r in _events(engine, event_type) if r.processed_at is not None]
        if len(rows) >= count:
            return rows
        time.sleep(0.2)
    pytest.fail(f"localstripe did not deliver {event_type} to our route within {DELIVERY_WAIT_S} s")


def test_customer_saved_card_and_one_click_credit_once_with_the_signed_delivery(
    payments: Payments, localstripe: str
) -> None:
    card = _saved_card(payments, localstripe, "4242424242424242")
    customer_id = _customer(payments)
    customer = _sdk(localstripe).v1.customers.retrieve(customer_id)
    assert customer_id.startswith("cus_") and customer.metadata["account_id"] == ACCOUNT
    assert customer.email == OWNER.email  # the account's first owner, whoever clicked
    view = _buy(payments, card)
    assert view.state == "credited"
    assert view.card_label == "Visa •••• 4242"
    assert balance(payments.engine) == credits_to_nanos(25)
    # localstripe's own signed delivery of payment_intent.succeeded reaches the route: nothing more.
    (delivered,) = _wait_for_event(payments.engine, "payment_intent.succeeded")
    assert delivered.outcome == f"top-up {view.top_up_id}: already_credited"
    assert balance(payments.engine) == credits_to_nanos(25)
    assert (
        _wait_for_event(payments.engine, "customer.created")[0].outcome == "ignored: event type not handled"
    )
    ledger_ok(payments.engine)


def _customer(payments: Payments) -> str:
    from core.db.models import PaymentCustomer

    with unit_of_work(payments.engine) as session:
        row = session.get(PaymentCustomer, (ACCOUNT, "stripe"))
        assert row is not None and row.customer_id
        return row.customer_id


def test_a_declined_card_fails_the_top_up_and_credits_nothing(payments: Payments, localstripe: str) -> None:
    card = _saved_card(payments, localstripe, "4000000000000341")
    view = _buy(payments, card)
    assert view.state == "failed"
    assert view.failure_message == "Your card was declined."
    (failed,) = _wait_for_event(payments.engine, "payment_intent.payment_failed")
    assert failed.outcome.endswith("ignored (already settled)")
    assert balance(payments.engine) == 0


def test_three_d_secure_waits_for_the_customer_then_the_delivery_credits(
    payments: Payments, localstripe: str, receiver: Receiver
) -> None:
    card = _saved_card(payments, localstripe, "4000002500003155")
    view = _buy(payments, card)
    assert view.state == "pending_payment" and view.needs_action
    assert view.action_url.startswith("/payments/authenticate/")
    assert balance(payments.engine) == 0
    # Our confirmation page loads Stripe.js (here localstripe's) with the PaymentIntent's client secret.
    page = httpx.get(receiver.base_url + view.action_url)
    assert page.status_code == 200
    intent_id = top_up_row(payments.engine, view.top_up_id).payment_intent_id
    secret = _sdk(localstripe).v1.payment_intents.retrieve(str(intent_id)).client_secret
    assert f"{localstripe}/js.stripe.com/v3/" in page.text and json.dumps(secret) in page.text
    # What Stripe.js does when the customer completes 3-D Secure:
    done = httpx.post(
        f"{localstripe}/v1/payment_intents/{intent_id}/_authenticate?success=true",
        json={"key": PUBLISHABLE_KEY, "client_secret": secret},
    )
    assert done.status_code == 200 and done.json()["status"] == "succeeded"
    (delivered,) = _wait_for_event(payments.engine, "payment_intent.succeeded")
    assert delivered.outcome == f"top-up {view.top_up_id}: credited"
    assert top_up_row(payments.engine, view.top_up_id).state == "credited"
    assert balance(payments.engine) == credits_to_nanos(25)


def test_off_session_auto_recharge_and_its_decline(payments: Payments, localstripe: str) -> None:
    good = _saved_card(payments, localstripe, "4242424242424242")
    save_auto_recharge(
        payments,
        actor=OWNER,
        account_id=ACCOUNT,
        enabled=True,
        threshold_nanos=credits_to_nanos(10),
        amount_cents=2_000,
        monthly_max_cents=10_000,
        card_id=good,
    )
    run = run_auto_recharge(payments, account_id=ACCOUNT)
    assert run.state == "credited"
    assert balance(payments.engine) == credits_to_nanos(20)
    intent_id = top_up_row(payments.engine, int(run.top_up_id or 0)).payment_intent_id
    intent = _sdk(localstripe).v1.payment_intents.retrieve(str(intent_id))
    assert intent.metadata["top_up_id"] == str(run.top_up_id)

    bad = _saved_card(payments, localstripe, "4000000000000341")
    save_auto_recharge(
        payments,
        actor=OWNER,
        account_id=ACCOUNT,
        enabled=True,
        threshold_nanos=credits_to_nanos(30),
        amount_cents=4_000,
        monthly_max_cents=10_000,
        card_id=bad,
    )
    declined = run_auto_recharge(payments, account_id=ACCOUNT)
    assert declined.state == "failed"
    assert run_auto_recharge(payments, account_id=ACCOUNT).decision.code == "backoff"
    assert balance(payments.engine) == credits_to_nanos(20)


def test_a_refund_made_in_stripe_reverses_the_credits(
    payments: Payments, localstripe: str, receiver: Receiver
) -> None:
    card = _saved_card(payments, localstripe, "4242424242424242")
    view = _buy(payments, card)
    intent_id = str(top_up_row(payments.engine, view.top_up_id).payment_intent_id)
    client = _sdk(localstripe)
    refund = client.v1.refunds.create(params={"payment_intent": intent_id, "amount": 1_000})
    assert refund.status == "succeeded"
    # localstripe sends no refund events: the charge as it now stands, as Stripe's charge.refunded carries it.
    intent = client.v1.payment_intents.retrieve(intent_id)
    charge = client.v1.charges.retrieve(intent.latest_charge.id).to_dict()  # type: ignore[union-attr]
    assert charge["amount_refunded"] == 1_000
    event = {
        "id": "evt_refund_1",
        "object": "event",
        "type": "charge.refunded",
        "created": int(time.time()),
        "data": {"object": charge},
    }
    payload = json.dumps(event).encode()
    answer = httpx.post(
        receiver.base_url + WEBHOOK_PATH, content=payload, headers={"Stripe-Signature": sign(payload, SECRET)}
    )
    assert answer.status_code == 200, answer.text
    row = top_up_row(payments.engine, view.top_up_id)
    assert (row.state, row.refunded_cents, row.reversed_nanos) == ("credited", 1_000, credits_to_nanos(10))
    assert balance(payments.engine) == credits_to_nanos(15)
    ledger_ok(payments.engine)


def test_removing_a_saved_card_detaches_it_in_stripe_and_turns_auto_recharge_off(
    payments: Payments, localstripe: str
) -> None:
    card = _saved_card(payments, localstripe, "4242424242424242")
    customer_id = _customer(payments)
    save_auto_recharge(
        payments,
        actor=OWNER,
        account_id=ACCOUNT,
        enabled=True,
        threshold_nanos=credits_to_nanos(10),
        amount_cents=2_000,
        monthly_max_cents=10_000,
        card_id=card,
    )
    client = _sdk(localstripe)
    assert client.v1.payment_methods.retrieve(card).customer == customer_id

    removal = remove_saved_card(payments, actor=OWNER, account_id=ACCOUNT, card_id=card)
    assert removal.auto_recharge_turned_off and len(removal.removed) == 1
    # POST /v1/payment_methods/{id}/detach: localstripe detaches it as Stripe does.
    assert client.v1.payment_methods.retrieve(card).customer is None
    assert run_auto_recharge(payments, account_id=ACCOUNT).decision.code == "off"
    assert remove_saved_card(payments, actor=OWNER, account_id=ACCOUNT).removed == ()
    provider = payments.provider
    assert isinstance(provider, StripeProvider)
    # A card Stripe does not have (localstripe: a 404 without a code) counts as detached.
    assert provider.detach_payment_method("pm_not_there", idempotency_key="k") is False
    # Unlike Stripe, localstripe detaches a detached card again without an error.
    assert provider.detach_payment_method(card, idempotency_key="k2") is True


def test_localstripe_refuses_the_parameter_endive_removed(payments: Payments, localstripe: str) -> None:
    card = _saved_card(payments, localstripe, "4242424242424242")
    client = _sdk(localstripe)
    intent: dict[str, Any] = {
        "amount": 500,
        "currency": "usd",
        "customer": _customer(payments),
        "payment_method": card,
        "confirm": True,
    }
    removed: Any = {**intent, "payment_method_types": ["card"]}
    with pytest.raises(stripe.InvalidRequestError) as refused:
        client.v1.payment_intents.create(params=removed)
    assert refused.value.code == "payment_method_types_no_longer_supported"
    not_a_card: Any = {**intent, "allowed_payment_method_types": ["sepa_debit"]}
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.payment_intents.create(params=not_a_card)
    cards_only: Any = {**intent, "allowed_payment_method_types": ["card"]}
    assert client.v1.payment_intents.create(params=cards_only).status == "succeeded"
