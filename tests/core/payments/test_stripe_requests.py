"""What we send to Stripe, field by field (a recording HTTP client under the official SDK).

localstripe has no Checkout Sessions, so the Checkout Session request is asserted here; the
same client checks the idempotency keys (derived from the top-up id, kept across the SDK's
retries) and the PaymentIntent a saved card is charged with.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import stripe
from sqlalchemy import Engine

from core.db import unit_of_work
from core.db.models import PaymentCard
from core.errors import Conflict, NotFound
from core.money import credits_to_nanos
from core.payments import Payments, buy_with_saved_card, run_auto_recharge, save_auto_recharge, start_checkout
from core.payments.config import PaymentConfig
from core.payments.provider import ProviderError
from core.payments.stripe_provider import StripeProvider
from tests.core.payments.helpers import (
    ACCOUNT,
    BILLING,
    OWNER,
    SECRET,
    MovableClock,
    balance,
    make_account,
    top_up_row,
)

PAGE = "https://portal.example/buy_credits?account=acc_pay"
Responder = Callable[[str, str, dict[str, str]], tuple[int, dict[str, Any]]]


class RecordingClient(stripe.HTTPClient):
    """Answers the SDK from ``respond`` and keeps every request it was asked to send."""

    name = "recording"

    def __init__(self, respond: Responder) -> None:
        super().__init__()
        self.respond = respond
        self.requests: list[tuple[str, str, dict[str, str], dict[str, str]]] = []

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
        *,
        _usage: Any = None,
    ) -> tuple[str, int, Mapping[str, str]]:
        fields = dict(parse_qsl(post_data or "", keep_blank_values=True))
        path = urlsplit(url).path
        self.requests.append((method.upper(), path, dict(headers or {}), fields))
        status, body = self.respond(method.upper(), path, fields)
        return json.dumps(body), status, {"request-id": "req_test"}

    def close(self) -> None:
        pass

    def calls(self, path: str) -> list[tuple[str, dict[str, str], dict[str, str]]]:
        return [(m, h, f) for m, p, h, f in self.requests if p == path]


def _stripe(engine: Engine, client: RecordingClient, clock: MovableClock, retries: int = 0) -> Payments:
    config = PaymentConfig(mode="stripe", api_key="sk_test_123", webhook_secret=SECRET)
    provider = StripeProvider("sk_test_123", http_client=client, max_network_retries=retries)
    return Payments(engine, config, provider, clock, SECRET)


def _answers(path: str, fields: dict[str, str]) -> tuple[int, dict[str, Any]]:
    if path == "/v1/customers":
        return 200, {"id": "cus_rec_1", "object": "customer"}
    if path == "/v1/checkout/sessions":
        return 200, {
            "id": "cs_test_rec",
            "object": "checkout.session",
            "url": "https://checkout.stripe.com/c/pay/cs_test_rec",
            "payment_intent": None,
        }
    raise AssertionError(f"unexpected call to {path}")


def test_checkout_session_request_field_by_field(engine: Engine, now: datetime) -> None:
    make_account(engine, now)
    client = RecordingClient(lambda method, path, fields: _answers(path, fields))
    payments = _stripe(engine, client, MovableClock(now))
    view = start_checkout(
        engine,
        payments.provider,
        payments.config,
        actor=OWNER,
        account_id=ACCOUNT,
        amount_cents=2_500,
        save_card=True,
        request_key="click-1",
        page_url=PAGE,
        clock=payments.clock,
    )
    assert view.checkout_url == "https://checkout.stripe.com/c/pay/cs_test_rec"
    assert view.state == "pending_payment"
    top_up = view.top_up_id

    ((method, headers, customer),) = client.calls("/v1/customers")
    assert method == "POST"
    assert headers["Idempotency-Key"] == f"account:{ACCOUNT}:customer"
    assert customer == {"name": "Paying Co", "email": "olga@pay.test", "metadata[account_id]": ACCOUNT}

    ((method, headers, fields),) = client.calls("/v1/checkout/sessions")
    assert method == "POST"
    assert headers["Idempotency-Key"] == f"topup:{top_up}:checkout"
    assert headers["Authorization"] == "Bearer sk_test_123"
    description = f"25.00 credits for account {ACCOUNT} (1 credit = $1.00); top-up #{top_up}"
    assert fields == {
        "mode": "payment",
        "customer": "cus_rec_1",
        "client_reference_id": str(top_up),
        "line_items[0][quantity]": "1",
        "line_items[0][price_data][currency]": "usd",
        "line_items[0][price_data][unit_amount]": "2500",  # integer cents, never a float
        "line_items[0][price_data][product_data][name]": "Meterline credits: 25.00 credits",
        "line_items[0][price_data][product_data][description]": description,
        "allowed_payment_method_types[0]": "card",
        "payment_intent_data[metadata][top_up_id]": str(top_up),
        "payment_intent_data[metadata][account_id]": ACCOUNT,
        "payment_intent_data[description]": description,
        "payment_intent_data[setup_future_usage]": "off_session",  # "save this card" was ticked
        "metadata[top_up_id]": str(top_up),
        "metadata[account_id]": ACCOUNT,
        "success_url": f"{PAGE}&top_up={top_up}",
        "cancel_url": f"{PAGE}&top_up={top_up}&canceled=1",
        "expires_at": str(int((now + timedelta(minutes=60)).timestamp())),
    }

    # The same click again (a double click, a reload): the same top-up, no second session.
    again = start_checkout(
        engine,
        payments.provider,
        payments.config,
        actor=OWNER,
        account_id=ACCOUNT,
        amount_cents=2_500,
        save_card=True,
        request_key="click-1",
        page_url=PAGE,
        clock=payments.clock,
    )
    assert again.top_up_id == top_up
    assert len(client.calls("/v1/checkout/sessions")) == 1


def test_without_save_card_no_setup_for_future_use(engine: Engine, now: datetime) -> None:
    make_account(engine, now)
    client = RecordingClient(lambda method, path, fields: _answers(path, fields))
    payments = _stripe(engine, client, MovableClock(now))
    start_checkout(
        engine,
        payments.provider,
        payments.config,
        actor=OWNER,
        account_id=ACCOUNT,
        amount_cents=1_234,
        save_card=False,
        request_key="k",
        page_url=PAGE,
        clock=payments.clock,
    )
    ((_, _, fields),) = client.calls("/v1/checkout/sessions")
    assert "payment_intent_data[setup_future_usage]" not in fields
    assert fields["line_items[0][price_data][unit_amount]"] == "1234"
    assert fields["line_items[0][price_data][product_data][name]"] == "Meterline credits: 12.34 credits"


def test_the_sdk_retries_a_failed_request_with_the_same_idempotency_key(
    engine: Engine, now: datetime
) -> None:
    make_account(engine, now)
    seen: list[int] = []

    def flaky(method: str, path: str, fields: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if path == "/v1/checkout/sessions" and not seen:
            seen.append(1)
            return 500, {"error": {"type": "api_error", "message": "try again"}}
        return _answers(path, fields)

    client = RecordingClient(flaky)
    payments = _stripe(engine, client, MovableClock(now), retries=1)
    view = start_checkout(
        engine,
        payments.provider,
        payments.config,
        actor=OWNER,
        account_id=ACCOUNT,
        amount_cents=2_500,
        save_card=False,
        request_key="k",
        page_url=PAGE,
        clock=payments.clock,
    )
    keys = [headers["Idempotency-Key"] for _, headers, _ in client.calls("/v1/checkout/sessions")]
    assert keys == [f"topup:{view.top_up_id}:checkout"] * 2
    assert view.state == "pending_payment"


def _intent(fields: dict[str, str], status: str = "succeeded") -> dict[str, Any]:
    amount = int(fields["amount"])
    return {
        "id": f"pi_rec_{fields['metadata[top_up_id]']}",
        "object": "payment_intent",
        "amount": amount,
        "amount_received": amount if status == "succeeded" else 0,
        "currency": fields["currency"],
        "customer": fields["customer"],
        "status": status,
        "metadata": {"top_up_id": fields["metadata[top_up_id]"]},
        "payment_method": {"id": fields["payment_method"], "card": {"brand": "visa", "last4": "4242"}},
        "latest_charge": {
            "id": f"ch_rec_{fields['metadata[top_up_id]']}",
            "amount_refunded": 0,
            "receipt_url": "https://pay.stripe.com/receipts/rec_1",
            "payment_method": fields["payment_method"],
            "payment_method_details": {
                "card": {"brand": "visa", "last4": "4242", "exp_month": 4, "exp_year": 2031}
            },
        },
    }


def _saved_card(engine: Engine, now: datetime) -> str:
    with unit_of_work(engine, write=True) as session:
        session.add(
            PaymentCard(
                id="pm_rec_1",
                account_id=ACCOUNT,
                provider="stripe",
                customer_id="cus_rec_1",
                brand="visa",
                last4="4242",
                exp_month=4,
                exp_year=2031,
                created_at=now,
            )
        )
    return "pm_rec_1"


def test_one_click_and_auto_recharge_payment_intents(engine: Engine, now: datetime) -> None:
    make_account(engine, now)
    card = _saved_card(engine, now)
    client = RecordingClient(lambda method, path, fields: (200, _intent(fields)))
    payments = _stripe(engine, client, MovableClock(now))
    view = buy_with_saved_card(
        engine,
        payments.provider,
        payments.config,
        actor=OWNER,
        account_id=ACCOUNT,
        amount_cents=5_000,
        card_id=card,
        request_key="k",
        page_url=PAGE,
        clock=payments.clock,
    )
    assert view.state == "credited" and view.receipt_url == "https://pay.stripe.com/receipts/rec_1"
    assert balance(engine) == credits_to_nanos(50)
    ((_, headers, fields),) = client.calls("/v1/payment_intents")
    assert headers["Idempotency-Key"] == f"topup:{view.top_up_id}:payment"
    assert fields == {
        "amount": "5000",
        "currency": "usd",
        "customer": "cus_rec_1",
        "payment_method": "pm_rec_1",
        "allowed_payment_method_types[0]": "card",
        "confirm": "true",
        "metadata[top_up_id]": str(view.top_up_id),
        "metadata[account_id]": ACCOUNT,
        "expand[0]": "latest_charge",
        "expand[1]": "payment_method",
    }  # on session: the customer clicked, so no off_session

    save_auto_recharge(
        payments,
        actor=OWNER,
        account_id=ACCOUNT,
        enabled=True,
        threshold_nanos=credits_to_nanos(100),
        amount_cents=20_000,
        monthly_max_cents=40_000,
        card_id=card,
    )
    run = run_auto_recharge(payments, account_id=ACCOUNT)
    assert run.state == "credited"
    _, headers, fields = client.calls("/v1/payment_intents")[1]
    assert headers["Idempotency-Key"] == f"topup:{run.top_up_id}:payment"
    assert fields["off_session"] == "true" and fields["amount"] == "20000"
    assert top_up_row(engine, int(run.top_up_id or 0)).card_last4 == "4242"


def _fails_first(path_failing: str) -> tuple[RecordingClient, list[int]]:
    """A Stripe whose first answer on ``path_failing`` is a 500 (the SDK does not retry: retries=0)."""
    failed: list[int] = []

    def answer(method: str, path: str, fields: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if path == path_failing and not failed:
            failed.append(1)
            return 500, {"error": {"type": "api_error", "message": "try again"}}
        return _answers(path, fields)

    return RecordingClient(answer), failed


def _checkout(payments: Payments, actor: Any = OWNER, key: str = "click-1") -> Any:
    return start_checkout(
        payments.engine,
        payments.provider,
        payments.config,
        actor=actor,
        account_id=ACCOUNT,
        amount_cents=2_500,
        save_card=False,
        request_key=key,
        page_url=PAGE,
        clock=payments.clock,
    )


def test_a_checkout_retried_later_sends_the_same_request_with_the_same_key(
    engine: Engine, now: datetime
) -> None:
    make_account(engine, now)
    client, _ = _fails_first("/v1/checkout/sessions")
    clock = MovableClock(now)
    payments = _stripe(engine, client, clock)
    with pytest.raises(ProviderError):
        _checkout(payments)
    clock.advance(timedelta(minutes=10))  # the customer clicks "Pay" again: the same request key
    view = _checkout(payments)
    assert view.state == "pending_payment"
    first, again = client.calls("/v1/checkout/sessions")
    assert first[1]["Idempotency-Key"] == again[1]["Idempotency-Key"] == f"topup:{view.top_up_id}:checkout"
    assert again[2] == first[2]  # the expiry comes from the top-up's start, not from the clock
    assert again[2]["expires_at"] == str(int((now + timedelta(minutes=60)).timestamp()))


def test_a_checkout_retried_too_late_to_open_is_refused_without_asking_stripe(
    engine: Engine, now: datetime
) -> None:
    make_account(engine, now)
    client, _ = _fails_first("/v1/checkout/sessions")
    clock = MovableClock(now)
    payments = _stripe(engine, client, clock)
    with pytest.raises(ProviderError):
        _checkout(payments)
    clock.advance(timedelta(minutes=30))  # under 31 of its 60 minutes left: Stripe wants 30 at least
    with pytest.raises(Conflict) as refused:
        _checkout(payments)
    assert refused.value.code == "checkout_too_late" and refused.value.field == "request_key"
    assert len(client.calls("/v1/checkout/sessions")) == 1


def test_the_customer_is_created_with_the_accounts_contact_whoever_clicks_first(
    engine: Engine, now: datetime
) -> None:
    make_account(engine, now)
    client, _ = _fails_first("/v1/customers")
    payments = _stripe(engine, client, MovableClock(now))
    with pytest.raises(ProviderError):
        _checkout(payments, actor=BILLING, key="bill-clicks")  # the billing member's first purchase
    _checkout(payments, actor=OWNER, key="olga-clicks")  # then the owner's, before Stripe answered one
    first, again = client.calls("/v1/customers")
    assert first[1]["Idempotency-Key"] == again[1]["Idempotency-Key"] == f"account:{ACCOUNT}:customer"
    # The account's first owner, not the member who clicked (the first click was the billing member's).
    contact = {"name": "Paying Co", "email": OWNER.email, "metadata[account_id]": ACCOUNT}
    assert first[2] == again[2] == contact


def test_a_payment_stripe_does_not_have_is_not_found_not_an_outage() -> None:
    """A webhook about a payment Stripe does not know is not ours (200), not a retry (503)."""

    def missing(method: str, path: str, fields: dict[str, str]) -> tuple[int, dict[str, Any]]:
        error = {
            "type": "invalid_request_error",
            "code": "resource_missing",
            "message": "No such payment_intent",
        }
        return 404, {"error": error}

    provider = StripeProvider("sk_test_123", http_client=RecordingClient(missing), max_network_retries=0)
    try:
        provider.retrieve_payment("pi_unknown")
    except NotFound as error:
        assert error.code == "resource_missing"
    else:
        raise AssertionError("a missing payment must be NotFound")
