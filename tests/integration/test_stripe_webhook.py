"""POST /api/webhooks/stripe over HTTP: signatures checked (400), events recorded once, unknown types 2xx.

Also the sandbox's pages: its checkout pays with test cards, asks for 3-D Secure, and sends the
signed events to the same handler; and they do not exist outside the sandbox.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime

import pytest
from sqlalchemy import Engine, select
from starlette.applications import Starlette
from starlette.testclient import TestClient

from core.api import api_routes
from core.api.payments import WEBHOOK_PATH, payment_routes
from core.db import unit_of_work
from core.db.models import PaymentEvent
from core.money import credits_to_nanos
from core.payments import Payments, start_checkout
from core.payments.config import PaymentConfig
from core.payments.sandbox import CARD_3DS, CARD_DECLINED, CARD_SUCCEEDS, sign
from tests.core.payments.helpers import (
    ACCOUNT,
    OWNER,
    SECRET,
    MovableClock,
    balance,
    checkout_completed_event,
    make_account,
    sandbox,
    signed,
    top_up_row,
)

PAGE = "http://testserver/buy_credits?account=acc_pay"


def _app(payments: Payments) -> Starlette:
    # As app/server.py orders them: payment routes before the API's /api/ fallback.
    return Starlette(
        routes=[
            *payment_routes(lambda: payments),
            *api_routes(lambda: payments.engine, token_provider=lambda: "t"),
        ]
    )


@pytest.fixture
def payments(engine: Engine, now: datetime) -> Payments:
    make_account(engine, now)
    return sandbox(engine, MovableClock(now))


def _post(client: TestClient, payload: bytes, signature: str | None) -> object:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    return client.post(WEBHOOK_PATH, content=payload, headers=headers)


def _unknown_event(event_id: str = "evt_unknown") -> dict[str, object]:
    return {
        "id": event_id,
        "object": "event",
        "type": "customer.subscription.trial_will_end",
        "created": int(time.time()),
        "data": {"object": {"id": "sub_1"}},
    }


def test_a_correctly_signed_unknown_event_is_2xx_and_recorded_once(
    payments: Payments, engine: Engine
) -> None:
    with TestClient(_app(payments)) as client:
        payload, signature = signed(_unknown_event())
        first = _post(client, payload, signature)
        again = _post(client, payload, signature)
    assert first.status_code == 200 and first.json()["outcome"] == "ignored: event type not handled"
    assert again.status_code == 200 and again.json()["outcome"] == "duplicate: already processed"
    with unit_of_work(engine) as session:
        rows = session.scalars(select(PaymentEvent)).all()
    assert [(r.id, r.type) for r in rows] == [("evt_unknown", "customer.subscription.trial_will_end")]


@pytest.mark.parametrize(
    "case",
    [
        "unsigned",
        "wrong_secret",
        "stale",
        "tampered",
        "garbage_header",
        "not_json",
        "not_an_event",
        "malformed",
    ],
)
def test_unsigned_wrongly_signed_stale_or_malformed_events_are_400(payments: Payments, case: str) -> None:
    payload, signature = signed(_unknown_event())
    if case == "unsigned":
        signature = None  # type: ignore[assignment]
    elif case == "wrong_secret":
        signature = sign(payload, "whsec_someone_else")
    elif case == "stale":
        signature = sign(payload, SECRET, timestamp=int(time.time()) - 301)
    elif case == "tampered":
        payload = payload.replace(b"sub_1", b"sub_2")
    elif case == "garbage_header":
        signature = "t=abc,v1=zz"
    elif case == "not_json":
        payload = b"\xff\xfe not json"
        signature = sign(b"x", SECRET)
        signature = signature  # a signature of something else: refused before parsing
    elif case == "not_an_event":
        payload = b"[1, 2, 3]"
        signature = sign(payload, SECRET)
    elif case == "malformed":
        bad = checkout_completed_event(event_id="evt_bad", session_id="cs_x", top_up_id=1, amount_cents=100)
        bad["data"]["object"]["amount_total"] = "100"  # type: ignore[index]
        payload, signature = signed(bad)
    with TestClient(_app(payments)) as client:
        answer = _post(client, payload, signature)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] in {"unsigned", "bad_signature", "bad_payload", "malformed_event"}


def test_a_signature_within_the_tolerance_is_accepted(payments: Payments) -> None:
    payload, _ = signed(_unknown_event())
    with TestClient(_app(payments)) as client:
        answer = _post(client, payload, sign(payload, SECRET, timestamp=int(time.time()) - 290))
    assert answer.status_code == 200


def test_bodies_over_a_mebibyte_and_other_methods_are_refused(payments: Payments) -> None:
    with TestClient(_app(payments)) as client:
        big = _post(client, b"{" + b" " * (1024 * 1024 + 1) + b"}", "t=1,v1=x")
        get = client.get(WEBHOOK_PATH)
    assert big.status_code == 413
    assert get.status_code == 405 and get.headers["allow"] == "POST"


def test_checkout_completed_built_and_signed_here_credits_once(payments: Payments, engine: Engine) -> None:
    view = start_checkout(
        engine,
        payments.provider,
        payments.config,
        actor=OWNER,
        account_id=ACCOUNT,
        amount_cents=5_000,
        save_card=False,
        request_key="k",
        page_url=PAGE,
        clock=payments.clock,
    )
    session_id = str(top_up_row(engine, view.top_up_id).checkout_session_id)
    event = checkout_completed_event(
        event_id="evt_cs_1", session_id=session_id, top_up_id=view.top_up_id, amount_cents=5_000
    )
    with TestClient(_app(payments)) as client:
        answers = [_post(client, *signed(event)) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert answers[0].json()["outcome"] == f"top-up {view.top_up_id}: credited"
    assert balance(engine) == credits_to_nanos(50)


def test_without_a_secret_the_route_says_so_with_503(engine: Engine, now: datetime) -> None:
    from core.payments.stripe_provider import StripeProvider

    unconfigured = Payments(
        engine, PaymentConfig(mode="stripe", api_key="sk_test_x"), StripeProvider("sk_test_x")
    )
    with TestClient(_app(unconfigured)) as client:
        answer = _post(client, *signed(_unknown_event()))
    assert answer.status_code == 503
    assert "STRIPE_WEBHOOK_SECRET" in answer.json()["error"]["message"]


def _checkout_path(payments: Payments, engine: Engine, cents: int = 2_500) -> tuple[int, str]:
    view = start_checkout(
        engine,
        payments.provider,
        payments.config,
        actor=OWNER,
        account_id=ACCOUNT,
        amount_cents=cents,
        save_card=True,
        request_key=f"k{cents}",
        page_url=PAGE,
        clock=payments.clock,
    )
    return view.top_up_id, view.checkout_url


def test_sandbox_checkout_page_pays_declines_and_asks_for_3ds(payments: Payments, engine: Engine) -> None:
    top_up_id, path = _checkout_path(payments, engine)
    with TestClient(_app(payments), follow_redirects=False) as client:
        page = client.get(path)
        assert page.status_code == 200
        assert "SANDBOX" in page.text and "$25.00" in page.text and "will be saved" in page.text
        declined = client.post(path, data={"card": CARD_DECLINED})
        assert declined.status_code == 200 and "Your card was declined." in declined.text
        assert balance(engine) == 0
        asked = client.post(path, data={"card": CARD_3DS})
        assert asked.status_code == 303 and asked.headers["location"].startswith(
            "/payments/sandbox/authenticate/pi_"
        )
        bank = client.get(asked.headers["location"])
        assert "Complete authentication" in bank.text and "$25.00" in bank.text
        failed = client.post(asked.headers["location"], data={"approve": "0"})
        assert failed.status_code == 303 and failed.headers["location"] == path  # back to try again
        assert balance(engine) == 0
        paid = client.post(path, data={"card": CARD_SUCCEEDS})
        assert paid.status_code == 303
        assert paid.headers["location"] == f"{PAGE}&top_up={top_up_id}"
        assert balance(engine) == credits_to_nanos(25)
        done = client.get(path)
        assert "This checkout is paid." in done.text
        receipt_path = top_up_row(engine, top_up_id).receipt_url
        receipt = client.get(receipt_path)
        assert receipt.status_code == 200 and "Visa •••• 4242" in receipt.text and "$25.00" in receipt.text
    with unit_of_work(engine) as session:
        types = sorted(session.scalars(select(PaymentEvent.type)))
    assert "checkout.session.completed" in types and "payment_intent.payment_failed" in types


def test_sandbox_cancel_goes_back_and_unknown_pages_are_404(payments: Payments, engine: Engine) -> None:
    top_up_id, path = _checkout_path(payments, engine)
    with TestClient(_app(payments), follow_redirects=False) as client:
        back = client.post(path, data={"action": "cancel"})
        assert back.status_code == 303 and back.headers["location"].endswith(f"top_up={top_up_id}&canceled=1")
        assert client.get("/payments/sandbox/checkout/cs_sbx_nope").status_code == 404
        assert client.get("/payments/sandbox/receipt/pi_nope").status_code == 404
        assert (
            client.post(path, data={"card": "4111111111111111"}).status_code == 200
        )  # not a test card: asked again


def test_sandbox_pages_do_not_exist_with_stripe(engine: Engine, now: datetime) -> None:
    from core.payments.stripe_provider import StripeProvider

    stripe_payments = Payments(
        engine, PaymentConfig(mode="stripe", api_key="sk_test_x"), StripeProvider("sk_test_x"), _secret=SECRET
    )
    with TestClient(_app(stripe_payments)) as client:
        assert client.get("/payments/sandbox/checkout/cs_sbx_anything").status_code == 404
        assert client.get("/payments/authenticate/not-a-token").status_code == 404


def test_the_sandbox_marks_every_page_as_sandbox(payments: Payments, engine: Engine) -> None:
    _, path = _checkout_path(payments, engine)
    with TestClient(_app(payments)) as client:
        text = client.get(path).text
    assert re.search(r"SANDBOX.*No real card is charged", text)
    assert json.dumps("x")  # the page is plain HTML: nothing to parse


def test_unreadable_payment_settings_are_a_503_not_a_500(
    payments: Payments, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.payments.config import payment_config

    monkeypatch.setenv("METERLINE_TOP_UP_MIN", "five")

    def broken() -> Payments:
        payment_config()  # raises ValidationError naming the variable
        return payments

    app = Starlette(routes=payment_routes(broken))
    with TestClient(app) as client:
        answer = _post(client, *signed(_unknown_event()))
    assert answer.status_code == 503
    assert answer.json()["error"]["field"] == "METERLINE_TOP_UP_MIN"
