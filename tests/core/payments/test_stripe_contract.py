"""The Stripe contract (tests/stripe_contract.py): every call the provider makes is mapped to the
SDK's request type for it, the mapping agrees with the SDK, and every request is checked.

Every test in the suite is checked by the ``stripe_requests`` fixture (tests/conftest.py); here
the provider makes each of its calls once against a fake Stripe, so a change to any request
(a parameter the pinned API version removed, a value of the wrong type, a new endpoint nobody
mapped) fails without needing a test of its own.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import stripe
import stripe.params
import stripe.params.checkout

from core.payments.provider import ChargeRequest, CheckoutRequest
from core.payments.stripe_provider import StripeProvider
from tests.core.payments.test_stripe_requests import RecordingClient
from tests.stripe_contract import (
    API_VERSION,
    ENDPOINTS,
    Journal,
    SentRequest,
    check_fields,
    endpoint_for,
    sdk_request,
)

CORE = Path(__file__).resolve().parents[3] / "core"
SDK_CALL = re.compile(r"_client\.v1\.((?:\w+\.)*\w+)\(")

_CHARGE = {
    "id": "ch_1",
    "object": "charge",
    "amount_refunded": 500,
    "receipt_url": "https://pay.stripe.com/receipts/ch_1",
    "payment_method_details": {"card": {"brand": "visa", "last4": "4242"}},
}
_INTENT = {
    "id": "pi_1",
    "object": "payment_intent",
    "amount": 2_500,
    "amount_received": 2_500,
    "currency": "usd",
    "customer": "cus_1",
    "status": "succeeded",
    "payment_method": "pm_1",
    "latest_charge": _CHARGE,
    "metadata": {"top_up_id": "1"},
}
_SESSION = {
    "id": "cs_1",
    "object": "checkout.session",
    "url": "https://checkout.stripe.com/c/pay/cs_1",
    "status": "expired",
    "payment_status": "unpaid",
    "amount_total": 2_500,
    "currency": "usd",
    "payment_intent": None,
}
_ANSWERS: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {
    ("POST", "/v1/customers"): (200, {"id": "cus_1", "object": "customer"}),
    ("POST", "/v1/checkout/sessions"): (200, _SESSION),
    ("GET", "/v1/checkout/sessions/cs_1"): (200, _SESSION),
    ("POST", "/v1/checkout/sessions/cs_1/expire"): (200, _SESSION),
    ("POST", "/v1/payment_intents"): (200, _INTENT),
    ("GET", "/v1/payment_intents/pi_1"): (200, _INTENT),
    ("GET", "/v1/payment_intents"): (
        200,
        {"object": "list", "data": [_INTENT], "has_more": False, "url": "/v1/payment_intents"},
    ),
    ("POST", "/v1/payment_intents/pi_1/cancel"): (200, {**_INTENT, "status": "canceled"}),
    ("GET", "/v1/refunds"): (200, {"object": "list", "data": [], "has_more": False, "url": "/v1/refunds"}),
    ("POST", "/v1/refunds"): (200, {"id": "re_1", "object": "refund"}),
    ("POST", "/v1/charges/ch_1"): (200, {**_CHARGE, "receipt_email": "olga@pay.test"}),
    ("POST", "/v1/payment_methods/pm_1/detach"): (
        400,
        {"error": {"type": "invalid_request_error", "message": "The payment method is not attached."}},
    ),
    ("GET", "/v1/payment_methods/pm_1"): (200, {"id": "pm_1", "object": "payment_method", "customer": None}),
}


def _fake_stripe(method: str, path: str, fields: dict[str, str]) -> tuple[int, dict[str, Any]]:
    if (method, path) not in _ANSWERS:
        raise AssertionError(f"the fake Stripe has no answer for {method} {path}")
    return _ANSWERS[(method, path)]


def _every_call(provider: StripeProvider) -> None:
    provider.create_customer(
        account_id="acc_1", name="Paying Co", email="olga@pay.test", idempotency_key="account:acc_1:customer"
    )
    provider.create_checkout_session(
        CheckoutRequest(
            top_up_id=1,
            account_id="acc_1",
            customer_id="cus_1",
            amount_cents=2_500,
            currency="usd",
            product_name="Meterline credits: 25.00 credits",
            description="25.00 credits for account acc_1 (1 credit = $1.00); top-up #1",
            save_card=True,
            success_url="https://portal.example/buy_credits?account=acc_1&top_up=1",
            cancel_url="https://portal.example/buy_credits?account=acc_1&top_up=1&canceled=1",
            expires_at=datetime(2026, 11, 20, 13, 0, tzinfo=UTC),
            idempotency_key="topup:1:checkout",
        )
    )
    provider.expire_checkout_session("cs_1", idempotency_key="topup:1:expire")  # then retrieves it
    for off_session in (False, True):
        provider.charge_saved_card(
            ChargeRequest(
                top_up_id=1 + off_session,
                account_id="acc_1",
                customer_id="cus_1",
                payment_method_id="pm_1",
                amount_cents=2_500,
                currency="usd",
                off_session=off_session,
                return_url="https://portal.example/buy_credits?top_up=1",
                idempotency_key=f"topup:{1 + off_session}:payment",
            )
        )
    provider.cancel_payment("pi_1", idempotency_key="topup:1:cancel")  # then retrieves it
    assert provider.find_payment(customer_id="cus_1", top_up_id=1) is not None  # lists, then retrieves
    provider.refund_payment("pi_1", amount_cents=500, idempotency_key="refund:1:0:500")  # lists first
    provider.send_receipt("pi_1", email="olga@pay.test", idempotency_key="receipt:1:0:olga@pay.test")
    provider.detach_payment_method("pm_1", idempotency_key="card:pm_1:detach")  # refused: retrieves it


def test_every_call_the_provider_makes_is_one_the_pinned_api_accepts(stripe_requests: Journal) -> None:
    assert API_VERSION == "2026-10-28.endive"
    client = RecordingClient(_fake_stripe)
    _every_call(StripeProvider("sk_test_123", http_client=client, max_network_retries=0))
    sent = stripe_requests.requests
    assert {endpoint_for(r.method, r.path) for r in sent} == set(ENDPOINTS)  # each endpoint, none else
    assert stripe_requests.problems() == []
    (intent_fields, *_) = [dict(r.fields) for r in sent if r.label() == "POST /v1/payment_intents"]
    session_fields = next(dict(r.fields) for r in sent if r.label() == "POST /v1/checkout/sessions")
    for fields in (intent_fields, session_fields):
        assert fields["allowed_payment_method_types[0]"] == "card"
        assert not any(key.startswith("payment_method_types") for key in fields)


def test_every_stripe_call_in_the_code_is_mapped_to_its_request_type() -> None:
    called = {
        call for path in CORE.rglob("*.py") for call in SDK_CALL.findall(path.read_text(encoding="utf-8"))
    }
    assert called == {endpoint.call for endpoint in ENDPOINTS}


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.call)
def test_the_mapping_agrees_with_the_sdk(endpoint: Any) -> None:
    assert sdk_request(endpoint.call) == (endpoint.method, endpoint.path, endpoint.params.__name__)


def test_the_parameter_endive_removed_is_refused_on_both_creates() -> None:
    intent = [("amount", "2500"), ("currency", "usd"), ("payment_method_types[0]", "card")]
    assert check_fields(stripe.params.PaymentIntentCreateParams, intent) == [
        f"payment_method_types is not a field of PaymentIntentCreateParams (Stripe API {API_VERSION})"
    ]
    session = [("mode", "payment"), ("payment_method_types[0]", "card")]
    assert check_fields(stripe.params.checkout.SessionCreateParams, session) == [
        f"payment_method_types is not a field of SessionCreateParams (Stripe API {API_VERSION})"
    ]
    allowed = [("amount", "2500"), ("currency", "usd"), ("allowed_payment_method_types[0]", "card")]
    assert check_fields(stripe.params.PaymentIntentCreateParams, allowed) == []
    dynamic = [
        ("amount", "2500"),
        ("currency", "usd"),
        ("automatic_payment_methods[enabled]", "true"),
        ("automatic_payment_methods[allow_redirects]", "never"),
    ]
    assert check_fields(stripe.params.PaymentIntentCreateParams, dynamic) == []


def test_nested_fields_are_checked_down_to_their_values() -> None:
    session = stripe.params.checkout.SessionCreateParams
    item = "line_items[0][price_data]"
    ok = [
        (f"{item}[currency]", "usd"),
        (f"{item}[unit_amount]", "2500"),
        (f"{item}[product_data][name]", "Credits"),
        ("metadata[anything_we_like]", "x"),
        ("payment_intent_data[setup_future_usage]", "off_session"),
        ("expires_at", "1795000000"),
    ]
    assert check_fields(session, ok) == []
    colour = [*ok[:3], (f"{item}[product_data][colour]", "red")]
    assert check_fields(session, colour) == [
        f"{item}[product_data][colour] is not a field of SessionCreateParamsLineItemPriceDataProductData "
        f"(Stripe API {API_VERSION})"
    ]
    nameless = [*ok[:2], (f"{item}[product_data][description]", "25 credits")]
    assert check_fields(session, nameless) == [
        f"{item}[product_data][name] is required by SessionCreateParamsLineItemPriceDataProductData"
    ]
    assert check_fields(session, [(f"{item}[currency]", "usd"), (f"{item}[unit_amount]", "25.00")]) == [
        f"{item}[unit_amount]='25.00' is not of type int"
    ]
    assert check_fields(session, [("line_items[price_data][currency]", "usd")]) == [
        "line_items is a list: its items are sent as line_items[0], line_items[1], ..."
    ]
    assert check_fields(session, [("payment_method_options[card][capture_method]", "automatic")]) == [
        "payment_method_options[card][capture_method]='automatic' is not one of ['manual']"
    ]
    intent = stripe.params.PaymentIntentCreateParams
    assert check_fields(intent, [("amount", "2500"), ("currency", "usd"), ("confirm", "yes")]) == [
        "confirm='yes' is not of type bool"
    ]
    assert check_fields(intent, [("currency", "usd"), ("expand[0]", "latest_charge")]) == [
        "amount is required by PaymentIntentCreateParams"
    ]


def _sent(method: str, path: str, key: str, **fields: str) -> SentRequest:
    return SentRequest(method, "api.stripe.com", path, key, tuple(fields.items()))


def test_a_key_sent_again_with_other_parameters_is_reported() -> None:
    journal = Journal("scenario")
    journal.add(_sent("POST", "/v1/customers", "account:a:customer", name="Co", email="olga@pay.test"))
    journal.add(_sent("POST", "/v1/customers", "account:a:customer", name="Co", email="olga@pay.test"))
    assert journal.problems() == []  # a retry of the same request is what keys are for
    journal.add(_sent("POST", "/v1/customers", "account:a:customer", name="Co", email="bill@pay.test"))
    assert journal.problems() == [
        "idempotency key 'account:a:customer' sent twice with different requests "
        "(Stripe answers 400 idempotency_error): email: 'olga@pay.test' -> 'bill@pay.test'"
    ]


def test_an_unmapped_endpoint_and_a_made_up_key_are_reported() -> None:
    journal = Journal("scenario")
    journal.add(_sent("POST", "/v1/payment_intents/pi_1/capture", "topup:1:capture"))
    journal.add(_sent("POST", "/v1/refunds", "0c1f7a52-3e55-4a8e-9d59-2f1c7b0e4d11", payment_intent="pi_1"))
    assert journal.problems() == [
        "POST /v1/payment_intents/pi_1/capture: not an endpoint tests/stripe_contract.py maps to its "
        "params type",
        "POST /v1/refunds: sent without the caller's idempotency key",
    ]
