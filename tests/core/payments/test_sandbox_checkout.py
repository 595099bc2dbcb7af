"""A first purchase through the sandbox's checkout page: credited once, only after paying."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import Engine, select

from core.db import unit_of_work
from core.errors import Conflict, PermissionDenied, ValidationError
from core.ledger import reasons
from core.money import credits_to_nanos
from core.payments import refresh_top_up, saved_cards, start_checkout, top_up_history
from core.payments.sandbox import CARD_3DS, CARD_DECLINED, CARD_SUCCEEDS
from tests.core.payments.helpers import (
    ACCOUNT,
    BILLING,
    OUTSIDER,
    OWNER,
    PAGE_URL,
    VIEWER,
    MovableClock,
    balance,
    entries_for,
    ledger_ok,
    make_account,
    provider,
    purchased_grants,
    sandbox,
)


def _checkout(payments, actor=OWNER, amount_cents=2_500, key="click-1", save_card=True):  # type: ignore[no-untyped-def]
    return start_checkout(
        payments.engine,
        payments.provider,
        payments.config,
        actor=actor,
        account_id=ACCOUNT,
        amount_cents=amount_cents,
        save_card=save_card,
        request_key=key,
        page_url=PAGE_URL,
        clock=payments.clock,
    )


def test_checkout_pays_and_credits_once_with_the_card_saved(engine: Engine, now: datetime) -> None:
    make_account(engine, now)
    payments = sandbox(engine, MovableClock(now))
    top_up = _checkout(payments)
    assert top_up.state == "pending_payment"
    assert top_up.checkout_url.startswith("/payments/sandbox/checkout/cs_sbx_")
    assert balance(engine) == 0  # nothing before paying

    session_id = top_up.checkout_url.rsplit("/", 1)[1]
    paid = provider(payments).pay_checkout(session_id, CARD_SUCCEEDS)
    assert paid["status"] == "complete"

    # The signed events went through the webhook handler: credited, once.
    assert balance(engine) == credits_to_nanos(25)
    # The return page asks the provider again: nothing more.
    view = refresh_top_up(engine, payments.provider, top_up_id=top_up.top_up_id, clock=payments.clock)
    assert view.state == "credited"
    assert view.card_label == "Visa •••• 4242"
    assert view.receipt_url.startswith("/payments/sandbox/receipt/")
    assert view.ledger_entry_id is not None
    assert balance(engine) == credits_to_nanos(25)
    grants = purchased_grants(engine)
    assert [(g.amount_nanos, g.cost_basis_cents, g.idempotency_key) for g in grants] == [
        (credits_to_nanos(25), 2_500, f"topup:{top_up.top_up_id}")
    ]
    with unit_of_work(engine) as session:
        cards = saved_cards(session, ACCOUNT, "sandbox")
    assert [c.label for c in cards] == [f"Visa •••• 4242, expires 12/{(now.year + 4) % 100:02d}"]
    ledger_ok(engine)


def test_the_same_click_reuses_the_top_up_and_the_checkout(engine: Engine, now: datetime) -> None:
    make_account(engine, now)
    payments = sandbox(engine, MovableClock(now))
    first = _checkout(payments)
    again = _checkout(payments)
    assert again.top_up_id == first.top_up_id
    assert again.checkout_url == first.checkout_url
    with pytest.raises(Conflict):
        _checkout(payments, amount_cents=5_000)
    with unit_of_work(engine) as session:
        assert len(top_up_history(session, ACCOUNT)) == 1


def test_a_declined_card_leaves_the_checkout_open_and_credits_nothing(engine: Engine, now: datetime) -> None:
    make_account(engine, now)
    payments = sandbox(engine, MovableClock(now))
    top_up = _checkout(payments)
    session_id = top_up.checkout_url.rsplit("/", 1)[1]
    after = provider(payments).pay_checkout(session_id, CARD_DECLINED)
    assert after["status"] == "open"
    assert "declined" in after["_sandbox"]["error"]
    view = refresh_top_up(engine, payments.provider, top_up_id=top_up.top_up_id, clock=payments.clock)
    assert view.state == "pending_payment"  # the customer may try another card
    assert balance(engine) == 0
    provider(payments).pay_checkout(session_id, CARD_SUCCEEDS)
    assert balance(engine) == credits_to_nanos(25)


def test_three_d_secure_on_checkout_credits_after_confirmation(engine: Engine, now: datetime) -> None:
    make_account(engine, now)
    payments = sandbox(engine, MovableClock(now))
    top_up = _checkout(payments)
    sandbox_provider = provider(payments)
    session_id = top_up.checkout_url.rsplit("/", 1)[1]
    after = sandbox_provider.pay_checkout(session_id, CARD_3DS)
    intent = sandbox_provider.payment_intent(after["payment_intent"])
    assert intent["status"] == "requires_action"
    assert balance(engine) == 0
    sandbox_provider.authenticate(intent["id"], approve=True)
    assert balance(engine) == credits_to_nanos(25)
    assert entries_for(engine, reasons.GRANT_ISSUED) == 1


def test_viewers_and_strangers_cannot_buy(engine: Engine, now: datetime) -> None:
    make_account(engine, now)
    payments = sandbox(engine, MovableClock(now))
    with pytest.raises(PermissionDenied):
        _checkout(payments, actor=VIEWER)
    with pytest.raises(PermissionDenied):
        _checkout(payments, actor=OUTSIDER)
    assert _checkout(payments, actor=BILLING).state == "pending_payment"


@pytest.mark.parametrize(("cents", "code"), [(499, "too_small"), (1_000_001, "too_large")])
def test_amounts_outside_the_limits_are_refused(engine: Engine, now: datetime, cents: int, code: str) -> None:
    make_account(engine, now)
    payments = sandbox(engine, MovableClock(now))
    with pytest.raises(ValidationError) as refused:
        _checkout(payments, amount_cents=cents)
    assert refused.value.code == code
    assert refused.value.field == "amount"


def test_the_same_click_from_two_workers_at_once_makes_one_top_up_and_one_customer(
    engine: Engine, now: datetime
) -> None:
    import threading

    from core.db.models import PaymentCustomer, TopUp

    make_account(engine, now)
    payments = sandbox(engine, MovableClock(now))
    barrier = threading.Barrier(3)
    views: list[object] = []
    errors: list[BaseException] = []

    def click() -> None:
        try:
            barrier.wait()
            views.append(_checkout(payments))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=click) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert len({v.top_up_id for v in views}) == 1  # type: ignore[attr-defined]
    assert len({v.checkout_url for v in views}) == 1  # type: ignore[attr-defined]
    with unit_of_work(engine) as session:
        assert len(session.scalars(select(TopUp)).all()) == 1
        assert len(session.scalars(select(PaymentCustomer)).all()) == 1
