"""Buy credits page: what an amount buys, checkout, the return page asks the provider, roles, history."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.payments import get_payments
from core.clock import system_clock
from core.db import make_engine, unit_of_work
from core.db.models import Account, TopUp
from core.ledger import lock_accounts, post_usage
from core.payments import payment_config, sandbox_payments
from core.payments.sandbox import CARD_SUCCEEDS, SandboxProvider
from tests.app.harness import open_page, page_text, signed_in, table
from tests.app.seed import ALICE, VIVIAN


@pytest.fixture(autouse=True)
def sandbox_events_at_once(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The portal's sandbox delivers its events now, not on a timer that could outlive the test."""
    import app.payments

    monkeypatch.setattr(
        app.payments,
        "payments_from_env",
        lambda engine: sandbox_payments(engine, payment_config(), delivery="sync"),
    )
    app.payments._payments_for.clear()
    yield
    app.payments._payments_for.clear()


def _balance(url: str, account_id: str = "acc_acme") -> int:
    engine = make_engine(url)
    try:
        with unit_of_work(engine) as session:
            return int(session.scalar(select(Account.balance_nanos).where(Account.id == account_id)) or 0)
    finally:
        engine.dispose()


def _buttons(at) -> list[str]:  # type: ignore[no-untyped-def]
    return [b.label for b in at.button]


def test_owner_sees_sandbox_mode_presets_and_what_an_amount_buys(portal_url: str) -> None:
    at = open_page(signed_in(ALICE), "buy_credits")
    text = page_text(at)
    assert "Sandbox mode" in text
    assert [o for o in at.radio(key="buy.amount").options] == [
        "$10.00",
        "$25.00",
        "$50.00",
        "$100.00",
        "$250.00",
        "Other amount",
    ]
    assert "10.00 credits" in text and "$1.00 per credit" in text
    at.radio(key="buy.amount").set_value("Other amount").run()
    at.text_input(key="buy.custom").set_value("12.345").run()
    assert any("at most 2 decimals" in e.value for e in at.error)
    at.text_input(key="buy.custom").set_value("40.50").run()
    assert "40.50 credits" in page_text(at)


def test_checkout_then_return_page_credits_once(portal_url: str) -> None:
    before = _balance(portal_url)
    at = open_page(signed_in(ALICE), "buy_credits")
    at.radio(key="buy.amount").set_value("$25.00").run()
    assert at.radio(key="buy.method").value == "A new card (secure checkout)"
    at.button(key="buy.go").click().run()
    assert not at.exception, [e.value for e in at.exception]
    engine = make_engine(portal_url)
    with unit_of_work(engine) as session:
        top_up = session.scalars(select(TopUp)).one()
    assert (top_up.state, top_up.amount_cents, top_up.save_card) == ("pending_payment", 2_500, True)
    assert "Waiting for the payment" in page_text(at)
    assert _balance(portal_url) == before  # nothing before paying

    provider = get_payments().provider
    assert isinstance(provider, SandboxProvider)
    provider.pay_checkout(top_up.checkout_session_id, CARD_SUCCEEDS)

    # The browser comes back to ?top_up=…: the page asks the provider, and shows the real state.
    at.query_params["top_up"] = str(top_up.id)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Payment received" in s.value for s in at.success)
    assert _balance(portal_url) == before + 25 * 10**9
    history = table(at, 0)
    assert history[0]["Amount"] == "$25.00" and history[0]["State"] == "Credited"
    assert history[0]["Card"] == "Visa •••• 4242"
    assert history[0]["Ledger"].startswith("Entry #")
    at.run()  # reruns and reloads never credit again
    assert _balance(portal_url) == before + 25 * 10**9
    # The saved card is offered for one-click purchases now.
    assert at.radio(key="buy.method").options[0].startswith("Visa •••• 4242")
    engine.dispose()


def test_viewer_sees_history_but_cannot_buy(portal_url: str) -> None:
    at = open_page(signed_in(VIVIAN), "buy_credits")
    assert "buy.go" not in [b.key for b in at.button]
    assert any("Only owners, admins and billing members" in i.value for i in at.info)
    assert "Auto-recharge" in page_text(at)


def test_negative_balance_shows_what_the_top_up_pays_off(portal_url: str) -> None:
    engine = make_engine(portal_url)
    with unit_of_work(engine, write=True) as session:
        account = lock_accounts(session, ["acc_acme"])["acc_acme"]
        owed = account.balance_nanos + 12 * 10**9
        post_usage(
            session,
            account=account,
            amount_nanos=owed,
            at=system_clock() - timedelta(minutes=1),
            reference="batch:t",
        )
    engine.dispose()
    at = open_page(signed_in(ALICE), "buy_credits")
    at.radio(key="buy.amount").set_value("$50.00").run()
    info = " ".join(i.value for i in at.info)
    assert "12.00 credits below zero" in info and "pays 12.00 credits of that off first" in info
    assert "38.00 credits are left" in info


def test_auto_recharge_needs_a_saved_card_and_refuses_a_threshold_it_cannot_lift(portal_url: str) -> None:
    at = open_page(signed_in(ALICE), "buy_credits")
    assert "Save this card" in page_text(at) or "first buy with a new card" in page_text(at)
    assert "Why didn't it recharge?" in [e.label for e in at.expander]


def test_balance_page_has_a_buy_credits_button(portal_url: str) -> None:
    at = open_page(signed_in(ALICE), "balance")
    at.button(key="balance.buy").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Buy credits"
