"""Property test: whatever a correctly signed body holds, the webhook answers 200 or 400, never 5xx,
and the ledger still adds up afterwards.

Events start from valid shapes of every handled type, about a real top-up, and then have any of
their fields replaced by arbitrary JSON: so the settling code runs with odd amounts, currencies,
ids and orders, not only the parser.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from core.payments import receive_webhook, start_checkout
from core.payments.sandbox import sign
from tests.core.payments.helpers import (
    ACCOUNT,
    OWNER,
    PAGE_URL,
    SECRET,
    MovableClock,
    ledger_ok,
    make_account,
    sandbox,
    top_up_row,
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=20,
)
plausible = st.one_of(
    json_values,
    st.sampled_from(["usd", "eur", "paid", "unpaid", "succeeded", "won", "lost", "pi_fuzz", "cs_fuzz"]),
    st.integers(min_value=0, max_value=10_000),
    st.just({"top_up_id": "1"}),
)


def _templates(session_id: str) -> dict[str, dict[str, Any]]:
    top_up = {"top_up_id": "1"}
    return {
        "checkout.session.completed": {
            "id": session_id,
            "payment_status": "paid",
            "amount_total": 2500,
            "currency": "usd",
            "payment_intent": "pi_fuzz",
            "metadata": top_up,
        },
        "checkout.session.async_payment_failed": {"id": session_id, "metadata": top_up},
        "checkout.session.expired": {"id": session_id, "metadata": top_up},
        "payment_intent.succeeded": {
            "id": "pi_fuzz",
            "status": "succeeded",
            "amount_received": 2500,
            "currency": "usd",
            "metadata": top_up,
        },
        "payment_intent.payment_failed": {"id": "pi_fuzz", "metadata": top_up},
        "charge.refunded": {
            "id": "ch_fuzz",
            "payment_intent": "pi_fuzz",
            "amount_refunded": 700,
            "currency": "usd",
        },
        "charge.dispute.created": {
            "id": "dp_fuzz",
            "payment_intent": "pi_fuzz",
            "amount": 2500,
            "currency": "usd",
        },
        "charge.dispute.closed": {
            "id": "dp_fuzz",
            "payment_intent": "pi_fuzz",
            "amount": 2500,
            "currency": "usd",
            "status": "won",
        },
        "customer.created": {"id": "cus_fuzz"},
    }


def test_any_signed_body_is_answered_200_or_400(engine: Engine, now: datetime) -> None:
    make_account(engine, now)
    payments = sandbox(engine, MovableClock(now))
    view = start_checkout(
        engine,
        payments.provider,
        payments.config,
        actor=OWNER,
        account_id=ACCOUNT,
        amount_cents=2_500,
        save_card=False,
        request_key="fuzz",
        page_url=PAGE_URL,
        clock=payments.clock,
    )
    templates = _templates(str(top_up_row(engine, view.top_up_id).checkout_session_id))
    shaped = st.builds(
        lambda event_type, event_id, changes: {
            "id": event_id,
            "object": "event",
            "type": event_type,
            "data": {"object": {**templates[event_type], **changes}},
        },
        st.sampled_from(sorted(templates)),
        st.one_of(st.uuids().map(lambda u: f"evt_{u.hex}"), st.sampled_from(["evt_same", "evt_other"])),
        st.dictionaries(
            st.sampled_from(sorted({k for t in templates.values() for k in t})), plausible, max_size=3
        ),
    )
    outcomes: set[int] = set()

    @settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(event=st.one_of(shaped, shaped, json_values))
    def check(event: Any) -> None:
        payload = json.dumps(event).encode()
        reply = receive_webhook(
            engine, payments.provider, payload=payload, signature=sign(payload, SECRET), secret=SECRET
        )
        assert reply.status in (200, 400), (reply.status, reply.body)
        outcomes.add(reply.status)

    check()
    assert outcomes == {200, 400}
    ledger_ok(engine)  # whatever was credited, refunded or held, the ledger still adds up
